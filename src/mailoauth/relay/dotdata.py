"""The DATA content of one passthrough message, piece by piece, ready for the upstream.

Sans-I/O (no sockets, no asyncio): :class:`DataPieces` takes the bytes a client sends
after ``354`` in whatever pieces they arrive — still dot-stuffed, the last piece ending
with the terminator ``CRLF . CRLF`` (RFC 5321 section 4.1.1.4) — and returns what may go
to the upstream as is. The client's dot-stuffing is the upstream's (section 4.5.2), so
clean content is forwarded byte for byte: no unstuffing, no re-serialisation, no
per-line Python.

Content with a bare CR or LF is not clean. Forwarded raw it would be read differently by
the upstream (some servers end the data at ``LF . LF``: SMTP smuggling, CVE-2023-51764's
class), so from the first bare line ending on, the rest of the message is collected and
rewritten the way a store-and-forward relay (aiosmtpd + aiosmtplib) would deliver it:
unstuffed at the client's CRLF lines, every line ending made CRLF, stuffed again. No
line of a single ``.`` can survive that, so the upstream sees exactly one end.

:attr:`DataPieces.headers` is the unstuffed header section (up to the first empty line)
once it is complete; nothing is released before it, so the caller can check the From
and Sender headers before a byte of the message reaches the upstream. ``size`` counts
what arrived; past ``limit`` the caller refuses the message (``552``).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["END", "END_PREFIXES", "DataEnd", "DataPieces", "restuff", "unstuff"]

#: The end of the data: the CRLF ending the last line, then a line of one ".".
END: Final = b"\r\n.\r\n"
#: What the stream seen so far may end with while the next bytes could complete END.
END_PREFIXES: Final = (b"\r", b"\r\n", b"\r\n.", b"\r\n.\r")

_EOL: Final = re.compile(rb"\r\n|\r|\n")
_STUFFED: Final = re.compile(rb"(?<=\r\n)\.")
_LINE_START_DOT: Final = re.compile(rb"(?m)^\.")
_HEADERS_END: Final = b"\r\n\r\n"


def unstuff(data: bytes, *, at_line_start: bool = True) -> bytes:
    """``data`` with the transparency dot taken off every line that has one (RFC 5321
    section 4.5.2); lines are CRLF-delimited, as the client's transparency is."""
    data = _STUFFED.sub(b"", data)
    if at_line_start and data.startswith(b"."):
        data = data[1:]
    return data


def restuff(content: bytes, *, at_line_start: bool = True) -> bytes:
    """``content`` with every line ending made CRLF and every line that starts with "."
    stuffed, as an SMTP client sends it."""
    content = _EOL.sub(b"\r\n", content)
    stuffed = _LINE_START_DOT.sub(b"..", content)
    if not at_line_start and content.startswith(b"."):
        stuffed = stuffed[1:]  # the first "line" continues one that was already sent
    return stuffed


class DataEnd:
    """Finds the end of the data in the client's bytes, as they arrive.

    :meth:`cut` takes the front of ``buffer`` — the bytes received and not yet used —
    and returns it as ``(piece, last)``: ``last`` when the piece ends with the terminator
    (what follows it stays in ``buffer``: the client's next command). A possible start
    of the terminator at the end of ``buffer`` is left there until more bytes say what
    it is, so no terminator is ever split between two pieces. The CRLF of the ``DATA``
    line counts as seen, so a first line of one "." is an empty message. Searching is
    ``bytearray.find`` (C); Python touches only the few bytes at a piece's edges."""

    def __init__(self) -> None:
        self._tail = b"\r\n"  # the stream's last bytes before ``buffer`` (at most 4)

    def cut(self, buffer: bytearray) -> tuple[bytes, bool]:
        tail = self._tail
        edge = (tail + bytes(buffer[: len(END) - 1])).find(END)
        if edge != -1:
            end = edge + len(END) - len(tail)
        else:
            found = buffer.find(END)
            end = -1 if found == -1 else found + len(END)
        if end != -1:
            piece = bytes(buffer[:end])
            del buffer[:end]
            self._tail = b"\r\n"
            return piece, True
        keep = _open_end(tail + bytes(buffer[-(len(END) - 1) :]))
        cut = max(len(buffer) - keep, 0)
        piece = bytes(buffer[:cut])
        del buffer[:cut]
        if piece:
            self._tail = (tail + piece)[-(len(END) - 1) :]
        return piece, False


def _open_end(seen: bytes) -> int:
    """How many of the last bytes of ``seen`` could be the start of :data:`END`."""
    for prefix in reversed(END_PREFIXES):
        if seen.endswith(prefix):
            return len(prefix)
    return 0


def _clean(data: bytes) -> bool:
    """No bare CR, no bare LF (three C-speed counts instead of a scan in Python)."""
    pairs = data.count(b"\r\n")
    return data.count(b"\n") == pairs and data.count(b"\r") == pairs


class DataPieces:
    """See the module docstring. Feed every piece in order; the last with ``last=True``
    (it ends with :data:`END`). Each :meth:`feed` returns the bytes to send upstream now
    (empty while the header section is incomplete or while rewriting)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.headers: bytes | None = None
        self.rewritten = False  # a bare CR or LF was made CRLF
        self._held = bytearray()  # stuffed bytes not released yet (header section)
        self._sent_line_start = True  # whether what was released ends a line
        self._carry = b""  # a trailing CR that the next piece may pair with LF
        self._rest = bytearray()  # from the first bare line ending on, raw

    @property
    def too_large(self) -> bool:
        return bool(self.limit) and self.size > self.limit

    def feed(self, piece: bytes, *, last: bool = False) -> bytes:
        self.size += len(piece)
        if self.too_large:
            self._held.clear()
            self._rest.clear()
            return b""
        data = self._carry + piece if self._carry else piece
        self._carry = b""
        if self.rewritten:
            self._rest += data
            return self._rewrite() if last else b""
        if not last:
            # Kept for the next piece: a CR that may pair with its LF, and a "." that may
            # be a stuffed line's dot: were the rest of its line rewritten (a bare CR or
            # LF), "." released alone could become a line of one ".", an end of data.
            cut = len(data)
            if data.endswith(b"\r"):
                cut -= 1
            if data[:cut].endswith(b"."):
                cut -= 1
            data, self._carry = data[:cut], data[cut:]
        if not _clean(data):
            self.rewritten = True
            self._rest += data
            return self._rewrite() if last else b""
        return self._release(data, last=last)

    def _rewrite(self) -> bytes:
        """The collected rest of the message, unstuffed, CRLF-normalised and re-stuffed;
        its terminator put back at the end."""
        raw = bytes(self._rest)
        self._rest.clear()
        body = raw[: -len(b".\r\n")]  # the last piece ends with END: body ends with CRLF
        line_start = self._line_start()
        wire = restuff(unstuff(body, at_line_start=line_start), at_line_start=line_start)
        return self._release(wire + b".\r\n", last=True)

    def _line_start(self) -> bool:
        """Whether the next byte starts a line (of what was released or is held)."""
        if self._held:
            return self._held.endswith(b"\r\n")
        return self._sent_line_start

    def _release(self, data: bytes, *, last: bool) -> bytes:
        if self.headers is not None:
            self._note_end(data)
            return data
        start = max(len(self._held) - 3, 0)
        self._held += data
        end = self._held.find(_HEADERS_END, start)
        if self._held.startswith(b"\r\n"):
            end = -2  # no header section at all
        if end == -1 and not last:
            return b""
        if end == -1:  # the whole message is headers
            block = bytes(self._held[: -len(END)]) + b"\r\n" if self._held != b".\r\n" else b""
        else:
            block = bytes(self._held[: end + 2])
        self.headers = unstuff(block)
        released = bytes(self._held)
        self._held.clear()
        self._note_end(released)
        return released

    def _note_end(self, released: bytes) -> None:
        if released:
            self._sent_line_start = released.endswith(b"\r\n")
