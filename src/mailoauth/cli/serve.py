"""``mailoauth serve``: the service on the embedded default (SQLite in the data directory).

uvicorn's access log is off on purpose: request lines of the OAuth redirect endpoint carry
authorization codes, and nothing secret may reach a log (DESIGN.md invariant 3).

On SIGTERM uvicorn shuts down gracefully and then re-raises the signal through the handler
that was installed before it started. We install a no-op one, so after the graceful stop
the command goes on to close the store and exits 0, as service managers expect. The
graceful stop includes the app's lifespan shutdown: the scheduler stops and token
refreshes in flight are drained (``web/app.py``).

Transport security (``serve_policy.py``): ``--tls-cert`` / ``--tls-key`` make uvicorn serve
https with a TLS 1.2+ context built by :func:`mailoauth.relay.tls.load_server_context`
(unreadable, non-PEM, mismatched or passphrase-protected files stop the command before it
binds); a non-loopback listen address needs that TLS or an https ``--base-url`` (a reverse
proxy terminating TLS).

The service's own log (``mailoauth.*`` loggers: the scheduler's fetches, failures and
expiry warnings) goes to stderr at INFO level, one line per event; nothing secret is
logged.
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
from typing import Annotated

import typer

from mailoauth.cli.context import settings_of, store_of
from mailoauth.cli.serve_policy import listen_url, served_settings
from mailoauth.config import Settings

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


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    from mailoauth.relay.tls import load_server_context

    tls = settings.tls
    return load_server_context(tls.cert, tls.key, cert_field="tls_cert", key_field="tls_key")


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
            typer.Option(
                help="Public URL: the redirect URI is BASE_URL/oauth/callback (default "
                "$MAILOAUTH_BASE_URL, else the listen address)."
            ),
        ] = None,
        tls_cert: Annotated[
            str | None,
            typer.Option(help="PEM certificate (chain) for https (default $MAILOAUTH_TLS_CERT)."),
        ] = None,
        tls_key: Annotated[
            str | None,
            typer.Option(help="PEM private key of --tls-cert (default $MAILOAUTH_TLS_KEY)."),
        ] = None,
    ) -> None:
        """Run the service: web console, API, OAuth redirect endpoint, scheduler."""
        import uvicorn  # the web stack loads only for serve

        from mailoauth.web.app import create_app
        from mailoauth.web.console import setup_link

        settings = served_settings(
            settings_of(ctx).override(
                listen=listen, base_url=base_url, tls_cert=tls_cert, tls_key=tls_key
            )
        )
        context = _tls_context(settings)  # a bad certificate or key stops us before binding
        factory = None if context is None else (lambda _config, _default: context)
        with store_of(ctx) as store:
            where = settings.data_dir if settings.is_sqlite else "external database"
            typer.echo(
                f"mailoauth serving on {listen_url(settings)} "
                f"(data: {where}; redirect URI: {settings.base_url}/oauth/callback)",
                err=True,
            )
            app = create_app(settings, store)
            if link := setup_link(app):  # no admin yet: for the operator's eyes, not the log
                typer.echo(
                    f"no console admin yet: open {link} within an hour to create the first "
                    "one (works once), or run `mailoauth admin create NAME`",
                    err=True,
                )
            config = uvicorn.Config(
                app,
                host=settings.listen_host,
                port=settings.listen_port,
                access_log=False,
                log_level="warning",
                lifespan="on",
                ssl_context_factory=factory,
            )
            log_to_stderr()
            previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
            try:
                uvicorn.Server(config).run()
            finally:
                signal.signal(signal.SIGTERM, previous)
        typer.echo("mailoauth stopped", err=True)
