"""The SMTP relay's aiosmtpd hooks: the local login, the sender policy, and what each
relay user's mode does with the mail transaction.

* ``AUTH PLAIN`` (RFC 4616, :func:`~mailoauth.sasl.plain.parse_plain`) and ``AUTH LOGIN``
  (:class:`~mailoauth.sasl.login.LoginServer`), checked against the relay users
  (:mod:`.users`); wrong passwords are counted per source address (:mod:`.limits`) and a
  locked-out address is answered ``454 4.7.0 ... try again in N s``. The login, its
  mailbox and its allowed From addresses are read once, in one worker-thread call (or
  from :mod:`.logins` when the same login was checked seconds ago), and kept for the
  connection (:class:`Login`).
* ``MAIL FROM`` needs a login and one of the login's allowed From addresses (``553
  5.7.1``, naming them); so do the message's ``From``/``Sender`` headers.
* QUEUE mode: DATA → the durable outbound queue, ``250`` only after the commit
  (:mod:`.smtp_queue`).
* PASSTHROUGH mode: the upstream session is opened at the login (a token the upstream
  refuses makes the login fail with ``454 4.7.0``); after the ``235`` the connection is
  handed over to :class:`~.passthrough.Passthrough`, with the same sender policy
  (:meth:`RelayHandler.policy`).

Nothing secret is logged: the log names the login and the client's address, never a
password (aiosmtpd does not log AUTH responses unless asked to).
"""

from __future__ import annotations

import asyncio
import binascii
import email.policy
import functools
import logging
import re
from base64 import b64decode
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any, Final

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from mailoauth.errors import MailoauthError, RemoteProtocolError
from mailoauth.models import Mailbox
from mailoauth.providers import Transport
from mailoauth.relay.counters import MessageOutcome, RelayCounters
from mailoauth.relay.limits import FailureLimiter
from mailoauth.relay.logins import Logins
from mailoauth.relay.passthrough import DATA_TIMEOUT, Passthrough
from mailoauth.relay.passthrough_machine import Policy
from mailoauth.relay.smtp_queue import Nudge, QueueMode
from mailoauth.relay.smtp_upstream import Upstreams
from mailoauth.relay.users import RelayMode, RelayProtocol
from mailoauth.sasl.events import Credentials, Send
from mailoauth.sasl.login import LoginServer
from mailoauth.sasl.plain import parse_plain
from mailoauth.store import RelayUser, Store

__all__ = ["DEFAULT_SIZE_LIMIT", "Login", "RelayHandler"]

log = logging.getLogger("mailoauth.relay")

#: The advertised and enforced message size (RFC 1870), like the big providers' 35 MB.
DEFAULT_SIZE_LIMIT: Final = 35 * 1024 * 1024

_INVALID: Final = "535 5.7.8 Authentication credentials invalid"
_PROTOCOL: Final = "smtp"


@dataclass(frozen=True)
class Login:
    """A connection's local login: who, through which mailbox, sending as whom; and, in
    passthrough mode, its upstream side. ``problem``: the reply every MAIL gets (the
    login is fine, but its mode cannot work with the mailbox as it is now)."""

    user: RelayUser
    mailbox: Mailbox
    allowed: tuple[str, ...]
    passthrough: Passthrough | None = None
    problem: str | None = None

    @property
    def mode(self) -> str:
        return self.user.mode.value

    @functools.cached_property
    def allowed_lower(self) -> frozenset[str]:
        """``allowed`` as compared (case-insensitively), built once per login."""
        return frozenset(address.lower() for address in self.allowed)


def logged_in(session: Session | None) -> Login | None:
    login: Any = session.auth_data if session is not None else None
    return login if isinstance(login, Login) else None


def _peer(session: Session) -> str:
    peer: Any = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _addresses(message: EmailMessage, header: str) -> list[str]:
    values = [str(v) for v in message.get_all(header, [])]
    return [address for _, address in getaddresses(values) if address]


#: A From or Sender field with its continuation lines (RFC 5322 sections 2.2, 3.6.2).
_SENDER_FIELD: Final = re.compile(rb"(?im)^(?:from|sender)[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)")
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDRESS: Final = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
#: The everyday shapes of a From / Sender value: ``a@example.com``, ``Name <a@example.com>``
#: (a display name of atoms, or one quoted string without escapes).
_PLAIN_VALUE: Final = re.compile(
    rf'\s*(?:({_ADDRESS})|(?:{_ATEXT}(?:[ \t]+{_ATEXT})*|"[^"\\\r\n]*")?\s*<({_ADDRESS})>)\s*'
)


def sender_headers(headers: bytes) -> list[str]:
    """The addresses in the From and Sender fields of a header section: unfolded and read
    by :func:`email.utils.getaddresses` (the email package's header objects cost ~0.7 ms
    per message, here the fields are found by one regex), or, for a value in one of its
    everyday shapes, by one more regex (getaddresses costs ~0.1 ms)."""
    addresses = []
    for match in _SENDER_FIELD.finditer(headers):
        value = match[1].replace(b"\r\n", b"").decode("utf-8", "replace")
        plain = _PLAIN_VALUE.fullmatch(value)
        if plain is not None:
            addresses.append(plain[1] or plain[2])
        else:
            addresses += [address for _, address in getaddresses([value]) if address]
    return addresses


def _b64(text: str) -> bytes:
    try:
        return b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise RemoteProtocolError("the client's AUTH data is not valid base64") from exc


class RelayHandler:
    """aiosmtpd handler hooks (see the module docstring), shared by every connection."""

    def __init__(
        self,
        store: Store,
        limiter: FailureLimiter,
        nudge: Nudge | None = None,
        *,
        counters: RelayCounters | None = None,
        upstreams: Upstreams | None = None,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        data_timeout: float = DATA_TIMEOUT,
        logins: Logins | None = None,
    ) -> None:
        self.store = store
        self._limiter = limiter
        self._nudge = nudge
        self.counters = counters or RelayCounters()
        self.upstreams = upstreams
        self._size_limit = size_limit
        self._data_timeout = data_timeout
        self._queue = QueueMode(store, nudge)
        self.logins = logins or Logins(store)
        self._closing: set[asyncio.Task[None]] = set()  # passthrough sessions going back

    # --- AUTH (RFC 4954) -------------------------------------------------------------

    async def handle_AUTH(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> str | None:
        """The whole AUTH exchange; returns the final reply (None: already sent)."""
        address = _peer(session)
        wait = self._limiter.retry_after(address)
        if wait:
            self.counters.login(_PROTOCOL, "locked")
            return self._too_many(wait)
        mechanism = args[0].upper()
        initial = args[1] if len(args) > 1 else None
        try:
            if mechanism == "PLAIN":
                credentials = await self._plain(server, initial)
            elif mechanism == "LOGIN":
                credentials = await self._login(server, initial)
            else:
                return "504 5.5.4 Unrecognized authentication type"
        except RemoteProtocolError as exc:
            return f"501 5.5.2 {exc}"
        if credentials is None:
            return None  # the client cancelled or sent bad base64: aiosmtpd answered
        return await self._check(session, address, credentials)

    async def _plain(self, server: SMTP, initial: str | None) -> Credentials | None:
        if initial is None:
            data = await server.challenge_auth("")
            if data is MISSING:
                return None
        else:
            data = b"" if initial == "=" else _b64(initial)
        assert isinstance(data, bytes)
        return parse_plain(data)

    async def _login(self, server: SMTP, initial: str | None) -> Credentials | None:
        machine = LoginServer(None if initial is None else _b64(initial))
        step: Send | Credentials = machine.start()
        while isinstance(step, Send):
            answer = await server.challenge_auth(step.data)
            if answer is MISSING:
                return None
            assert isinstance(answer, bytes)
            step = machine.receive(answer)
        return step

    async def _check(self, session: Session, address: str, credentials: Credentials) -> str:
        name = credentials.authcid
        if credentials.authzid not in ("", name):
            log.warning("relay: %s asked to act as another user from %s", name, address)
            self.counters.login(_PROTOCOL, "refused")
            return _INVALID
        try:
            loaded = await self.logins.check(name, credentials.password, RelayProtocol.SMTP)
        except MailoauthError as exc:
            log.error("relay: cannot check the login of %s: %s", name, exc)
            return "454 4.7.0 Temporary authentication failure, try again later"
        if loaded is None:
            wait = self._limiter.failure(address)
            log.warning("relay: failed SMTP login as %r from %s", name, address)
            self.counters.login(_PROTOCOL, "locked" if wait else "refused")
            return self._too_many(wait) if wait else _INVALID
        user, mailbox = loaded
        self._limiter.success(address)
        login = Login(user, mailbox, user.allow_from or mailbox.addresses)
        if user.mode is RelayMode.PASSTHROUGH:
            login, refusal = await self._passthrough(login)
            if refusal is not None:
                self.counters.login(_PROTOCOL, "upstream")
                return refusal
        session.authenticated = True
        session.auth_data = login  # type: ignore[assignment]  # aiosmtpd types it None
        self.counters.login(_PROTOCOL, "ok")
        log.info(
            "relay: %s logged in from %s (mailbox %s, %s mode)",
            name,
            address,
            user.mailbox,
            user.mode.value,
        )
        return "235 2.7.0 Authentication successful"

    async def _passthrough(self, login: Login) -> tuple[Login, str | None]:
        """The login with its upstream side, or the reply refusing the login."""
        mailbox = login.mailbox
        outgoing = mailbox.outgoing
        if self.upstreams is None or outgoing is None or outgoing.transport is not Transport.SMTP:
            how = (
                "this relay has no token service"
                if self.upstreams is None
                else f"mailbox {mailbox.name} does not send over SMTP"
            )
            problem = (
                f"554 5.3.5 Passthrough is not possible: {how}; an administrator must run "
                f"`mailoauth relay-user set {login.user.name} --mode queue`"
            )
            return Login(login.user, mailbox, login.allowed, problem=problem), None
        passthrough = Passthrough(
            self.upstreams,
            mailbox,
            login.user.name,
            data_timeout=self._data_timeout,
            counters=self.counters,
        )
        refusal = await passthrough.open()
        return Login(login.user, mailbox, login.allowed, passthrough), refusal

    @staticmethod
    def _too_many(wait: int) -> str:
        return f"454 4.7.0 Too many failed logins from your address; try again in {wait} s"

    # --- MAIL, RCPT, RSET (RFC 5321) -------------------------------------------------

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        login = logged_in(session)
        if login is None:
            return "530 5.7.0 Authentication required: log in with your relay user first"
        refused = login.problem or self._refuse_senders(login, [address])
        if refused:
            self._count(login, "rejected")
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    def _refuse_senders(self, login: Login, senders: list[str]) -> str | None:
        for sender in senders:
            if sender.lower() not in login.allowed_lower:
                return (
                    f"553 5.7.1 <{sender}> is not a sender {login.user.name} may use; "
                    f"allowed: {', '.join(login.allowed) or 'none'}"
                )
        return None

    def check_headers(self, login: Login, headers: bytes) -> str | None:
        """The refusal for a header section whose From / Sender the login may not use."""
        return self._refuse_senders(login, sender_headers(headers))

    def policy(self, login: Login, ehlo: bytes, helo: bytes) -> Policy:
        """The rules a passthrough connection keeps after the hand-over."""
        return Policy(
            mailbox=login.mailbox.name,
            user=login.user.name,
            limit=self._size_limit,
            sender=lambda address: self._refuse_senders(login, [address]),
            headers=lambda headers: self.check_headers(login, headers),
            ehlo=ehlo,
            helo=helo,
        )

    def _count(self, login: Login, outcome: MessageOutcome) -> None:
        self.counters.message(login.mode, outcome)

    # --- DATA ------------------------------------------------------------------------

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """DATA in queue mode: enqueue, then ``250`` (see the module docstring)."""
        login = logged_in(session)
        if login is None or not envelope.mail_from:
            return "503 5.5.1 Log in and give MAIL FROM first"
        raw = envelope.original_content or b""
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        headers = _addresses(message, "From") + _addresses(message, "Sender")
        refused = self._refuse_senders(login, headers)
        if refused:
            self._count(login, "rejected")
            return refused
        reply, outcome = await self._queue.accept(
            login.user, message, envelope.mail_from, list(envelope.rcpt_tos)
        )
        self._count(login, outcome)
        return reply

    async def handle_exception(self, error: Exception) -> str:
        """Anything unexpected in a command: logged here, a neutral reply for the client
        (aiosmtpd's default would quote the exception)."""
        log.error("relay: unexpected error in an SMTP command", exc_info=error)
        return "451 4.3.0 Internal error, nothing was accepted; try again later"

    # --- connections ending ---------------------------------------------------------

    def release(self, session: Session) -> None:
        """The session ended (disconnect, or STARTTLS started a new one) without being
        handed over: its upstream session goes back to the pool."""
        login = logged_in(session)
        if login is None or login.passthrough is None:
            return
        session.auth_data = None
        task = asyncio.ensure_future(login.passthrough.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def wait(self) -> None:
        """Let the delivery runs and the session hand-backs finish (at shutdown)."""
        await self._queue.wait()
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
