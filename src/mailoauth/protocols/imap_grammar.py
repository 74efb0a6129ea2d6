"""The grammar of one complete IMAP server response (RFC 9051 §9, RFC 3501 §9): turns
the framed pieces of a response into an event of :mod:`.imap_events`.

The framer (:mod:`.imap_parser`) hands over ``segments``: the response's lines with CR LF
removed, each line that announced a literal followed by that literal's bytes::

    [b"* 3 FETCH (UID 9 BODY[] {11}", b"Hello world", b")"]

A line ending in ``{n}`` (or ``{n+}``, or ``~{n}`` for RFC 3516 literal8) is followed
by exactly one literal segment. Everything the server may send is accepted in its
RFC form; anything else raises :class:`~mailoauth.errors.RemoteProtocolError` quoting
the start of the offending line (never a literal's contents).
"""

from __future__ import annotations

import re
from typing import Final, TypeAlias

from mailoauth.errors import RemoteProtocolError
from mailoauth.protocols.imap_events import (
    Capability,
    Continuation,
    Exists,
    Expunge,
    Fetch,
    Flags,
    ListEntry,
    Other,
    Response,
    ResponseCode,
    Search,
    Status,
    Tagged,
)

__all__ = ["Value", "interpret"]

Value: TypeAlias = "bytes | list[Value] | None"
"""A parsed data item: an atom, number or string (bytes), NIL (None) or a list."""

MAX_DEPTH: Final = 64

_TAG: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_NAME: Final = re.compile(rb"[A-Za-z0-9.=_-]+")
_NUMBER: Final = re.compile(rb"[0-9]{1,20}")
_ATOM: Final = re.compile(rb'[^\x00-\x20\x7f(){"]+')
_ASTRING: Final = re.compile(rb'[^\x00-\x20\x7f(){%*"\\]+')
_QUOTED: Final = re.compile(rb'"((?:[^"\\\r\n]|\\["\\])*)"')
_ESCAPE: Final = re.compile(rb"\\([\"\\])")
_LITERAL: Final = re.compile(rb"~?\{[0-9]+\+?\}\Z")
_CODE_NAME: Final = re.compile(rb"[^\x00-\x20\x7f\[\]]+")
_CODE_ARG: Final = re.compile(rb"[^\]\r\n]*")
_FETCH_KEY: Final = re.compile(rb"[A-Za-z0-9.-]+(?:\[[^\]\r\n]*\](?:<[0-9]+>)?)?")
_SPACES: Final = re.compile(rb" +")
# The two answers a fetch run reads most, parsed without the scanner (same events).
_FETCH_SIZE: Final = re.compile(
    rb"\* ([0-9]{1,10}) FETCH \(UID ([0-9]{1,10}) RFC822\.SIZE ([0-9]{1,20})\)"
)
_FETCH_BODY: Final = re.compile(rb"\* ([0-9]{1,10}) FETCH \(UID ([0-9]{1,10}) BODY\[\] \{[0-9]+\}")

_STATUSES: Final = frozenset({b"OK", b"NO", b"BAD"})
_UNTAGGED_STATUSES: Final = _STATUSES | {b"PREAUTH", b"BYE"}
_BODIES: Final = frozenset({b"BODY[]", b"RFC822", b"BINARY[]"})


class _Scanner:
    """A cursor over the segments of one response."""

    __slots__ = ("_index", "_pos", "_segments", "_text")

    def __init__(self, segments: list[bytes]) -> None:
        self._segments = segments
        self._index = 0
        self._text = segments[0]
        self._pos = 0

    def fail(self, what: str) -> RemoteProtocolError:
        line = self._segments[0]
        shown = line[:120].decode("ascii", "backslashreplace")
        more = "…" if len(line) > 120 else ""
        where = f" at byte {self._pos}" if self._index == 0 else ""
        return RemoteProtocolError(
            f"the IMAP server sent a response this client cannot read ({what}{where}): "
            f"'{shown}{more}'; it does not follow RFC 9051, so the connection was given up: "
            "report it to the server's operator"
        )

    def at_end(self) -> bool:
        return self._pos >= len(self._text) and self._index == len(self._segments) - 1

    def peek(self) -> int:
        return self._text[self._pos] if self._pos < len(self._text) else -1

    def take(self, pattern: re.Pattern[bytes]) -> bytes | None:
        match = pattern.match(self._text, self._pos)
        if match is None:
            return None
        self._pos = match.end()
        return match.group()

    def need(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        found = self.take(pattern)
        if found is None:
            raise self.fail(f"expected {what}")
        return found

    def char(self, char: bytes, what: str) -> None:
        if not self._text.startswith(char, self._pos):
            raise self.fail(f"expected {what}")
        self._pos += 1

    def space(self) -> None:
        self.need(_SPACES, "a space")

    def number(self) -> int:
        return int(self.need(_NUMBER, "a number"))

    def rest(self) -> bytes:
        """The remainder of the response as raw bytes (free text)."""
        parts = [self._text[self._pos :], *self._segments[self._index + 1 :]]
        self._index, self._pos = len(self._segments) - 1, len(self._segments[-1])
        self._text = self._segments[-1]
        return b"".join(parts)

    def end(self) -> None:
        if not self.at_end():
            raise self.fail("unexpected data at the end")

    def literal(self) -> bytes | None:
        if not _LITERAL.match(self._text, self._pos) or self._index + 2 >= len(self._segments):
            return None
        data = self._segments[self._index + 1]
        self._index += 2
        self._text = self._segments[self._index]
        self._pos = 0
        return data

    def quoted(self) -> bytes | None:
        match = _QUOTED.match(self._text, self._pos)
        if match is None:
            return None
        self._pos = match.end()
        content = match.group(1)
        return _ESCAPE.sub(rb"\1", content) if b"\\" in content else content

    def string(self) -> bytes | None:
        """nstring: quoted, literal or NIL (None)."""
        found = self.quoted()
        if found is None:
            found = self.literal()
        if found is None:
            if self._text[self._pos : self._pos + 3].upper() != b"NIL":
                raise self.fail("expected a string or NIL")
            self._pos += 3
        return found

    def astring(self) -> bytes:
        found = self.quoted()
        if found is None:
            found = self.literal()
        if found is None:
            found = self.need(_ASTRING, "a string")
        return found

    def value(self, depth: int = 0) -> Value:
        """Any data item: a list, a string, a literal, NIL, a number or an atom."""
        if depth > MAX_DEPTH:
            raise self.fail(f"lists nested more than {MAX_DEPTH} deep")
        if self.peek() == ord("("):
            self._pos += 1
            items: list[Value] = []
            while True:
                self.take(_SPACES)
                if self.peek() == ord(")"):
                    self._pos += 1
                    return items
                if self.peek() == -1 and self._index == len(self._segments) - 1:
                    raise self.fail("a list without its closing ')'")
                items.append(self.value(depth + 1))
        found = self.quoted()
        if found is None:
            found = self.literal()
        if found is not None:
            return found
        atom = self.need(_ATOM, "a data item")
        return None if atom.upper() == b"NIL" else atom


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").strip()


def _resp_text(scan: _Scanner) -> tuple[ResponseCode | None, str]:
    """``[SP] ["[" code [SP arg] "]" SP] text`` (a missing text is tolerated)."""
    scan.take(_SPACES)
    code = None
    if scan.peek() == ord("["):
        scan.char(b"[", "'['")
        name = scan.need(_CODE_NAME, "a response code").decode("ascii", "replace").upper()
        argument = b""
        if scan.take(_SPACES):
            argument = scan.need(_CODE_ARG, "a response code argument")
        scan.char(b"]", "']' closing the response code")
        code = ResponseCode(name, _text(argument))
    return code, _text(scan.rest())


def _strings(scan: _Scanner, value: Value, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, bytes) for item in value):
        raise scan.fail(f"{what} that is not a list of atoms")
    return tuple(item.decode("utf-8", "replace") for item in value if isinstance(item, bytes))


def _number(scan: _Scanner, value: Value, what: str) -> int:
    if not isinstance(value, bytes) or not _NUMBER.fullmatch(value):
        raise scan.fail(f"{what} that is not a number")
    return int(value)


def _fetch(scan: _Scanner, number: int) -> Fetch:
    scan.space()
    scan.char(b"(", "'(' opening the FETCH data")
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    size: int | None = None
    body: bytes | None = None
    while scan.peek() != ord(")"):
        key = scan.need(_FETCH_KEY, "a FETCH item name").upper()
        scan.space()
        if key in _BODIES:
            body = scan.string()
        else:
            value = scan.value()
            if key == b"UID":
                uid = _number(scan, value, "a UID")
            elif key == b"FLAGS":
                flags = _strings(scan, value, "FLAGS")
            elif key == b"RFC822.SIZE":
                size = _number(scan, value, "an RFC822.SIZE")
        if scan.peek() != ord(")"):
            scan.space()
    scan.char(b")", "')' closing the FETCH data")
    scan.end()
    return Fetch(number, uid=uid, flags=flags, size=size, body=body)


def _list(scan: _Scanner) -> ListEntry:
    scan.space()
    if scan.peek() != ord("("):
        raise scan.fail("expected the mailbox attributes in parentheses")
    attributes = _strings(scan, scan.value(), "LIST attributes")
    scan.space()
    delimiter = scan.string()
    scan.space()
    name = scan.astring()
    scan.rest()  # RFC 5258 extended data, if any
    return ListEntry(
        attributes,
        (delimiter or b"").decode("utf-8", "replace"),
        name.decode("utf-8", "replace"),
    )


def _search(scan: _Scanner) -> Search:
    words = scan.rest().split()
    numbers: list[int] = []
    for word in words:
        if word.startswith(b"("):  # RFC 7162 "(MODSEQ n)" at the end
            break
        if not _NUMBER.fullmatch(word):
            raise scan.fail("a SEARCH result that is not a number")
        numbers.append(int(word))
    return Search(tuple(numbers))


def _untagged(scan: _Scanner) -> Response:
    if scan.peek() in range(ord("0"), ord("9") + 1):
        number = scan.number()
        scan.space()
        name = scan.need(_NAME, "a response name").upper()
        if name == b"EXISTS":
            scan.end()
            return Exists(number)
        if name == b"EXPUNGE":
            scan.end()
            return Expunge(number)
        if name == b"FETCH":
            return _fetch(scan, number)
        return Other(name.decode("ascii"), number, scan.rest().strip())
    name = scan.need(_NAME, "a response name").upper()
    if name in _UNTAGGED_STATUSES:
        code, text = _resp_text(scan)
        return Status(name.decode("ascii"), code, text)
    if name == b"CAPABILITY":
        return Capability(frozenset(_text(scan.rest()).upper().split()))
    if name == b"FLAGS":
        scan.space()
        flags = _strings(scan, scan.value(), "FLAGS")
        scan.take(_SPACES)
        scan.end()
        return Flags(flags)
    if name == b"SEARCH":
        return _search(scan)
    if name in (b"LIST", b"LSUB"):
        return _list(scan)
    return Other(name.decode("ascii"), None, scan.rest().strip())


def interpret(segments: list[bytes]) -> Response:
    """The event for one complete response (see the module docstring for ``segments``)."""
    first = segments[0]
    if len(segments) == 1 and (match := _FETCH_SIZE.fullmatch(first)):
        return Fetch(int(match[1]), uid=int(match[2]), size=int(match[3]))
    if len(segments) == 3 and segments[2] == b")" and (match := _FETCH_BODY.fullmatch(first)):
        return Fetch(int(match[1]), uid=int(match[2]), body=segments[1])
    if first[:1] == b"+":
        return Continuation(first[2:] if first[1:2] == b" " else first[1:])
    scan = _Scanner(segments)
    if first[:2] == b"* ":
        scan.char(b"*", "'*'")
        scan.space()
        return _untagged(scan)
    tag = scan.need(_TAG, "a tag, '*' or '+'").decode("ascii")
    scan.space()
    status = scan.need(_NAME, "OK, NO or BAD").upper()
    if status not in _STATUSES:
        raise scan.fail("a tagged response that is not OK, NO or BAD")
    code, text = _resp_text(scan)
    return Tagged(tag, status.decode("ascii"), code, text)
