"""The IMAP relay listener: a password-only mail program logs in locally with its relay
user (``LOGIN`` or ``AUTHENTICATE PLAIN``), mailoauth logs in to the mailbox's IMAP
server with its OAuth2 token, and from then on the two connections are spliced.

Before login the client talks to :class:`~mailoauth.protocols.imap_server.ImapPreAuth`
(RFC 9051 / 3501 §6.1-6.2); the tagged ``OK`` of its login carries the mail server's
post-login capabilities (without AUTH=, SASL-IR, STARTTLS, LOGINDISABLED), so the client
sees one consistent server. Refusals use RFC 5530 codes: ``[AUTHENTICATIONFAILED]`` for a
wrong password or a token the mail server refused (with the reason), ``[UNAVAILABLE]``
for "try again later" (a locked-out address, an unreachable mail server),
``[PRIVACYREQUIRED]`` for a password before STARTTLS off loopback. The shared machinery
(timeouts, limiter, splice) is :class:`~.listener.RelayListener`.
"""

from __future__ import annotations

from typing import ClassVar

from mailoauth.protocols.imap_server import ImapPreAuth
from mailoauth.relay.listener import RelayListener
from mailoauth.relay.upstream import Upstream
from mailoauth.relay.users import RelayProtocol
from mailoauth.sasl import parse_plain

__all__ = ["ImapRelay"]


class ImapRelay(RelayListener[ImapPreAuth]):
    """The IMAP listener (``MAILOAUTH_RELAY_IMAP``); see :class:`RelayListener`."""

    protocol: ClassVar[RelayProtocol] = RelayProtocol.IMAP
    variable: ClassVar[str] = "MAILOAUTH_RELAY_IMAP"
    failed_code: ClassVar[str] = "AUTHENTICATIONFAILED"
    busy_code: ClassVar[str] = "UNAVAILABLE"

    def machine(self, *, starttls: bool, secure: bool) -> ImapPreAuth:
        return ImapPreAuth(
            parse_plain=parse_plain, starttls=starttls, secure=secure, clear_login=self.loopback
        )

    def accepted(self, machine: ImapPreAuth, upstream: Upstream) -> bytes:
        return machine.accepted(upstream.capabilities)
