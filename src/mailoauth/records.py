"""Typed conversion between the frozen models and plain data (TOML tables, JSON rows).

One codec serves three edges: the store (a row's JSON part plus its encrypted secrets),
the TOML loader and, later, the REST API. Conversion is driven by the dataclass type
hints, so a new model field needs no code here.

* :func:`split` turns a model into ``(public, secrets)``: JSON-ready values and the clear
  text of every :class:`~mailoauth.secret.Secret` field, kept apart so the store can
  encrypt the second part as one sealed blob.
* :func:`build` does the reverse and validates: unknown keys are refused with a "did you
  mean" hint, a value of the wrong type names its dotted path, and the model's own checks
  run. Every failure is a :class:`~mailoauth.errors.ConfigError` whose field is the full
  path (``mailboxes.sales.outgoing.port``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

from mailoauth.errors import ConfigError
from mailoauth.secret import Secret

__all__ = ["SecretLoader", "build", "public_view", "split"]

T = TypeVar("T")

#: Turns the raw text of a secret field into a Secret (resolving ``env:``/``file:`` for TOML).
SecretLoader = Callable[[str, str], Secret]


def _plain_secret(field: str, value: str) -> Secret:
    return Secret(value)


def split(obj: object) -> tuple[dict[str, Any], dict[str, str]]:
    """``(public, secrets)`` of a model instance; secrets hold the clear text."""
    public: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, Secret):
            secrets[f.name] = value.reveal()
        else:
            public[f.name] = _dump(value)
    return public, secrets


def public_view(obj: object) -> dict[str, Any]:
    """The model as JSON-ready data with each secret shown only as set / not set."""
    out: dict[str, Any] = {}
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if _is_secret_type(hints[f.name]):
            out[f.name] = "set" if value is not None else None
        else:
            out[f.name] = _dump(value)
    return out


def _dump(value: object) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        public, secrets = split(value)
        if secrets:  # the store seals top-level secrets only; keep nested models public
            raise TypeError(f"{type(value).__name__} nests a Secret; move it to the top level")
        return public
    if isinstance(value, dict):
        return {str(k): _dump(v) for k, v in value.items()}
    return value


def build(
    cls: type[T],
    data: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    *,
    path: str = "",
    secret_loader: SecretLoader = _plain_secret,
    extra: Mapping[str, Any] | None = None,
) -> T:
    """Validate ``data`` (plus ``secrets`` and fixed ``extra`` fields) into a ``cls``."""
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = dict(extra or {})
    for key, value in data.items():
        where = _join(path, key)
        if key not in names or key in kwargs:
            raise _unknown_key(where, key, [n for n in names if n not in (extra or {})])
        kwargs[key] = _load(hints[key], value, where, secret_loader)
    for key, value in (secrets or {}).items():
        kwargs[key] = Secret(value)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.within(path) if path else err from None
    except TypeError as err:  # a required field is missing
        missing = _missing_fields(cls, kwargs)
        if missing:
            raise ConfigError(_join(path, missing[0]), "is required", "add it") from None
        raise ConfigError(path, str(err)) from None


def _missing_fields(cls: type[Any], given: Mapping[str, Any]) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in given
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]


def _unknown_key(where: str, key: str, names: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, names, n=1)
    fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(names))}"
    return ConfigError(where, "unknown key", fix)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_HINTS: dict[type, dict[str, Any]] = {}  # a cache: type hints never change at run time


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _is_secret_type(tp: Any) -> bool:
    return tp is Secret or Secret in typing.get_args(tp)


_TYPE_NAMES = {
    str: ("text", 'write it in quotes, e.g. "value"'),
    int: ("a whole number", "write digits without quotes, e.g. 587"),
    bool: ("true or false", "write true or false without quotes"),
}


def _load(tp: Any, value: Any, where: str, secret_loader: SecretLoader) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _load(inner, value, where, secret_loader)
    if tp is Secret:
        if isinstance(value, Secret):  # already resolved (e.g. imported from a key file)
            return value
        if not isinstance(value, str):
            raise ConfigError(where, "must be text", 'e.g. "env:NAME", "file:/path" or the value')
        return secret_loader(where, value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in tp)
            raise ConfigError(where, f"{value!r} is not allowed", f"use one of {choices}") from None
    if tp is datetime or tp is date:
        return _load_date(tp, value, where)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(where, "must be a table", f"write it as [{where}] with its keys")
        return build(tp, value, path=where, secret_loader=secret_loader)
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(where, "must be a list", 'e.g. ["a", "b"]')
        return tuple(_load(item, v, f"{where}[{i}]", secret_loader) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(where, "must be a table", "write it as key = value pairs")
        return {str(k): str(v) for k, v in value.items()}
    if tp in (str, int, bool):
        if type(value) is not tp:
            name, fix = _TYPE_NAMES[tp]
            raise ConfigError(where, f"{value!r} is not {name}", fix)
        return value
    raise TypeError(f"no conversion for {tp!r} at {where}")  # a programming error


def _load_date(tp: type[date], value: Any, where: str) -> date:
    if tp is date and isinstance(value, date) and not isinstance(value, datetime):
        return value
    if tp is datetime and isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return tp.fromisoformat(value)
        except ValueError:
            pass
    example = "2027-05-01" if tp is date else "2027-05-01T12:00:00+00:00"
    raise ConfigError(where, f"{value!r} is not a {tp.__name__}", f"write it as {example}")
