"""The login rate limit: failed logins counted per source address and per admin name.

:data:`LOGIN_FAILURES` wrong passwords within :data:`LOGIN_WINDOW` seconds — from one
address, or for one admin name from anywhere — and further logins from that address or for
that name are refused for as long again, before any password is checked (``429`` with the
time to wait). The name counts too, so guessing one admin's password from many addresses
is slow; the address counts, so trying many names from one place is. A successful login
clears both. Counting reuses the relay's :class:`~mailoauth.relay.limits.FailureLimiter`
(in this process's memory, bounded, injected clock) behind a lock, since the console's
routes run in worker threads.

Behind a reverse proxy the address is the proxy's unless uvicorn trusts its
``X-Forwarded-For`` (it does for a proxy on 127.0.0.1, its ``forwarded_allow_ips``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from mailoauth.relay.limits import FailureLimiter

__all__ = ["LOGIN_FAILURES", "LOGIN_WINDOW", "LoginLimits"]

LOGIN_FAILURES: Final = 5
LOGIN_WINDOW: Final = 300.0


class LoginLimits:
    """Per-address and per-name failure counts with a lockout (module docstring)."""

    def __init__(
        self,
        *,
        max_failures: int = LOGIN_FAILURES,
        window: float = LOGIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        def limiter() -> FailureLimiter:
            return FailureLimiter(
                max_failures=max_failures, window=window, lockout=window, clock=clock
            )

        self._lock = threading.Lock()
        self._by_address = limiter()
        self._by_name = limiter()

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().casefold()

    def retry_after(self, address: str, name: str) -> int:
        """Seconds until a login from ``address`` for ``name`` may be tried; 0: now."""
        with self._lock:
            return max(
                self._by_address.retry_after(address),
                self._by_name.retry_after(self._key(name)),
            )

    def failure(self, address: str, name: str) -> int:
        """Count a failed login; returns the wait it now causes (0: none yet)."""
        with self._lock:
            return max(self._by_address.failure(address), self._by_name.failure(self._key(name)))

    def success(self, address: str, name: str) -> None:
        with self._lock:
            self._by_address.success(address)
            self._by_name.success(self._key(name))
