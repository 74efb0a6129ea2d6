"""The Store protocol: everything the rest of mailoauth asks of persistence.

Implementations: :class:`mailoauth.store.sql.SqlStore` (SQLite by default, PostgreSQL for
several nodes). The store is synchronous; async layers (the service, the token service)
call it through a worker thread, so one implementation serves the CLI and the service.

Contract every implementation keeps:

* Secrets (``Secret`` fields of the models) are written only encrypted, sealed to the row
  they belong to; a wrong key raises :class:`~mailoauth.errors.SecretKeyError`, never
  returns garbage.
* ``put_*`` validates cross-object rules (a mailbox's provider must exist and fit it;
  changing a provider re-checks the mailboxes that use it) and reports what it did.
* ``apply`` is all-or-nothing: one transaction, nothing written when any item fails.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from mailoauth.models import Grant, Mailbox, Provider, TranscriptLine
from mailoauth.store.outbound import NewMessage, QueuedMessage, QueueStatus

__all__ = ["Change", "ChangeReport", "Store"]


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REMOVED = "removed"


@dataclass(frozen=True)
class ChangeReport:
    kind: str  # "provider" | "mailbox"
    name: str
    change: Change


class Store(Protocol):
    # providers
    def list_providers(self) -> list[Provider]: ...
    def get_provider(self, name: str) -> Provider: ...
    def put_provider(self, provider: Provider) -> Change: ...
    def delete_provider(self, name: str) -> None: ...

    # mailboxes
    def list_mailboxes(self, provider: str | None = None) -> list[Mailbox]: ...
    def get_mailbox(self, name: str) -> Mailbox: ...
    def put_mailbox(self, mailbox: Mailbox) -> Change: ...
    def delete_mailbox(self, name: str) -> None: ...

    # grants (tokens)
    def get_grant(self, mailbox: str) -> Grant | None: ...
    def put_grant(self, grant: Grant, *, release_lease: str | None = None) -> None: ...
    def delete_grant(self, mailbox: str) -> bool: ...

    # single-flight refresh across processes (DESIGN.md invariant 4)
    def claim_refresh(self, mailbox: str, owner: str, *, now: datetime, ttl: timedelta) -> bool: ...
    def release_refresh(self, mailbox: str, owner: str) -> None: ...

    # mail state (mailstate.py): IMAP cursors, seen ids, debug transcripts
    def get_fetch_cursor(self, mailbox: str, folder: str) -> tuple[str, str] | None: ...
    def put_fetch_cursor(self, mailbox: str, folder: str, validity: str, position: str) -> None: ...
    def fetch_seen(self, mailbox: str, folder: str) -> set[str]: ...
    def add_fetch_seen(self, mailbox: str, folder: str, item: str) -> None: ...
    def keep_fetch_seen(self, mailbox: str, folder: str, present: Collection[str]) -> int: ...
    def append_transcript(
        self, mailbox: str, lines: Sequence[TranscriptLine], *, keep: int = ...
    ) -> None: ...
    def read_transcript(self, mailbox: str, *, limit: int = ...) -> list[TranscriptLine]: ...
    def clear_transcript(self, mailbox: str) -> int: ...

    # the outbound queue (outbound.py): accepted = committed; delivery under a lease
    def queue_message(
        self, mailbox: str, message: NewMessage, *, now: datetime
    ) -> QueuedMessage: ...
    def claim_outbound(
        self, owner: str, *, now: datetime, ttl: timedelta, limit: int, mailbox: str | None = None
    ) -> list[tuple[QueuedMessage, bytes]]: ...
    def settle_outbound(
        self,
        entry_id: int,
        owner: str,
        status: QueueStatus,
        *,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool: ...
    def list_outbound(
        self, *, statuses: Sequence[QueueStatus] = ..., mailbox: str | None = None, limit: int = ...
    ) -> list[QueuedMessage]: ...
    def outbound_counts(self) -> dict[QueueStatus, int]: ...
    def get_outbound(self, entry_id: int) -> QueuedMessage: ...
    def outbound_data(self, entry_id: int) -> bytes: ...
    def retry_outbound(self, entry_id: int, *, now: datetime) -> QueuedMessage: ...
    def purge_outbound(self, entry_id: int) -> QueuedMessage: ...
    def purge_outbound_where(
        self, *, sent_before: datetime | None = None, mailbox: str | None = None
    ) -> int: ...

    # whole configurations
    def apply(
        self,
        providers: Sequence[Provider],
        mailboxes: Sequence[Mailbox],
        *,
        prune: bool = False,
        dry_run: bool = False,
    ) -> list[ChangeReport]: ...

    def close(self) -> None: ...
