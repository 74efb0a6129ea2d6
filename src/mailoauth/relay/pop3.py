"""The POP3 relay listener: a password-only mail program logs in locally with its relay
user (``USER`` / ``PASS`` or ``AUTH PLAIN``), mailoauth logs in to the mailbox's POP3
server with its OAuth2 token, answers ``+OK``, and from then on the two connections are
spliced.

Before login the client talks to :class:`~mailoauth.protocols.pop3_server.Pop3PreAuth`
(RFC 1939, 2449, 2595, 5034). Refusals carry RFC 3206 codes: ``-ERR [AUTH]`` for a wrong
password or a token the mail server refused (with the reason), ``-ERR [SYS/TEMP]`` for
"try again later" (a locked-out address, an unreachable mail server). The shared
machinery (timeouts, limiter, splice) is :class:`~.listener.RelayListener`.
"""

from __future__ import annotations

from typing import ClassVar

from mailoauth.protocols.pop3_server import Pop3PreAuth
from mailoauth.relay.listener import RelayListener
from mailoauth.relay.upstream import Upstream
from mailoauth.relay.users import RelayProtocol
from mailoauth.sasl import parse_plain

__all__ = ["Pop3Relay"]


class Pop3Relay(RelayListener[Pop3PreAuth]):
    """The POP3 listener (``MAILOAUTH_RELAY_POP3``); see :class:`RelayListener`."""

    protocol: ClassVar[RelayProtocol] = RelayProtocol.POP3
    variable: ClassVar[str] = "MAILOAUTH_RELAY_POP3"
    failed_code: ClassVar[str] = "AUTH"
    busy_code: ClassVar[str] = "SYS/TEMP"

    def machine(self, *, starttls: bool, secure: bool) -> Pop3PreAuth:
        return Pop3PreAuth(
            parse_plain=parse_plain, stls=starttls, secure=secure, clear_login=self.loopback
        )

    def accepted(self, machine: Pop3PreAuth, upstream: Upstream) -> bytes:
        del upstream
        return machine.accepted()
