"""Opening a store and rotating its key: the two operations that involve both the database
and the key's source, in the order that keeps secrets recoverable.

``open_store`` order: (1) connect and migrate — neither needs the key; (2) read which key
the data needs (``meta.key_id``); (3) only then resolve the key, so a missing key file is
recreated only when nothing depends on the old one, and an interrupted rotation is finished
instead of being mistaken for a wrong key; (4) record the key id if the database has none,
under the write lock, re-checking in case another process recorded one first.

``rotate_key`` is the whole user operation; the crash-safety protocol of the key file is
described in :mod:`mailoauth.store.keys`.
"""

from __future__ import annotations

from functools import partial

from mailoauth.config import Settings
from mailoauth.errors import SecretKeyError
from mailoauth.store import engine as db
from mailoauth.store.crypto import SecretKey
from mailoauth.store.keys import (
    ENV_VAR,
    commit_pending_key,
    resolve_key,
    write_pending_key,
)
from mailoauth.store.sealed import record_key_id, stored_key_id
from mailoauth.store.sql import SqlStore

__all__ = ["NEW_KEY_ENV_VAR", "open_store", "rotate_key"]

NEW_KEY_ENV_VAR = "MAILOAUTH_NEW_SECRET_KEY"


def open_store(settings: Settings, *, create_key: bool = True) -> SqlStore:
    """Open (creating and migrating as needed) the store ``settings`` describe.

    ``create_key``: make the key file when there is no key yet and no data needs one.
    Raises StoreError when the database cannot be opened, SecretKeyError when the key is
    missing, malformed or not the one the stored secrets need.
    """
    url = db.database_url(settings.database_url)
    engine = db.create_engine(url)
    try:
        with db.db_errors(url, "open"), engine.connect():
            pass
        db.upgrade(engine)
        with db.read_transaction(engine) as conn:
            needed = stored_key_id(conn)
        key = resolve_key(settings, needed=needed, create=create_key)
        if needed is None:
            with db.write_transaction(engine) as conn:
                recorded = stored_key_id(conn)
                if recorded is None:
                    record_key_id(conn, key.key_id)
            if recorded is not None:  # another process recorded its key first
                key = resolve_key(settings, needed=recorded, create=False)
    except BaseException:
        engine.dispose()
        raise
    reload = partial(_reload_key, settings)
    return SqlStore(engine, key, reload_key=reload)


def _reload_key(settings: Settings, needed: str) -> SecretKey:
    return resolve_key(settings, needed=needed, create=False)


def rotate_key(settings: Settings, new_key: SecretKey | None = None) -> tuple[SecretKey, int]:
    """Re-encrypt every stored secret under a new key; ``(new key, blobs re-encrypted)``.

    With a key file, ``new_key`` defaults to a fresh key and the file is replaced
    crash-safely. With MAILOAUTH_SECRET_KEY, ``new_key`` is required, and the caller must
    tell the user to put it in MAILOAUTH_SECRET_KEY wherever mailoauth runs.
    """
    if settings.secret_key is not None and new_key is None:
        raise SecretKeyError(
            f"the key comes from {ENV_VAR}, which mailoauth cannot change: put a new key "
            f"(from `mailoauth generate-key`) in {NEW_KEY_ENV_VAR}, run `mailoauth "
            f"rotate-key` again, then set {ENV_VAR} to it everywhere mailoauth runs"
        )
    key = new_key or SecretKey.generate()
    store = open_store(settings, create_key=False)
    try:
        if settings.secret_key is not None:
            return key, store.rotate_key(key)
        path = settings.key_file
        count = store.rotate_key(key, before_commit=partial(write_pending_key, path, key))
    finally:
        store.close()
    commit_pending_key(path, key)
    return key, count
