"""Form bodies and small request facts every console route needs.

Console forms are ``application/x-www-form-urlencoded`` (HTML's default): :func:`form_of`
parses them with the standard library (``urllib.parse``; no multipart, so no extra
dependency). It is an ``async`` FastAPI dependency, so a plain ``def`` route — which runs
in a worker thread, where the store may block — receives the parsed form::

    @router.post("/providers")
    def save(request: Request, form: Annotated[FormData, Depends(form_of)],
             session: Annotated[WebSession, Depends(require_admin)]) -> Response: ...

The CSRF middleware has already checked the token and capped the body at 1 MiB.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from fastapi import HTTPException
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request

__all__ = ["MAX_FIELDS", "form_of", "is_safe_next", "source_of"]

MAX_FIELDS: Final = 500


async def form_of(request: Request) -> FormData:
    """The request's urlencoded form (empty for another content type)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return FormData()
    body = (await request.body()).decode("utf-8", "replace")
    try:
        fields = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        return FormData([(key, value) for key, value in fields])
    except ValueError as exc:  # more than MAX_FIELDS fields
        raise HTTPException(400, f"the form has more than {MAX_FIELDS} fields") from exc


def source_of(connection: HTTPConnection) -> str:
    """The client's address, for the audit log and the login limits."""
    client = connection.client
    return client.host if client else "unknown"


def is_safe_next(target: str | None) -> bool:
    """Whether ``target`` is a path on this site (no open redirect after login)."""
    return bool(
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and all(c.isprintable() for c in target)
    )
