"""The relay's splice (``relay.splice``) between two real socket pairs: bytes both ways
(the bytes read before the splice first), half-close passed on, back-pressure when one
side stops reading, both sockets closed when one goes away or the splice is cancelled."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mailoauth.relay.splice import HIGH_WATER, Side, Spliced, side_of, splice


@dataclass
class Pair:
    """``client`` / ``server``: the applications' ends; ``task``: the splice between."""

    client: socket.socket
    server: socket.socket
    task: asyncio.Task[Spliced]
    up: asyncio.StreamWriter
    down: asyncio.StreamWriter


async def _wrap(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(sock=sock)


@asynccontextmanager
async def spliced(
    client_pending: bytes = b"", server_pending: bytes = b"", linger: float = 30
) -> AsyncIterator[Pair]:
    client, relay_client = socket.socketpair()
    relay_server, server = socket.socketpair()
    for sock in (client, server):
        sock.setblocking(False)
    reader_c, writer_c = await _wrap(relay_client)
    reader_s, writer_s = await _wrap(relay_server)
    task = asyncio.create_task(
        splice(
            side_of(reader_c, writer_c, client_pending),
            side_of(reader_s, writer_s, server_pending),
            linger=linger,
        )
    )
    try:
        yield Pair(client, server, task, writer_c, writer_s)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        client.close()
        server.close()


async def recv_all(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    got = b""
    while len(got) < size:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 5)
        if not chunk:
            break
        got += chunk
    return got


async def test_bytes_go_both_ways_after_what_was_read_before():
    loop = asyncio.get_running_loop()
    async with spliced(b"a2 SELECT INBOX\r\n", b"* 3 EXISTS\r\n") as pair:
        await loop.sock_sendall(pair.client, b"a3 NOOP\r\n")
        assert await recv_all(pair.server, 26) == b"a2 SELECT INBOX\r\na3 NOOP\r\n"
        await loop.sock_sendall(pair.server, b"a3 OK\r\n")
        assert await recv_all(pair.client, 19) == b"* 3 EXISTS\r\na3 OK\r\n"


async def test_half_close_is_passed_on_and_the_splice_ends_when_both_are_done():
    loop = asyncio.get_running_loop()
    async with spliced() as pair:
        await loop.sock_sendall(pair.client, b"QUIT\r\n")
        pair.client.shutdown(socket.SHUT_WR)
        assert await recv_all(pair.server, 100) == b"QUIT\r\n"  # then EOF
        await loop.sock_sendall(pair.server, b"+OK bye\r\n")  # the other way still flows
        assert await recv_all(pair.client, 9) == b"+OK bye\r\n"
        pair.server.shutdown(socket.SHUT_WR)
        counts = await asyncio.wait_for(pair.task, 5)
        assert counts == Spliced(up=6, down=9)
        assert pair.up.transport.is_closing()
        assert pair.down.transport.is_closing()


async def test_one_side_going_away_ends_the_splice_after_the_linger():
    async with spliced(linger=0.2) as pair:
        pair.client.close()
        assert await recv_all(pair.server, 1) == b""  # its end of stream, passed on
        await asyncio.wait_for(pair.task, 5)  # the server stayed: both aborted
        assert pair.down.transport.is_closing()


async def test_a_side_that_stops_reading_pauses_the_other():
    loop = asyncio.get_running_loop()
    data = bytes(range(256)) * (64 * 1024)  # 16 MiB
    async with spliced() as pair:
        sending = asyncio.create_task(loop.sock_sendall(pair.client, data))
        await asyncio.sleep(0.3)  # the server reads nothing meanwhile
        assert not sending.done()  # the client is held back ...
        buffered = pair.down.transport.get_write_buffer_size()
        assert buffered <= HIGH_WATER + 512 * 1024  # ... instead of the relay buffering it
        got = await recv_all(pair.server, len(data))
        await sending
        assert got == data


async def test_cancelling_the_splice_closes_both_sockets():
    async with spliced() as pair:
        await asyncio.sleep(0)
        pair.task.cancel()
        await asyncio.gather(pair.task, return_exceptions=True)
        assert await recv_all(pair.client, 1) == b""
        assert await recv_all(pair.server, 1) == b""


async def test_a_side_closed_before_the_splice_ends_it_at_once():
    client, relay_client = socket.socketpair()
    relay_server, server = socket.socketpair()
    reader_c, writer_c = await _wrap(relay_client)
    reader_s, writer_s = await _wrap(relay_server)
    writer_s.transport.abort()
    counts = await asyncio.wait_for(
        splice(Side(writer_c.transport), side_of(reader_s, writer_s)),
        5,  # type: ignore[arg-type]
    )
    assert counts == Spliced(0, 0)
    client.setblocking(False)
    assert await recv_all(client, 1) == b""
    client.close()
    server.close()
    del reader_c
