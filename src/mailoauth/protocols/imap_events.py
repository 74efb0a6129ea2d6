"""What the IMAP response parser yields: one frozen value per server response
(RFC 9051 §7, RFC 3501 §7), plus :class:`NeedData` when it has to be fed more bytes.

::

    event            wire form                                   RFC 9051
    Continuation     + <text or base64>                          §7.5
    Tagged           A1 OK|NO|BAD [CODE arg] text                §7.1
    Status           * OK|NO|BAD|PREAUTH|BYE [CODE arg] text     §7.1
    Capability       * CAPABILITY IMAP4rev1 SASL-IR AUTH=...     §7.2.2
    Flags            * FLAGS (\\Seen \\Deleted ...)               §7.3.5
    Search           * SEARCH 3 5 8                              RFC 3501 §7.2.5
    ListEntry        * LIST (\\HasNoChildren) "/" "Sent"          §7.3.1
    Exists           * 23 EXISTS                                 §7.4.1
    Expunge          * 7 EXPUNGE                                 §7.5.1
    Fetch            * 4 FETCH (UID 9 FLAGS () BODY[] {n}...)    §7.5.2
    Other            any other untagged response (RECENT, ID, STATUS, ENABLED, ...)

Text is decoded as UTF-8 with replacement (RFC 9051 allows UTF-8 in ``text``); message
bodies and other string data stay bytes. Nothing here performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from mailoauth.errors import RemoteProtocolError

__all__ = [
    "Capability",
    "Continuation",
    "Event",
    "Exists",
    "Expunge",
    "Fetch",
    "Flags",
    "ListEntry",
    "NeedData",
    "Other",
    "Response",
    "ResponseCode",
    "Search",
    "Status",
    "Tagged",
]


@dataclass(frozen=True, slots=True)
class NeedData:
    """Feed more bytes. ``literal`` > 0: exactly that many bytes of a literal come next
    (read them in one go); 0: the rest of a line (up to and including LF) comes next."""

    literal: int = 0


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """``[NAME argument]`` of a status response (RFC 9051 §7.1): ``name`` upper-cased
    (``UIDVALIDITY``, ``TRYCREATE``, ``AUTHENTICATIONFAILED``), ``argument`` the raw rest
    (``"3857529045"``, ``"IMAP4rev1 SASL-IR"``, ``""``)."""

    name: str
    argument: str = ""

    def number(self) -> int:
        """The argument as a non-negative number (UIDVALIDITY, UIDNEXT)."""
        text = self.argument.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 20:
            raise RemoteProtocolError(
                f"the server sent [{self.name} {text[:40]}] where a number belongs; "
                "it does not follow RFC 9051, so give up on this connection"
            )
        return int(text)

    def words(self) -> tuple[str, ...]:
        """The argument split on spaces (CAPABILITY, PERMANENTFLAGS without parens)."""
        return tuple(self.argument.strip("() ").split())


@dataclass(frozen=True, slots=True)
class Continuation:
    """``+ text``: the server waits for the rest of a command (a literal, a SASL
    response). ``text`` is the raw bytes after ``+ `` (base64 during AUTHENTICATE)."""

    text: bytes


@dataclass(frozen=True, slots=True)
class Tagged:
    """The completion of the command with ``tag``: ``status`` is OK, NO or BAD."""

    tag: str
    status: str
    code: ResponseCode | None
    text: str

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def describe(self) -> str:
        """The reply for a message: ``NO [TRYCREATE] Mailbox doesn't exist: Archive``."""
        code = ""
        if self.code is not None:
            argument = f" {self.code.argument}" if self.code.argument else ""
            code = f" [{self.code.name}{argument}]"
        return f"{self.status}{code} {self.text}".strip()


@dataclass(frozen=True, slots=True)
class Status:
    """An untagged status response: OK, NO, BAD (information), PREAUTH (greeting) or BYE
    (the server is closing the connection)."""

    status: str
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Capability:
    """``* CAPABILITY``: the names, upper-cased (``AUTH=XOAUTH2``, ``SASL-IR``, ``MOVE``)."""

    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class Flags:
    """``* FLAGS``: the flags defined in the selected mailbox."""

    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Search:
    """``* SEARCH``: message numbers (UIDs for UID SEARCH), in the server's order."""

    numbers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ListEntry:
    """``* LIST``: one mailbox. ``name`` is as sent (modified UTF-7, RFC 3501 §5.1.3;
    decode with :func:`~mailoauth.protocols.imap.decode_mailbox`); ``delimiter`` is
    empty for a flat namespace (NIL)."""

    attributes: tuple[str, ...]
    delimiter: str
    name: str


@dataclass(frozen=True, slots=True)
class Exists:
    """``* n EXISTS``: the selected mailbox holds ``count`` messages."""

    count: int


@dataclass(frozen=True, slots=True)
class Expunge:
    """``* n EXPUNGE``: message number ``number`` is gone; later ones moved down by one."""

    number: int


@dataclass(frozen=True, slots=True)
class Fetch:
    """``* n FETCH (...)``: what the server sent of message number ``number``.

    ``uid`` (UID), ``flags`` (FLAGS), ``size`` (RFC822.SIZE) and ``body`` (``BODY[]`` or
    ``RFC822``: the whole message, bytes) are None when not in this response; other
    items are parsed (so the framing is checked) and dropped."""

    number: int
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    size: int | None = None
    body: bytes | None = None

    def __repr__(self) -> str:
        body = "None" if self.body is None else f"<{len(self.body)} bytes>"
        return (
            f"Fetch(number={self.number}, uid={self.uid}, flags={self.flags}, "
            f"size={self.size}, body={body})"
        )


@dataclass(frozen=True, slots=True)
class Other:
    """Any other untagged response: ``name`` upper-cased (``RECENT``, ``ID``,
    ``ENABLED``, ``STATUS``), ``number`` for ``* n NAME`` forms, ``data`` the raw rest
    of the first line."""

    name: str
    number: int | None
    data: bytes


Response: TypeAlias = (
    Continuation
    | Tagged
    | Status
    | Capability
    | Flags
    | Search
    | ListEntry
    | Exists
    | Expunge
    | Fetch
    | Other
)
"""One complete server response."""

Event: TypeAlias = Response | NeedData
"""What :meth:`ResponseParser.next_event` returns."""
