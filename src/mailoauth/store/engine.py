"""Opening the database: URL, engine, per-connection settings, transactions, migrations.

Everything that differs between SQLite and PostgreSQL lives here, in two small places
(:func:`create_engine` and :func:`_lock_for_write`); the store above writes one code path.

SQLite (the default, one host): every connection gets ``journal_mode=WAL`` (readers never
block the writer), ``synchronous=FULL`` (a committed token survives power loss),
``foreign_keys=ON`` and ``busy_timeout=10000``. We take over ``BEGIN`` from the sqlite3
module, whose legacy mode starts no transaction before DDL or SELECT: that makes the
migrations atomic and lets writes begin with ``BEGIN IMMEDIATE``. In WAL mode a deferred
transaction that reads and then writes fails at once with SQLITE_BUSY when another process
committed in between (its snapshot is stale, and ``busy_timeout`` cannot help); IMMEDIATE
takes the write lock up front and waits for it, so the service and a ``mailoauth token``
run by msmtp queue up instead of failing. New databases are created mode 0600 in a 0700
directory (SQLite gives its -wal/-shm files the database's mode).

PostgreSQL (several nodes): ``postgresql://`` URLs use psycopg 3. Writes and migrations take
a transaction-scoped advisory lock, so every node serialises configuration changes, key
rotation and schema upgrades the way SQLite's write lock does on one host.

Database errors become :class:`~mailoauth.errors.StoreError` naming the URL with its
password masked, the driver's reason and what to check.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

from mailoauth.errors import StoreError
from mailoauth.store.migrations import HEAD_REVISION

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "alembic_config",
    "create_engine",
    "database_url",
    "db_errors",
    "read_transaction",
    "redact",
    "upgrade",
    "write_transaction",
]

SQLITE_PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)
#: pg_advisory_xact_lock key of mailoauth's writes: b"mailoaut" as a signed 64-bit integer.
ADVISORY_LOCK_ID: Final = int.from_bytes(b"mailoaut", "big", signed=True)
_WRITE: Final = "mailoauth_write"
_URL_FIX: Final = "use sqlite:////path/to/mailoauth.db or postgresql://user@host/dbname"
MIGRATIONS: Final = Path(__file__).parent / "migrations"


def database_url(text: str) -> URL:
    """``text`` as a SQLAlchemy URL on a supported backend; ``postgresql://`` → psycopg 3."""
    try:
        url = sa.make_url(text)
    except ArgumentError:
        # The text is not repeated: it may hold a password.
        raise StoreError(f"MAILOAUTH_DATABASE_URL is not a database URL; {_URL_FIX}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database {redact(url)}: only SQLite and PostgreSQL are supported; {_URL_FIX}"
        )
    return url


def redact(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def create_engine(url: URL) -> Engine:
    """An engine for ``url`` with mailoauth's per-connection settings."""
    try:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        _prepare_sqlite_file(url)
        engine = sa.create_engine(url)
    except (NoSuchModuleError, ImportError) as err:
        raise StoreError(f"database {redact(url)}: no driver ({err}); install psycopg") from None
    except OSError as err:
        raise StoreError(
            f"cannot create the database {redact(url)} ({err.strerror}); check that its "
            "directory is writable by this user"
        ) from None
    _SQLITE_WRITE_LOCKS[engine] = threading.Lock()
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _prepare_sqlite_file(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _on_sqlite_connect(dbapi_connection: object, record: ConnectionPoolEntry) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    dbapi_connection.isolation_level = None  # BEGIN is ours: see _on_sqlite_begin
    for pragma in SQLITE_PRAGMAS:
        dbapi_connection.execute(pragma).close()


def _on_sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _lock_for_write(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_ID)))
    # SQLite: BEGIN IMMEDIATE already holds the database's write lock.


@contextmanager
def db_errors(url: URL, doing: str = "use") -> Iterator[None]:
    """Turn driver errors into a StoreError that names the database, not its password."""
    try:
        yield
    except DBAPIError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig is not None else str(err)
        if url.password:
            reason = reason.replace(str(url.password), "***")
        raise StoreError(
            f"cannot {doing} the database {redact(url)}: {reason}; check that it is reachable, "
            "that this user may use it, and that its disk is not full"
        ) from None


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a read transaction: one consistent snapshot for several queries."""
    with db_errors(engine.url, "read"), engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def write_transaction(engine: Engine, *, dry_run: bool = False) -> Iterator[Connection]:
    """A connection in a write transaction holding mailoauth's write lock.

    Commits when the block ends normally, rolls back on an exception or when ``dry_run``.
    """
    with _local_write_lock(engine), db_errors(engine.url, "write"), engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin() as transaction:
            _lock_for_write(conn)
            yield conn
            if dry_run:
                transaction.rollback()


#: One lock per SQLite engine: threads of one process queue here and are handed the write
#: lock at once, instead of polling for it in SQLite's busy handler, which sleeps in steps
#: of up to 100 ms (measured: 1,000 concurrent refreshes went from 74/s to several
#: hundred/s). Other processes still meet at BEGIN IMMEDIATE with busy_timeout.
_SQLITE_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


@contextmanager
def _local_write_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    with _SQLITE_WRITE_LOCKS[engine]:
        yield


def alembic_config(conn: Connection) -> Config:
    """An alembic Config for our migrations, running on ``conn`` (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = conn
    return config


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    with read_transaction(engine) as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest schema, atomically and under the write lock.

    A database already at :data:`HEAD_REVISION` is recognised with one read, without
    importing alembic or taking the write lock: every CLI run (``mailoauth token`` behind
    msmtp among them) opens the store, and that check must stay cheap.
    """
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.util import CommandError

    with write_transaction(engine) as conn:
        try:
            command.upgrade(alembic_config(conn), "head")
        except CommandError as err:
            raise StoreError(
                f"cannot migrate the database {redact(engine.url)} ({err}); if a newer "
                "mailoauth created it, upgrade mailoauth"
            ) from None
