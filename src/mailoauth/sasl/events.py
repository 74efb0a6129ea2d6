"""What the SASL state machines hand back: steps for a client, credentials for a server,
and the parsed error challenge of the token mechanisms.

All values are frozen. None of their ``repr`` / ``str`` forms shows a secret: a
:class:`Send` prints only its length (an initial response holds the token or password),
:class:`Credentials` holds the password as a :class:`~mailoauth.secret.Secret`.

The error challenge (:meth:`SaslFailure.from_challenge`) is the JSON object that XOAUTH2
(Google, "XOAUTH2 protocol", *Error response*) and OAUTHBEARER (RFC 7628 §3.2.2) servers
send instead of a plain refusal, e.g. ``{"status":"401","schemes":"bearer",
"scope":"https://mail.google.com/"}`` or Dovecot's ``{"status":"invalid_token"}``. It is
parsed defensively: whatever arrives (not JSON, not an object, missing or odd fields,
megabytes) yields a :class:`SaslFailure`, never an exception; only strings and integers
are kept, each cut short and freed of control characters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeAlias

from mailoauth.sasl._checks import printable
from mailoauth.secret import Secret

__all__ = ["MAX_CHALLENGE", "Acknowledge", "Credentials", "SaslFailure", "Send", "Step"]

MAX_CHALLENGE: Final = 8 * 1024
"""Longest error challenge parsed as JSON; a longer one is kept only as truncated text."""

_MAX_VALUE: Final = 256
_MAX_RAW: Final = 512


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` (raw: base64 it for the wire) and read the server's next message."""

    data: bytes

    def __repr__(self) -> str:
        return f"Send(<{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class SaslFailure:
    """A server's error challenge, parsed. Empty strings for what it did not say.

    ``status`` is ``"401"``-like for XOAUTH2 and an RFC 7628 §3.2.2 code
    (``invalid_token``, ``insufficient_scope``, ``invalid_request``) for OAUTHBEARER;
    ``openid_configuration`` is RFC 7628's discovery URL; ``raw`` the challenge as
    printable text, truncated.
    """

    mechanism: str
    status: str = ""
    schemes: str = ""
    scope: str = ""
    openid_configuration: str = ""
    raw: str = ""

    @classmethod
    def from_challenge(cls, mechanism: str, challenge: bytes) -> SaslFailure:
        """Parse ``challenge`` (raw bytes, after base64); never raises."""
        text = challenge[: _MAX_RAW * 4].decode("utf-8", errors="replace")
        raw = printable(text, _MAX_RAW)
        if len(challenge) > MAX_CHALLENGE:
            return cls(mechanism, raw=raw)
        try:
            parsed: object = json.loads(challenge.decode("utf-8", errors="replace"))
        except (ValueError, RecursionError):
            return cls(mechanism, raw=raw)
        if not isinstance(parsed, dict):
            return cls(mechanism, raw=raw)
        return cls(
            mechanism,
            status=_field(parsed, "status"),
            schemes=_field(parsed, "schemes"),
            scope=_field(parsed, "scope"),
            openid_configuration=_field(parsed, "openid-configuration"),
            raw=raw,
        )

    def describe(self) -> str:
        """The fields the server sent, for a message: ``status 401, scope https://…``."""
        parts = [
            f"{name} {value}"
            for name, value in (
                ("status", self.status),
                ("schemes", self.schemes),
                ("scope", self.scope),
                ("openid-configuration", self.openid_configuration),
            )
            if value
        ]
        if parts:
            return ", ".join(parts)
        return f"challenge '{self.raw}'" if self.raw else "an empty challenge"


def _field(obj: dict[object, object], key: str) -> str:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = value if isinstance(value, str) else str(value) if abs(value) < 10**18 else ""
    return printable(text, _MAX_VALUE)


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """The server rejected the token in a challenge: send ``data`` (``b""`` for XOAUTH2,
    ``b"\\x01"`` for OAUTHBEARER) so it can finish, read its final failure, then call the
    client's ``finish(False, reply)``, which raises with ``failure``'s details."""

    data: bytes
    failure: SaslFailure


Step: TypeAlias = Send | Acknowledge
"""What a client's ``receive`` returns; both carry the ``data`` to send next."""


class Credentials(NamedTuple):
    """What a client presented to a server-side PLAIN or LOGIN exchange (the relay's
    side). ``authzid`` is empty when the client asked for no other identity."""

    authzid: str
    authcid: str
    password: Secret
