"""What every part of the web service shares: settings, the store, and the runtime the
ASGI lifespan builds (HTTP client, token service, scheduler).

``web/app.py`` makes one :class:`ServiceContext` and hands it to each part it mounts:
the console (``web/console``), the REST API (``web/api``) and the OAuth redirect
endpoint (``web/oauth.py``). The runtime fields are None outside the lifespan and when
the app is built with ``background=False`` (tests of the routes alone); a route that needs
them answers 503 then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from mailoauth.config import Settings
from mailoauth.oauth.tokens import TokenService
from mailoauth.queue.nudge import Nudger
from mailoauth.relay.service import Relays
from mailoauth.scheduler import Scheduler
from mailoauth.store import Store

__all__ = ["Runtime", "ServiceContext"]


@dataclass
class Runtime:
    """What the lifespan builds (None outside it or without background)."""

    http: httpx.AsyncClient | None = None
    tokens: TokenService | None = None
    scheduler: Scheduler | None = None
    relays: Relays | None = None
    nudger: Nudger | None = None  # delivery runs on demand (the API's send)


@dataclass
class ServiceContext:
    settings: Settings
    store: Store
    runtime: Runtime = field(default_factory=Runtime)
