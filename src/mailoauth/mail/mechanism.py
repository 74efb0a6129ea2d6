"""Which SASL client a mail login uses: the mailbox's pin, else OAUTHBEARER (RFC 7628)
where the server offers it, else XOAUTH2 (what Google and Microsoft document)."""

from __future__ import annotations

from collections.abc import Collection

from mailoauth.errors import ConfigError
from mailoauth.sasl import OAuthBearerClient, SaslClient, XOAuth2Client
from mailoauth.secret import Secret

__all__ = ["choose_client"]


def choose_client(
    offered: Collection[str], mechanism: str, user: str, token: Secret, host: str, port: int
) -> SaslClient:
    """``offered``: the server's mechanisms, any case. ``mechanism``: auto, xoauth2 or
    oauthbearer (a pin is used even when not advertised: some servers list none)."""
    wanted = mechanism.lower()
    if wanted not in ("auto", "xoauth2", "oauthbearer"):
        raise ConfigError(
            "sasl_mechanism", f"{mechanism!r} is unknown", "use auto, xoauth2 or oauthbearer"
        )
    names = {name.lower() for name in offered}
    if wanted == "oauthbearer" or (wanted == "auto" and "oauthbearer" in names):
        return OAuthBearerClient(user, token, host=host, port=port)
    return XOAuth2Client(user, token)
