"""The one-shot loopback listener that receives the authorization redirect (RFC 8252 §7.3).

`mailoauth authorize` binds the host and port of a loopback redirect URI
(``http://127.0.0.1:8765/oauth/callback``), waits for the browser to arrive there, answers
with a short page and hands back the full URL it was called with. It binds loopback
addresses only, serves one path, and gives up after ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from mailoauth.errors import ConfigError
from mailoauth.validate import is_loopback_host

__all__ = ["wait_for_redirect"]

_PAGE = (
    "<!doctype html><meta charset=utf-8><title>mailoauth</title>"
    "<body style='font:16px system-ui;margin:3rem'><h1>mailoauth</h1>"
    "<p>The provider's answer has arrived. Return to the terminal; you can close this tab."
)
_MAX_HEADER_LINES = 100


def _bind_address(redirect_uri: str) -> tuple[str, int, str]:
    parts = urlsplit(redirect_uri)
    host = parts.hostname or ""
    if parts.scheme != "http" or not is_loopback_host(host):
        raise ConfigError(
            "redirect_uri",
            f"{redirect_uri} is not a loopback http URL this command can listen on",
            "use --paste, or the console of `mailoauth serve`",
        )
    if parts.port is None:
        raise ConfigError(
            "redirect_uri",
            f"{redirect_uri} has no port",
            "give one, e.g. http://127.0.0.1:8765/oauth/callback",
        )
    address = "::1" if host.strip("[]") == "::1" else "127.0.0.1"
    return address, parts.port, parts.path or "/"


async def wait_for_redirect(redirect_uri: str, *, timeout: float) -> str:
    """Listen on the redirect URI; return the URL the browser requested."""
    address, port, path = _bind_address(redirect_uri)
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[str] = loop.create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target = await asyncio.wait_for(_read_request_target(reader), 10)
            found = target is not None and urlsplit(target).path == path
            status, body = ("200 OK", _PAGE) if found else ("404 Not Found", "not found")
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            if found and target is not None and not arrived.done():
                parts = urlsplit(redirect_uri)
                arrived.set_result(f"{parts.scheme}://{parts.netloc}{target}")
        except (TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    try:
        server = await asyncio.start_server(handle, host=address, port=port)
    except OSError as exc:
        raise ConfigError(
            "redirect_uri",
            f"cannot listen on {address}:{port} ({exc.strerror})",
            "stop what uses that port (is `mailoauth serve` running? then authorize from its "
            "console), or register another loopback port at the provider",
        ) from None
    async with server:
        try:
            return await asyncio.wait_for(arrived, timeout)
        except TimeoutError:
            raise ConfigError(
                "authorize",
                f"no answer reached {redirect_uri} within {timeout:.0f} s",
                "open the printed URL in a browser on this machine, or use --paste",
            ) from None


async def _read_request_target(reader: asyncio.StreamReader) -> str | None:
    request_line = (await reader.readline()).decode("latin-1")
    for _ in range(_MAX_HEADER_LINES):
        if (await reader.readline()) in (b"\r\n", b"\n", b""):
            break
    method, _, rest = request_line.partition(" ")
    target = rest.rpartition(" ")[0]
    return target if method == "GET" and target.startswith("/") else None
