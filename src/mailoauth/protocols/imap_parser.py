"""The IMAP response parser, client side, sans-I/O (RFC 9051 §2.2.2, §4.3, §7).

Feed it whatever bytes arrived, in chunks split anywhere; take events out::

    parser = ResponseParser()
    while True:
        event = parser.next_event()
        if isinstance(event, NeedData):
            # event.literal > 0: read exactly that many bytes (a literal's body);
            # 0: read up to and including the next LF
            parser.feed(await read(event))
            continue
        handle(event)

Framing: a response is a line ending in CR LF; a line ending in ``{n}`` CR LF (also
``{n+}``, and ``~{n}`` for literal8) is followed by n bytes of literal data and then the
rest of the response, which may announce further literals. The literal bytes are never
scanned: a chunk that is exactly (the rest of) a literal is kept as given, without a
copy, so a 20 MB message costs no Python loop over its bytes. A bare LF ends a line too
(lenient reading; we never send one).

Limits: a line (without literals) of at most ``max_line`` bytes, literals totalling at
most ``max_literal`` bytes per response. Beyond them, or for anything that is not IMAP,
:class:`~mailoauth.errors.RemoteProtocolError`; after one the parser stays broken (the
connection is not worth reading any further).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from mailoauth.errors import RemoteProtocolError
from mailoauth.protocols.imap_events import Event, NeedData, Response
from mailoauth.protocols.imap_grammar import interpret

__all__ = ["MAX_LINE", "MAX_LITERAL", "ResponseParser"]

MAX_LINE: Final = 16 * 1024 * 1024
"""The longest response text (without literals): a SEARCH answer for a big folder."""

MAX_LITERAL: Final = 512 * 1024 * 1024
"""The most literal data in one response: far above any mail server's message limit."""

_ANNOUNCED: Final = re.compile(rb"~?\{([0-9]{1,20})\+?\}\Z")
_NEED_LINE: Final = NeedData(0)


class ResponseParser:
    """Bytes in (:meth:`feed`), events out (:meth:`next_event`)."""

    def __init__(self, *, max_line: int = MAX_LINE, max_literal: int = MAX_LITERAL) -> None:
        self._max_line = max_line
        self._max_literal = max_literal
        self._buffer = bytearray()
        self._scanned = 0  # bytes at the start of _buffer known to hold no LF
        self._segments: list[bytes] = []  # text, literal, text, ... of this response
        self._text_size = 0
        self._literal_size = 0
        self._in_literal = False
        self._literal_left = 0
        self._literal_parts: list[bytes] = []
        self._broken: RemoteProtocolError | None = None

    @property
    def idle(self) -> bool:
        """No partial response is held: everything fed so far has come out as events."""
        return not self._buffer and not self._segments and not self._in_literal

    def feed(self, data: bytes) -> None:
        """Add bytes from the server (any chunk: a line, part of one, several)."""
        if not data:
            return
        if self._in_literal and not self._buffer and len(data) <= self._literal_left:
            self._literal_parts.append(bytes(data))  # no copy for a bytes object
            self._literal_left -= len(data)
            return
        self._buffer += data

    def events(self) -> Iterator[Response]:
        """Every complete response fed so far."""
        while not isinstance(event := self.next_event(), NeedData):
            yield event

    def next_event(self) -> Event:
        """The next complete response, or :class:`NeedData` saying what to read next."""
        if self._broken is not None:
            raise self._broken
        try:
            return self._next()
        except RemoteProtocolError as exc:
            self._broken = exc
            raise

    def _next(self) -> Event:
        buffer = self._buffer
        while True:
            if self._in_literal:
                if self._literal_left:
                    take = min(len(buffer), self._literal_left)
                    if take:
                        self._literal_parts.append(bytes(buffer[:take]))
                        del buffer[:take]
                        self._literal_left -= take
                    if self._literal_left:
                        return NeedData(self._literal_left)
                self._segments.append(b"".join(self._literal_parts))
                self._literal_parts = []
                self._in_literal = False
            end = buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(buffer)
                self._check_text(len(buffer))
                return _NEED_LINE
            line = bytes(buffer[: end - 1 if end and buffer[end - 1] == 0x0D else end])
            del buffer[: end + 1]
            self._scanned = 0
            self._check_text(len(line))
            self._text_size += len(line)
            announced = _ANNOUNCED.search(line)
            if announced is not None and not (not self._segments and line[:1] == b"+"):
                self._begin_literal(int(announced.group(1)), line)
                continue
            self._segments.append(line)
            segments, self._segments = self._segments, []
            self._text_size = self._literal_size = 0
            return interpret(segments)

    def _begin_literal(self, size: int, line: bytes) -> None:
        self._literal_size += size
        if self._literal_size > self._max_literal:
            raise RemoteProtocolError(
                f"the IMAP server announced {self._literal_size} bytes of literal data in "
                f"one response, more than the {self._max_literal} this client accepts: "
                f"'{line[:80].decode('ascii', 'backslashreplace')}'; the message is too "
                "large to fetch, remove it from the folder with another mail program"
            )
        self._segments.append(line)
        self._in_literal = True
        self._literal_left = size

    def _check_text(self, size: int) -> None:
        if self._text_size + size > self._max_line:
            raise RemoteProtocolError(
                f"the IMAP server sent a response line of more than {self._max_line} bytes; "
                "it does not look like IMAP: check incoming.host and incoming.port"
            )
