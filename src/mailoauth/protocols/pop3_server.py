"""POP3, server side until login, sans-I/O: what the relay's POP3 listener says to a
client before the bytes are spliced to the mail server.

RFC 1939 (AUTHORIZATION state §4, USER / PASS §7, QUIT §6), RFC 2449 (CAPA §5,
RESP-CODES §8), RFC 2595 §4 (STLS), RFC 5034 (AUTH: initial response on the line or after
``+ ``; ``*`` cancels; bare ``AUTH`` lists the mechanisms, as Outlook-style clients ask),
RFC 3206 (``[AUTH]``, ``[SYS/TEMP]``). The driving loop is :mod:`.imap_server`'s; the
actions are :mod:`.preauth`'s. Before login a password is taken only over TLS, or on a
loopback listener (``clear_login``); otherwise USER, PASS and AUTH are answered ``-ERR``
naming STLS. CAPA lists ``TOP`` and ``UIDL`` besides the login capabilities: every
OAuth2 mail server has them, and clients decide early whether to keep mail on the server.
"""

from __future__ import annotations

import re
from typing import Final

from mailoauth.errors import RemoteProtocolError
from mailoauth.protocols.preauth import (
    MAX_BAD,
    MAX_LINE,
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

__all__ = ["Pop3PreAuth"]

_KEYWORD: Final = re.compile(rb"[A-Za-z]{3,4}")
_BYE_BAD: Final = b"-ERR Too many invalid commands; closing the connection\r\n"


class Pop3PreAuth(PreAuthServer):
    """One client connection until login; ``stls`` is
    :class:`~.preauth.PreAuthServer`'s ``offer_tls``."""

    def __init__(
        self, *, parse_plain: PlainParser, stls: bool, secure: bool, clear_login: bool
    ) -> None:
        super().__init__(
            parse_plain=parse_plain, offer_tls=stls, secure=secure, clear_login=clear_login
        )
        self._user: str | None = None  # after USER, until PASS
        self._sasl = False  # AUTH PLAIN waiting for the response after "+ "
        self._pending = False  # a login being checked

    def capabilities(self) -> tuple[str, ...]:
        names = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE"]
        if self.login_allowed:
            names += ["USER", "SASL PLAIN"]
        if self._offer_tls:
            names.append("STLS")
        return tuple(names)

    def greeting(self) -> bytes:
        return b"+OK mailoauth POP3 relay ready\r\n"

    def timed_out(self) -> bytes:
        self.closed = True
        return b"-ERR [SYS/PERM] Idle for too long before logging in; closing the connection\r\n"

    def next_action(self) -> Action:
        if self.closed or self.logged_in or self._pending:
            return NeedData()
        try:
            line = self._lines.line()
        except LineTooLong:
            return self._close(
                b"-ERR Line too long (more than %d bytes) before login; closing the "
                b"connection\r\n" % MAX_LINE
            )
        if line is None:
            return NeedData()
        if self._sasl:
            self._sasl = False
            if line.strip() == b"*":
                return self._ok(b"-ERR AUTH cancelled\r\n")
            return self._plain(line)
        return self._command(line)

    def refused(self, code: str, text: str) -> bytes:
        """The -ERR for the login being checked; the client may try again."""
        assert self._pending, "refused() answers a Login action"
        self._pending = False
        code_text = f"[{code}] " if code else ""
        return f"-ERR {code_text}{printable(text)}\r\n".encode("ascii")

    def accepted(self) -> bytes:
        assert self._pending, "accepted() answers a Login action"
        self._pending = False
        self.logged_in = True
        return b"+OK Logged in\r\n"

    # -- internals ------------------------------------------------------------------------

    def _ok(self, data: bytes) -> Send:
        self._bad = 0
        return Send(data)

    def _bad_command(self, text: str) -> Send:
        self._bad += 1
        reply = f"-ERR {printable(text)}\r\n".encode("ascii")
        if self._bad >= MAX_BAD:
            return self._close(reply + _BYE_BAD)
        return Send(reply)

    def _command(self, line: bytes) -> Action:
        keyword, _, rest = line.partition(b" ")
        if not _KEYWORD.fullmatch(keyword):
            return self._bad_command("Expected a POP3 command (RFC 1939)")
        verb = keyword.decode("ascii").upper()
        argument = rest.decode("utf-8", "replace")
        if verb == "CAPA":
            listing = "".join(f"{name}\r\n" for name in self.capabilities())
            return self._ok(f"+OK Capability list follows\r\n{listing}.\r\n".encode())
        if verb == "QUIT":
            return self._close(b"+OK mailoauth POP3 relay signing off\r\n")
        if verb == "STLS":
            return self._start_tls()
        if verb in ("USER", "PASS", "AUTH") and not self.login_allowed:
            return self._ok(
                b"-ERR [AUTH] Use STLS first: this relay takes no password in clear text "
                b"off loopback\r\n"
            )
        if verb == "USER":
            if not argument.strip():
                return self._bad_command("USER takes a user name")
            self._user = argument.strip()
            return self._ok(b"+OK\r\n")
        if verb == "PASS":
            user, self._user = self._user, None
            if user is None:
                return self._bad_command("Send USER first")
            if not rest:
                return self._bad_command("PASS takes a password")
            return self._login(Login("", user, Secret(argument), mechanism="USER/PASS"))
        if verb == "AUTH":
            return self._auth(argument.split())
        return self._bad_command(f"{verb} is unknown or not valid before login; log in first")

    def _start_tls(self) -> Action:
        if not self._offer_tls:
            reason = "TLS is already active" if self._secure else "the relay has no certificate"
            return self._bad_command(f"STLS is not available: {reason}")
        if self.buffered:  # RFC 2595 §4: nothing may follow STLS before TLS
            return self._close(b"-ERR Commands were sent after STLS, before TLS began\r\n")
        self._bad = 0
        return StartTls(b"+OK Begin TLS negotiation\r\n")

    def _auth(self, words: list[str]) -> Action:
        if not words:
            return self._ok(b"+OK\r\nPLAIN\r\n.\r\n")
        if words[0].upper() != "PLAIN" or len(words) > 2:
            return self._ok(b"-ERR Unsupported authentication mechanism; use PLAIN\r\n")
        if len(words) == 1:
            self._sasl = True
            return self._ok(b"+ \r\n")
        return self._plain(words[1].encode("ascii", "replace"))

    def _plain(self, text: bytes) -> Action:
        try:
            authzid, user, password = plain_message(text, self._parse_plain)
        except RemoteProtocolError as exc:
            return self._bad_command(str(exc))
        return self._login(Login("", user, password, authzid, mechanism="PLAIN"))

    def _login(self, login: Login) -> Action:
        self._bad = 0
        self._pending = True
        return login
