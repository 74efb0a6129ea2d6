"""What a saved change does to the token a mailbox already holds.

The store keeps a mailbox's grant as it is when the mailbox or its provider changes (it
checks only that the new settings fit together). But some changes make that grant a
token for something else:

* the mailbox moved to another provider, or its provider's identity changed — kind,
  client id, tenant, cloud, token or authorization endpoint: the refresh token belongs to
  the old client and the next refresh is refused (``invalid_grant`` / ``invalid_client``);
* the mailbox asks for scopes the old request did not (a new protocol, an added scope):
  the provider's consent covered only the old ones;
* the grant type or, for an interactive grant, the login changed: the token was issued
  for another way in, or to another user.

:func:`reasons` names them (pure). :func:`invalidate` then makes the state honest at
once instead of at the next failed refresh: an interactive grant (authorization code,
device code) is set to ``needs_authorization`` with the reason in words — shown on the
dashboard and the mailbox page, and the token service stops using it — while the grant
of a mailbox that gets its token alone (password, client credentials, service account)
is dropped, so the service obtains a new one with the new settings. A change of secret
alone (a new client secret or password) leaves the grant as it is: that is how a refused
grant is fixed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Final

from mailoauth.models import GrantStatus, Mailbox, Provider, mailbox_scopes
from mailoauth.providers import GrantType
from mailoauth.store import Store

__all__ = ["INTERACTIVE", "invalidate", "reasons"]

INTERACTIVE: Final = (GrantType.AUTHORIZATION_CODE, GrantType.DEVICE_CODE)
_IDENTITY: Final = {
    "kind": "kind",
    "client_id": "client id",
    "tenant": "tenant",
    "cloud": "cloud",
    "token_url": "token URL",
    "authorization_url": "authorization URL",
}


def reasons(before: tuple[Mailbox, Provider], after: tuple[Mailbox, Provider]) -> list[str]:
    """Why the token ``before``'s settings got no longer fits ``after``'s, in words."""
    (old, old_provider), (new, provider) = before, after
    found: list[str] = []
    if old.provider != new.provider:
        found.append(f"it now uses provider {new.provider} instead of {old.provider}")
    else:
        changed = [
            words
            for name, words in _IDENTITY.items()
            if getattr(old_provider, name) != getattr(provider, name)
        ]
        if changed:
            found.append(f"the provider's {' and '.join(changed)} changed")
    if old.grant is not new.grant:
        found.append(f"its grant type changed to {new.grant.value}")
    elif new.grant in INTERACTIVE and old.login != new.login:
        found.append(f"its login changed from {old.login} to {new.login}")
    asked = set(mailbox_scopes(old, old_provider))
    added = [scope for scope in mailbox_scopes(new, provider) if scope not in asked]
    if added:
        found.append(f"it now asks for scope(s) {' '.join(added)}")
    return found


def invalidate(store: Store, mailbox: Mailbox, why: list[str], now: datetime) -> str | None:
    """Apply :func:`reasons` to the stored grant; the notice for the admin, or None when
    there was no grant to change. Blocking (the store)."""
    grant = store.get_grant(mailbox.name)
    if grant is None or not why:
        return None
    because = "; ".join(why)
    if mailbox.grant in INTERACTIVE:
        store.put_grant(
            replace(
                grant,
                status=GrantStatus.NEEDS_AUTHORIZATION,
                last_error=f"the settings changed since it was authorized ({because})",
                last_error_at=now,
            )
        )
        return f"Mailbox {mailbox.name}: re-authorization needed ({because})."
    store.delete_grant(mailbox.name)
    return (
        f"Mailbox {mailbox.name}: its token was for the old settings ({because}) and was "
        "dropped; the service gets a new one at its next pass."
    )
