"""The API's errors: one JSON shape, and a status code per kind of failure.

Every error answer is ``{"error": CODE, "message": WORDS, "field": PATH}`` (``field`` only
when one value is at fault). ``message`` is a :class:`~mailoauth.errors.MailoauthError`'s
own text — it says what to do and never holds a secret. The mapping:

=====================================================  =====  =========================
exception                                              HTTP   ``error``
=====================================================  =====  =========================
a body or parameter the schema refuses                 400    ``invalid_request``
(a body over 50 MB)                                    413    ``too_large``
ConfigError, LocalProtocolError                        400    ``invalid``
(no or a bad API key; a key without the scope)         401    ``unauthorized`` /
                                                       403    ``forbidden``
NotFoundError                                          404    ``not_found``
InUseError                                             409    ``in_use``
AuthorizationNeeded                                    409    ``authorization_needed``
ProviderRejected, OAuthError                           502    ``provider_rejected``
TokenRefused, SaslError (temporary: 503)               502    ``token_refused``
MailError and its kinds (temporary: 503)               502    ``mail_failed``
RemoteProtocolError                                    502    ``protocol_error``
ProviderUnavailable (with ``Retry-After``)             503    ``provider_unavailable``
StoreError, SecretKeyError                             503    ``store_unavailable``
=====================================================  =====  =========================

:mod:`.calls` applies this to the API's routes only (the console keeps its own pages).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mailoauth.errors import (
    AuthorizationNeeded,
    ConfigError,
    InUseError,
    LocalProtocolError,
    MailError,
    MailoauthError,
    NotFoundError,
    OAuthError,
    ProviderUnavailable,
    RemoteProtocolError,
    SecretKeyError,
    StoreError,
    TokenRefused,
)

__all__ = [
    "ERROR_RESPONSES",
    "ApiError",
    "ErrorBody",
    "body_model_of",
    "body_prefix",
    "error_response",
    "mailoauth_response",
    "validation_response",
]


class ErrorBody(BaseModel):
    """What every error answer holds."""

    error: str
    message: str
    field: str | None = None


#: For the routers' ``responses``: documents the error shape for each status we send.
#: ``default`` covers the rest (and keeps FastAPI from documenting its own 422 shape).
ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": ErrorBody, "description": "Bad input: the message names the field and fix"},
    401: {"model": ErrorBody, "description": "No API key, or not a valid one"},
    403: {"model": ErrorBody, "description": "The API key lacks the scope this needs"},
    "default": {"model": ErrorBody, "description": "Any other error, in the same shape"},
}


class ApiError(Exception):
    """An answer decided by the API itself (authentication, a missing runtime)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(message)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, field=field)
    return JSONResponse(body.model_dump(), status_code=status, headers=dict(headers or {}))


def _temporary(error: MailoauthError) -> bool:
    return bool(getattr(error, "temporary", False))


def _status(error: MailoauthError) -> tuple[int, str]:
    """The HTTP status and code of one of our exceptions (most specific class first)."""
    if isinstance(error, ConfigError | LocalProtocolError):
        return 400, "invalid"
    if isinstance(error, NotFoundError):
        return 404, "not_found"
    if isinstance(error, InUseError):
        return 409, "in_use"
    if isinstance(error, AuthorizationNeeded):
        return 409, "authorization_needed"
    if isinstance(error, ProviderUnavailable):
        return 503, "provider_unavailable"
    if isinstance(error, OAuthError):
        return 502, "provider_rejected"
    if isinstance(error, TokenRefused):
        return (503 if _temporary(error) else 502), "token_refused"
    if isinstance(error, MailError):
        return (503 if _temporary(error) else 502), "mail_failed"
    if isinstance(error, RemoteProtocolError):
        return 502, "protocol_error"
    if isinstance(error, StoreError | SecretKeyError):
        return 503, "store_unavailable"
    return 500, "failed"


def mailoauth_response(error: MailoauthError, path_prefix: str) -> JSONResponse:
    status, code = _status(error)
    headers: dict[str, str] = {}
    if isinstance(error, ProviderUnavailable) and error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    if isinstance(error, ConfigError):
        # The body's paths, not the TOML file's: "outgoing.port", not "mailboxes.x.outgoing.port".
        field = error.field.removeprefix(path_prefix) if path_prefix else error.field
        shown = ConfigError(field, error.problem, error.fix)
        return error_response(status, code, str(shown), field=field or None, headers=headers)
    if isinstance(error, NotFoundError):
        listing = {"provider": "providers", "mailbox": "mailboxes"}.get(error.kind)
        hint = f"GET /api/v1/{listing} lists them" if listing else ""
        message = f"{error.kind} {error.name!r} does not exist" + (f"; {hint}" if hint else "")
        return error_response(status, code, message)
    return error_response(status, code, str(error), headers=headers)


# --- request validation (pydantic) -------------------------------------------------------


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(model: Any, loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model the value at ``loc`` (inside the body) is checked against."""
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        model = body_model_of(info.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def body_model_of(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()):  # X | None: the model inside
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _describe(error: Mapping[str, Any], body_model: Any) -> tuple[str, str]:
    """``(field, message)`` for one pydantic error, in words a client can act on."""
    loc = list(error.get("loc", ()))
    where, rest = (loc[0], loc[1:]) if loc else ("body", [])
    kind = error.get("type", "")
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", "")
        return "", f"the request body is not valid JSON ({reason}); send a JSON object"
    field = _path(rest) if where == "body" else str(rest[-1] if rest else where)
    if where == "body" and not rest and kind == "missing":
        return "", "the request body is missing; send a JSON object"
    if kind == "extra_forbidden":
        model = _model_at(body_model, rest[:-1])
        names = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(rest[-1]), names, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(names)}"
        return field, f"{field}: unknown key; {fix}"
    if kind == "missing":
        return field, f"{field}: is required; add it"
    label = field if where == "body" else f"{where} parameter {field}"
    return field, f"{label}: {error.get('msg', 'is not valid')}"


def validation_response(exc: RequestValidationError, body_model: Any) -> JSONResponse:
    errors = list(exc.errors())
    described = [_describe(e, body_model) for e in errors[:3]]
    message = "; ".join(text for _, text in described) or "the request is not valid"
    if len(errors) > 3:
        message += f" (and {len(errors) - 3} more)"
    field = described[0][0] if described else ""
    return error_response(400, "invalid_request", message, field=field or None)


def body_prefix(request: Request) -> str:
    """``providers.NAME.`` / ``mailboxes.NAME.``: the TOML path the builders put in front
    of a field, which the API's answers leave out (the body has no such level)."""
    name = request.path_params.get("name")
    for kind in ("providers", "mailboxes"):
        if name is not None and request.url.path.startswith(f"/api/v1/{kind}/"):
            return f"{kind}.{name}."
    return ""
