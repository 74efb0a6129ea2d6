"""What the relay's IMAP and POP3 servers share before a client is logged in, sans-I/O.

The relay (:mod:`mailoauth.relay.imap`, :mod:`mailoauth.relay.pop3`) feeds a server
machine (:mod:`.imap_server`, :mod:`.pop3_server`) whatever bytes the client sent and
carries out the :data:`Action` values it returns::

    Send(data, close)     write ``data``; then close the connection if ``close``
    StartTls(reply)       write ``reply``, refuse if more bytes were already buffered
                          (RFC 3207 section 4.2's rule, RFC 2595 section 3.1), start
                          the TLS handshake, then call the machine's ``tls_started()``
    Login(tag, ...)       check the credentials; answer with ``refused()`` or
                          ``accepted()``; after that the bytes are spliced upstream
    NeedData              read more

Limits every machine enforces before login: a line (a command, or a SASL response) of
at most :data:`MAX_LINE` bytes — longer is refused and the connection closed; a literal
of at most :data:`MAX_LITERAL` bytes (LOGIN's strings); :data:`MAX_BAD` invalid commands
in a row close the connection. Time limits are the caller's (it owns the clock).

:class:`LineBuffer` finds lines without rescanning (a line trickling in byte by byte
costs O(n), not O(n²)); :func:`plain_message` reads a SASL PLAIN response (RFC 4616)
through the parser the caller injects (``mailoauth.sasl.parse_plain``: the protocols
layer does not import the sasl one).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from mailoauth.errors import RemoteProtocolError
from mailoauth.secret import Secret

__all__ = [
    "MAX_BAD",
    "MAX_LINE",
    "MAX_LITERAL",
    "Action",
    "LineBuffer",
    "LineTooLong",
    "Login",
    "NeedData",
    "PlainParser",
    "PreAuthServer",
    "Send",
    "StartTls",
    "plain_message",
    "printable",
]

MAX_LINE: Final = 8 * 1024
"""Longest command line (without its literals) or SASL response taken before login."""

MAX_LITERAL: Final = 1024
"""Largest literal taken before login: a LOGIN user name or password is far shorter."""

MAX_BAD: Final = 3
"""Invalid commands in a row after which the connection is closed."""

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class NeedData:
    """Read more bytes from the client and feed them in."""


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` to the client; close the connection afterwards if ``close``."""

    data: bytes
    close: bool = False


@dataclass(frozen=True, slots=True)
class StartTls:
    """Write ``reply`` (the go-ahead), then do the TLS handshake as the server."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Login:
    """The client presented credentials: ``user`` with ``password``, asking to act as
    ``authzid`` (empty: as itself). ``mechanism`` is how (``LOGIN``, ``PLAIN``,
    ``USER/PASS``), for the log. ``repr`` never shows the password (a Secret)."""

    tag: str
    user: str
    password: Secret
    authzid: str = ""
    mechanism: str = "PLAIN"


Action: TypeAlias = NeedData | Send | StartTls | Login

#: ``mailoauth.sasl.parse_plain``: raw PLAIN message → (authzid, authcid, password);
#: raises RemoteProtocolError for a malformed one.
PlainParser = Callable[[bytes], tuple[str, str, Secret]]


class LineTooLong(Exception):  # noqa: N818 - reads as what happened
    """More than the limit arrived without a line end."""


class LineBuffer:
    """Bytes from the client; complete lines out, each without its CR LF."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self.data = bytearray()
        self._scanned = 0  # bytes at the start known to hold no LF

    def __len__(self) -> int:
        return len(self.data)

    def feed(self, data: bytes) -> None:
        self.data += data

    def line(self) -> bytes | None:
        """The next line (CR LF or a bare LF removed), or None when it is incomplete;
        raises :class:`LineTooLong` past ``limit``."""
        end = self.data.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self.data)
            if self._scanned > self.limit:
                raise LineTooLong
            return None
        if end > self.limit + 1:
            raise LineTooLong
        line = bytes(self.data[: end - 1 if end and self.data[end - 1] == 0x0D else end])
        del self.data[: end + 1]
        self._scanned = 0
        return line

    def take(self, size: int) -> bytes | None:
        """Exactly ``size`` bytes (a literal), or None until that many arrived."""
        if len(self.data) < size:
            return None
        chunk = bytes(self.data[:size])
        del self.data[:size]
        self._scanned = 0
        return chunk

    def rest(self) -> bytes:
        """Everything not taken yet (emptied): what a client pipelined after its login."""
        rest = bytes(self.data)
        self.data.clear()
        self._scanned = 0
        return rest


class PreAuthServer:
    """The state both pre-login machines keep, and what they do alike: whether a password
    may be sent yet, the line buffer, the TLS upgrade, the bytes left after the login.

    ``offer_tls``: the relay has a certificate and the connection is not encrypted yet
    (STARTTLS, STLS); ``secure``: it is encrypted (implicit TLS); ``clear_login``: a
    password may be sent without TLS (a loopback listener). ``parse_plain`` reads a PLAIN
    message."""

    def __init__(
        self, *, parse_plain: PlainParser, offer_tls: bool, secure: bool, clear_login: bool
    ) -> None:
        self._parse_plain = parse_plain
        self._offer_tls = offer_tls and not secure
        self._secure = secure
        self._clear_login = clear_login
        self._lines = LineBuffer(MAX_LINE)
        self._bad = 0
        self.closed = False
        self.logged_in = False

    @property
    def login_allowed(self) -> bool:
        return self._secure or self._clear_login

    @property
    def buffered(self) -> int:
        """Bytes received and not handled yet."""
        return len(self._lines)

    def receive_data(self, data: bytes) -> None:
        self._lines.feed(data)

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS / STLS succeeded."""
        self._secure, self._offer_tls = True, False

    def leftover(self) -> bytes:
        """What the client sent after its login command (pipelined): for the server."""
        return self._lines.rest()

    def _close(self, data: bytes) -> Send:
        self.closed = True
        return Send(data, close=True)


def plain_message(text: bytes, parse: PlainParser) -> tuple[str, str, Secret]:
    """A SASL PLAIN response (RFC 4616) sent as base64 (``=`` for empty, RFC 4959):
    (authzid, user, password). Raises RemoteProtocolError saying what is wrong, never
    quoting the data."""
    text = text.strip(b" \t")
    try:
        raw = b"" if text == b"=" else binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        raise RemoteProtocolError("the PLAIN response is not valid base64") from None
    return parse(raw)


def printable(text: str, limit: int = 600) -> str:
    """``text`` fit for one protocol line: ASCII (IMAP4rev1 and POP3 text is), control
    characters (CR, LF) as spaces, at most ``limit`` characters."""
    text = _CONTROL.sub(" ", text).strip().encode("ascii", "replace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."
