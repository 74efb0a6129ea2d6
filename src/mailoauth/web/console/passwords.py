"""Admin passwords: a slow, salted, memory-hard hash (scrypt, RFC 7914), from the stdlib.

Unlike the relay's generated passwords (:mod:`mailoauth.relay.users`), console passwords
are chosen by people, so a stolen database must make each guess expensive: scrypt with
N = 2^15, r = 8, p = 1 (32 MiB and ~50-100 ms per try on a server; RFC 7914 section 2,
the parameters OWASP's password storage cheat sheet gives), a 16-byte random salt, a
32-byte key. The text form carries its parameters, so they can be raised later without
breaking stored hashes::

    scrypt$n=32768,r=8,p=1$<salt, base64url>$<key, base64url>

Checking compares in constant time (:func:`hmac.compare_digest`); a login for an unknown
admin derives a key with the default parameters all the same (and compares it with a
random one), so it costs as much and the answer's timing does not say which names exist.
At most :data:`PARALLEL` hashes are computed at once in the process (32 MiB each): a flood
of logins queues instead of eating memory. Both functions block for the hash's time: call
them from a worker thread (the console's routes are plain ``def``; FastAPI runs them in
its thread pool).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Final

from mailoauth.secret import Secret

__all__ = ["DEFAULT_COST", "PARALLEL", "ScryptCost", "hash_password", "verify_password"]

_SCHEME: Final = "scrypt"
_SALT_BYTES: Final = 16
_KEY_BYTES: Final = 32
#: Hashes computed at once by this process (each takes 128·r·N bytes: 32 MiB by default).
PARALLEL: Final = 4
_GATE: Final = threading.BoundedSemaphore(PARALLEL)


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's CPU/memory cost ``n`` (a power of 2), block size ``r``, parallelism ``p``."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or self.r < 1 or self.p < 1:
            raise ValueError("scrypt needs n a power of 2 above 1, r >= 1 and p >= 1")
        if self.n > 2**20 or self.r > 32 or self.p > 16:
            raise ValueError("scrypt cost out of the range mailoauth accepts")

    @property
    def maxmem(self) -> int:
        return 129 * self.r * self.n * self.p + (1 << 20)

    def text(self) -> str:
        return f"n={self.n},r={self.r},p={self.p}"


DEFAULT_COST: Final = ScryptCost()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: Secret, salt: bytes, cost: ScryptCost) -> bytes:
    with _GATE:
        return hashlib.scrypt(
            password.reveal().encode("utf-8"),
            salt=salt,
            n=cost.n,
            r=cost.r,
            p=cost.p,
            maxmem=cost.maxmem,
            dklen=_KEY_BYTES,
        )


def hash_password(password: Secret, cost: ScryptCost = DEFAULT_COST) -> str:
    """The stored form of ``password`` (see the module docstring); never the password."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"{_SCHEME}${cost.text()}${_b64(salt)}${_b64(_derive(password, salt, cost))}"


def _parse(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    try:
        scheme, params, salt, key = stored.split("$")
        values = dict(part.split("=", 1) for part in params.split(","))
        cost = ScryptCost(n=int(values["n"]), r=int(values["r"]), p=int(values["p"]))
        if scheme != _SCHEME:
            return None
        return cost, _unb64(salt), _unb64(key)
    except (ValueError, KeyError):
        return None


def verify_password(password: Secret, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; ``stored`` None (no such admin) or
    unreadable costs one hash with the default parameters and answers False."""
    parsed = _parse(stored) if stored is not None else None
    if parsed is None:
        salt, key = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_KEY_BYTES)
        hmac.compare_digest(_derive(password, salt, DEFAULT_COST), key)
        return False
    cost, salt, key = parsed
    return hmac.compare_digest(_derive(password, salt, cost), key)
