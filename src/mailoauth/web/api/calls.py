"""What happens around every API call: the key first, then the body, then the route;
errors in the API's shape (:mod:`.errors`); one log line saying who did what.

Order matters. FastAPI reads and parses a request's body before it runs dependencies, so
the key is checked here, before that: a client without a valid key gets its 401 without
the service reading a byte of its body. Then a body larger than :data:`MAX_BODY` (a
35 MB message in base64, with room to spare) is refused with 413 — from its
``Content-Length``, or while it streams in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from mailoauth.errors import MailoauthError
from mailoauth.web.api.auth import authenticate_request, caller_name
from mailoauth.web.api.errors import (
    ERROR_RESPONSES,
    ApiError,
    body_model_of,
    body_prefix,
    error_response,
    mailoauth_response,
    validation_response,
)
from mailoauth.web.context import ServiceContext

__all__ = ["MAX_BODY", "api_route_class", "group_router"]

log = logging.getLogger("mailoauth.api")

#: The largest request body read, in bytes.
MAX_BODY: Final = 50 * 1024 * 1024

_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _too_large() -> ApiError:
    return ApiError(
        413, "too_large", f"the request body is over {MAX_BODY} bytes; send a smaller message"
    )


def _limited(request: Request) -> Request:
    """The request, with a body that may not grow past :data:`MAX_BODY`."""
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise _too_large()
    receive: Receive = request.receive
    read = 0

    async def limited() -> Message:
        nonlocal read
        message = await receive()
        read += len(message.get("body", b""))
        if read > MAX_BODY:
            raise _too_large()
        return message

    return Request(request.scope, limited)


def api_route_class(context: ServiceContext) -> type[APIRoute]:
    """The route class of every API router: FastAPI's, wrapped as the module says."""

    class ApiRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            field = self.body_field
            body_model = body_model_of(field.field_info.annotation) if field else None

            async def handle(request: Request) -> Response:
                try:
                    await run_in_threadpool(authenticate_request, context.store, request)
                    response = await handler(_limited(request))
                except ApiError as exc:
                    response = _from_api_error(exc)
                except RequestValidationError as exc:
                    response = validation_response(exc, body_model)
                except MailoauthError as exc:
                    response = mailoauth_response(exc, body_prefix(request))
                except HTTPException as exc:  # FastAPI's own (a body it could not read)
                    if isinstance(exc.__cause__, ApiError):
                        response = _from_api_error(exc.__cause__)
                    else:
                        code = _HTTP_CODES.get(exc.status_code, "invalid_request")
                        response = error_response(
                            exc.status_code, code, str(exc.detail), headers=exc.headers
                        )
                # Answers may hold configuration: never cached, never sniffed as other types.
                response.headers.setdefault("Cache-Control", "no-store")
                response.headers.setdefault("X-Content-Type-Options", "nosniff")
                _log_call(request, response.status_code)
                return response

            return handle

    return ApiRoute


def group_router(context: ServiceContext, tag: str) -> APIRouter:
    """A router for one group of endpoints (``tag`` in the schema), with the API's route
    class and error answers. Operation ids are the route functions' names
    (``put_provider``), which client generators turn into method names."""
    return APIRouter(
        route_class=api_route_class(context),
        tags=[tag],
        responses=ERROR_RESPONSES,
        generate_unique_id_function=_operation_id,
    )


def _operation_id(route: APIRoute) -> str:
    return route.name


def _from_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


def _log_call(request: Request, status: int) -> None:
    who = caller_name(request)
    caller = f"api key {who}" if who else "api (no valid key)"
    if status >= 500:
        level = logging.WARNING
    elif request.method == "GET" and status < 400:
        level = logging.DEBUG
    else:
        level = logging.INFO
    # The path as sent, still percent-encoded: a name with a line break cannot forge a line.
    raw = request.scope.get("raw_path")
    path = raw.decode("ascii", "replace") if raw else quote(request.url.path)
    log.log(level, "%s: %s %s -> %d", caller, request.method, path, status)
