"""The relay benchmark's upstream: a fast SMTP and IMAP server that checks the OAuth2 token.

Run by ``bench/relay.py`` as its own process (so its CPU is neither the relay's nor the
clients'); stdlib only, one asyncio loop, on 127.0.0.1:

* SMTP submission with implicit TLS (RFC 8314 section 3.3, port 465 style): EHLO, AUTH
  XOAUTH2 / OAUTHBEARER (RFC 4954 with Google's XOAUTH2 or RFC 7628), MAIL, RCPT, DATA
  (RFC 5321 section 4.1.1.4), RSET, NOOP, QUIT. A message is counted and dropped.
* IMAP4rev1 with implicit TLS (RFC 3501): AUTHENTICATE XOAUTH2 / OAUTHBEARER (SASL-IR,
  RFC 4959), CAPABILITY, ID, ENABLE, NOOP, SELECT / EXAMINE of the folders ``bench-<size>``
  (``--folder SIZE:COUNT``, messages made at start), FETCH and UID FETCH of ``BODY[]`` /
  ``BODY.PEEK[]`` / ``RFC822`` / ``RFC822.SIZE``, CLOSE, LOGOUT.
* HTTP: ``POST /token`` answers any grant (password, refresh_token, client_credentials)
  with the fixed access token, like an authorization server's token endpoint (RFC 6749
  section 5.1); ``GET /stats`` returns the counters as JSON.

A login whose bearer token is not ``--token`` is refused (SMTP ``535``, IMAP ``NO``) and
counted in ``auth_failures``. When listening it prints one JSON line with its ports; it
stops on SIGTERM or when its parent is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import os
import re
import signal
import ssl
from collections import Counter
from collections.abc import Awaitable
from typing import TypeAlias
from urllib.parse import parse_qs

LIMIT = 64 * 1024 * 1024  # the StreamReader's buffer: a whole message fits
HOST = "127.0.0.1"
END_OF_DATA = b"\r\n.\r\n"
EHLO_REPLY = (
    b"250-upstream.bench\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n250 AUTH XOAUTH2 OAUTHBEARER\r\n"
)
CAPABILITY = b"IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER ID ENABLE UIDPLUS"

Reader: TypeAlias = asyncio.StreamReader
Writer: TypeAlias = asyncio.StreamWriter
Folders: TypeAlias = dict[bytes, list[bytes]]  # size (as text) → the folder's messages

stats: Counter[str] = Counter()


def body_lines(size: int, seed: int) -> bytes:
    """``size`` bytes of 76-column base64 lines (an attachment's shape), CRLF-terminated."""
    raw = base64.b64encode(os.urandom(size * 3 // 4 + 3))[:size]
    return b"".join(raw[i : i + 76] + b"\r\n" for i in range(0, len(raw), 76))


def stored_message(size: int, number: int) -> bytes:
    head = (
        f"From: sender@example.com\r\nTo: bench@example.com\r\n"
        f"Subject: stored {size} #{number}\r\nMessage-ID: <stored-{size}-{number}@bench>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()
    return head + body_lines(size, number)


class Token:
    """Checks the bearer token inside an XOAUTH2 or OAUTHBEARER initial response."""

    def __init__(self, token: str) -> None:
        self._expected = f"auth=Bearer {token}".encode()

    def accepts(self, mechanism: bytes, response: bytes) -> bool:
        if mechanism.upper() not in (b"XOAUTH2", b"OAUTHBEARER"):
            return False
        try:
            decoded = base64.b64decode(response, validate=True)
        except binascii.Error:
            return False
        return any(hmac.compare_digest(part, self._expected) for part in decoded.split(b"\x01"))

    def login(self, protocol: str, mechanism: bytes, response: bytes) -> bool:
        """Whether the login is accepted; counts it as ``<protocol>_logins`` or a failure."""
        ok = self.accepts(mechanism, response)
        stats[f"{protocol}_logins" if ok else "auth_failures"] += 1
        return ok


# -- SMTP -----------------------------------------------------------------------------------


async def smtp_session(token: Token, reader: Reader, writer: Writer) -> None:
    stats["smtp_connections"] += 1
    writer.write(b"220 upstream.bench ESMTP ready\r\n")
    authenticated = False
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"MAIL":
                writer.write(
                    b"250 2.1.0 OK\r\n" if authenticated else b"530 5.7.0 Log in first\r\n"
                )
            elif verb == b"RCPT":
                writer.write(b"250 2.1.5 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 Go ahead\r\n")
                data = await reader.readuntil(END_OF_DATA)
                stats["smtp_messages"] += 1
                stats["smtp_bytes"] += len(data)
                writer.write(b"250 2.0.0 OK accepted\r\n")
            elif verb in (b"EHLO", b"HELO"):
                writer.write(EHLO_REPLY if verb == b"EHLO" else b"250 upstream.bench\r\n")
            elif verb == b"AUTH":
                parts = line.split()
                if len(parts) > 2:
                    response = parts[2]
                else:
                    writer.write(b"334 \r\n")
                    response = (await reader.readline()).strip()
                authenticated = len(parts) > 1 and token.login("smtp", parts[1], response)
                reply = b"235 2.7.0 Accepted\r\n" if authenticated else b"535 5.7.8 Bad token\r\n"
                writer.write(reply)
            elif verb in (b"RSET", b"NOOP"):
                writer.write(b"250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            else:
                writer.write(b"502 5.5.1 Unrecognized command\r\n")
            await writer.drain()
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


# -- IMAP -----------------------------------------------------------------------------------

_FOLDER = re.compile(rb'"?bench-([0-9]+)"?', re.IGNORECASE)


def sequence(text: bytes, last: int) -> list[int]:
    """The numbers of an RFC 3501 sequence set (``1``, ``2:5``, ``3:*``, ``1,4``)."""
    numbers: list[int] = []
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        first = last if low == b"*" else int(low)
        end = first if not high else last if high == b"*" else int(high)
        numbers.extend(range(min(first, end), min(max(first, end), last) + 1))
    return numbers


class ImapSession:
    def __init__(self, token: Token, folders: Folders, writer: Writer) -> None:
        self.token, self.folders, self.writer = token, folders, writer
        self.authenticated = False
        self.selected: list[bytes] | None = None

    async def run(self, reader: asyncio.StreamReader) -> None:
        self.writer.write(b"* OK [CAPABILITY " + CAPABILITY + b"] upstream.bench ready\r\n")
        while line := await reader.readline():
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            command, _, args = rest.partition(b" ")
            command = command.upper()
            if command == b"UID":
                sub, _, args = args.partition(b" ")
                await self.fetch(tag, args, sub.upper(), uid=True)
            elif command == b"FETCH":
                await self.fetch(tag, args, command, uid=False)
            elif command == b"AUTHENTICATE":
                mechanism, _, response = args.partition(b" ")
                if not response:
                    self.writer.write(b"+ \r\n")
                    response = (await reader.readline()).strip()
                self.authenticated = self.token.login("imap", mechanism, response)
                done = b"OK AUTHENTICATE completed" if self.authenticated else b"NO Bad token"
                self.reply(tag, done)
            elif command in (b"SELECT", b"EXAMINE"):
                self.select(tag, command, args)
            elif command == b"CAPABILITY":
                self.writer.write(b"* CAPABILITY " + CAPABILITY + b"\r\n")
                self.reply(tag, b"OK CAPABILITY completed")
            elif command == b"ID":
                self.writer.write(b'* ID ("name" "bench-upstream")\r\n')
                self.reply(tag, b"OK ID completed")
            elif command in (b"NOOP", b"ENABLE", b"CLOSE", b"UNSELECT", b"CHECK"):
                self.reply(tag, b"OK " + command + b" completed")
            elif command == b"LOGIN":
                self.reply(tag, b"NO [AUTHENTICATIONFAILED] Use AUTHENTICATE XOAUTH2")
            elif command == b"LOGOUT":
                self.writer.write(b"* BYE logging out\r\n")
                self.reply(tag, b"OK LOGOUT completed")
                break
            else:
                self.reply(tag, b"BAD Unknown command")
            await self.writer.drain()
        await self.writer.drain()

    def reply(self, tag: bytes, text: bytes) -> None:
        self.writer.write(tag + b" " + text + b"\r\n")

    def select(self, tag: bytes, command: bytes, args: bytes) -> None:
        match = _FOLDER.fullmatch(args.strip())
        folder = self.folders.get(match.group(1)) if match and self.authenticated else None
        if folder is None:
            self.reply(tag, b"NO [NONEXISTENT] No such folder (or not logged in)")
            return
        self.selected = folder
        count = len(folder)
        self.writer.write(
            b"* FLAGS (\\Seen)\r\n* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n"
            b"* OK [UIDNEXT %d] next\r\n" % (count, count + 1)
        )
        mode = b"READ-ONLY" if command == b"EXAMINE" else b"READ-WRITE"
        self.reply(tag, b"OK [" + mode + b"] " + command + b" completed")

    async def fetch(self, tag: bytes, args: bytes, command: bytes, *, uid: bool) -> None:
        if command != b"FETCH" or self.selected is None:
            self.reply(tag, b"BAD Select a folder and FETCH")
            return
        numbers, _, items = args.partition(b" ")
        items = items.upper()
        body = b"BODY" in items or b"RFC822)" in items or items.endswith(b"RFC822")
        for number in sequence(numbers, len(self.selected)):
            data = self.selected[number - 1]
            head = b"* %d FETCH (UID %d RFC822.SIZE %d" % (number, number, len(data))
            if body:
                self.writer.write(head + b" BODY[] {%d}\r\n" % len(data))
                self.writer.write(data)
                self.writer.write(b")\r\n")
                stats["imap_fetched"] += 1
                stats["imap_bytes"] += len(data)
                await self.writer.drain()
            else:
                self.writer.write(head + b")\r\n")
        self.reply(tag, (b"OK UID FETCH" if uid else b"OK FETCH") + b" completed")


async def imap_session(token: Token, folders: Folders, reader: Reader, writer: Writer) -> None:
    stats["imap_connections"] += 1
    try:
        await ImapSession(token, folders, writer).run(reader)
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


# -- HTTP: the token endpoint and the counters -------------------------------------------------


async def http_session(token: str, reader: Reader, writer: Writer) -> None:
    try:
        while request := await reader.readline():
            method, path, _ = request.split(b" ", 2)
            length, close = 0, False
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"connection":
                    close = value.strip().lower() == b"close"
            form = parse_qs((await reader.readexactly(length)).decode()) if length else {}
            status, answer = b"404 Not Found", dict[str, object](error="not_found")
            if method == b"POST" and path.startswith(b"/token"):
                stats["token_requests"] += 1
                status, answer = (
                    b"200 OK",
                    {
                        "access_token": token,
                        "token_type": "Bearer",
                        "expires_in": 3600,
                        "scope": " ".join(form.get("scope", ["mail"])),
                    },
                )
            elif method == b"GET" and path.startswith(b"/stats"):
                status, answer = b"200 OK", {**stats}
            content = json.dumps(answer).encode()
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                b"Cache-Control: no-store\r\nContent-Length: %d\r\n\r\n" % len(content) + content
            )
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def serve(args: argparse.Namespace) -> None:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    token = Token(args.token)
    folders = {
        size.encode(): [stored_message(int(size), n) for n in range(1, int(count) + 1)]
        for size, count in (spec.split(":") for spec in args.folder)
    }

    def smtp(r: Reader, w: Writer) -> Awaitable[None]:
        return smtp_session(token, r, w)

    def imap(r: Reader, w: Writer) -> Awaitable[None]:
        return imap_session(token, folders, r, w)

    def http(r: Reader, w: Writer) -> Awaitable[None]:
        return http_session(args.token, r, w)

    options = {"limit": LIMIT, "backlog": 1024}
    servers = {
        "smtp": await asyncio.start_server(smtp, HOST, 0, ssl=tls, **options),
        "imap": await asyncio.start_server(imap, HOST, 0, ssl=tls, **options),
        "http": await asyncio.start_server(http, HOST, 0, **options),
    }
    ports = {name: s.sockets[0].getsockname()[1] for name, s in servers.items()}
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    parent = os.getppid()
    while not stop.is_set() and os.getppid() == parent:  # stops when the bench is gone
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1)
    for server in servers.values():
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--token", required=True, help="the one access token accepted")
    parser.add_argument("--folder", action="append", default=[], metavar="SIZE:COUNT")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
