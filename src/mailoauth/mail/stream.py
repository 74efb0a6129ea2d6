"""A line-oriented connection for the IMAP and POP3 clients: TCP, implicit TLS or
STARTTLS-later, every read bounded by a timeout, every byte offered to the transcript.

The protocol modules (:mod:`mailoauth.protocols`) turn bytes into events; this module
only moves bytes and turns socket trouble into :class:`~mailoauth.errors.MailConnectionError`
naming the server: ``tls=True`` for certificate and handshake failures (a retry does not
fix those), temporary for the rest. SMTP goes through aiosmtplib instead
(:mod:`.connect`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, Final

from mailoauth.errors import MailConnectionError
from mailoauth.mail.connect import where
from mailoauth.mail.transcript import Transcript
from mailoauth.providers import Security

__all__ = ["LINE_LIMIT", "MailStream", "open_stream"]

#: The longest line we accept: an IMAP ``SEARCH`` answer for a big folder is one line.
LINE_LIMIT: Final = 16 * 1024 * 1024


class MailStream:
    """One open connection. Use :func:`open_stream` to make one."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        port: int,
        timeout: float,
        transcript: Transcript,
        tls: bool,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host
        self.port = port
        self.timeout = timeout
        self.transcript = transcript
        self.tls = tls

    @property
    def where(self) -> str:
        return where(self.host, self.port)

    def _lost(self, what: str) -> MailConnectionError:
        return MailConnectionError(
            f"the connection to {self.where} broke off ({what}); retry later",
            host=self.host,
            port=self.port,
        )

    async def _read(self, coro: Coroutine[Any, Any, bytes]) -> bytes:
        try:
            # asyncio.timeout, not wait_for: wait_for makes a task per read (~20% slower).
            async with asyncio.timeout(self.timeout):
                return await coro
        except TimeoutError:
            raise self._lost(f"no answer within {self.timeout:g} s") from None
        except asyncio.IncompleteReadError:
            raise self._lost("closed by the server") from None
        except asyncio.LimitOverrunError:
            raise self._lost(f"a line longer than {LINE_LIMIT} bytes") from None
        except ssl.SSLError as exc:
            raise self._lost(f"TLS: {exc}") from None
        except OSError as exc:
            raise self._lost(str(exc)) from None

    async def readline(self) -> bytes:
        """One line with its CRLF; raises when the server closes instead."""
        line = await self._read(self.reader.readuntil(b"\n"))
        self.transcript.server(line)
        return line

    async def readexactly(self, size: int, *, record: bool = True) -> bytes:
        """Exactly ``size`` bytes; ``record=False`` keeps them out of the transcript (the
        pieces of a large message body, which the caller summarises once)."""
        data = await self._read(self.reader.readexactly(size))
        if record:
            self.transcript.server(data)
        return data

    async def read_some(self, size: int = 65536) -> bytes:
        """Up to ``size`` bytes, whatever arrived; raises when the server closed. Not
        recorded in the transcript: the caller records each parsed response itself (a
        POP3 body has no size to read exactly, and one entry per response reads better)."""
        data = await self._read(self.reader.read(size))
        if not data:
            raise self._lost("closed by the server")
        return data

    async def write(self, data: bytes) -> None:
        self.transcript.client(data)
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except TimeoutError:
            raise self._lost(f"could not send within {self.timeout:g} s") from None
        except OSError as exc:
            raise self._lost(str(exc)) from None

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Upgrade after the protocol's STARTTLS / STLS was accepted.

        Bytes already buffered at this point arrived in clear text after the server's
        "go ahead" — a man in the middle injecting commands' answers (CVE-2011-0411's
        class of bug): refused rather than read as if they came over TLS."""
        if len(getattr(self.reader, "_buffer", b"")):
            raise MailConnectionError(
                f"{self.where} sent data after agreeing to start TLS, before the handshake; "
                "something on the path is tampering with the connection",
                host=self.host,
                port=self.port,
                tls=True,
            )
        try:
            await asyncio.wait_for(
                self.writer.start_tls(context, server_hostname=self.host), self.timeout
            )
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise tls_failure(self.host, self.port, exc) from None
        except (TimeoutError, OSError) as exc:
            raise self._lost(f"TLS handshake: {exc or 'timed out'}") from None
        self.tls = True
        self.transcript.note("TLS started")

    async def close(self) -> None:
        self.writer.close()
        with suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 1)


def tls_failure(host: str, port: int, exc: BaseException) -> MailConnectionError:
    return MailConnectionError(
        f"TLS with {where(host, port)} failed ({exc}); check that the server's certificate "
        "is valid for that name and signed by a trusted CA (ca_file), and that security "
        "matches the port (ssl: 993/995, starttls: 143/110)",
        host=host,
        port=port,
        tls=True,
    )


async def open_stream(
    host: str,
    port: int,
    security: Security,
    context: ssl.SSLContext,
    *,
    timeout: float,
    transcript: Transcript,
) -> MailStream:
    """Connect; with ``Security.SSL`` the TLS handshake (and certificate check) is done
    before this returns. For ``STARTTLS`` the caller asks the server, then calls
    :meth:`MailStream.start_tls`."""
    implicit = security is Security.SSL
    transcript.note(f"connecting to {where(host, port)} ({security.value})")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=context if implicit else None,
                server_hostname=host if implicit else None,
                limit=LINE_LIMIT,
            ),
            timeout,
        )
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise tls_failure(host, port, exc) from None
    except TimeoutError:
        raise MailConnectionError(
            f"cannot connect to {where(host, port)}: no answer within {timeout:g} s; "
            "check host, port and security, and that the network allows it",
            host=host,
            port=port,
        ) from None
    except OSError as exc:
        raise MailConnectionError(
            f"cannot connect to {where(host, port)} ({exc.strerror or exc}); "
            "check host, port and security, and that the network allows it",
            host=host,
            port=port,
        ) from None
    return MailStream(
        reader, writer, host=host, port=port, timeout=timeout, transcript=transcript, tls=implicit
    )
