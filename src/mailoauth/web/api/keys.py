"""REST API keys: their format, their scopes, and checking one a client presents.

A key is made by ``mailoauth api-key add NAME --scope SCOPE`` and shown once::

    mo_<prefix>_<secret>        e.g. mo_3f9c2a1b_q8Zr…  (prefix: 8 hex digits,
                                secret: 32 URL-safe characters, 192 random bits)

The prefix is public: it finds the key's row and is shown in ``api-key list``, so an
admin can tell which key a log line or a leaked string belongs to. The store keeps a
salted HMAC-SHA256 verifier of the whole key (:mod:`mailoauth.store.verifiers`: why a
fast hash is right for a generated key), never the key. A client sends it as
``Authorization: Bearer <key>`` (RFC 6750 section 2.1).

Scopes nest: ``admin`` ⊃ ``send`` ⊃ ``read``. ``read`` sees configuration and status
(never a secret); ``send`` also sends mail; ``admin`` changes providers and mailboxes,
authorizes, fetches, tests and manages the queue.

This module imports nothing of the web stack, so ``mailoauth api-key`` stays quick.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from mailoauth.errors import ConfigError
from mailoauth.secret import Secret
from mailoauth.store import ApiKey, Store
from mailoauth.store.verifiers import DUMMY_VERIFIER, check_verifier, make_verifier
from mailoauth.validate import check_name

__all__ = [
    "KEY_PATTERN",
    "TOUCH_EVERY",
    "ApiScope",
    "authenticate",
    "create_key",
    "granted",
    "shown_prefix",
]

Clock = Callable[[], datetime]

#: What a key looks like; anything else is refused without a store read.
KEY_PATTERN: Final = re.compile(r"mo_([0-9a-f]{8})_[A-Za-z0-9_-]{32}")
_SECRET_BYTES: Final = 24  # 192 bits
#: ``last_used`` is written at most this often per key: one write a minute, not a
#: write (and an fsync) per request.
TOUCH_EVERY: Final = timedelta(minutes=1)


class ApiScope(StrEnum):
    """What a key may do; each scope includes the ones below it."""

    READ = "read"
    SEND = "send"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS: Final = {ApiScope.READ: 0, ApiScope.SEND: 1, ApiScope.ADMIN: 2}
_VALUES: Final = frozenset(s.value for s in ApiScope)


def granted(scopes: Iterable[str]) -> ApiScope | None:
    """The widest scope among ``scopes`` (stored names; unknown ones grant nothing)."""
    known = [ApiScope(s) for s in scopes if s in _VALUES]
    return max(known, key=lambda s: s.rank, default=None)


def shown_prefix(key: ApiKey) -> str:
    """How listings show a key: its public part, never the secret."""
    return f"mo_{key.prefix}_…"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_key(
    store: Store, name: str, scopes: Iterable[ApiScope], *, now: Clock = _utcnow
) -> tuple[ApiKey, Secret]:
    """Make and store key ``name``; returns it and the key text — the only time the key
    exists outside the client it is given to."""
    check_name("api-key", name)
    wanted = tuple(dict.fromkeys(ApiScope(s).value for s in scopes))
    if not wanted:
        raise ConfigError("--scope", "is missing", "give read, send or admin")
    prefix = secrets.token_hex(4)
    text = Secret(f"mo_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}")
    key = ApiKey(
        name=name,
        prefix=prefix,
        verifier=make_verifier(text),
        scopes=wanted,
        created_at=now(),
    )
    store.add_api_key(key)
    return key, text


def authenticate(store: Store, presented: Secret, *, now: Clock = _utcnow) -> ApiKey | None:
    """The stored key ``presented`` is, if it is one and not revoked; else None (the
    caller answers 401 either way). Records the use, at most once a minute. Synchronous,
    like the store: async callers use a worker thread."""
    match = KEY_PATTERN.fullmatch(presented.reveal())
    key = store.find_api_key(match.group(1)) if match else None
    if key is None:
        check_verifier(DUMMY_VERIFIER, presented)  # the same work as for a known prefix
        return None
    if not check_verifier(key.verifier, presented) or key.revoked:
        return None
    at = now()
    if key.last_used_at is None or at - key.last_used_at >= TOUCH_EVERY:
        store.touch_api_key(key.name, now=at)
    return key
