"""Where the store key comes from, and the key file's life cycle (the only file I/O of keys).

Sources, first wins: ``MAILOAUTH_SECRET_KEY`` (``Settings.secret_key``; every node of a
PostgreSQL cluster needs the same key), then the key file (``Settings.key_file``, default
``$MAILOAUTH_HOME/secret.key``, mode 0600).

Creating the key file: the key is written to a private temporary file (``O_EXCL``, 0600),
fsynced, then hard-linked to its final name. ``link`` fails if the name exists, so two
processes starting at once agree on one key, and no reader ever sees a half-written file.

:func:`resolve_key` is told which key id the database needs (``meta.key_id``) and refuses
to create a fresh key when the database already holds secrets: a new key could not open
them, and a silently replaced key file is how secrets get lost.

Rotation with a key file is crash-safe in three steps:

1. :func:`write_pending_key` writes the new key to ``<key_file>.new`` (0600, fsync file and
   directory) *inside* the database transaction that re-encrypts, before it commits;
2. the transaction commits — ``meta.key_id`` now names the new key;
3. :func:`commit_pending_key` renames ``.new`` over the key file (fsync directory).

A crash after 2 leaves a database whose key id matches ``.new`` and not the key file;
:func:`resolve_key` recognises exactly that and finishes step 3. A crash before 2 leaves a
stale ``.new`` that matches nothing; it is ignored and overwritten by the next rotation.
The key id, not timing, decides, so a commit whose acknowledgement was lost is handled too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from mailoauth.config import Settings
from mailoauth.errors import SecretKeyError
from mailoauth.store.crypto import SecretKey

__all__ = [
    "ENV_VAR",
    "commit_pending_key",
    "key_file_too_open",
    "key_source",
    "load_key",
    "pending_key_path",
    "read_key_file",
    "resolve_key",
    "write_pending_key",
]

ENV_VAR: Final = "MAILOAUTH_SECRET_KEY"
_FILE_FIX: Final = (
    "restore it from your backup (if nothing is stored yet, delete it and a new key is made)"
)


def key_source(settings: Settings) -> str:
    """Where the configured key comes from, in words for messages."""
    return ENV_VAR if settings.secret_key is not None else f"the key file {settings.key_file}"


def load_key(settings: Settings, *, create: bool) -> SecretKey:
    """The configured key; with ``create``, make the key file if there is none."""
    return resolve_key(settings, needed=None, create=create)


def resolve_key(settings: Settings, *, needed: str | None, create: bool) -> SecretKey:
    """The configured key, checked against ``needed``: the key id the stored data needs.

    Finishes an interrupted rotation when the data needs the key in ``<key_file>.new``.
    Creates the key file only when ``create`` and no data needs a key yet.
    """
    if settings.secret_key is not None:
        env_key = SecretKey.parse(settings.secret_key.reveal(), ENV_VAR)
        if needed is not None and env_key.key_id != needed:
            raise SecretKeyError(
                f"the stored secrets were encrypted with key {needed}, but {ENV_VAR} holds "
                f"key {env_key.key_id}; set {ENV_VAR} to the key with id {needed}, or unset it "
                f"to use the key file {settings.key_file}"
            )
        return env_key
    path = settings.key_file
    key = read_key_file(path)
    if needed is not None and (key is None or key.key_id != needed):
        pending = read_key_file(pending_key_path(path))
        if pending is not None and pending.key_id == needed:
            commit_pending_key(path, pending)  # a rotation committed but did not finish
            return pending
        if key is None:
            raise SecretKeyError(
                f"the key file {path} is missing but the database holds secrets encrypted "
                f"with key {needed}; restore the file from your backup or set {ENV_VAR} to "
                "that key (a new key cannot open them)"
            )
        raise SecretKeyError(
            f"the stored secrets were encrypted with key {needed}, but the key file {path} "
            f"holds key {key.key_id}; restore the key file that holds key {needed}, or set "
            f"{ENV_VAR} to that key"
        )
    if key is not None:
        return key
    if not create:
        raise SecretKeyError(
            f"no secret key: the key file {path} does not exist and {ENV_VAR} is not set; "
            f"set {ENV_VAR} to a key from `mailoauth generate-key`, or point "
            "MAILOAUTH_KEY_FILE at your key file"
        )
    return _create_key_file(path)


def read_key_file(path: Path) -> SecretKey | None:
    """The key in ``path``, or None when the file does not exist."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise SecretKeyError(
            f"cannot read the key file {path} ({err.strerror}); check its owner and mode"
        ) from None
    return SecretKey.parse(text, f"the key file {path}", fix=_FILE_FIX)


def key_file_too_open(path: Path) -> bool:
    """Whether the key file exists and grants any permission to group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def pending_key_path(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def write_pending_key(path: Path, key: SecretKey) -> None:
    """Rotation step 1: the new key in ``<key_file>.new``, durably, replacing a stale one."""
    pending = pending_key_path(path)
    with contextlib.suppress(FileNotFoundError):
        pending.unlink()
    _write_private(pending, key)
    _fsync_dir(path.parent)


def commit_pending_key(path: Path, key: SecretKey) -> None:
    """Rotation step 3: ``<key_file>.new`` becomes the key file. Idempotent across processes."""
    try:
        os.replace(pending_key_path(path), path)
    except FileNotFoundError:
        current = read_key_file(path)
        if current is None or current.key_id != key.key_id:
            raise SecretKeyError(
                f"the new key file {pending_key_path(path)} disappeared before it replaced "
                f"{path}; the database now needs key {key.key_id}: restore that key"
            ) from None
        return  # another process finished the rotation first
    _fsync_dir(path.parent)


def _create_key_file(path: Path) -> SecretKey:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = SecretKey.generate()
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_private(temp, key)
    try:
        os.link(temp, path)
    except FileExistsError:
        existing = read_key_file(path)  # another process won the race: use its key
        assert existing is not None
        return existing
    finally:
        temp.unlink()
    _fsync_dir(path.parent)
    return key


def _write_private(path: Path, key: SecretKey) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, (key.encode() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
