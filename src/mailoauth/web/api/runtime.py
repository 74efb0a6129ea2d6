"""What the mail endpoints borrow from the running service: its token service and HTTP
client (:class:`~mailoauth.web.context.Runtime`).

The runtime exists only while the ASGI lifespan runs with its background (``mailoauth
serve``); without it, endpoints that talk to providers or mail servers answer 503 and
say so — everything else works.
"""

from __future__ import annotations

import logging

import httpx

from mailoauth.oauth.tokens import TokenService
from mailoauth.web.api.errors import ApiError
from mailoauth.web.context import ServiceContext

__all__ = ["running"]

log = logging.getLogger("mailoauth.api")


def running(context: ServiceContext) -> tuple[TokenService, httpx.AsyncClient]:
    """The service's token service and HTTP client, or a 503 when they do not run."""
    runtime = context.runtime
    if runtime.tokens is None or runtime.http is None:
        raise ApiError(
            503,
            "not_running",
            "the service's background (token service, scheduler) is not running — it is "
            "starting or stopping, or was started without it; try again in a moment, or "
            "use the CLI (`mailoauth send`, `fetch`, `test`, `authorize`)",
            headers={"Retry-After": "5"},
        )
    return runtime.tokens, runtime.http
