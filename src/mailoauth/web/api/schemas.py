"""The API's provider and mailbox bodies, made from the models' own type hints.

A ``PUT`` body holds the same fields as a ``[providers.NAME]`` / ``[mailboxes.NAME]``
table of ``mailoauth apply``; an answer shows the same fields with each secret replaced by
``{"set": true|false}``. Both pydantic models are derived from the frozen dataclasses
(:class:`~mailoauth.models.Provider`, :class:`~mailoauth.models.Mailbox` and their
settings), the way :mod:`mailoauth.records` derives its codec: a new model field appears
in the API and its OpenAPI schema without code here.

The pydantic layer checks only shapes and JSON types (strictly: ``"587"`` is not a port,
as in TOML), so the schema says exactly what is refused before any of our code runs; the
meaning — required combinations, ranges, URLs, keys — is checked by the models through
:func:`mailoauth.configfile.build_provider` / ``build_mailbox``, the one validation path
the TOML file and the CLI use (:mod:`.bodies`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, create_model

from mailoauth.models import Mailbox, Provider
from mailoauth.providers import Endpoints
from mailoauth.scheduler import GrantState
from mailoauth.secret import Secret
from mailoauth.store import Change

__all__ = [
    "MailboxBody",
    "MailboxSaved",
    "MailboxView",
    "ProviderBody",
    "ProviderSaved",
    "ProviderView",
    "SecretState",
    "body_model",
    "secret_fields",
    "view_model",
]


class SecretState(BaseModel):
    """How an answer shows a secret: whether one is stored, never its value."""

    set: bool


_WRITE_ONLY = Field(json_schema_extra={"writeOnly": True})
_DATE = {date: "date", datetime: "date-time"}
_STRICT: dict[Any, Any] = {str: StrictStr, int: StrictInt, bool: StrictBool}


def secret_fields(cls: type) -> tuple[str, ...]:
    """The names of ``cls``'s Secret fields."""
    hints = typing.get_type_hints(cls)
    return tuple(
        f.name
        for f in dataclasses.fields(cls)
        if hints[f.name] is Secret or Secret in typing.get_args(hints[f.name])
    )


def _optional_inner(tp: Any) -> Any | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def _annotation(tp: Any, *, body: bool) -> Any:
    """The pydantic annotation for a model field of type ``tp``."""
    inner = _optional_inner(tp)
    if inner is not None:
        return _annotation(inner, body=body) | None
    if tp is Secret:
        return Annotated[StrictStr, _WRITE_ONLY] if body else SecretState
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if tp in _DATE:
        # In a body: ISO text, parsed (and refused in words) by the models' codec.
        return Annotated[StrictStr, Field(json_schema_extra={"format": _DATE[tp]})] if body else tp
    if tp in _STRICT:
        return _STRICT[tp] if body else tp
    if typing.get_origin(tp) is tuple:
        return list[_annotation(typing.get_args(tp)[0], body=body)]  # type: ignore[misc]
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return body_model(tp) if body else view_model(tp)
    raise TypeError(f"no API type for {tp!r}")  # a programming error, found at import


def _default(value: Any) -> Any:
    """A dataclass default as the JSON value the schema documents."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


#: One pydantic model per dataclass and direction, so a settings type used twice is one
#: schema component (``exclude`` / ``extra`` are given only for the top-level models).
_MODELS: dict[tuple[type, bool], type[BaseModel]] = {}


def body_model(
    cls: type, *, exclude: tuple[str, ...] = (), extra: dict[str, Any] | None = None
) -> type[BaseModel]:
    """A request body for ``cls``: its fields but ``exclude`` (plus ``extra``, name →
    annotation, all optional); required where the dataclass has no default; unknown keys
    refused."""
    cached = _MODELS.get((cls, True))
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        annotation = _annotation(hints[f.name], body=True)
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (annotation, _default(f.default))
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (annotation, Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (annotation, ...)
    for name, annotation in (extra or {}).items():
        fields[name] = (annotation, None)
    model = create_model(
        f"{cls.__name__}Body",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"{cls.__name__}: the fields of its table in a `mailoauth apply` file.",
        **fields,
    )
    _MODELS[(cls, True)] = model
    return typing.cast(type[BaseModel], model)


def view_model(
    cls: type, *, exclude: tuple[str, ...] = (), extra: dict[str, Any] | None = None
) -> type[BaseModel]:
    """An answer's view of ``cls``: its fields but ``exclude`` (secrets as
    :class:`SecretState`), plus ``extra`` (name → annotation, required)."""
    cached = _MODELS.get((cls, False))
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {
        f.name: (_annotation(hints[f.name], body=False), ...)
        for f in dataclasses.fields(cls)
        if f.name not in exclude
    }
    for name, annotation in (extra or {}).items():
        fields[name] = (annotation, ...)
    model = create_model(
        f"{cls.__name__}View",
        __doc__=f"{cls.__name__} as stored; secrets show only whether they are set.",
        **fields,
    )
    _MODELS[(cls, False)] = model
    return typing.cast(type[BaseModel], model)


ProviderView = view_model(
    Provider,
    extra={
        "effective_redirect_uri": Annotated[
            str, Field(description="The redirect URI to register at the provider.")
        ],
        "endpoints": view_model(Endpoints),
    },
)
MailboxView = view_model(
    Mailbox,
    extra={
        "effective_scopes": Annotated[list[str], Field(description="The scopes requested.")],
        "status": GrantState,
    },
)


ProviderSaved = create_model(
    "ProviderSaved",
    __doc__="What a PUT did (created, updated, unchanged), and the provider as stored now.",
    change=(Change, ...),
    provider=(ProviderView, ...),
)
MailboxSaved = create_model(
    "MailboxSaved",
    __doc__="What a PUT did (created, updated, unchanged), and the mailbox as stored now.",
    change=(Change, ...),
    mailbox=(MailboxView, ...),
)


# mypy sees plain BaseModel for the generated bodies (it cannot follow create_model);
# FastAPI sees the generated classes, which is what routes and the schema need.
if TYPE_CHECKING:
    ProviderBody = BaseModel
    MailboxBody = BaseModel
else:
    ProviderBody = body_model(Provider, exclude=("name",))
    MailboxBody = body_model(
        Mailbox,
        exclude=("name",),
        extra={
            "service_account_json": Annotated[
                StrictStr | None,
                Field(
                    description="A Google service-account key (the JSON text); fills the "
                    "service_account_* fields.",
                    json_schema_extra={"writeOnly": True},
                ),
            ]
        },
    )
