"""IMAP commands, client side (RFC 9051 §6, grammar §9; RFC 3501 §9).

:class:`CommandWriter` hands out tags (``A1``, ``A2``, ...) and turns arguments into
bytes, choosing for each string the simplest form that carries it:

* an **atom** when every byte is an ASTRING-CHAR (``INBOX``, ``Archive/2024``);
* a **quoted string** for other printable ASCII (``"My Folder"``, ``"a \\"b\\""``);
* a **literal** (``{n}`` CRLF, then n bytes) for 8-bit data, CR, LF or very long
  strings. A synchronizing literal splits the command into :attr:`Command.parts`: send
  one part, wait for the server's ``+`` continuation, send the next. With LITERAL+
  (RFC 7888), or LITERAL- for up to 4096 bytes, the writer uses ``{n+}`` and the
  command is one part.

Integers go out as numbers; :class:`Raw` carries syntax built here and checked
(sequence sets, parenthesized lists). Mailbox names are encoded to modified UTF-7
(:func:`~mailoauth.protocols.imap_utf7.encode_mailbox`) before they reach a command.
Bad local input (NUL anywhere, CR or LF outside a literal, a malformed verb) raises
:class:`~mailoauth.errors.LocalProtocolError` before any byte is produced.
"""

from __future__ import annotations

import binascii
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from mailoauth.errors import LocalProtocolError

__all__ = [
    "CANCEL",
    "Arg",
    "Command",
    "CommandWriter",
    "Raw",
    "flag_list",
    "sasl_response",
    "sequence_set",
    "uids_from",
]

CANCEL: Final = b"*\r\n"
"""Sent instead of a SASL response, cancels AUTHENTICATE (RFC 9051 §6.2.2)."""

MAX_QUOTED: Final = 1024
"""Longer printable strings go out as literals."""

LITERAL_MINUS_MAX: Final = 4096
"""RFC 7888 §4: the largest non-synchronizing literal a LITERAL- server takes."""

MAX_UID: Final = 2**32 - 1

_ASTRING: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
_PRINTABLE: Final = re.compile(rb"[\x20-\x7e]*")
_VERB: Final = re.compile(r"[A-Z][A-Z0-9-]*(?: [A-Z][A-Z0-9-]*)?")
_TAG: Final = re.compile(r"[A-Za-z0-9.]{1,16}")
_FLAG: Final = re.compile(r"\\?[^\x00-\x20\x7f-\uffff(){%*\"\\\]]+")
_FORBIDDEN: Final = re.compile(rb"[\x00\r\n]")


@dataclass(frozen=True, slots=True)
class Raw:
    """Protocol syntax sent exactly as given (one line: no CR, LF or NUL)."""

    text: bytes

    def __post_init__(self) -> None:
        if _FORBIDDEN.search(self.text):
            raise LocalProtocolError(
                f"IMAP command syntax {self.text[:60]!r} holds CR, LF or NUL, which would "
                "break the command line; this is a bug in the caller"
            )


Arg: TypeAlias = str | int | Raw


@dataclass(frozen=True, slots=True)
class Command:
    """A command ready to send. ``parts[0]`` goes first; each later part only after the
    server answered the previous one with a ``+`` continuation (synchronizing literals).
    Every part except the last ends with ``{n}`` CRLF; the last ends with CRLF."""

    tag: str
    verb: str
    parts: tuple[bytes, ...]

    def __repr__(self) -> str:
        size = sum(len(part) for part in self.parts)
        return f"Command({self.tag} {self.verb}, {len(self.parts)} part(s), {size} bytes)"


def _number(value: int) -> bytes:
    if isinstance(value, bool) or not 0 <= value < 2**63:
        raise LocalProtocolError(f"{value!r} is not an IMAP number (0 to 2^63-1)")
    return str(value).encode("ascii")


def sequence_set(numbers: Iterable[int]) -> Raw:
    """UIDs or message numbers as a compact set: ``[1, 2, 3, 7, 9, 10]`` → ``1:3,7,9:10``."""
    ordered = sorted(set(numbers))
    if not ordered:
        raise LocalProtocolError("an IMAP sequence set needs at least one number")
    if ordered[0] < 1 or ordered[-1] > MAX_UID or any(type(n) is not int for n in ordered):
        raise LocalProtocolError(
            f"IMAP message numbers and UIDs run from 1 to {MAX_UID}; got {ordered[0]!r} "
            f"to {ordered[-1]!r}"
        )
    ranges: list[str] = []
    start = prev = ordered[0]
    for number in itertools.chain(ordered[1:], [0]):
        if number == prev + 1:
            prev = number
            continue
        ranges.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = number
    return Raw(",".join(ranges).encode("ascii"))


def uids_from(first: int) -> Raw:
    """``first:*``: every UID from ``first`` on. Note the RFC 9051 §6.4.4 quirk: when
    ``first`` is above the highest UID, ``*`` still matches the last message, so filter
    the answer by ``uid >= first``."""
    if type(first) is not int or not 1 <= first <= MAX_UID:
        raise LocalProtocolError(f"a UID runs from 1 to {MAX_UID}; got {first!r}")
    return Raw(f"{first}:*".encode("ascii"))


def flag_list(flags: Iterable[str]) -> Raw:
    """``(\\Seen \\Deleted)``: system flags and keywords, each checked."""
    names = list(flags)
    for flag in names:
        if not _FLAG.fullmatch(flag):
            raise LocalProtocolError(f"{flag[:60]!r} is not an IMAP flag")
    return Raw(f"({' '.join(names)})".encode("ascii"))


def sasl_response(data: bytes) -> bytes:
    """One AUTHENTICATE continuation line: base64 of ``data``, CRLF (RFC 9051 §6.2.2)."""
    return binascii.b2a_base64(data, newline=False) + b"\r\n"


class CommandWriter:
    """Tags and command bytes for one connection.

    ``literal_plus`` / ``literal_minus`` say whether the server announced LITERAL+ or
    LITERAL- (RFC 7888); set them after CAPABILITY."""

    def __init__(self, prefix: str = "A") -> None:
        if not _TAG.fullmatch(prefix + "1"):
            raise LocalProtocolError(f"{prefix!r} is not a usable IMAP tag prefix")
        self._prefix = prefix
        self._counter = itertools.count(1)
        self.literal_plus = False
        self.literal_minus = False

    def next_tag(self) -> str:
        return f"{self._prefix}{next(self._counter)}"

    def command(self, verb: str, *args: Arg) -> Command:
        """``tag VERB arg arg ...`` CRLF; ``verb`` is one or two upper-case words
        (``SELECT``, ``UID FETCH``)."""
        if not _VERB.fullmatch(verb):
            raise LocalProtocolError(f"{verb[:40]!r} is not an IMAP command name")
        tag = self.next_tag()
        parts: list[bytes] = []
        line = bytearray(f"{tag} {verb}".encode("ascii"))
        for arg in args:
            line += b" "
            if isinstance(arg, Raw):
                line += arg.text
            elif isinstance(arg, int):
                line += _number(arg)
            else:
                literal = self._string(arg, line)
                if literal is not None:
                    parts.append(bytes(line))
                    line = bytearray(literal)
        line += b"\r\n"
        parts.append(bytes(line))
        return Command(tag, verb, tuple(parts))

    def authenticate(self, mechanism: str, initial: bytes | None) -> Command:
        """``AUTHENTICATE MECH`` (RFC 9051 §6.2.2), with ``initial`` as the SASL-IR initial
        response (RFC 4959; ``=`` when empty), or None to wait for the server's ``+``."""
        if not re.fullmatch(r"[A-Z0-9_-]{1,20}", mechanism):
            raise LocalProtocolError(f"{mechanism[:40]!r} is not a SASL mechanism name")
        tag = self.next_tag()
        line = f"{tag} AUTHENTICATE {mechanism}".encode("ascii")
        if initial is not None:
            line += b" " + (binascii.b2a_base64(initial, newline=False) or b"=")
        return Command(tag, "AUTHENTICATE", (line + b"\r\n",))

    def _string(self, value: str, line: bytearray) -> bytes | None:
        """Append ``value`` to ``line``; for a synchronizing literal return the bytes that
        start the next part (the literal's data) after ``line`` was finished."""
        data = value.encode("utf-8")
        if data and _ASTRING.fullmatch(data):
            line += data
            return None
        if len(data) <= MAX_QUOTED and _PRINTABLE.fullmatch(data):
            line += b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            return None
        if b"\x00" in data:
            raise LocalProtocolError(
                "an IMAP string may not contain NUL, not even in a literal; remove it"
            )
        plus = self.literal_plus or (self.literal_minus and len(data) <= LITERAL_MINUS_MAX)
        if plus:
            line += b"{%d+}\r\n" % len(data) + data
            return None
        line += b"{%d}\r\n" % len(data)
        return data
