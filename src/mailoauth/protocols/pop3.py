"""POP3, client side, sans-I/O: commands out as bytes, the server's bytes in as events.

RFC 1939 (status lines and byte-stuffed multi-line responses §3, STAT / LIST §5, QUIT
and UPDATE §6, UIDL §7), RFC 2449 (255-octet commands §4, CAPA §5, ``[CODE]`` §8),
RFC 3206 (SYS/TEMP, AUTH codes), RFC 5034 §4 (AUTH, ``+ base64``), RFC 2595 §4 (STLS).
The shape is h11's::

    client = Pop3Client()              # the server's greeting is the first response
    wire = client.send(CAPA)           # bytes to write; the answer it expects is queued
    client.receive_data(chunk)         # whatever the socket gave, cut anywhere
    event = client.next_event()        # Response | Continuation, or None: feed more bytes

A response is multi-line only when its command expects one *and* it is ``+OK`` (§3), so
the client queues what each command sent expects (pipelining works). A body ends at a
line holding only ``.``, found with ``bytes.find`` from where the last search stopped and
un-stuffed with one ``replace``: a large RETR costs a few C-speed passes, no per-byte loop.
Bytes a server must not send raise :class:`~mailoauth.errors.RemoteProtocolError`; a
command we must not send raises :class:`~mailoauth.errors.LocalProtocolError` before any
byte exists, quoting no argument (AUTH's is a credential).
"""

from __future__ import annotations

import binascii
import re
from collections import deque
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Final, NamedTuple, TypeAlias

from mailoauth.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CAPA",
    "QUIT",
    "STAT",
    "STLS",
    "Capabilities",
    "Command",
    "Continuation",
    "DropListing",
    "Event",
    "Expect",
    "Pop3Client",
    "Response",
    "ScanListing",
    "UniqueId",
    "auth",
    "auth_fits",
    "dele",
    "list_",
    "parse_capa",
    "parse_list",
    "parse_list_line",
    "parse_stat",
    "parse_uidl",
    "parse_uidl_line",
    "retr",
    "uidl",
]

MAX_COMMAND: Final = 255  # octets in a command line with its CRLF (RFC 2449 §4, RFC 5034 §4)
MAX_LINE: Final = 64 * 1024 + 512  # a status or continuation line (base64 challenges are long)
MAX_BODY: Final = 512 * 1024 * 1024  # a multi-line response, by default: no mail is larger
TEMPORARY_CODES: Final = frozenset({"SYS/TEMP", "UNAVAILABLE", "IN-USE", "LOGIN-DELAY"})
"""Codes meaning "try again later" (RFC 3206 §4, RFC 2449 §8.1; Dovecot's UNAVAILABLE)."""

_VERB = re.compile(r"[A-Za-z]{3,4}")
_BAD_ARGUMENT = re.compile(r"[\x00-\x20\x7f\ud800-\udfff]")
_UID = re.compile(rb"[\x21-\x7e]{1,512}")  # RFC 1939 §7 says 1-70; some servers go beyond
_DIGITS = re.compile(rb"[0-9]{1,15}")


def _garbage(what: str, data: bytes) -> RemoteProtocolError:
    excerpt = repr(data[:80])[2:-1] + ("…" if len(data) > 80 else "")
    return RemoteProtocolError(
        f"the POP3 server sent {what} ('{excerpt}'); it does not follow RFC 1939, "
        "so close the connection and check that host and port belong to a POP3 server"
    )


class Expect(Enum):
    """What answers a command: a status line; + lines up to "." after +OK; "+ " lines."""

    SINGLE = "single"
    MULTI = "multi-line"
    AUTH = "continuations"


@dataclass(frozen=True, slots=True)
class Command:
    """One command line; checked when made. ``repr`` hides the arguments (AUTH's is a
    credential)."""

    verb: str
    args: tuple[str, ...] = ()
    expect: Expect = Expect.SINGLE

    def __post_init__(self) -> None:
        assert _VERB.fullmatch(self.verb), "a POP3 keyword has 3 or 4 letters (RFC 1939 §3)"
        for position, arg in enumerate(self.args, 1):
            if not arg or _BAD_ARGUMENT.search(arg):
                raise LocalProtocolError(
                    f"argument {position} of POP3 {self.verb.upper()} is empty or holds a space, "
                    "CR, LF or another control character, which would break the command line "
                    "(RFC 1939 §3); remove them"
                )
        size = len(self.to_bytes())
        if size > MAX_COMMAND:
            raise LocalProtocolError(
                f"POP3 {self.verb.upper()} would be {size} octets, more than "
                f"the {MAX_COMMAND} a command line may have (RFC 2449 §4); shorten it "
                "(AUTH: send the initial response after the server's '+ ')"
            )

    def __repr__(self) -> str:
        return f"Command({self.verb.upper()}, <{len(self.args)} args>)"

    def to_bytes(self) -> bytes:
        return " ".join((self.verb.upper(), *self.args)).encode("utf-8") + b"\r\n"


def _number(n: int) -> tuple[str]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LocalProtocolError(f"POP3 message numbers start at 1; {n!r} is not one (RFC 1939 §5)")
    return (str(n),)


def _base64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


CAPA: Final = Command("CAPA", expect=Expect.MULTI)
STLS: Final = Command("STLS")
STAT: Final = Command("STAT")
QUIT: Final = Command("QUIT")


def auth(mechanism: str, initial_response: bytes | None = None) -> Command:
    """``AUTH MECH [base64]``; an empty initial response is sent as ``=`` (RFC 5034 §4).
    Check :func:`auth_fits` first: a response too long for the line goes after ``+ ``."""
    if initial_response is None:
        return Command("AUTH", (mechanism,), Expect.AUTH)
    return Command("AUTH", (mechanism, _base64(initial_response) or "="), Expect.AUTH)


def auth_fits(mechanism: str, initial_response: bytes) -> bool:
    """Whether ``AUTH MECH base64`` stays within 255 octets (RFC 5034 §4)."""
    encoded = 4 * ((len(initial_response) + 2) // 3) or 1
    return len(b"AUTH  \r\n") + len(mechanism.encode()) + encoded <= MAX_COMMAND


def list_(n: int | None = None) -> Command:
    """``LIST`` (multi-line) or ``LIST n``."""
    return Command("LIST", expect=Expect.MULTI) if n is None else Command("LIST", _number(n))


def uidl(n: int | None = None) -> Command:
    """``UIDL`` (multi-line) or ``UIDL n``."""
    return Command("UIDL", expect=Expect.MULTI) if n is None else Command("UIDL", _number(n))


def retr(n: int) -> Command:
    return Command("RETR", _number(n), Expect.MULTI)


def dele(n: int) -> Command:
    return Command("DELE", _number(n))


@dataclass(frozen=True, slots=True)
class Response:
    """A status line: ``+OK`` (``ok``) or ``-ERR``, its RFC 2449 §8 ``code`` (upper case,
    without brackets: ``SYS/TEMP``), its ``text``; ``body`` is the un-stuffed data of a
    multi-line response (every line ending in CRLF, the final ``.`` removed), else None."""

    ok: bool
    text: str = ""
    code: str = ""
    body: bytes | None = None

    @property
    def temporary(self) -> bool:
        """The server said "try again later" (:data:`TEMPORARY_CODES`)."""
        return self.code in TEMPORARY_CODES

    def describe(self, limit: int = 300) -> str:
        """The status line, printable and cut short: ``-ERR [AUTH] Authentication failed.``"""
        code = f" [{self.code}]" if self.code else ""
        line = ("+OK" if self.ok else "-ERR") + code + (f" {self.text}" if self.text else "")
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line[: limit + 1])
        return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True, slots=True)
class Continuation:
    """``+ base64`` during AUTH (RFC 5034 §4): the base64 text, possibly empty."""

    data: bytes


Event: TypeAlias = Response | Continuation


def _split_code(text: str) -> tuple[str, str]:
    if text.startswith("[") and (end := text.find("]")) > 1 and " " not in text[1:end]:
        return text[1:end].upper(), text[end + 1 :].lstrip(" ")
    return "", text


def _parse_status(line: bytes, *, continuation: bool) -> Event:
    head = line[:4].upper()
    if head[:3] == b"+OK" and line[3:4] in (b"", b" "):
        ok, rest = True, line[4:]
    elif head == b"-ERR" and line[4:5] in (b"", b" "):
        ok, rest = False, line[5:]
    elif continuation and line[:1] == b"+" and line[1:2] in (b"", b" "):
        return Continuation(line[2:].strip(b" \t"))
    else:
        raise _garbage("a line that is neither +OK nor -ERR", line)
    code, text = _split_code(rest.decode("utf-8", "replace"))
    return Response(ok, text, code)


class Pop3Client:
    """One POP3 connection's state. ``max_body`` bounds a multi-line response."""

    def __init__(self, *, max_body: int = MAX_BODY) -> None:
        self._buffer = bytearray()
        self._expected: deque[Expect] = deque([Expect.SINGLE])  # the greeting
        self._status: Response | None = None  # a +OK whose body is still arriving
        self._scan = 0  # where the search for the body's end resumes
        self._max_body = max_body

    @property
    def buffered(self) -> int:
        """Bytes not yet turned into events: 0 before STLS's handshake (RFC 2595 §4)."""
        return len(self._buffer)

    def send(self, command: Command) -> bytes:
        """The command's bytes; its answer is expected after those already pending."""
        self._expected.append(command.expect)
        return command.to_bytes()

    def auth_response(self, data: bytes | None) -> bytes:
        """The line answering a ``+ ``: base64 of ``data`` (``b""``: an empty line), or
        ``*`` for None, which gives the exchange up (the server answers -ERR)."""
        if list(self._expected) != [Expect.AUTH]:
            raise LocalProtocolError(
                "a POP3 SASL response may only answer the server's '+ ' while AUTH is the "
                "one command waiting for its answer (RFC 5034 §4)"
            )
        return b"*\r\n" if data is None else _base64(data).encode("ascii") + b"\r\n"

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server, split anywhere."""
        self._buffer += data

    def next_event(self) -> Event | None:
        """The next complete event, or None when more bytes are needed."""
        if self._status is not None:
            return self._body()
        end = self._buffer.find(b"\n", 0, MAX_LINE)
        if end < 0:
            if len(self._buffer) >= MAX_LINE:
                raise _garbage(
                    f"a status line longer than {MAX_LINE} bytes", bytes(self._buffer[:80])
                )
            return None
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        if not self._expected:
            raise _garbage("a line no command asked for", line)
        del self._buffer[: end + 1]
        expect = self._expected[0]
        event = _parse_status(line, continuation=expect is Expect.AUTH)
        if isinstance(event, Continuation):
            return event
        if event.ok and expect is Expect.MULTI:
            self._status, self._scan = event, 0
            return self._body()
        self._expected.popleft()
        return event

    def _body(self) -> Response | None:
        buffer = self._buffer
        if buffer.startswith(b".\r\n"):
            end, after = 0, 3
        else:
            found = buffer.find(b"\r\n.\r\n", self._scan)
            if found < 0:
                if len(buffer) > self._max_body:
                    raise RemoteProtocolError(
                        f"the POP3 server sent over {self._max_body} bytes of a multi-line "
                        "response without its final '.' line; close the connection"
                    )
                self._scan = max(0, len(buffer) - 4)
                return None
            end, after = found + 2, found + 5
        body = bytes(buffer[:end])
        del buffer[:after]
        if body.startswith(b"."):  # RFC 1939 §3: a leading "." was doubled ("byte-stuffed")
            body = body[1:]
        body = body.replace(b"\r\n.", b"\r\n")
        assert self._status is not None
        status, self._status = self._status, None
        self._expected.popleft()
        return replace(status, body=body)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A CAPA listing (RFC 2449 §5): each tag, upper case, with its arguments."""

    tags: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    @property
    def sasl(self) -> tuple[str, ...]:
        """The SASL mechanisms offered (RFC 5034 §6), upper case."""
        return tuple(name.upper() for name in self.tags.get("SASL", ()))


class UniqueId(NamedTuple):
    """A unique-id listing (RFC 1939 §7)."""

    number: int
    uid: str


class ScanListing(NamedTuple):
    """A scan listing (RFC 1939 §5, LIST)."""

    number: int
    size: int


class DropListing(NamedTuple):
    """The drop listing (RFC 1939 §5, STAT)."""

    messages: int
    size: int


def parse_capa(body: bytes) -> Capabilities:
    lines = (line.decode("utf-8", "replace").split() for line in body.split(b"\r\n"))
    return Capabilities({words[0].upper(): tuple(words[1:]) for words in lines if words})


def _split(text: str | bytes, what: str) -> tuple[bytes, list[bytes]]:
    line = text.encode("utf-8", "replace") if isinstance(text, str) else text
    words = line.split()
    if len(words) < 2:
        raise _garbage(f"a malformed {what}", line)
    return line, words


def _int(word: bytes, line: bytes, minimum: int = 0) -> int:
    if not _DIGITS.fullmatch(word) or int(word) < minimum:
        raise _garbage(f"{'a message number' if minimum else 'a count'} that is not one", line)
    return int(word)


def _unique(values: list[int] | list[str], what: str, body: bytes) -> None:
    if len(set(values)) != len(values):
        raise _garbage(f"a listing that names one {what} twice", body)


def parse_uidl_line(text: str | bytes) -> UniqueId:
    """``n uid``: a line of the UIDL listing, or the text of ``+OK`` to ``UIDL n``."""
    line, words = _split(text, "unique-id listing")
    if len(words) != 2 or not _UID.fullmatch(words[1]):
        raise _garbage("a unique-id that is not 1 to 512 printable characters", line)
    return UniqueId(_int(words[0], line, 1), words[1].decode("ascii"))


def parse_uidl(body: bytes) -> list[UniqueId]:
    """The UIDL listing, by message number; a repeated number or unique-id is refused
    (RFC 1939 §7: a unique-id identifies one message in the maildrop)."""
    listing = sorted(parse_uidl_line(line) for line in body.split(b"\r\n")[:-1])
    _unique([item.number for item in listing], "message number", body)
    _unique([item.uid for item in listing], "unique-id", body)
    return listing


def parse_list_line(text: str | bytes) -> ScanListing:
    """``n size [...]``: a line of the LIST listing or the text of ``+OK`` to ``LIST n``."""
    line, words = _split(text, "scan listing")
    return ScanListing(_int(words[0], line, 1), _int(words[1], line))


def parse_list(body: bytes) -> list[ScanListing]:
    listing = sorted(parse_list_line(line) for line in body.split(b"\r\n")[:-1])
    _unique([item.number for item in listing], "message number", body)
    return listing


def parse_stat(text: str | bytes) -> DropListing:
    """``count size [...]``: the text of ``+OK`` to STAT (RFC 1939 §5)."""
    line, words = _split(text, "drop listing")
    return DropListing(_int(words[0], line), _int(words[1], line))
