"""`SqlStore`: the :class:`~mailoauth.store.base.Store` on SQLAlchemy Core, one code path for
SQLite and PostgreSQL (their differences are confined to :mod:`.engine`).

Every public method is one transaction. Writes run under the store's write lock (SQLite
``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) and validate before they commit, so a
failed check leaves nothing written: ``put_provider`` re-checks the mailboxes that use the
provider inside the transaction that changes it, ``apply`` does the whole batch in one.

The key: ``meta.key_id`` names the key that sealed the data. Each write transaction checks
it under the lock, and each blob carries its key id, so a process that kept running while
``mailoauth rotate-key`` changed the key (the service) picks up the new key file instead
of writing secrets under a key that no longer exists (``reload_key``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from mailoauth.errors import ConfigError, InUseError, NotFoundError, SecretKeyError
from mailoauth.models import Grant, Mailbox, Provider, check_mailbox_with_provider
from mailoauth.store import leases, mailstate, outbound, rows
from mailoauth.store.api_keys import ApiKeyMethods
from mailoauth.store.base import Change, ChangeReport
from mailoauth.store.console import ConsoleMethods
from mailoauth.store.crypto import Cipher, SecretKey, blob_key_id
from mailoauth.store.engine import read_transaction, write_transaction
from mailoauth.store.pending import PendingMethods
from mailoauth.store.relay_users import RelayUserMethods
from mailoauth.store.schema import grants, mailboxes, providers
from mailoauth.store.sealed import record_key_id, sealed_blobs, stored_key_id
from mailoauth.store.sql_state import MailStateMethods, OutboundMethods

__all__ = ["SqlStore"]

Clock = Callable[[], datetime]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


_MAILBOX_SELECT = sa.select(
    mailboxes.c.id,
    mailboxes.c.name,
    providers.c.name.label("provider"),
    mailboxes.c.data,
    mailboxes.c.secrets,
).join_from(mailboxes, providers, mailboxes.c.provider_id == providers.c.id)


class SqlStore(
    MailStateMethods,
    OutboundMethods,
    RelayUserMethods,
    PendingMethods,
    ConsoleMethods,
    ApiKeyMethods,
):
    """Providers, mailboxes and grants in a SQL database, secrets sealed with one key;
    mail state and the outbound queue come from :mod:`.sql_state`, the relay's logins
    from :mod:`.relay_users`, authorizations in progress from :mod:`.pending`, the console's
    admins, sessions and audit log from :mod:`.console`, the REST API's keys from
    :mod:`.api_keys`."""

    def __init__(
        self,
        engine: Engine,
        key: SecretKey,
        *,
        reload_key: Callable[[str], SecretKey] | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        """``reload_key(key_id)`` returns the configured key that has that id, or raises."""
        self._engine = engine
        self._cipher = Cipher(key)
        self._reload_key = reload_key
        self._clock = clock

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def key_id(self) -> str:
        return self._cipher.key_id

    def close(self) -> None:
        self._engine.dispose()

    # --- providers ------------------------------------------------------------------

    def list_providers(self) -> list[Provider]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(sa.select(providers).order_by(providers.c.name))
            return [self._provider(row) for row in found]

    def get_provider(self, name: str) -> Provider:
        with read_transaction(self._engine) as conn:
            return self._provider(self._provider_row(conn, name))

    def put_provider(self, provider: Provider) -> Change:
        with self._write() as conn:
            change = self._save_provider(conn, provider)
            if change is Change.UPDATED:
                self._recheck_mailboxes(conn, provider, skip=frozenset())
            return change

    def delete_provider(self, name: str) -> None:
        with self._write() as conn:
            self._delete_provider(conn, self._provider_row(conn, name))

    # --- mailboxes ------------------------------------------------------------------

    def list_mailboxes(self, provider: str | None = None) -> list[Mailbox]:
        query = _MAILBOX_SELECT.order_by(mailboxes.c.name)
        with read_transaction(self._engine) as conn:
            if provider is not None:
                self._provider_row(conn, provider)
                query = query.where(providers.c.name == provider)
            return [self._mailbox(row) for row in conn.execute(query)]

    def get_mailbox(self, name: str) -> Mailbox:
        with read_transaction(self._engine) as conn:
            return self._mailbox(self._mailbox_row(conn, name))

    def put_mailbox(self, mailbox: Mailbox) -> Change:
        with self._write() as conn:
            return self._save_mailbox(conn, mailbox, prefix="")

    def delete_mailbox(self, name: str) -> None:
        with self._write() as conn:
            self._delete_mailbox(conn, self._mailbox_row(conn, name).id)

    # --- grants ---------------------------------------------------------------------

    def get_grant(self, mailbox: str) -> Grant | None:
        """The mailbox's grant, None when it has none; NotFoundError for an unknown mailbox."""
        with read_transaction(self._engine) as conn:
            mailbox_id = self._mailbox_row(conn, mailbox).id
            row = conn.execute(sa.select(grants).where(grants.c.mailbox_id == mailbox_id)).first()
            if row is None:
                return None
            columns = {name: row._mapping[name] for name in rows.GRANT_COLUMNS}
            return rows.grant_from_row(mailbox, columns, row.data, row.secrets, self._unseal)

    def put_grant(self, grant: Grant, *, release_lease: str | None = None) -> None:
        """Store the grant; with ``release_lease``, also give back that owner's refresh
        lease in the same transaction (one commit instead of two per refresh)."""
        with self._write() as conn:
            mailbox_id = self._mailbox_row(conn, grant.mailbox).id
            if release_lease is not None:
                leases.release(conn, mailbox_id, release_lease)
            values = {**rows.grant_values(grant, self._seal), "updated_at": self._clock()}
            updated = conn.execute(
                sa.update(grants)
                .where(grants.c.mailbox_id == mailbox_id)
                .values(**values, version=grants.c.version + 1)
            ).rowcount
            if not updated:
                conn.execute(sa.insert(grants).values(**values, mailbox_id=mailbox_id, version=1))

    def delete_grant(self, mailbox: str) -> bool:
        with self._write() as conn:
            mailbox_id = self._mailbox_row(conn, mailbox).id
            deleted = conn.execute(sa.delete(grants).where(grants.c.mailbox_id == mailbox_id))
            return bool(deleted.rowcount)

    def claim_refresh(self, mailbox: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        """Lease the right to refresh ``mailbox`` (see :mod:`.leases`); False if taken."""
        with self._write() as conn:
            mailbox_id = self._mailbox_row(conn, mailbox).id
            return leases.claim(conn, mailbox_id, owner, now=now, until=now + ttl)

    def release_refresh(self, mailbox: str, owner: str) -> None:
        with self._write() as conn:
            leases.release(conn, self._mailbox_row(conn, mailbox).id, owner)

    # --- whole configurations -------------------------------------------------------

    def apply(
        self,
        providers: Sequence[Provider],
        mailboxes: Sequence[Mailbox],
        *,
        prune: bool = False,
        dry_run: bool = False,
    ) -> list[ChangeReport]:
        """Providers, then mailboxes, then (with ``prune``) removals — one transaction."""
        _refuse_duplicates("providers", [p.name for p in providers])
        _refuse_duplicates("mailboxes", [m.name for m in mailboxes])
        reports: list[ChangeReport] = []
        with self._write(dry_run=dry_run) as conn:
            updated: list[Provider] = []
            for provider in providers:
                change = self._save_provider(conn, provider)
                reports.append(ChangeReport("provider", provider.name, change))
                if change is Change.UPDATED:
                    updated.append(provider)
            for mailbox in mailboxes:
                change = self._save_mailbox(conn, mailbox, prefix=f"mailboxes.{mailbox.name}")
                reports.append(ChangeReport("mailbox", mailbox.name, change))
            if prune:
                reports += self._prune(conn, providers, mailboxes)
            batch = frozenset(m.name for m in mailboxes)
            for provider in updated:
                self._recheck_mailboxes(conn, provider, skip=batch)
        return reports

    # --- the key --------------------------------------------------------------------

    def rotate_key(
        self, new_key: SecretKey, *, before_commit: Callable[[], None] | None = None
    ) -> int:
        """Re-seal every secret with ``new_key`` in one transaction; how many blobs.

        ``before_commit`` runs inside the transaction after the re-encryption, e.g. to
        write ``<key_file>.new`` durably before the database starts needing it.
        """
        if new_key == self._cipher.key:
            raise SecretKeyError(
                f"the new key is the current key {new_key.key_id}; generate another one with "
                "`mailoauth generate-key`"
            )
        new = Cipher(new_key)
        count = 0
        with self._write() as conn:
            for table, pk, name, blob in sealed_blobs(conn):
                aad = rows.aad(table.name, name)
                resealed = new.seal(self._cipher.open(blob, aad), aad)
                conn.execute(sa.update(table).where(_pk(table) == pk).values(secrets=resealed))
                count += 1
            record_key_id(conn, new.key_id)
            if before_commit is not None:
                before_commit()
        self._cipher = new
        return count

    # --- internals: transactions and secrets ----------------------------------------

    @contextmanager
    def _write(self, *, dry_run: bool = False) -> Iterator[Connection]:
        with write_transaction(self._engine, dry_run=dry_run) as conn:
            needed = stored_key_id(conn)
            if needed is None:
                record_key_id(conn, self._cipher.key_id)
            else:
                self._use_key(needed)
            yield conn

    def _use_key(self, needed: str) -> None:
        """Switch to the configured key with id ``needed`` (after a rotation elsewhere).

        Without a way to reload, or when the configured key is not that one, raise: a
        write must never seal secrets under a key the rest of the data does not use.
        """
        if needed == self._cipher.key_id:
            return
        if self._reload_key is None:
            raise SecretKeyError(
                f"the stored secrets need key {needed} but this store was opened with key "
                f"{self._cipher.key_id}; reopen it with the current key"
            )
        self._cipher = Cipher(self._reload_key(needed))

    def _seal(self, table: str, name: str, secrets: Mapping[str, str]) -> bytes | None:
        if not secrets:
            return None
        return self._cipher.seal(rows.encode_secrets(secrets), rows.aad(table, name))

    def _unseal(self, table: str, name: str, blob: bytes | None) -> dict[str, str]:
        if blob is None:
            return {}
        needed = blob_key_id(blob)
        if needed is not None and needed != self._cipher.key_id and self._reload_key:
            self._use_key(needed)
        return rows.decode_secrets(self._cipher.open(blob, rows.aad(table, name)))

    # --- internals: rows -------------------------------------------------------------

    def _provider(self, row: AnyRow) -> Provider:
        return rows.provider_from_row(row.name, row.kind, row.data, row.secrets, self._unseal)

    def _mailbox(self, row: AnyRow) -> Mailbox:
        return rows.mailbox_from_row(row.name, row.provider, row.data, row.secrets, self._unseal)

    def _provider_row(self, conn: Connection, name: str) -> AnyRow:
        row = conn.execute(sa.select(providers).where(providers.c.name == name)).first()
        if row is None:
            raise NotFoundError("provider", name)
        return row

    def _mailbox_row(self, conn: Connection, name: str) -> AnyRow:
        row = conn.execute(_MAILBOX_SELECT.where(mailboxes.c.name == name)).first()
        if row is None:
            raise NotFoundError("mailbox", name)
        return row

    def _save_provider(self, conn: Connection, provider: Provider) -> Change:
        found = conn.execute(sa.select(providers).where(providers.c.name == provider.name))
        values = rows.provider_values(provider, self._seal)
        return self._save(conn, providers, found.first(), provider, self._provider, values)

    def _save_mailbox(self, conn: Connection, mailbox: Mailbox, *, prefix: str) -> Change:
        try:
            found = conn.execute(
                sa.select(providers).where(providers.c.name == mailbox.provider)
            ).first()
            if found is None:
                raise ConfigError(
                    "provider",
                    f"provider {mailbox.provider!r} does not exist",
                    "create it first with `mailoauth provider add` or in the same apply file",
                )
            check_mailbox_with_provider(mailbox, self._provider(found))
        except ConfigError as err:
            raise (err.within(prefix) if prefix else err) from None
        values = {**rows.mailbox_values(mailbox, self._seal), "provider_id": found.id}
        existing = conn.execute(_MAILBOX_SELECT.where(mailboxes.c.name == mailbox.name))
        return self._save(conn, mailboxes, existing.first(), mailbox, self._mailbox, values)

    def _save(
        self,
        conn: Connection,
        table: sa.Table,
        existing: AnyRow | None,
        model: object,
        load: Callable[[AnyRow], object],
        values: dict[str, Any],
    ) -> Change:
        now = self._clock()
        if existing is None:
            conn.execute(sa.insert(table).values(**values, created_at=now, updated_at=now))
            return Change.CREATED
        if load(existing) == model:
            return Change.UNCHANGED
        conn.execute(
            sa.update(table).where(_pk(table) == existing.id).values(**values, updated_at=now)
        )
        return Change.UPDATED

    def _recheck_mailboxes(
        self, conn: Connection, provider: Provider, *, skip: frozenset[str]
    ) -> None:
        """Check every stored mailbox of ``provider`` (but ``skip``) against it."""
        users = conn.execute(_MAILBOX_SELECT.where(providers.c.name == provider.name))
        for row in users:
            if row.name in skip:
                continue
            try:
                check_mailbox_with_provider(self._mailbox(row), provider)
            except ConfigError as err:
                raise err.within(f"mailboxes.{row.name}") from None

    def _delete_provider(self, conn: Connection, row: AnyRow) -> None:
        users = conn.scalars(
            sa.select(mailboxes.c.name)
            .where(mailboxes.c.provider_id == row.id)
            .order_by(mailboxes.c.name)
        ).all()
        if users:
            raise InUseError(
                f"provider {row.name!r} is used by mailbox(es) {', '.join(users)}; "
                "remove these mailboxes or move them to another provider first"
            )
        conn.execute(sa.delete(providers).where(providers.c.id == row.id))

    def _delete_mailbox(self, conn: Connection, mailbox_id: int) -> None:
        unsent = outbound.pending(conn, mailbox_id)
        if unsent:
            name = conn.scalar(sa.select(mailboxes.c.name).where(mailboxes.c.id == mailbox_id))
            raise InUseError(
                f"mailbox {name!r} has {unsent} queued message(s) not sent; let them go out "
                f"(`mailoauth queue list --mailbox {name}`) or delete them with "
                f"`mailoauth queue purge --mailbox {name}` first"
            )
        # The foreign key cascades too; deleting explicitly does not depend on it.
        outbound.forget(conn, mailbox_id)
        mailstate.forget(conn, mailbox_id)
        conn.execute(sa.delete(grants).where(grants.c.mailbox_id == mailbox_id))
        conn.execute(sa.delete(mailboxes).where(mailboxes.c.id == mailbox_id))

    def _prune(
        self, conn: Connection, keep_providers: Sequence[Provider], keep: Sequence[Mailbox]
    ) -> list[ChangeReport]:
        reports: list[ChangeReport] = []
        names = {m.name for m in keep}
        for row in conn.execute(_MAILBOX_SELECT.order_by(mailboxes.c.name)).all():
            if row.name not in names:
                self._delete_mailbox(conn, row.id)
                reports.append(ChangeReport("mailbox", row.name, Change.REMOVED))
        # A provider the file does not define but a kept mailbox uses is kept too.
        names = {p.name for p in keep_providers} | {m.provider for m in keep}
        for row in conn.execute(sa.select(providers).order_by(providers.c.name)).all():
            if row.name not in names:
                self._delete_provider(conn, row)
                reports.append(ChangeReport("provider", row.name, Change.REMOVED))
        return reports


def _pk(table: sa.Table) -> sa.ColumnElement[Any]:
    (column,) = table.primary_key.columns
    return column


def _refuse_duplicates(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{kind}.{name}", "is given twice", "keep one of them")
        seen.add(name)
