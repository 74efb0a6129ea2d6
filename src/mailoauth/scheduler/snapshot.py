"""What one planning pass reads of the store: every mailbox with its provider and grant.

The scheduler re-reads this every ``replan_every`` seconds, so mailboxes added, changed or
removed by the CLI while the service runs are picked up without a restart; ``/metrics``
reads it per scrape for the gauge of mailboxes by grant state. One read costs one query
for the providers, one for the mailboxes and one per mailbox for its grant (the store has
no bulk grant read yet), so it runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from mailoauth.models import Grant, GrantStatus, Mailbox, Provider
from mailoauth.providers import GrantType
from mailoauth.store import Store

__all__ = [
    "INTERACTIVE",
    "GrantState",
    "MailboxEntry",
    "Snapshot",
    "grant_state",
    "load_snapshot",
    "state_counts",
]

#: Grants only a human can (re-)obtain: the scheduler never starts one.
INTERACTIVE: Final = (GrantType.AUTHORIZATION_CODE, GrantType.DEVICE_CODE)


class GrantState(StrEnum):
    """A mailbox's grant as ``mailoauth status --json`` and ``/metrics`` name it."""

    CONNECTED = "connected"
    NEEDS_AUTHORIZATION = "needs_authorization"
    ERROR = "error"
    NOT_AUTHORIZED = "not_authorized"  # no grant stored yet


def grant_state(grant: Grant | None) -> GrantState:
    if grant is None:
        return GrantState.NOT_AUTHORIZED
    return GrantState(grant.status.value)


@dataclass(frozen=True)
class MailboxEntry:
    """One mailbox as a planning pass saw it (``provider`` is None only if the store
    lost it between two reads)."""

    mailbox: Mailbox
    provider: Provider | None
    grant: Grant | None

    @property
    def name(self) -> str:
        return self.mailbox.name

    @property
    def state(self) -> GrantState:
        return grant_state(self.grant)

    @property
    def config(self) -> tuple[Mailbox, Provider | None]:
        """What a human edits to fix a refused grant (password, client secret, scopes)."""
        return self.mailbox, self.provider

    @property
    def interactive(self) -> bool:
        return self.mailbox.grant in INTERACTIVE

    @property
    def needs_authorization(self) -> bool:
        return self.grant is not None and self.grant.status is GrantStatus.NEEDS_AUTHORIZATION


@dataclass(frozen=True)
class Snapshot:
    mailboxes: tuple[MailboxEntry, ...] = ()
    providers: tuple[Provider, ...] = ()


def load_snapshot(store: Store) -> Snapshot:
    """Read every provider, mailbox and grant (blocking: call it in a worker thread)."""
    providers = store.list_providers()
    by_name = {provider.name: provider for provider in providers}
    entries = tuple(
        MailboxEntry(mailbox, by_name.get(mailbox.provider), store.get_grant(mailbox.name))
        for mailbox in store.list_mailboxes()
    )
    return Snapshot(entries, tuple(providers))


def state_counts(snapshot: Snapshot) -> dict[GrantState, int]:
    """Mailboxes per grant state, every state present (0 included) for a stable gauge."""
    counted = Counter(entry.state for entry in snapshot.mailboxes)
    return {state: counted.get(state, 0) for state in GrantState}
