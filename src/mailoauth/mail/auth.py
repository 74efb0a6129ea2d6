"""What every mail operation does around its transport call: get a token, refresh once
when the server refuses it, record the outcome on the grant, keep the transcript.

``with_token`` runs ``operation(access)`` with the token service's current token. A
refusal that is not temporary usually means the token went bad before its expiry
(revoked, rotated, the password changed): the token is refreshed once and the operation
tried once more. If the refresh itself is refused the token service has already set the
grant to ``needs_authorization``; if the server refuses even the fresh token, the grant is
marked ``error`` with the server's words (``mailoauth status`` shows them) and the error
is raised. A later success clears that mark.

``recording`` gives the operation a :class:`~.transcript.Transcript` (enabled when the
mailbox's ``debug`` switch is on or the caller asks) and appends what it recorded to the
mailbox's ring in the store, success or failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final, TypeVar

from mailoauth.errors import TokenRefused
from mailoauth.mail.transcript import Transcript
from mailoauth.models import GrantStatus, Mailbox
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.store import Store

__all__ = ["REFUSED_PREFIX", "recording", "with_token"]

T = TypeVar("T")

#: How a refusal recorded on the grant starts, so a later success knows it may clear it.
REFUSED_PREFIX: Final = "the mail server refused a fresh token: "


async def with_token(
    store: Store,
    tokens: TokenService,
    mailbox: str,
    operation: Callable[[AccessToken], Awaitable[T]],
    transcript: Transcript | None = None,
) -> T:
    for attempt in (1, 2):
        access = await (
            tokens.get_access_token(mailbox) if attempt == 1 else tokens.refresh(mailbox)
        )
        if transcript is not None:
            transcript.hide(access.token)
        try:
            result = await operation(access)
        except TokenRefused as exc:
            if exc.temporary:
                raise
            if attempt == 2:
                await asyncio.to_thread(_mark_refused, store, mailbox, str(exc))
                raise
            if transcript is not None:
                transcript.note("token refused: refreshing it once and trying again")
            continue
        await asyncio.to_thread(_clear_refused, store, mailbox)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def _mark_refused(store: Store, mailbox: str, message: str) -> None:
    grant = store.get_grant(mailbox)
    if grant is None:
        return
    store.put_grant(
        replace(
            grant,
            status=GrantStatus.ERROR,
            last_error=REFUSED_PREFIX + message,
            last_error_at=datetime.now(UTC),
        )
    )


def _clear_refused(store: Store, mailbox: str) -> None:
    grant = store.get_grant(mailbox)
    if grant is not None and (grant.last_error or "").startswith(REFUSED_PREFIX):
        store.put_grant(replace(grant, last_error=None, last_error_at=None))


@asynccontextmanager
async def recording(
    store: Store, mailbox: Mailbox, protocol: str, *, debug: bool = False
) -> AsyncIterator[Transcript]:
    transcript = Transcript(protocol, enabled=debug or mailbox.debug)
    try:
        yield transcript
    finally:
        if transcript.lines:
            await asyncio.to_thread(store.append_transcript, mailbox.name, transcript.lines)
