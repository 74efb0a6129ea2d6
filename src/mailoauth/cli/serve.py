"""``mailoauth serve``: the service on the embedded default (SQLite in the data directory).

uvicorn's access log is off on purpose: request lines of the OAuth redirect endpoint carry
authorization codes, and nothing secret may reach a log (DESIGN.md invariant 3).

On SIGTERM uvicorn shuts down gracefully and then re-raises the signal through the handler
that was installed before it started. We install a no-op one, so after the graceful stop
the command goes on to close the store and exits 0, as service managers expect. The
graceful stop includes the app's lifespan shutdown: the scheduler stops and token
refreshes in flight are drained (``web/app.py``).

The service's own log (``mailoauth.*`` loggers: the scheduler's fetches, failures and
expiry warnings) goes to stderr at INFO level, one line per event; nothing secret is
logged.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Annotated

import typer
import uvicorn

from mailoauth.cli.context import settings_of, store_of
from mailoauth.errors import ConfigError
from mailoauth.validate import is_loopback_host

__all__ = ["log_to_stderr", "register_serve"]


def log_to_stderr() -> None:
    logger = logging.getLogger("mailoauth")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def register_serve(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        listen: Annotated[
            str | None,
            typer.Option(help="HOST:PORT to bind (default $MAILOAUTH_LISTEN or 127.0.0.1:8025)."),
        ] = None,
        base_url: Annotated[
            str | None,
            typer.Option(help="Public URL behind a reverse proxy (default $MAILOAUTH_BASE_URL)."),
        ] = None,
    ) -> None:
        """Run the service: web console, API, OAuth redirect endpoint, scheduler."""
        from mailoauth.web.app import create_app  # the web stack loads only for serve

        settings = settings_of(ctx).override(listen=listen, base_url=base_url)
        if not is_loopback_host(settings.listen_host):
            raise ConfigError(
                "--listen",
                f"{settings.listen_host} is not a loopback address and the console has no "
                "login yet",
                "bind 127.0.0.1 and publish it through a reverse proxy that authenticates",
            )
        with store_of(ctx) as store:
            where = settings.data_dir if settings.is_sqlite else "external database"
            typer.echo(
                f"mailoauth serving on http://{settings.listen_host}:{settings.listen_port} "
                f"(data: {where}; redirect URI: {settings.base_url}/oauth/callback)",
                err=True,
            )
            config = uvicorn.Config(
                create_app(settings, store),
                host=settings.listen_host,
                port=settings.listen_port,
                access_log=False,
                log_level="warning",
                lifespan="on",
            )
            log_to_stderr()
            previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
            try:
                uvicorn.Server(config).run()
            finally:
                signal.signal(signal.SIGTERM, previous)
        typer.echo("mailoauth stopped", err=True)
