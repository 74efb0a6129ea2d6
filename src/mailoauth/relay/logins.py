"""Relay logins, kept for a few seconds after a successful check.

A password-only application often opens a connection per mail (a scanner, a PBX): the
same login again and again. Checking it against the store costs a relay-user read and a
mailbox read (with its secrets decrypted) in a worker thread — measured at 3-4 ms of the
relay process's CPU per login, as the event loop also waits for the GIL meanwhile.
:class:`Logins` keeps each successful check for ``ttl`` seconds
(``MAILOAUTH_RELAY_LOGIN_CACHE``, 5 by default): a login with the same name, protocol and
password within that time is checked in memory, the password against the verifier kept
from the store (an HMAC compared in constant time, ~10 µs).

What is kept: the relay user as stored (its salted verifier, never a password) and its
mailbox, in this process only. A wrong password, an unknown name or an expired entry goes
to the store, so a new password works at once. A removed relay user, the old password
after a reset, or a changed mailbox are honoured within ``ttl`` seconds in each relay
process; ``ttl`` 0 checks every login against the store (docs/security.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mailoauth.models import Mailbox
from mailoauth.relay.users import RelayProtocol, authenticate, check_password
from mailoauth.secret import Secret
from mailoauth.store import RelayUser, Store

__all__ = ["TTL", "Logins"]

#: Seconds a successful login check is kept (``MAILOAUTH_RELAY_LOGIN_CACHE``).
TTL: Final = 5.0
_SIZE: Final = 1024


@dataclass(frozen=True)
class _Entry:
    user: RelayUser
    mailbox: Mailbox
    until: float


class Logins:
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = TTL,
        size: int = _SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: dict[tuple[str, RelayProtocol], _Entry] = {}

    async def check(
        self, name: str, password: Secret, protocol: RelayProtocol
    ) -> tuple[RelayUser, Mailbox] | None:
        """The relay user and its mailbox if ``password`` is ``name``'s and ``protocol``
        is allowed to it, else None. Raises what the store raises."""
        key = (name, protocol)
        entry = self._entries.get(key)
        fresh = entry is not None and entry.until > self._clock()
        if entry is not None and fresh and check_password(entry.user.verifier, password):
            return entry.user, entry.mailbox
        loaded = await asyncio.to_thread(self._load, name, password, protocol)
        self._entries.pop(key, None)
        if loaded is not None and self.ttl > 0:
            if len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = _Entry(*loaded, self._clock() + self.ttl)
        return loaded

    def _load(
        self, name: str, password: Secret, protocol: RelayProtocol
    ) -> tuple[RelayUser, Mailbox] | None:
        user = authenticate(self._store, name, password, protocol)
        return None if user is None else (user, self._store.get_mailbox(user.mailbox))
