"""Open an SMTP connection for :mod:`.smtp`: implicit TLS, STARTTLS (refused when the
server does not offer it, so a token never goes in clear text by accident) or plain; EHLO
after TLS; the alternate server when the first cannot be reached (refused, timed out, a
4xx greeting). A TLS failure is not failed over: it is a configuration or security
problem, and it says so.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from mailoauth.errors import MailConnectionError, MailError
from mailoauth.mail.transcript import Transcript
from mailoauth.mail.trust import http_client, tls_context
from mailoauth.providers import Security

__all__ = [
    "ConnectOptions",
    "caused_by_tls",
    "close",
    "connect",
    "default_ehlo_name",
    "http_client",
    "tls_context",
    "where",
]

_CHECK = "check outgoing.host, outgoing.port and outgoing.security, and that the network allows it"


def where(host: str, port: int) -> str:
    return f"{host}:{port}"


def caused_by_tls(exc: BaseException) -> bool:
    """Whether TLS (certificate, handshake) is somewhere in the exception's chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _tls_error(host: str, port: int, exc: BaseException) -> MailConnectionError:
    return MailConnectionError(
        f"TLS with {where(host, port)} failed ({exc}); check that the server's "
        "certificate is valid for that name and signed by a trusted CA (ca_file), and "
        "that outgoing.security matches the port (ssl: 465, starttls: 587)",
        host=host,
        port=port,
        tls=True,
    )


async def close(
    smtp: aiosmtplib.SMTP, protocol: SMTPProtocol | None = None, wait: float = 1.0
) -> None:
    """Close and wait (briefly) until the transport is really gone.

    aiosmtplib's ``close()`` only starts closing: with TLS, the socket is released after
    the TLS shutdown, on a later turn of the loop. Returning before that leaks the socket
    when the caller's loop ends next (``ResourceWarning: unclosed transport``, flaky under
    load). ``protocol``: the connection's protocol object taken before a ``QUIT``, which
    closes and forgets it by itself."""
    protocol = protocol or smtp.protocol
    smtp.close()
    if protocol is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while protocol.transport is not None and loop.time() < deadline:
        await asyncio.sleep(0.002)


@functools.cache
def default_ehlo_name() -> str:
    """This host's fully qualified name (RFC 5321 §4.1.4), looked up once."""
    return socket.getfqdn() or "localhost"


def _record(smtp: aiosmtplib.SMTP, transcript: Transcript) -> None:
    """Show the transcript every byte aiosmtplib's protocol object moves (it has no hook
    of its own; the instance attributes shadow its methods, TLS upgrades included)."""
    protocol = smtp.protocol
    if protocol is None or not transcript.enabled:
        return
    receive, write = protocol.data_received, protocol.write

    def data_received(data: bytes) -> None:
        transcript.server(data)
        receive(data)

    def recorded_write(data: bytes) -> None:
        transcript.client(data)
        write(data)

    protocol.data_received = data_received  # type: ignore[method-assign]
    protocol.write = recorded_write  # type: ignore[method-assign]


async def _connect_one(
    host: str, port: int, security: Security, options: ConnectOptions
) -> aiosmtplib.SMTP:
    transcript = options.transcript
    transcript.note(f"connecting to {where(host, port)} ({security.value})")
    smtp = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        use_tls=security is Security.SSL,
        start_tls=False,
        tls_context=options.context,
        timeout=options.timeout,
        local_hostname=options.ehlo_name or default_ehlo_name(),
    )
    try:
        greeting = await smtp.connect()
        transcript.server(f"{greeting.code} {greeting.message}\r\n".encode())
        _record(smtp, transcript)
        await smtp.ehlo()
        if security is Security.STARTTLS:
            if not smtp.supports_extension("starttls"):
                raise MailConnectionError(
                    f"{where(host, port)} does not offer STARTTLS, so the token would go "
                    "in clear text; use the server's STARTTLS port (587) or "
                    "outgoing.security = 'ssl' with port 465",
                    host=host,
                    port=port,
                    tls=True,
                )
            await smtp.starttls()
            await smtp.ehlo()
    except MailError:
        await close(smtp)
        raise
    except (ssl.SSLError, ssl.CertificateError) as exc:
        await close(smtp)
        raise _tls_error(host, port, exc) from None
    except aiosmtplib.SMTPException as exc:
        await close(smtp)
        if caused_by_tls(exc):
            raise _tls_error(host, port, exc) from None
        raise
    return smtp


@dataclass(frozen=True)
class ConnectOptions:
    context: ssl.SSLContext
    timeout: float
    ehlo_name: str | None
    transcript: Transcript


async def connect(
    targets: Sequence[tuple[str, int]], security: Security, options: ConnectOptions
) -> tuple[aiosmtplib.SMTP, str, int]:
    timeout = options.timeout
    failures: list[str] = []
    for host, port in targets:
        try:
            return await _connect_one(host, port, security, options), host, port
        except aiosmtplib.SMTPConnectResponseError as exc:
            if exc.code >= 500:
                raise MailConnectionError(
                    f"{where(host, port)} refused the connection ({exc.code} {exc.message}); "
                    "it does not accept mail from here: ask its operator",
                    host=host,
                    port=port,
                    permanent=True,
                ) from None
            failures.append(f"{where(host, port)} answered {exc.code} {exc.message}")
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected) as exc:
            failures.append(f"{where(host, port)}: {exc}")
        except aiosmtplib.SMTPTimeoutError:
            failures.append(f"{where(host, port)}: no answer within {timeout:g} s")
    first_host, first_port = targets[0]
    raise MailConnectionError(
        f"cannot connect to the SMTP server ({'; '.join(failures)}); {_CHECK}",
        host=first_host,
        port=first_port,
    )
