"""What a human should do when a provider refuses a grant, in words (DESIGN.md invariant 5).

Pure: takes the provider's error and our configuration, returns a sentence. The most
common causes in the field come first: Google apps left in "Testing" (refresh tokens die
after 7 days) and expired Azure client secrets.
"""

from __future__ import annotations

from datetime import date

from mailoauth.models import Mailbox, Provider
from mailoauth.providers import GrantType, ProviderKind

__all__ = ["hint_for"]

_INTERACTIVE = (GrantType.AUTHORIZATION_CODE, GrantType.DEVICE_CODE)


def hint_for(error: str, provider: Provider, mailbox: Mailbox, today: date) -> str:
    """A fix for the provider's RFC 6749 §5.2 ``error`` code on this mailbox."""
    authorize = f"run `mailoauth authorize {mailbox.name}`"
    expires = provider.client_secret_expires
    if error in ("invalid_client", "unauthorized_client"):
        if expires is not None and expires < today:
            return (
                f"the client secret of provider {provider.name!r} expired on {expires}: create "
                "a new secret at the provider and update the provider here"
            )
        return (
            f"check provider {provider.name!r}: client id, client secret or key, and that the "
            "app may use this grant (`mailoauth provider show "
            f"{provider.name}`)"
        )
    if error == "invalid_scope":
        return (
            "the app registration does not allow the requested scopes: add the API "
            "permissions (and admin consent) at the provider, or set the mailbox's scopes"
        )
    if error in ("invalid_grant", "access_denied", "consent_required", "interaction_required"):
        if mailbox.grant is GrantType.PASSWORD:
            return (
                "check the mailbox's user name and password, and that the account needs no "
                "multi-factor sign-in (the password grant cannot do MFA)"
            )
        if mailbox.grant is GrantType.SERVICE_ACCOUNT:
            return (
                "check the service account's domain-wide delegation for the scopes and that "
                f"{mailbox.subject} exists in the Workspace domain"
            )
        if provider.kind is ProviderKind.GOOGLE and mailbox.grant in _INTERACTIVE:
            return (
                "Google revokes refresh tokens after 7 days while the OAuth consent screen "
                "is in 'Testing' publishing status, and when the user removes access or "
                f"changes the password: publish the app, then {authorize}"
            )
        if mailbox.grant in _INTERACTIVE:
            return f"the grant was revoked or has expired: {authorize}"
    return authorize
