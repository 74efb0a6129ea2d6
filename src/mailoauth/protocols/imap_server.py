"""IMAP4, server side until login, sans-I/O: what the relay's IMAP listener says to a
client before the bytes are spliced to the mail server (RFC 9051 / RFC 3501 §6.1-6.2).

::

    server = ImapPreAuth(parse_plain=..., starttls=True, secure=False, clear_login=True)
    write(server.greeting())                  # * OK [CAPABILITY ...] ... ready
    loop:
        server.receive_data(await read())
        action = server.next_action()         # see .preauth: NeedData, Send, StartTls, Login
        ...
        Login → write(server.refused(code, text)) or write(server.accepted(capabilities)),
                then splice, forwarding server.leftover() (what the client pipelined)

Commands before login: CAPABILITY, NOOP, LOGOUT (§6.1), STARTTLS (§6.2.1), LOGIN with
atoms, quoted strings and literals — ``{n}`` answered with ``+``, ``{n+}`` without
(RFC 7888 LITERAL+) — (§6.2.3), AUTHENTICATE PLAIN with or without an initial response
(RFC 4959 SASL-IR; ``*`` cancels, §6.2.2), ID answered ``* ID NIL`` (RFC 2971). Anything
else is ``BAD``; :data:`~.preauth.MAX_BAD` of those in a row, a line over
:data:`~.preauth.MAX_LINE` or a refused non-synchronizing literal end with ``* BYE``.

Capabilities (§7.2.2): before login the relay's own — ``IMAP4rev1 LITERAL+ SASL-IR ID``,
``STARTTLS`` while it can be started, ``AUTH=PLAIN`` where a password may be sent, else
``LOGINDISABLED`` (a listener off loopback before TLS). The tagged ``OK`` of the login
carries the mail server's post-login capabilities (:func:`post_login_capabilities`):
what the client will be talking to from then on.

Response codes (RFC 5530): ``AUTHENTICATIONFAILED``, ``UNAVAILABLE``,
``PRIVACYREQUIRED``, ``TOOBIG`` (RFC 7888 §4) are chosen by the caller or here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from mailoauth.errors import RemoteProtocolError
from mailoauth.protocols.preauth import (
    MAX_BAD,
    MAX_LINE,
    MAX_LITERAL,
    Action,
    LineTooLong,
    Login,
    NeedData,
    PlainParser,
    PreAuthServer,
    Send,
    StartTls,
    plain_message,
    printable,
)
from mailoauth.secret import Secret

__all__ = ["HIDDEN_AFTER_LOGIN", "ImapPreAuth", "post_login_capabilities"]

HIDDEN_AFTER_LOGIN: Final = ("AUTH=", "SASL-IR", "STARTTLS", "LOGINDISABLED")
"""Capabilities of the mail server a client never sees: how mailoauth logs in there."""

_LITERAL: Final = re.compile(rb"\{([0-9]{1,10})(\+?)\}\Z")
_TAG: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_ATOM: Final = re.compile(rb'[^\x00-\x20\x7f(){"\\]+')
_QUOTED: Final = re.compile(rb'"((?:[^"\\]|\\["\\])*)"')
_UNESCAPE: Final = re.compile(rb"\\([\"\\])")
_BYE_BAD: Final = b"* BYE Too many invalid commands; closing the connection\r\n"


def post_login_capabilities(upstream: Iterable[str]) -> tuple[str, ...]:
    """The mail server's capabilities without those of its login (AUTH=, SASL-IR,
    STARTTLS, LOGINDISABLED), IMAP4rev1 / IMAP4rev2 first (spelled so), the rest sorted
    (upper case: capability names are case-insensitive, RFC 9051 §7.2.2)."""
    names = {name.upper() for name in upstream}
    kept = sorted(n for n in names if not n.startswith(HIDDEN_AFTER_LOGIN))
    versions = [n.replace("REV", "rev") for n in kept if n.startswith("IMAP4REV")]
    return (*versions, *(n for n in kept if not n.startswith("IMAP4REV")))


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "atom", "string", "(" or ")"
    value: bytes = b""


class _Bad(Exception):  # noqa: N818 - a refused command, answered BAD
    pass


def _tokens(segments: list[bytes]) -> list[_Token]:
    """One command's tokens; ``segments`` alternate text and literal data."""
    tokens: list[_Token] = []
    for index, segment in enumerate(segments):
        if index % 2:
            if b"\x00" in segment:
                raise _Bad("A literal may not contain NUL")
            tokens.append(_Token("string", segment))
            continue
        pos = 0
        while pos < len(segment):
            char = segment[pos : pos + 1]
            if char == b" ":
                pos += 1
            elif char in (b"(", b")"):
                tokens.append(_Token(char.decode()))
                pos += 1
            elif char == b'"':
                quoted = _QUOTED.match(segment, pos)
                if quoted is None:
                    raise _Bad("Unterminated quoted string")
                tokens.append(_Token("string", _UNESCAPE.sub(rb"\1", quoted[1])))
                pos = quoted.end()
            elif atom := _ATOM.match(segment, pos):
                tokens.append(_Token("atom", atom[0]))
                pos = atom.end()
            else:
                raise _Bad(f"Unexpected character {char!r} in the command")
    return tokens


def _tag_of(line: bytes) -> str:
    first = line.split(b" ", 1)[0]
    return first.decode("ascii") if _TAG.fullmatch(first) else "*"


def _text(token: _Token, what: str) -> str:
    if token.kind not in ("atom", "string"):
        raise _Bad(f"The {what} must be a string")
    try:
        return token.value.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"The {what} is not UTF-8") from None


class ImapPreAuth(PreAuthServer):
    """One client connection until login (see the module docstring); ``starttls`` is
    :class:`~.preauth.PreAuthServer`'s ``offer_tls``."""

    def __init__(
        self, *, parse_plain: PlainParser, starttls: bool, secure: bool, clear_login: bool
    ) -> None:
        super().__init__(
            parse_plain=parse_plain, offer_tls=starttls, secure=secure, clear_login=clear_login
        )
        self._segments: list[bytes] = []
        self._size = 0
        self._literal: int | None = None  # literal bytes still to come
        self._sasl_tag: str | None = None  # AUTHENTICATE waiting for the PLAIN response
        self._pending: str | None = None  # the tag of a login being checked

    # -- what the connection looks like ---------------------------------------------------

    def capabilities(self) -> tuple[str, ...]:
        names = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID"]
        if self._offer_tls:
            names.append("STARTTLS")
        names.append("AUTH=PLAIN" if self.login_allowed else "LOGINDISABLED")
        return tuple(names)

    def greeting(self) -> bytes:
        return b"* OK [CAPABILITY %s] mailoauth IMAP relay ready\r\n" % self._caps()

    def timed_out(self) -> bytes:
        """What to send before closing a connection that took too long to log in."""
        self.closed = True
        return b"* BYE Autologout; idle for too long before logging in\r\n"

    # -- driving it -------------------------------------------------------------------------

    def next_action(self) -> Action:
        """What to do next; :class:`NeedData` also while a login is being checked."""
        if self.closed or self.logged_in or self._pending is not None:
            return NeedData()
        try:
            if self._sasl_tag is not None:
                return self._sasl_response(self._sasl_tag)
            return self._command()
        except LineTooLong:
            return self._close(
                b"* BAD Command line too long (more than %d bytes) before login\r\n"
                b"* BYE Closing the connection\r\n" % MAX_LINE
            )

    def refused(self, code: str, text: str) -> bytes:
        """The tagged NO for the login being checked; the client may try again."""
        tag, self._pending = self._pending, None
        assert tag is not None, "refused() answers a Login action"
        code_text = f"[{code}] " if code else ""
        return f"{tag} NO {code_text}{printable(text)}\r\n".encode("ascii")

    def accepted(self, capabilities: Iterable[str]) -> bytes:
        """The tagged OK for the login being checked, with the mail server's
        post-login capabilities; from now on the bytes are spliced."""
        tag, self._pending = self._pending, None
        assert tag is not None, "accepted() answers a Login action"
        self.logged_in = True
        names = " ".join(post_login_capabilities(capabilities)).encode("ascii", "replace")
        return b"%s OK [CAPABILITY %s] Logged in\r\n" % (tag.encode("ascii"), names)

    # -- internals ----------------------------------------------------------------------------

    def _caps(self) -> bytes:
        return " ".join(self.capabilities()).encode("ascii")

    def _bad_command(self, tag: str, text: str) -> Send:
        self._bad += 1
        reply = f"{tag} BAD {printable(text)}\r\n".encode("ascii")
        if self._bad >= MAX_BAD:
            return self._close(reply + _BYE_BAD)
        return Send(reply)

    def _ok(self, data: bytes) -> Send:
        self._bad = 0
        return Send(data)

    def _command(self) -> Action:
        while True:
            if self._literal is not None:
                data = self._lines.take(self._literal)
                if data is None:
                    return NeedData()
                self._segments.append(data)
                self._literal = None
            line = self._lines.line()
            if line is None:
                return NeedData()
            self._size += len(line)
            if self._size > MAX_LINE:
                raise LineTooLong
            announced = _LITERAL.search(line)
            if announced is None:
                segments = [*self._segments, line]
                self._segments, self._size = [], 0
                return self._interpret(segments)
            size, plus = int(announced[1]), bool(announced[2])
            self._segments.append(line[: announced.start()])
            if size > MAX_LITERAL:
                tag = _tag_of(self._segments[0])
                self._segments, self._size = [], 0
                text = (
                    f"BAD [TOOBIG] A literal of {size} bytes is refused before login "
                    f"(at most {MAX_LITERAL})"
                )
                if plus:  # its bytes come anyway and would be read as commands: close
                    return self._close(f"{tag} {text}\r\n* BYE Closing the connection\r\n".encode())
                self._bad += 1
                if self._bad >= MAX_BAD:
                    return self._close(f"{tag} {text}\r\n".encode() + _BYE_BAD)
                return Send(f"{tag} {text}\r\n".encode())
            self._size += size
            if self._size > MAX_LINE:
                raise LineTooLong
            self._literal = size
            if not plus:
                return Send(b"+ Ready for literal data\r\n")

    def _interpret(self, segments: list[bytes]) -> Action:
        tag = _tag_of(segments[0])
        try:
            tokens = _tokens(segments)
            if tag == "*" or len(tokens) < 2 or tokens[1].kind != "atom":
                raise _Bad("Expected a tag and a command")
            name = tokens[1].value.upper().decode("ascii", "replace")
            args = tokens[2:]
            if name in ("CAPABILITY", "NOOP", "LOGOUT", "STARTTLS") and args:
                raise _Bad(f"{name} takes no arguments")
            return self._dispatch(tag, name, args)
        except _Bad as exc:
            return self._bad_command(tag, str(exc))

    def _dispatch(self, tag: str, name: str, args: list[_Token]) -> Action:
        if name == "CAPABILITY":
            listing = b"* CAPABILITY " + self._caps() + b"\r\n"
            return self._ok(listing + f"{tag} OK CAPABILITY completed\r\n".encode())
        if name == "NOOP":
            return self._ok(f"{tag} OK NOOP completed\r\n".encode())
        if name == "LOGOUT":
            return self._close(f"* BYE Logging out\r\n{tag} OK LOGOUT completed\r\n".encode())
        if name == "ID":
            if not (len(args) == 1 and args[0].value.upper() == b"NIL") and not (
                len(args) >= 2 and args[0].kind == "(" and args[-1].kind == ")"
            ):
                raise _Bad("ID takes NIL or a parenthesized list")
            return self._ok(f"* ID NIL\r\n{tag} OK ID completed\r\n".encode())
        if name == "STARTTLS":
            return self._start_tls(tag)
        if name == "LOGIN":
            if len(args) != 2:
                raise _Bad("LOGIN takes a user name and a password")
            user, password = _text(args[0], "user name"), _text(args[1], "password")
            return self._login(Login(tag, user, Secret(password), mechanism="LOGIN"))
        if name == "AUTHENTICATE":
            return self._authenticate(tag, args)
        raise _Bad(f"{name[:40]} is unknown or not valid before login; log in first")

    def _start_tls(self, tag: str) -> Action:
        if self._secure:
            raise _Bad("TLS is already active")
        if not self._offer_tls:
            raise _Bad("STARTTLS is not available: the relay has no certificate")
        if self.buffered:  # RFC 9051 §6.2.1: nothing may follow STARTTLS before TLS
            return self._close(
                f"{tag} BAD Commands were sent after STARTTLS, before TLS began\r\n"
                "* BYE Closing the connection\r\n".encode()
            )
        self._bad = 0
        return StartTls(f"{tag} OK Begin TLS negotiation now\r\n".encode())

    def _authenticate(self, tag: str, args: list[_Token]) -> Action:
        if not 1 <= len(args) <= 2 or any(arg.kind != "atom" for arg in args):
            raise _Bad("AUTHENTICATE takes a mechanism and an optional initial response")
        if args[0].value.upper() != b"PLAIN":
            refusal = f"{tag} NO Unsupported authentication mechanism; use PLAIN\r\n"
            return self._ok(refusal.encode())
        if not self.login_allowed:
            return self._ok(self._privacy(tag))
        if len(args) == 1:
            self._sasl_tag = tag
            return self._ok(b"+ \r\n")
        return self._plain(tag, args[1].value)

    def _sasl_response(self, tag: str) -> Action:
        line = self._lines.line()
        if line is None:
            return NeedData()
        self._sasl_tag = None
        if line.strip() == b"*":
            return self._ok(f"{tag} BAD Authentication cancelled\r\n".encode())
        return self._plain(tag, line)

    def _plain(self, tag: str, text: bytes) -> Action:
        try:
            authzid, user, password = plain_message(text, self._parse_plain)
        except RemoteProtocolError as exc:
            return self._bad_command(tag, str(exc))
        return self._login(Login(tag, user, password, authzid, mechanism="PLAIN"))

    def _login(self, login: Login) -> Action:
        if not self.login_allowed:
            return self._ok(self._privacy(login.tag))
        self._bad = 0
        self._pending = login.tag
        return login

    @staticmethod
    def _privacy(tag: str) -> bytes:
        return (
            f"{tag} NO [PRIVACYREQUIRED] Use STARTTLS first: this relay takes no password "
            "in clear text off loopback\r\n"
        ).encode()
