"""`Secret`: the only way a secret value travels through mailoauth.

Client secrets, private keys, resource-owner passwords, refresh and access tokens are
wrapped in :class:`Secret` as soon as they are read. ``repr()``, ``str()`` and
``format()`` print a fixed mask, so a secret that ends up in a log line, an exception
message, a dataclass ``repr`` or a template shows as ``'••••••'``. The value comes out
only through :meth:`Secret.reveal`, which makes every place that needs the clear text
easy to find with grep.

Equality compares in constant time, so two configs can be compared (``apply`` reports
"unchanged") without leaking timing.
"""

from __future__ import annotations

import hmac
from typing import Final, final

__all__ = ["MASK", "Secret"]

MASK: Final = "••••••"


@final
class Secret:
    """An opaque string whose text representation is always the mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The clear text. Call only where the secret is about to be used."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret values are not pickled; store them through the store")
