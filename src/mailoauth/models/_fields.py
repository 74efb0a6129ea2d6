"""Helpers the models share while validating their fields (private to the package)."""

from __future__ import annotations

from mailoauth.errors import ConfigError


def set_field(obj: object, name: str, value: object) -> None:
    """Normalise a field of a frozen dataclass during ``__post_init__``."""
    object.__setattr__(obj, name, value)


def forbid(obj: object, names: tuple[str, ...], why: str, fix: str) -> None:
    for name in names:
        if getattr(obj, name) not in (None, (), ""):
            raise ConfigError(name, why, fix)


def check_scopes(scopes: tuple[str, ...], *, allow_empty: bool) -> tuple[str, ...]:
    if not scopes and not allow_empty:
        raise ConfigError("scopes", "is empty", "list at least one scope, or remove the key")
    for i, scope in enumerate(scopes):
        if not scope or any(c.isspace() or ord(c) < 32 for c in scope):
            raise ConfigError(
                f"scopes[{i}]",
                f"{scope!r} is not a scope",
                'give one scope per list item, e.g. ["email", "offline_access"]',
            )
    return scopes
