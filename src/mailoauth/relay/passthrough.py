"""PASSTHROUGH mode: one client connection's mail transactions, relayed live upstream.

After the local login, the relay holds one logged-in upstream session for the client
(:class:`~.smtp_upstream.Upstreams`: from the pool, or a new login with the mailbox's
token) and relays each step of RFC 5321 section 3.3 — ``MAIL FROM`` (with ``SIZE`` and
``BODY`` when the upstream takes them), each ``RCPT TO``, ``DATA``, ``RSET`` — answering
the client with the upstream's reply, code, enhanced status and text alike. Several
transactions of one client share the session; it goes back to the pool when the client
leaves, after an RSET.

What the relay answers itself:

* ``354`` to ``DATA``: the upstream's ``DATA`` is sent at the same time, and the message
  goes up only after the upstream's own ``354`` (a refusal there is the client's answer
  at the end of the data). The header ``From``/``Sender`` policy is checked on the header
  section before any byte of the message reaches the upstream (:mod:`.dotdata`).
* ``451 4.4.1 …`` when the upstream cannot be reached or drops the connection (a broken
  session found at ``MAIL`` — e.g. dropped while idle in the pool — is replaced by a new
  login first, before anything is answered); ``454 4.7.0 …`` when the upstream refuses
  the mailbox's token even after the refresh (an administrator must re-authorize it).
* ``552 5.3.4`` past the relay's own size limit; ``554 5.5.1`` for DATA without an
  accepted recipient.

A refusal after the upstream entered its data phase (policy, size, the client gone)
closes that upstream session without a word: the only way to abort DATA without sending
a message (RFC 5321 section 4.1.1.4).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiosmtplib.response import SMTPResponse

from mailoauth.errors import MailoauthError
from mailoauth.models import Mailbox
from mailoauth.relay.counters import MessageOutcome, RelayCounters
from mailoauth.relay.dotdata import END, END_PREFIXES, DataPieces
from mailoauth.relay.smtp_upstream import (
    BROKEN,
    Upstream,
    Upstreams,
    is_token_problem,
    token_refused,
    unavailable,
    upstream_reply,
)

__all__ = ["DATA_TIMEOUT", "Passthrough", "read_pieces"]

log = logging.getLogger("mailoauth.relay")

#: How long the upstream may take to answer the end of the data (RFC 5321 section
#: 4.5.3.2.6 allows it 10 minutes; the big providers answer within seconds).
DATA_TIMEOUT: Final = 120.0
_MODE: Final = "passthrough"

#: ``check(headers)``: the refusal for this header section (From / Sender), or None.
HeaderCheck = Callable[[bytes], str | None]
Push = Callable[[str], Awaitable[None]]


async def read_pieces(reader: asyncio.StreamReader) -> AsyncIterator[tuple[bytes, bool]]:
    """The data after ``354`` as ``(piece, last)``, the last piece ending with ``END``.

    Large pieces, found by ``readuntil`` in C: a piece ends where the reader's buffer did
    (``LimitOverrunError`` says how much of it holds no terminator), so no terminator is
    ever split between two pieces — except at the very start, where the data follows
    the CRLF of the ``DATA`` line: those first bytes are read one at a time while they
    could still be the start of ``. CRLF``."""
    start = b""
    while True:
        seen = b"\r\n" + start
        if seen.endswith(END):
            yield start, True
            return
        if not seen.endswith(END_PREFIXES):
            break
        start += await reader.readexactly(1)
    yield start, False
    while True:
        try:
            yield await reader.readuntil(END), True
            return
        except asyncio.LimitOverrunError as exc:
            yield await reader.readexactly(exc.consumed), False


def _options(upstream: Upstream, options: list[str]) -> list[bytes]:
    """The MAIL parameters the upstream takes: SIZE (RFC 1870), BODY (RFC 6152)."""
    kept = []
    for option in options:
        name = option.partition("=")[0]
        if (name == "SIZE" and upstream.supports("size")) or (
            name == "BODY" and upstream.supports("8bitmime")
        ):
            kept.append(option.encode("ascii"))
    return kept


class Passthrough:
    """The passthrough state of one client connection (see the module docstring)."""

    def __init__(
        self,
        upstreams: Upstreams,
        mailbox: Mailbox,
        user: str,
        *,
        limit: int,
        counters: RelayCounters,
        data_timeout: float = DATA_TIMEOUT,
    ) -> None:
        self._upstreams = upstreams
        self.mailbox = mailbox
        self.user = user
        self.limit = limit
        self.data_timeout = data_timeout
        self._counters = counters
        self.upstream: Upstream | None = None
        self._accepted = 0  # recipients the upstream took in this transaction

    # --- the session -----------------------------------------------------------------

    async def open(self) -> str | None:
        """At the local login: a session for the mailbox. Returns the reply that refuses
        the login when the upstream refuses the mailbox's token; None otherwise (an
        unreachable upstream is the answer to MAIL, which tries again)."""
        failure = await self._connect()
        return failure if failure is not None and failure.startswith("454") else None

    async def _connect(self, *, fresh: bool = False) -> str | None:
        try:
            self.upstream = await self._upstreams.get(self.mailbox, fresh=fresh)
        except MailoauthError as exc:
            if is_token_problem(exc):
                log.warning("relay: upstream login of mailbox %s refused: %s", self.name, exc)
                return token_refused(self.name, exc)
            log.warning("relay: upstream of mailbox %s unavailable: %s", self.name, exc)
            return unavailable(self.name, str(exc))
        except Exception as exc:
            log.exception("relay: cannot open an upstream session for mailbox %s", self.name)
            return unavailable(self.name, type(exc).__name__)
        return None

    @property
    def name(self) -> str:
        return self.mailbox.name

    async def close(self) -> None:
        """The client left (after its QUIT, or not): the session goes back to the pool
        after an RSET, which also shows it still works; in the middle of a message it is
        closed instead."""
        upstream, self.upstream = self.upstream, None
        if upstream is None:
            return
        if upstream.in_data or not upstream.alive:
            await upstream.abort()
            return
        if await upstream.reset():
            self._upstreams.give_back(upstream)

    async def _drop(self) -> None:
        upstream, self.upstream = self.upstream, None
        self._accepted = 0
        if upstream is not None:
            await upstream.abort()

    # --- the transaction -------------------------------------------------------------

    async def mail(self, address: str, options: list[str]) -> str:
        """MAIL FROM, relayed; one retry with a new login when the session turns out to
        be broken (nothing was answered for this transaction yet)."""
        await self.reset_quietly()  # EHLO / HELO reset the client's transaction
        for attempt in (1, 2):
            if self.upstream is None or not self.upstream.alive:
                failure = await self._connect(fresh=attempt == 2)
                if failure is not None:
                    self._count("failed" if failure.startswith("4") else "rejected")
                    return failure
            upstream = self.upstream
            assert upstream is not None
            args = [f"FROM:<{address}>".encode("ascii"), *_options(upstream, options)]
            try:
                reply = await upstream.command(b"MAIL", *args)
            except BROKEN as exc:
                reason = str(exc) or type(exc).__name__
            else:
                if reply.code != 421:
                    upstream.in_transaction = 200 <= reply.code < 300
                    if not upstream.in_transaction:
                        self._count("rejected" if reply.code >= 500 else "failed")
                    return upstream_reply(reply)
                reason = f"421 {reply.message}"
            await self._drop()
            log.info("relay: upstream session of %s broken at MAIL (%s)", self.name, reason)
            if attempt == 2:
                self._count("failed")
                return unavailable(self.name, reason)
        raise AssertionError("unreachable")  # pragma: no cover

    async def rcpt(self, address: str) -> str:
        upstream = self.upstream
        if upstream is None or not upstream.in_transaction:
            return "503 5.5.1 Error: need MAIL command"
        try:
            reply = await upstream.command(b"RCPT", f"TO:<{address}>".encode("ascii"))
        except BROKEN as exc:
            return await self._broken(str(exc) or type(exc).__name__)
        if reply.code == 421:
            return await self._broken(f"421 {reply.message}")
        if 200 <= reply.code < 300:
            self._accepted += 1
        return upstream_reply(reply)

    async def rset(self) -> str:
        """RSET, relayed when there is a session; the local state is reset anyway."""
        self._accepted = 0
        upstream = self.upstream
        if upstream is None or not upstream.alive:
            return "250 2.0.0 OK"
        try:
            reply = await upstream.command(b"RSET")
        except BROKEN:
            await self._drop()
            return "250 2.0.0 OK"
        upstream.in_transaction = False
        return upstream_reply(reply)

    async def reset_quietly(self) -> None:
        """Reset an upstream transaction the client no longer has (EHLO and HELO reset
        it, RFC 5321 section 4.1.4)."""
        upstream = self.upstream
        if upstream is not None and upstream.in_transaction and not await upstream.reset():
            self.upstream = None
        self._accepted = 0

    async def _broken(self, reason: str) -> str:
        await self._drop()
        self._count("failed")
        log.warning("relay: upstream of mailbox %s lost mid-transaction: %s", self.name, reason)
        return unavailable(self.name, reason)

    def _count(self, outcome: MessageOutcome) -> None:
        self._counters.message(_MODE, outcome)

    # --- DATA ------------------------------------------------------------------------

    async def data(self, reader: asyncio.StreamReader, check: HeaderCheck, push: Push) -> str:
        """The whole DATA exchange; returns the final reply for the client."""
        upstream = self.upstream
        if upstream is None or not upstream.in_transaction:
            return "503 5.5.1 Error: need MAIL command"
        if not self._accepted:
            return "554 5.5.1 Error: no valid recipients"
        upstream.in_data = True
        ready = asyncio.ensure_future(upstream.command(b"DATA"))
        try:
            await push("354 End data with <CR><LF>.<CR><LF>")
            refusal, started, size = await self._transfer(upstream, reader, check, ready)
        except BaseException:  # the client went away: nothing may reach the upstream
            if not ready.cancel() and not ready.cancelled():
                ready.exception()  # retrieved: it is of no interest any more
            await self._drop()
            raise
        if refusal is not None:
            await self._refused(upstream, ready, started)
            self._count("failed" if refusal.startswith("4") else "rejected")
            log.info("relay: %s's message for %s refused: %s", self.user, self.name, refusal)
            return refusal
        try:
            reply = await upstream.reply(self.data_timeout)
        except BROKEN as exc:
            return await self._broken(str(exc) or type(exc).__name__)
        upstream.in_transaction = upstream.in_data = False
        self._accepted = 0
        answer = upstream_reply(reply)
        code = reply.code
        self._count("relayed" if code < 400 else "failed" if code < 500 else "rejected")
        log.info("relay: %s's message (%d bytes) via %s: %s", self.user, size, self.name, answer)
        return answer

    async def _transfer(
        self,
        upstream: Upstream,
        reader: asyncio.StreamReader,
        check: HeaderCheck,
        ready: asyncio.Future[SMTPResponse],
    ) -> tuple[str | None, bool, int]:
        """Read the client's data to its end, forwarding it once the headers passed and
        the upstream said 354. Returns (the refusal or None, whether any byte went up,
        the size)."""
        pieces = DataPieces(self.limit)
        refusal: str | None = None
        started = checked = False
        async for piece, last in read_pieces(reader):
            if refusal is not None:
                continue  # read to the end, so the client hears the refusal
            out = pieces.feed(piece, last=last)
            if pieces.too_large:
                refusal = f"552 5.3.4 Message too big for the relay (at most {self.limit} bytes)"
                continue
            if not checked and pieces.headers is not None:
                checked = True
                refusal = check(pieces.headers)
            if refusal is not None or not out:
                continue
            if not started:
                refusal = await self._upstream_ready(ready)
                if refusal is not None:
                    continue
                started = True
            try:
                upstream.write(out)
            except BROKEN as exc:
                refusal = unavailable(self.name, str(exc) or type(exc).__name__)
        return refusal, started, pieces.size

    async def _upstream_ready(self, ready: asyncio.Future[SMTPResponse]) -> str | None:
        try:
            reply = await ready
        except BROKEN as exc:
            return unavailable(self.name, str(exc) or type(exc).__name__)
        if reply.code == 354:
            return None
        if reply.code == 421:
            return unavailable(self.name, f"421 {reply.message}")
        return upstream_reply(reply)

    async def _refused(
        self, upstream: Upstream, ready: asyncio.Future[SMTPResponse], started: bool
    ) -> None:
        """After a refusal: keep the session if the upstream never entered its data
        phase (then reset it), else close it."""
        self._accepted = 0
        if not started:
            try:
                reply = await ready
            except BROKEN:
                reply = None
            if reply is not None and reply.code != 354 and upstream.alive:
                upstream.in_data = False  # the upstream did not enter its data phase
                if not await upstream.reset():
                    self.upstream = None
                return
        await self._drop()
