"""The REST API, ``/api/v1``: everything the console does, for automation, in JSON.

::

    mailoauth.web.api
    ├── routes       api_router(): the groups below under /api/v1
    ├── status       GET /status, GET /mailboxes/{name}/status
    ├── providers    GET|PUT|DELETE /providers[/{name}]
    ├── mailboxes    GET|PUT|DELETE /mailboxes[/{name}], POST …/authorize, GET …/transcript
    ├── mail         POST /mailboxes/{name}/send | fetch | test
    ├── queue        GET /queue[/{id}], POST /queue/{id}/retry, DELETE /queue/{id},
    │                POST /queue/purge
    ├── calls        around every call: key first, body cap, error answers, a log line
    ├── auth         Authorization: Bearer <key>; 401 / 403 (RFC 6750)
    ├── keys         the keys' format, scopes (read ⊂ send ⊂ admin), checking one
    ├── errors       one JSON error shape, exceptions → status codes
    ├── schemas      bodies and views derived from the models' type hints
    ├── bodies       body → model through the builders `mailoauth apply` uses
    ├── views        model → JSON with secrets as {"set": bool}
    ├── messages     the send body → an RFC 5322 message
    └── runtime      the service's token service and HTTP client

The schema is served at ``/api/v1/openapi.json`` (``web/app.py``); docs/api.md is the
operator's guide. This ``__init__`` imports nothing of FastAPI at import time, so
``mailoauth api-key`` can use :mod:`.keys` without loading the web stack (every CLI run
imports the command modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mailoauth.web.context import ServiceContext

__all__ = ["mount_api"]


def mount_api(app: FastAPI, context: ServiceContext) -> None:
    """Add the ``/api/v1`` routes to ``app``."""
    from mailoauth.web.api.routes import api_router  # the web stack: only when serving

    app.include_router(api_router(context))
