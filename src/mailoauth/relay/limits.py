"""Failed relay logins, counted per source address: too many, and the address waits.

In memory, in the relay process: ``max_failures`` wrong passwords from one address within
``window`` seconds lock that address out for ``lockout`` seconds — further attempts are
refused before any password is checked (SMTP ``454 4.7.0 ... try again in N s``). A
successful login clears the address's count. The clock is injected (monotonic seconds),
so the rules are tested without sleeping. At most ``max_addresses`` addresses are tracked;
beyond that the oldest are forgotten, so a scan from many addresses cannot grow memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FailureLimiter"]


@dataclass
class _Entry:
    failures: deque[float]
    locked_until: float = 0.0


class FailureLimiter:
    """Per-address failure counting and lockout (see the module docstring)."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 300.0,
        lockout: float = 300.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self._max_addresses = max_addresses
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def retry_after(self, address: str) -> int:
        """Whole seconds until ``address`` may try again; 0 when it is not locked out."""
        entry = self._entries.get(address)
        if entry is None:
            return 0
        left = entry.locked_until - self._clock()
        return math.ceil(left) if left > 0 else 0

    def failure(self, address: str) -> int:
        """Count a wrong password from ``address``; returns the lockout it now has (s)."""
        now = self._clock()
        entry = self._entries.pop(address, None) or _Entry(deque())
        self._entries[address] = entry  # most recent last
        while entry.failures and entry.failures[0] <= now - self.window:
            entry.failures.popleft()
        entry.failures.append(now)
        if len(entry.failures) >= self.max_failures:
            entry.locked_until = now + self.lockout
            entry.failures.clear()
        while len(self._entries) > self._max_addresses:
            self._entries.popitem(last=False)
        return self.retry_after(address)

    def success(self, address: str) -> None:
        """A correct login from ``address``: its count starts again."""
        self._entries.pop(address, None)
