"""The IMAP / POP3 relay's upstream login: a relay user's mailbox logged in at its mail
server with the mailbox's OAuth2 token, ready to be spliced to the client.

The mailbox's ``incoming`` settings say where: IMAP for the IMAP relay, POP3 for the POP3
relay (anything else is refused, saying what the mailbox uses). The connection and login
are the fetchers' own (:func:`mailoauth.mail.imap_session.open_session`,
:func:`mailoauth.mail.pop3.open_pop3`): implicit TLS or STARTTLS / STLS with a verified
certificate (``ca_file``), XOAUTH2 or OAUTHBEARER as the mailbox chooses, inside
:func:`mailoauth.mail.auth.with_token`, so a refused token is refreshed once and the
grant's state recorded. The whole login is bounded by ``timeout``.

Every failure becomes :class:`UpstreamFailure`, whose text is said to the client (it
holds no secret: errors never do): ``temporary`` when a retry may succeed (server
unreachable, "try again later"), else the admin has to act (a refused grant, a mailbox
set up for another protocol). The login's transcript is kept when the mailbox's debug
switch is on; the spliced bytes are not recorded. (The SMTP relay's passthrough
upstream is :mod:`.smtp_upstream`.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mailoauth.errors import (
    AuthorizationNeeded,
    MailError,
    MailoauthError,
    NotFoundError,
    OAuthError,
    RemoteProtocolError,
    TokenRefused,
)
from mailoauth.mail.auth import recording, with_token
from mailoauth.mail.imap_session import open_session
from mailoauth.mail.pop3 import open_pop3
from mailoauth.mail.stream import MailStream
from mailoauth.models import Mailbox
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.providers import Transport
from mailoauth.relay.users import RelayProtocol
from mailoauth.store import RelayUser, Store

__all__ = ["Upstream", "UpstreamFailure", "open_upstream"]

_TRANSPORT = {RelayProtocol.IMAP: Transport.IMAP, RelayProtocol.POP3: Transport.POP3}
_OTHER = {RelayProtocol.IMAP: RelayProtocol.POP3, RelayProtocol.POP3: RelayProtocol.IMAP}


@dataclass
class Upstream:
    """A logged-in connection to the mail server; ``capabilities``: IMAP's after login
    (empty for POP3)."""

    stream: MailStream
    capabilities: frozenset[str]
    mailbox: str


class UpstreamFailure(Exception):  # noqa: N818 - reads as what happened
    """The mail server side of a relay login failed; ``str()`` is for the client."""

    def __init__(self, text: str, *, temporary: bool) -> None:
        self.temporary = temporary
        super().__init__(text)


def _other_protocol(mailbox: Mailbox, protocol: RelayProtocol) -> UpstreamFailure:
    incoming = mailbox.incoming
    if incoming is None:
        uses = "has no incoming settings"
    else:
        uses = f"fetches mail over {incoming.transport.value}"
    other = _OTHER[protocol]
    if incoming is not None and incoming.transport is _TRANSPORT[other]:
        hint = f"use the {other.value.upper()} relay"
    else:
        hint = f"an admin must give it {protocol.value} incoming settings"
    return UpstreamFailure(
        f"mailbox {mailbox.name} {uses}, not {protocol.value.upper()}; {hint}", temporary=False
    )


async def _login(
    protocol: RelayProtocol,
    mailbox: Mailbox,
    store: Store,
    tokens: TokenService,
    ca_file: str | None,
    timeout: float,
) -> Upstream:
    incoming = mailbox.incoming
    assert incoming is not None
    mechanism = mailbox.sasl_mechanism.value
    async with recording(store, mailbox, protocol.value) as transcript:

        async def attempt(access: AccessToken) -> Upstream:
            if protocol is RelayProtocol.IMAP:
                session = await open_session(
                    incoming,
                    access.user,
                    access.token,
                    mechanism=mechanism,
                    ca_file=ca_file,
                    timeout=timeout,
                    transcript=transcript,
                )
                if not session.parser.idle:  # cannot happen: the session reads by line
                    await session.stream.close()
                    raise RemoteProtocolError(f"{session.where} sent a partial response")
                return Upstream(session.stream, session.capabilities, mailbox.name)
            stream = await open_pop3(
                incoming,
                access.user,
                access.token,
                mechanism=mechanism,
                ca_file=ca_file,
                timeout=timeout,
                transcript=transcript,
            )
            return Upstream(stream, frozenset(), mailbox.name)

        return await with_token(store, tokens, mailbox.name, attempt, transcript)


async def open_upstream(
    store: Store,
    tokens: TokenService,
    user: RelayUser,
    protocol: RelayProtocol,
    *,
    ca_file: str | None,
    timeout: float,
) -> Upstream:
    """Log ``user``'s mailbox in at its mail server over ``protocol``; raises
    :class:`UpstreamFailure` (see the module docstring)."""
    name = user.mailbox
    try:
        mailbox = await asyncio.to_thread(store.get_mailbox, name)
    except NotFoundError:
        raise UpstreamFailure(f"mailbox {name} does not exist any more", temporary=False) from None
    except MailoauthError as exc:
        raise UpstreamFailure(f"cannot read mailbox {name}: {exc}", temporary=True) from None
    if mailbox.incoming is None or mailbox.incoming.transport is not _TRANSPORT[protocol]:
        raise _other_protocol(mailbox, protocol)
    try:
        async with asyncio.timeout(timeout):
            return await _login(protocol, mailbox, store, tokens, ca_file, timeout)
    except AuthorizationNeeded as exc:
        raise UpstreamFailure(str(exc), temporary=False) from None
    except TokenRefused as exc:
        if exc.temporary:
            raise UpstreamFailure(
                f"the mail server cannot check mailbox {name}'s token now: {exc}", temporary=True
            ) from None
        raise UpstreamFailure(
            f"the mail server refused mailbox {name}'s token: {exc}; "
            f"an admin must run mailoauth authorize {name}",
            temporary=False,
        ) from None
    except TimeoutError:
        raise UpstreamFailure(
            f"the mail server of mailbox {name} did not let mailoauth log in within "
            f"{timeout:g} s; try again later",
            temporary=True,
        ) from None
    except (MailError, RemoteProtocolError, OAuthError) as exc:
        raise UpstreamFailure(
            f"cannot log in to the mail server of mailbox {name}: {exc}", temporary=True
        ) from None
    except MailoauthError as exc:
        raise UpstreamFailure(f"mailbox {name}: {exc}", temporary=True) from None
