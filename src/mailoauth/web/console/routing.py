"""The route class of the console's object pages: an object that does not exist (a
provider, mailbox or queue entry removed meanwhile, a mistyped URL) is answered with a
``404`` page that says so, instead of an error page without words.

Use it for a router whose routes look objects up::

    router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from mailoauth.errors import NotFoundError
from mailoauth.web.console.render import render_error

__all__ = ["ConsoleRoute"]


class ConsoleRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` answering NotFoundError with a 404 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except NotFoundError as err:
                return render_error(request, 404, "Not found", str(err))

        return route
