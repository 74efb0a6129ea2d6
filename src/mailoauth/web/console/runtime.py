"""What console routes borrow from the running service: its token service and HTTP client
(:class:`~mailoauth.web.context.Runtime`, built by the ASGI lifespan).

Console routes are plain ``def`` and run in worker threads; the token service and the
client belong to the event loop, so their coroutines run there through
:func:`anyio.from_thread.run` (:func:`on_loop`), and the route waits for the result.
Without the background (``create_app(background=False)``, a service starting or
stopping) :func:`running` raises :class:`NotRunning` with what to do instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio.from_thread
import httpx

from mailoauth.errors import MailoauthError
from mailoauth.oauth.tokens import TokenService
from mailoauth.web.console.state import Console

__all__ = ["NotRunning", "forget_tokens", "on_loop", "running"]

T = TypeVar("T")


class NotRunning(MailoauthError):  # noqa: N818 - reads as what happened
    """The service's background (token service, scheduler) does not run in this process."""


def running(console: Console) -> tuple[TokenService, httpx.AsyncClient]:
    runtime = console.context.runtime
    if runtime.tokens is None or runtime.http is None:
        raise NotRunning(
            "the service's background (token service, scheduler) is not running — it is "
            "starting or stopping; try again in a moment, or use the CLI on the server "
            "(`mailoauth test`, `mailoauth authorize`)"
        )
    return runtime.tokens, runtime.http


def on_loop(function: Callable[..., Coroutine[Any, Any, T]], /, *args: Any, **kwargs: Any) -> T:
    """Run ``function(*args, **kwargs)`` on the event loop and wait for it (from a worker
    thread: a plain ``def`` route)."""
    return anyio.from_thread.run(functools.partial(function, *args, **kwargs))


def forget_tokens(console: Console, names: tuple[str, ...]) -> None:
    """Drop the token service's cached tokens of mailboxes ``names`` (on the event loop),
    so the next use reads the grant the store holds now."""
    tokens = console.context.runtime.tokens
    if tokens is None:
        return
    for name in names:
        anyio.from_thread.run_sync(tokens.forget, name)
