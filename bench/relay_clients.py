"""The relay benchmark's load: lean asyncio SMTP and IMAP clients, and the scenarios.

Raw protocol on asyncio streams (no smtplib / imaplib threads), so the clients cost little
next to what they measure. Each client waits for every reply (no pipelining), as the
password-only applications the relay serves do. A client logs in either with the access
token (XOAUTH2: straight to the upstream) or with a password (AUTH PLAIN / IMAP LOGIN: the
relay, email-oauth2-proxy).

Scenarios, each for ``clients`` concurrent connections during ``seconds``:

* :func:`steady` — (a) log in once, then messages back to back; the clock starts after
  every client has logged in.
* :func:`sessions` — (b) connect, EHLO, AUTH, one message, QUIT, again and again.
* :func:`burst` — ``clients`` sessions started at the same instant, each with a deadline:
  how many fail (refused, reset, timed out).
* :func:`fetch` — (c) log in, EXAMINE, then ``UID FETCH n BODY.PEEK[]`` one message at a
  time, round the folder.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

SENDER, RECIPIENT = "bench@example.com", "rcpt@example.com"
TIMEOUT = 120.0  # a whole cell, beyond its duration: something is stuck
T = TypeVar("T")


class BenchError(RuntimeError):
    """A reply the benchmark did not expect (the text says which)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects and how it logs in. ``oauth``: ``secret`` is the access
    token (XOAUTH2); else it is the password of ``user``."""

    name: str
    host: str
    port: int
    user: str
    secret: str
    oauth: bool
    tls: ssl.SSLContext | None = None
    timeout: float = 10.0  # seconds a login (or a whole one-message session) may take

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        hostname = self.host if self.tls is not None else None
        return await asyncio.open_connection(
            self.host, self.port, ssl=self.tls, server_hostname=hostname, limit=1 << 24
        )

    def smtp_auth(self) -> bytes:
        if self.oauth:
            return b"AUTH XOAUTH2 " + xoauth2(self.user, self.secret) + b"\r\n"
        plain = base64.b64encode(f"\0{self.user}\0{self.secret}".encode())
        return b"AUTH PLAIN " + plain + b"\r\n"

    def imap_login(self, tag: bytes) -> bytes:
        if self.oauth:
            return tag + b" AUTHENTICATE XOAUTH2 " + xoauth2(self.user, self.secret) + b"\r\n"
        return tag + f' LOGIN "{self.user}" "{self.secret}"\r\n'.encode()


def xoauth2(user: str, token: str) -> bytes:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


class Mail:
    """Messages of about ``size`` bytes: one base64 body, a fresh Message-ID each time;
    CRLF lines, none starting with a dot, so DATA needs no dot-stuffing."""

    def __init__(self, size: int) -> None:
        raw = base64.b64encode(os.urandom(size * 3 // 4 + 3))[:size]
        self.body = b"".join(raw[i : i + 76] + b"\r\n" for i in range(0, len(raw), 76))
        self.size = size
        self._numbers = itertools.count()
        self._tag = os.urandom(4).hex()

    def next(self) -> bytes:
        head = (
            f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: bench {self.size} bytes\r\n"
            f"Message-ID: <{self._tag}.{next(self._numbers)}@bench.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        ).encode()
        return head + self.body + b".\r\n"


# -- SMTP -----------------------------------------------------------------------------------


class Smtp:
    """One logged-in SMTP session (RFC 5321, AUTH per RFC 4954)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, endpoint: Endpoint) -> Smtp:
        smtp = cls(*await endpoint.connect())
        await smtp.expect(220)
        await smtp.command(b"EHLO bench.example\r\n", 250)
        await smtp.command(endpoint.smtp_auth(), 235)
        return smtp

    async def expect(self, code: int) -> bytes:
        """Read a reply (all its lines); its last line, which must have ``code``."""
        while True:
            line = await self.reader.readline()
            if not line:
                raise BenchError(f"connection closed while waiting for {code}")
            if line[3:4] != b"-":
                break
        if int(line[:3]) != code:
            raise BenchError(f"expected {code}, got {line.decode(errors='replace').strip()}")
        return line

    async def command(self, line: bytes, code: int) -> bytes:
        self.writer.write(line)
        return await self.expect(code)

    async def send(self, data: bytes) -> bytes:
        """One transaction; the reply to the message (``250 ...``)."""
        await self.command(f"MAIL FROM:<{SENDER}>\r\n".encode(), 250)
        await self.command(f"RCPT TO:<{RECIPIENT}>\r\n".encode(), 250)
        await self.command(b"DATA\r\n", 354)
        return await self.command(data, 250)

    async def quit(self) -> None:
        try:
            await self.command(b"QUIT\r\n", 221)
        finally:
            self.writer.close()


@dataclass(frozen=True)
class Result:
    """``ops`` done in ``seconds`` (messages, sessions or fetches), ``size`` bytes each."""

    ops: int
    seconds: float
    size: int = 0
    failed: int = 0
    slowest: float = 0.0

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


async def _timed(seconds: float, work: Awaitable[Result]) -> Result:
    async with asyncio.timeout(seconds + TIMEOUT):
        return await work


Mark = Callable[[], None]  # called when the clock starts
Session = TypeVar("Session", "Smtp", "Imap")


def _nothing() -> None:
    pass


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def open_all(
    endpoint: Endpoint, clients: int, opener: Callable[[], Awaitable[Session]]
) -> list[Session]:
    """``clients`` logins at once, each due within ``endpoint.timeout``; if any fails,
    the others are closed and :class:`BenchError` says how many failed."""

    async def one() -> Session:
        async with asyncio.timeout(endpoint.timeout):
            return await opener()

    opened = await asyncio.gather(*(one() for _ in range(clients)), return_exceptions=True)
    good = [o for o in opened if not isinstance(o, BaseException)]
    if len(good) < clients:
        for session in good:
            session.writer.close()
        first = next(o for o in opened if isinstance(o, BaseException))
        raise BenchError(
            f"{clients - len(good)} of {clients} logins failed within {endpoint.timeout:g} s "
            f"(first: {describe(first)})"
        )
    return good


async def together(work: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``work`` at once; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(w) for w in work]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def steady(
    endpoint: Endpoint, mail: Mail, clients: int, seconds: float, mark: Mark = _nothing
) -> Result:
    """(a) ``clients`` sessions log in, then send back to back until ``seconds`` passed."""

    async def run() -> Result:
        sessions = await open_all(endpoint, clients, lambda: Smtp.open(endpoint))
        mark()
        start = time.perf_counter()
        deadline = start + seconds

        async def loop(smtp: Smtp) -> int:
            sent = 0
            while time.perf_counter() < deadline:
                await smtp.send(mail.next())
                sent += 1
            return sent

        try:
            counts = await together(loop(s) for s in sessions)
            elapsed = time.perf_counter() - start
            await together(s.quit() for s in sessions)
        finally:
            for smtp in sessions:
                smtp.writer.close()
        return Result(sum(counts), elapsed, mail.size)

    return await _timed(seconds, run())


async def one_session(endpoint: Endpoint, mail: Mail) -> bytes:
    """Connect, EHLO, AUTH, one message, QUIT (the scan-to-email pattern), due within
    ``endpoint.timeout``; the reply to the message."""
    async with asyncio.timeout(endpoint.timeout):
        smtp = await Smtp.open(endpoint)
        try:
            reply = await smtp.send(mail.next())
            await smtp.quit()
        finally:
            smtp.writer.close()
    return reply


async def sessions(
    endpoint: Endpoint, mail: Mail, clients: int, seconds: float, mark: Mark = _nothing
) -> Result:
    """(b) ``clients`` loops of :func:`one_session` until ``seconds`` passed."""

    async def run() -> Result:
        mark()
        start = time.perf_counter()
        deadline = start + seconds

        async def loop() -> int:
            done = 0
            while time.perf_counter() < deadline:
                try:
                    await one_session(endpoint, mail)
                except (OSError, TimeoutError, BenchError) as exc:
                    raise BenchError(f"a session failed: {describe(exc)}") from exc
                done += 1
            return done

        counts = await together(loop() for _ in range(clients))
        return Result(sum(counts), time.perf_counter() - start, mail.size)

    return await _timed(seconds, run())


async def burst(endpoint: Endpoint, mail: Mail, clients: int, mark: Mark = _nothing) -> Result:
    """``clients`` sessions at once; one not done within ``endpoint.timeout`` fails."""
    mark()
    start = time.perf_counter()

    async def one() -> float:
        await one_session(endpoint, mail)
        return time.perf_counter() - start

    outcomes = await asyncio.gather(*(one() for _ in range(clients)), return_exceptions=True)
    times = [t for t in outcomes if isinstance(t, float)]
    failed = len(outcomes) - len(times)
    return Result(len(times), time.perf_counter() - start, mail.size, failed, max(times, default=0))


# -- IMAP -----------------------------------------------------------------------------------


class Imap:
    """One logged-in IMAP session with a folder examined (RFC 3501)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._tags = itertools.count(1)

    @classmethod
    async def open(cls, endpoint: Endpoint, folder: str) -> Imap:
        imap = cls(*await endpoint.connect())
        greeting = await imap.reader.readline()
        if not greeting.startswith(b"* OK"):
            raise BenchError(f"IMAP greeting: {greeting!r}")
        tag = imap.tag()
        imap.writer.write(endpoint.imap_login(tag))
        await imap.response(tag)
        await imap.command(f"EXAMINE {folder}".encode())
        return imap

    def tag(self) -> bytes:
        return b"b%d" % next(self._tags)

    async def response(self, tag: bytes) -> int:
        """Read up to the tagged reply (which must be OK); the literals' total size."""
        size = 0
        while True:
            line = await self.reader.readline()
            if not line:
                raise BenchError(f"IMAP connection closed before {tag.decode()}'s reply")
            if line.endswith(b"}\r\n"):
                length = int(line[line.rindex(b"{") + 1 : -3])
                await self.reader.readexactly(length)
                size += length
            elif line.startswith(tag + b" "):
                if line[len(tag) + 1 :][:2] != b"OK":
                    raise BenchError(f"IMAP: {line.decode(errors='replace').strip()}")
                return size

    async def command(self, text: bytes) -> int:
        tag = self.tag()
        self.writer.write(tag + b" " + text + b"\r\n")
        return await self.response(tag)

    async def logout(self) -> None:
        try:
            await self.command(b"LOGOUT")
        finally:
            self.writer.close()


async def fetch(
    endpoint: Endpoint, folder: str, count: int, clients: int, seconds: float, mark: Mark = _nothing
) -> Result:
    """(c) ``clients`` sessions fetch the folder's ``count`` messages one by one, round
    and round, until ``seconds`` passed; ``size`` of the result is the mean message size."""

    async def run() -> Result:
        opened = await open_all(endpoint, clients, lambda: Imap.open(endpoint, folder))
        mark()
        start = time.perf_counter()
        deadline = start + seconds

        async def loop(imap: Imap, first: int) -> tuple[int, int]:
            done = size = 0
            while time.perf_counter() < deadline:
                uid = (first + done) % count + 1
                got = await imap.command(b"UID FETCH %d BODY.PEEK[]" % uid)
                if not got:
                    raise BenchError("UID FETCH returned no message")
                done, size = done + 1, size + got
            return done, size

        try:
            results = await together(loop(s, i) for i, s in enumerate(opened))
            elapsed = time.perf_counter() - start
            await together(s.logout() for s in opened)
        finally:
            for imap in opened:
                imap.writer.close()
        ops, total = sum(r[0] for r in results), sum(r[1] for r in results)
        return Result(ops, elapsed, total // max(ops, 1))

    return await _timed(seconds, run())
