"""``check``: the whole chain of a mailbox, step by step, for ``mailoauth test``.

token → outgoing (connect → TLS → AUTH) → optional test message → incoming (login and the
folder list). Each step says what worked or, for the one that failed, which stage failed
(connect, tls, auth, …) and the error's own advice. Outgoing and incoming are checked
independently: a broken SMTP setup does not hide a working IMAP one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage

import httpx

from mailoauth.errors import MailConnectionError, MailoauthError, TokenRefused
from mailoauth.mail.auth import recording, with_token
from mailoauth.mail.gmail import check_gmail
from mailoauth.mail.graph import check_graph
from mailoauth.mail.imap import check_imap
from mailoauth.mail.pop3 import check_pop3
from mailoauth.mail.sending import api_url, app_only_user, send
from mailoauth.mail.smtp import check_login
from mailoauth.mail.transcript import Transcript
from mailoauth.models import Mailbox
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.providers import Transport
from mailoauth.store import Store

__all__ = ["CheckStep", "check"]


@dataclass(frozen=True)
class CheckStep:
    name: str  # "token", "smtp", "send", "imap", "pop3", "graph", "gmail_api"
    ok: bool
    detail: str


def _stage(exc: BaseException) -> str:
    if isinstance(exc, MailConnectionError):
        return "tls" if exc.tls else "connect"
    if isinstance(exc, TokenRefused):
        return "auth"
    return "failed"


async def _step(name: str, work: Callable[[], Awaitable[str]]) -> CheckStep:
    try:
        return CheckStep(name, True, await work())
    except MailoauthError as exc:
        return CheckStep(f"{name} {_stage(exc)}", False, str(exc))


def _folders(names: list[str]) -> str:
    shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    return f"logged in; {len(names)} folder(s): {shown}"


async def check(
    store: Store,
    tokens: TokenService,
    mailbox: Mailbox,
    *,
    http: httpx.AsyncClient,
    send_to: str | None = None,
    ca_file: str | None = None,
    timeout: float = 30,
    debug: bool = False,
) -> list[CheckStep]:
    name = mailbox.name

    async def token() -> str:
        access = await tokens.get_access_token(name)
        return f"valid until {access.expires_at:%Y-%m-%d %H:%M} UTC, for {access.user}"

    steps = [await _step("token", token)]
    if not steps[0].ok:
        return steps
    provider = await asyncio.to_thread(store.get_provider, mailbox.provider)
    mechanism = mailbox.sasl_mechanism.value
    outgoing, incoming = mailbox.outgoing, mailbox.incoming

    async def run(
        transport: Transport, login: Callable[[AccessToken, Transcript], Awaitable[str]]
    ) -> str:
        async with recording(store, mailbox, transport.value, debug=debug) as transcript:
            return await with_token(
                store, tokens, name, lambda access: login(access, transcript), transcript
            )

    if outgoing is not None and outgoing.transport is Transport.SMTP:

        async def smtp_login(access: AccessToken, transcript: Transcript) -> str:
            return await check_login(
                outgoing,
                access.user,
                access.token,
                mechanism=mechanism,
                ca_file=ca_file,
                timeout=timeout,
                transcript=transcript,
            )

        steps.append(await _step("smtp", lambda: run(Transport.SMTP, smtp_login)))
    if outgoing is not None and send_to is not None and steps[-1].ok:

        async def send_test() -> str:
            message = EmailMessage()
            message["To"] = send_to
            message["Subject"] = f"mailoauth test message from {name}"
            message.set_content(
                f"This message was sent by `mailoauth test {name} --send-to {send_to}`.\n"
            )
            sent = await send(
                store,
                tokens,
                name,
                message,
                http=http,
                ca_file=ca_file,
                timeout=timeout,
                debug=debug,
            )
            return f"sent {sent['Message-ID']} to {send_to} over {outgoing.transport.value}"

        steps.append(await _step("send", send_test))
    if incoming is not None:
        transport = incoming.transport

        async def incoming_login(access: AccessToken, transcript: Transcript) -> str:
            if transport is Transport.POP3:
                count = await check_pop3(
                    incoming,
                    access.user,
                    access.token,
                    mechanism=mechanism,
                    ca_file=ca_file,
                    timeout=timeout,
                    transcript=transcript,
                )
                return f"logged in; {count} message(s) waiting"
            if transport is Transport.IMAP:
                names = await check_imap(
                    incoming,
                    access.user,
                    access.token,
                    mechanism=mechanism,
                    ca_file=ca_file,
                    timeout=timeout,
                    transcript=transcript,
                )
                return _folders(names)
            base_url = api_url(mailbox, provider, "incoming")
            if transport is Transport.GRAPH:
                names = await check_graph(
                    http,
                    access.token,
                    base_url=base_url,
                    user=app_only_user(mailbox),
                    transcript=transcript,
                )
            else:
                names = await check_gmail(
                    http, access.token, base_url=base_url, transcript=transcript
                )
            return _folders(names)

        steps.append(await _step(transport.value, lambda: run(transport, incoming_login)))
    return steps
