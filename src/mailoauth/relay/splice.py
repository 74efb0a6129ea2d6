"""Splice two connections after login: the client's and the mail server's bytes are
passed through both ways, untouched, at the speed of the event loop's own I/O.

Each transport gets a :class:`_Half` protocol whose ``data_received`` writes the chunk
(up to 256 KiB per read, asyncio's read size) straight into the other transport: no
stream reader, no task switch, no line splitting. Back-pressure follows asyncio's flow
control: when one transport's write buffer passes :data:`HIGH_WATER` its protocol is
told ``pause_writing`` and stops *reading the other side* until ``resume_writing``, so
a slow client never makes the relay buffer a whole mailbox. TCP_NODELAY is set on both
sockets (asyncio does so already for TCP; explicit here because a Nagle stall costs
~40 ms per response).

Closing: an end of stream from one side is passed on as a half-close when the other
side can take one (plain TCP; a TLS transport cannot: asyncio's has no ``write_eof``),
and the open direction is given :data:`LINGER` seconds to finish (the answers to a
LOGOUT or QUIT; a client that closed for good makes the server close at once) before
both are aborted. When one side's connection is lost,
the other is closed after what was already written to it is flushed, and aborted if that
takes longer than the linger. :func:`splice` returns when both sockets are closed, and
aborts both when it is cancelled.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress
from dataclasses import dataclass
from typing import Final

__all__ = ["HIGH_WATER", "LINGER", "Side", "Spliced", "side_of", "splice"]

HIGH_WATER: Final = 1024 * 1024
"""Bytes waiting to be written to one side before reading from the other pauses."""

LINGER: Final = 30.0
"""Seconds a one-way connection (or an unflushed close) may last before both are aborted."""


@dataclass
class Side:
    """One connection to splice: its transport, the bytes already read from it that the
    other side still has to get, and whether it already ended its stream (EOF)."""

    transport: asyncio.Transport
    pending: bytes = b""
    eof: bool = False


def side_of(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: bytes = b""
) -> Side:
    """The connection behind a stream pair, with the bytes its reader had buffered
    (after ``pending``, which a protocol machine holds) taken out of it."""
    buffered = getattr(reader, "_buffer", None)  # StreamReader has no public "take all"
    data = pending
    if buffered:
        data += bytes(buffered)
        buffered.clear()
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    return Side(transport, data, reader.at_eof())


@dataclass(frozen=True)
class Spliced:
    """How many bytes went each way."""

    up: int  # client → mail server
    down: int  # mail server → client


class _Half(asyncio.Protocol):
    """The protocol of one transport: what it reads goes to the peer's transport."""

    def __init__(self, splice: _Splice, transport: asyncio.Transport) -> None:
        self.splice = splice
        self.transport = transport
        self.peer: _Half | None = None
        self.received = 0
        self.eof = False
        self.lost = False

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        self.received += len(data)
        if not self.peer.transport.is_closing():
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.splice.eof(self)
        # Keep a plain TCP transport half-open; a TLS transport closes regardless.
        return self.transport.get_extra_info("sslcontext") is None

    def pause_writing(self) -> None:  # our write buffer is full: stop reading the peer
        assert self.peer is not None
        self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.peer is not None
        self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.splice.lost(self)


class _Splice:
    def __init__(self, linger: float) -> None:
        self.linger = linger
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.halves: list[_Half] = []
        self._timer: asyncio.TimerHandle | None = None

    def eof(self, half: _Half) -> None:
        half.eof = True
        assert half.peer is not None
        peer = half.peer.transport
        if all(h.eof for h in self.halves):
            self.close_all()
            return
        if peer.can_write_eof() and not peer.is_closing():
            peer.write_eof()
        self.arm()  # the other direction gets LINGER seconds to finish

    def lost(self, half: _Half) -> None:
        half.lost = True
        if all(h.lost for h in self.halves):
            if self._timer is not None:
                self._timer.cancel()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.close_all()

    def close_all(self) -> None:
        for half in self.halves:
            half.transport.close()  # flushes what was written to it first
        self.arm()

    def arm(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(self.linger, self.abort_all)

    def abort_all(self) -> None:
        for half in self.halves:
            if not half.lost:
                half.transport.abort()


def _prepare(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport.set_write_buffer_limits(high=HIGH_WATER, low=HIGH_WATER // 4)


async def splice(client: Side, server: Side, *, linger: float = LINGER) -> Spliced:
    """Pass bytes between ``client`` and ``server`` until both are closed (see the
    module docstring). Both transports are closed when this returns or is cancelled."""
    state = _Splice(linger)
    if client.transport.is_closing() or server.transport.is_closing():
        for side in (client, server):  # one went away while logging in
            side.transport.abort()
        await asyncio.sleep(0)  # let the transports' connection_lost run
        return Spliced(0, 0)
    up, down = _Half(state, client.transport), _Half(state, server.transport)
    up.peer, down.peer = down, up
    state.halves = [up, down]
    for half, side in ((up, client), (down, server)):
        _prepare(side.transport)
        side.transport.set_protocol(half)
    # No await since the readers were emptied: nothing can arrive in between.
    if client.pending:
        server.transport.write(client.pending)
    if server.pending:
        client.transport.write(server.pending)
    for side in (client, server):
        if not side.transport.is_reading():
            side.transport.resume_reading()
    for half, side in ((up, client), (down, server)):
        if side.eof:
            state.eof(half)
    try:
        await asyncio.shield(state.done)
    except asyncio.CancelledError:
        state.abort_all()
        await asyncio.sleep(0)
        raise
    return Spliced(up.received + len(client.pending), down.received + len(server.pending))
