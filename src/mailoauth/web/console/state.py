"""What the console keeps for the life of the app: the service context, its templates, the
login limiters, the one-time setup link and the clock.

One :class:`Console` per app, made by :func:`~mailoauth.web.console.mount_console` and
kept on ``app.state``; routes reach it with :func:`console_of`. The limiters and the
setup link live in this process's memory only (see docs/console.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fastapi.templating import Jinja2Templates
from starlette.requests import HTTPConnection

from mailoauth.config import Settings
from mailoauth.store import Store
from mailoauth.web.console.limits import LoginLimits
from mailoauth.web.context import ServiceContext

__all__ = ["TEMPLATES", "Clock", "Console", "SetupLink", "console_of"]

TEMPLATES: Final = Path(__file__).parent.parent / "templates"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SetupLink:
    """The one-time first-run link: only the SHA-256 of its token, and when it dies."""

    token_hash: str | None = None
    expires_at: datetime | None = None


@dataclass
class Console:
    context: ServiceContext
    templates: Jinja2Templates
    clock: Clock = _utcnow
    limits: LoginLimits = field(default_factory=LoginLimits)
    setup: SetupLink = field(default_factory=SetupLink)

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def secure_cookies(self) -> bool:
        """Cookies get ``Secure`` when the console's public URL is https."""
        return self.settings.base_url.startswith("https://")


def console_of(connection: HTTPConnection) -> Console:
    """The console of the app serving ``connection`` (a request)."""
    console = getattr(connection.app.state, "console", None)
    if not isinstance(console, Console):
        raise RuntimeError("the console is not mounted on this app (mount_console)")
    return console
