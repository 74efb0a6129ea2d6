"""Console administrators: create, check, re-key and remove them — for the CLI
(``mailoauth admin …``) and the console (setup page, login) alike.

Rules: a name of 1-64 letters, digits and ``. _ @ + -`` starting with a letter or digit;
a password of at least :data:`MIN_PASSWORD_LENGTH` characters (NIST SP 800-63B section
5.1.1.2 asks for length, not composition rules), at most :data:`MAX_PASSWORD_LENGTH`, not
the name itself. Passwords are stored as :mod:`.passwords` hashes. Every change is written
to the audit log; nothing here ever puts a password in an error or a log entry.

These functions block (a password hash takes ~50-100 ms): call them from a worker thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.secret import Secret
from mailoauth.store import Admin, AuditEntry, Store
from mailoauth.web.console.passwords import hash_password, verify_password

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "authenticate",
    "check_admin_name",
    "check_password",
    "create_admin",
    "remove_admin",
    "reset_admin_password",
]

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_admin_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            "name",
            f"{name!r} is not a valid admin name",
            "use 1-64 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit",
        )
    return name


def check_password(name: str, password: Secret) -> None:
    """Refuse a password that is too short, too long or the admin's name (the message
    never repeats the password)."""
    text = password.reveal()
    if len(text) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            "password",
            f"is {len(text)} characters long",
            f"use at least {MIN_PASSWORD_LENGTH}: a passphrase of a few words is easiest",
        )
    if len(text) > MAX_PASSWORD_LENGTH:
        raise ConfigError("password", "is too long", f"use at most {MAX_PASSWORD_LENGTH}")
    if text.casefold() == name.casefold():
        raise ConfigError("password", "is the admin's name", "choose another one")


def create_admin(
    store: Store,
    name: str,
    password: Secret,
    *,
    first: bool = False,
    actor: str | None = None,
    source: str = "cli",
    clock: Clock = _utcnow,
) -> Admin:
    """Check, hash and store a new admin, and audit it. ``first``: only if none exists
    yet (the setup page; atomic in the store). ``actor``: the admin who did it, if any."""
    check_admin_name(name)
    check_password(name, password)
    now = clock()
    admin = Admin(name, hash_password(password), created_at=now, password_set_at=now)
    store.add_admin(admin, first=first)
    how = "through the one-time setup link" if first else None
    _audit(store, now, "admin.create", actor, name, how, source)
    return admin


def reset_admin_password(
    store: Store,
    name: str,
    password: Secret,
    *,
    actor: str | None = None,
    source: str = "cli",
    clock: Clock = _utcnow,
) -> int:
    """A new password for ``name``; all its sessions end. Returns how many ended."""
    check_password(name, password)
    store.get_admin(name)  # NotFoundError before paying for the hash
    now = clock()
    ended = store.set_admin_password(name, hash_password(password), now=now)
    detail = f"{ended} session(s) ended"
    _audit(store, now, "admin.reset_password", actor, name, detail, source)
    return ended


def remove_admin(
    store: Store,
    name: str,
    *,
    actor: str | None = None,
    source: str = "cli",
    clock: Clock = _utcnow,
) -> None:
    store.delete_admin(name)
    _audit(store, clock(), "admin.remove", actor, name, None, source)


def authenticate(store: Store, name: str, password: Secret) -> Admin | None:
    """The admin if ``password`` is theirs, else None — in the same time either way
    (an unknown name is checked against a dummy, see :mod:`.passwords`)."""
    try:
        admin: Admin | None = store.get_admin(name) if _NAME.fullmatch(name) else None
    except NotFoundError:
        admin = None
    ok = verify_password(password, admin.password_hash if admin else None)
    return admin if ok else None


def _audit(
    store: Store,
    at: datetime,
    action: str,
    actor: str | None,
    target: str,
    detail: str | None,
    source: str,
) -> None:
    store.add_audit(AuditEntry(at, action, actor, target, detail, source))
