"""The SMTP relay listener (QUEUE mode): password-only applications submit mail locally,
mailoauth stores it in the durable outbound queue and delivers it upstream with OAuth2.

Built on aiosmtpd (RFC 5321 server; AUTH per RFC 4954, SIZE per RFC 1870). One
:class:`RelayHandler` serves every connection:

* ``AUTH PLAIN`` (RFC 4616, :func:`~mailoauth.sasl.plain.parse_plain`) and ``AUTH LOGIN``
  (:class:`~mailoauth.sasl.login.LoginServer`), checked against the relay users
  (:mod:`.users`); wrong passwords are counted per source address (:mod:`.limits`) and a
  locked-out address is answered ``454 4.7.0 ... try again in N s``.
* TLS (``MAILOAUTH_RELAY_TLS_CERT``, :mod:`.tls`): STARTTLS offered (RFC 3207), or TLS from
  the first byte (implicit, RFC 8314). AUTH in the clear is allowed on a loopback listener
  only; elsewhere it is answered ``538 5.7.11 Encryption required`` (RFC 4954 section 6)
  until STARTTLS. Without a certificate ``config.parse_relay`` allows loopback only.
* ``MAIL FROM`` needs a login, and must be one of the login's allowed From addresses
  (``553 5.7.1``, naming them); so must the message's ``From``/``Sender``.
* The advertised ``SIZE`` is enforced by aiosmtpd (``552`` at MAIL and during DATA).
* DATA → :func:`~mailoauth.queue.enqueue` in a worker thread; ``250 2.0.0 queued as <id>``
  only after it returned, i.e. after the commit (DESIGN.md invariant 1). A store failure
  answers ``451 4.3.0`` and nothing is claimed; a message that could never be sent
  (e.g. the mailbox has no outgoing transport) ``554 5.3.0``.

Nothing secret is logged: the log names the login and the client's address, never a
password (aiosmtpd does not log AUTH responses unless asked to).
"""

from __future__ import annotations

import asyncio
import binascii
import email.policy
import logging
import socket
from base64 import b64decode
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any, Final

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from mailoauth.config import RelayTls
from mailoauth.errors import (
    ConfigError,
    MailoauthError,
    NotFoundError,
    RemoteProtocolError,
    StoreError,
)
from mailoauth.queue import enqueue
from mailoauth.relay.limits import FailureLimiter
from mailoauth.relay.tls import server_context
from mailoauth.relay.users import RelayProtocol, allowed_senders, authenticate
from mailoauth.sasl.events import Credentials, Send
from mailoauth.sasl.login import LoginServer
from mailoauth.sasl.plain import parse_plain
from mailoauth.store import RelayUser, Store
from mailoauth.validate import is_loopback_host

__all__ = ["DEFAULT_SIZE_LIMIT", "RelayHandler", "SmtpRelay"]

log = logging.getLogger("mailoauth.relay")

#: The advertised and enforced message size (RFC 1870), like the big providers' 35 MB.
DEFAULT_SIZE_LIMIT: Final = 35 * 1024 * 1024

#: ``nudge(mailbox)``: start a delivery run for a mailbox that just got a message.
Nudge = Callable[[str], Awaitable[object]]

_INVALID: Final = "535 5.7.8 Authentication credentials invalid"


def _peer(session: Session) -> str:
    peer: Any = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _addresses(message: EmailMessage, header: str) -> list[str]:
    values = [str(v) for v in message.get_all(header, [])]
    return [address for _, address in getaddresses(values) if address]


class RelayHandler:
    """aiosmtpd handler hooks: authentication, sender policy, and queueing."""

    def __init__(self, store: Store, limiter: FailureLimiter, nudge: Nudge | None = None) -> None:
        self._store = store
        self._limiter = limiter
        self._nudge = nudge
        self._running: dict[str, asyncio.Future[None]] = {}  # mailbox → its delivery run
        self._again: set[str] = set()  # mailboxes that got mail while their run was going

    # --- AUTH (RFC 4954) -------------------------------------------------------------

    async def handle_AUTH(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> str | None:
        """The whole AUTH exchange; returns the final reply (None: already sent)."""
        address = _peer(session)
        wait = self._limiter.retry_after(address)
        if wait:
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
            return _INVALID
        try:
            user = await asyncio.to_thread(
                authenticate, self._store, name, credentials.password, RelayProtocol.SMTP
            )
        except MailoauthError as exc:
            log.error("relay: cannot check the login of %s: %s", name, exc)
            return "454 4.7.0 Temporary authentication failure, try again later"
        if user is None:
            wait = self._limiter.failure(address)
            log.warning("relay: failed SMTP login as %r from %s", name, address)
            return self._too_many(wait) if wait else _INVALID
        self._limiter.success(address)
        session.authenticated = True
        session.auth_data = user  # type: ignore[assignment]  # aiosmtpd types it None
        log.info("relay: %s logged in from %s (mailbox %s)", name, address, user.mailbox)
        return "235 2.7.0 Authentication successful"

    @staticmethod
    def _too_many(wait: int) -> str:
        return f"454 4.7.0 Too many failed logins from your address; try again in {wait} s"

    # --- MAIL, DATA (RFC 5321) -------------------------------------------------------

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        user = session.auth_data
        if not isinstance(user, RelayUser):
            return "530 5.7.0 Authentication required: log in with your relay user first"
        refused = await self._refuse_senders(user, [address])
        if refused:
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def _refuse_senders(self, user: RelayUser, senders: list[str]) -> str | None:
        try:
            allowed = await asyncio.to_thread(allowed_senders, self._store, user)
        except MailoauthError as exc:
            log.error("relay: cannot read %s's allowed senders: %s", user.name, exc)
            return "451 4.3.0 Temporary server error, try again later"
        own = {a.lower() for a in allowed}
        for sender in senders:
            if sender.lower() not in own:
                return (
                    f"553 5.7.1 <{sender}> is not a sender {user.name} may use; "
                    f"allowed: {', '.join(allowed) or 'none'}"
                )
        return None

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        user = session.auth_data
        if not isinstance(user, RelayUser) or not envelope.mail_from:
            return "503 5.5.1 Log in and give MAIL FROM first"
        raw = envelope.original_content or b""
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        headers = _addresses(message, "From") + _addresses(message, "Sender")
        refused = await self._refuse_senders(user, headers)
        if refused:
            return refused
        sender, recipients = envelope.mail_from, list(envelope.rcpt_tos)
        try:
            entry = await asyncio.to_thread(
                enqueue, self._store, user.mailbox, message, envelope=(sender, recipients)
            )
        except (StoreError, NotFoundError) as exc:
            log.error("relay: could not store a message from %s: %s", user.name, exc)
            return "451 4.3.0 Could not store the message, nothing was accepted; try again later"
        except MailoauthError as exc:
            log.warning("relay: refused a message from %s: %s", user.name, exc)
            return f"554 5.3.0 {exc}"
        except Exception:
            log.exception("relay: could not store a message from %s", user.name)
            return "451 4.3.0 Could not store the message, nothing was accepted; try again later"
        log.info(
            "relay: queued %s from %s for mailbox %s (%d recipients)",
            entry.id,
            user.name,
            user.mailbox,
            len(recipients),
        )
        self._start_nudge(user.mailbox)
        return f"250 2.0.0 queued as {entry.id}"

    def _start_nudge(self, mailbox: str) -> None:
        """Start a delivery run for ``mailbox``; while one runs, ask for one more after it
        (a burst of messages costs two runs, not one per message)."""
        if self._nudge is None:
            return
        if mailbox in self._running:
            self._again.add(mailbox)
            return
        self._running[mailbox] = asyncio.ensure_future(self._nudging(self._nudge, mailbox))

    async def _nudging(self, nudge: Nudge, mailbox: str) -> None:
        try:
            while True:
                self._again.discard(mailbox)
                try:
                    await nudge(mailbox)
                except Exception as exc:  # the scheduler's next run tries again
                    log.error("relay: delivery run for %s failed: %s", mailbox, exc)
                if mailbox not in self._again:
                    return
        finally:
            del self._running[mailbox]

    async def wait_nudges(self) -> None:
        """Let the delivery runs the relay started finish (at shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)


def _b64(text: str) -> bytes:
    try:
        return b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise RemoteProtocolError("the client's AUTH data is not valid base64") from exc


class SmtpRelay:
    """The listener: ``await start()`` binds ``host:port`` on the running loop,
    ``await stop()`` closes it (connections in progress are dropped: nothing they sent
    was acknowledged, so nothing is lost).

    ``tls``: serve STARTTLS or implicit TLS with that certificate (loaded, and checked, by
    ``start``). ``loopback``: whether the listener counts as loopback, i.e. may take AUTH
    in the clear; None (the default) derives it from ``host``. Passing False on 127.0.0.1
    lets a test see the policy of a network-facing listener.
    """

    def __init__(
        self,
        store: Store,
        host: str,
        port: int,
        *,
        nudge: Nudge | None = None,
        limiter: FailureLimiter | None = None,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        tls: RelayTls | None = None,
        loopback: bool | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.loopback = is_loopback_host(host) if loopback is None else loopback
        self.handler = RelayHandler(store, limiter or FailureLimiter(), nudge)
        self._size_limit = size_limit
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        hostname = socket.gethostname()
        context = None if self.tls is None else server_context(self.tls)
        implicit = self.tls is not None and self.tls.implicit
        starttls = None if implicit else context
        # Implicit TLS: aiosmtpd cannot tell, but every byte is encrypted. Otherwise AUTH
        # only after STARTTLS, unless on loopback (config.parse_relay allows no other
        # listener without TLS; one made directly here would refuse every AUTH with 538).
        require_tls = not implicit and not self.loopback

        def protocol() -> SMTP:
            return SMTP(
                self.handler,
                data_size_limit=self._size_limit,
                hostname=hostname,
                ident="mailoauth relay",
                tls_context=starttls,
                auth_require_tls=require_tls,
                loop=loop,
            )

        try:
            self._server = await loop.create_server(
                protocol, self.host, self.port, ssl=context if implicit else None
            )
        except OSError as exc:
            raise ConfigError(
                "MAILOAUTH_RELAY_SMTP",
                f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})",
                "free that port, or set MAILOAUTH_RELAY_SMTP to another HOST:PORT (or off)",
            ) from exc
        log.info(
            "relay: SMTP listening on %s:%d (queue mode, %s)",
            self.host,
            self.port,
            "no TLS" if self.tls is None else self.tls.mode,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.handler.wait_nudges()
        log.info("relay: SMTP stopped")
