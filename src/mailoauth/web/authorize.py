"""Interactive authorization through the service: the URL to send the admin's browser to
(:func:`begin`) and the completion at the redirect endpoint (:func:`complete`).

The console's **Authorize** button and ``POST /api/v1/mailboxes/{name}/authorize`` both
call :func:`begin`; ``/oauth/callback`` (``web/oauth.py``) calls :func:`complete`. The
request itself — one-time ``state``, PKCE S256 verifier, redirect URI, scopes — is built by
:func:`mailoauth.oauth.begin_authorization` exactly as ``mailoauth authorize`` builds it,
and kept in the store (:mod:`mailoauth.store.pending`) so that the answer may arrive at any
node sharing the store:

* the ``state`` is stored only as its SHA-256 and taken (deleted) by the first answer that
  names it: a replayed or forged callback finds nothing and changes nothing;
* a request started from the console is bound to that console session (the SHA-256 of the
  session cookie): an answer arriving in another browser is refused;
* requests expire after ten minutes (:data:`REQUEST_TTL`).

Only the authorization-code grant goes through a browser; the other grants are obtained
with :meth:`~mailoauth.oauth.tokens.TokenService.refresh` (device code: ``mailoauth
authorize`` shows the code).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx

from mailoauth import oauth
from mailoauth.errors import ConfigError, MailoauthError, ProviderRejected
from mailoauth.models import mailbox_scopes
from mailoauth.oauth.tokens import grant_from_token_set
from mailoauth.providers import GrantType
from mailoauth.store import Store, StoredPending

__all__ = ["REQUEST_TTL", "AuthorizationFailed", "Authorized", "begin", "complete", "digest"]

log = logging.getLogger("mailoauth.service")

REQUEST_TTL: Final = timedelta(minutes=10)


@dataclass(frozen=True)
class Authorized:
    """What a completed authorization says: which mailbox, as whom, with which scopes, and
    who started it ("admin alice", "api key deploy")."""

    mailbox: str
    who: str
    scopes: tuple[str, ...]
    initiator: str


class AuthorizationFailed(Exception):  # noqa: N818 - reads better than ...Error here
    """A known request that ended without a grant: ``reason`` in words (the provider's
    refusal, a declined consent, the wrong session, an expired request)."""

    def __init__(self, mailbox: str, initiator: str, reason: MailoauthError) -> None:
        super().__init__(str(reason))
        self.mailbox, self.initiator, self.reason = mailbox, initiator, reason


def digest(value: str) -> str:
    """SHA-256, hex: how a state and a session cookie are kept."""
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _begin(
    store: Store, base_url: str, name: str, session_id: str | None, initiator: str, now: datetime
) -> str:
    mailbox = store.get_mailbox(name)
    if mailbox.grant is not GrantType.AUTHORIZATION_CODE:
        raise ConfigError(
            "grant",
            f"mailbox {name!r} uses the {mailbox.grant.value} grant, which needs no browser",
            "obtain its token directly (the console's Authorize does; CLI: mailoauth authorize "
            f"{name})",
        )
    provider = store.get_provider(mailbox.provider)
    callback = f"{base_url.rstrip('/')}/oauth/callback"
    redirect_uri = provider.effective_redirect_uri(base_url)
    if redirect_uri != callback:
        raise ConfigError(
            "redirect_uri",
            f"provider {provider.name!r} sends the browser to {redirect_uri}, not to this "
            f"service's {callback}",
            f"register {callback} at the provider and clear the provider's redirect_uri, or "
            f"authorize from the CLI: mailoauth authorize {name}",
        )
    pending = oauth.begin_authorization(
        provider,
        mailbox,
        redirect_uri=redirect_uri,
        scopes=mailbox_scopes(mailbox, provider),
        now=now,
        ttl=REQUEST_TTL,
    )
    store.add_pending(
        StoredPending(
            state_hash=digest(pending.state),
            mailbox=name,
            code_verifier=pending.code_verifier,
            redirect_uri=redirect_uri,
            scopes=pending.scopes,
            session_hash=None if session_id is None else digest(session_id),
            initiator=initiator,
            created_at=now,
            expires_at=pending.expires_at,
        )
    )
    log.info("authorization of mailbox %s started by %s", name, initiator)
    return pending.url


async def begin(
    store: Store, base_url: str, mailbox: str, *, session_id: str | None, initiator: str
) -> str:
    """The provider's consent URL for ``mailbox``; the request is kept for :func:`complete`.

    ``session_id``: the console session cookie to bind the request to (None: an API
    client, whose user may finish in any browser). ``initiator`` names who started it
    ("admin alice", "api key deploy") for the log. Raises
    :class:`~mailoauth.errors.NotFoundError` for an unknown mailbox and
    :class:`~mailoauth.errors.ConfigError` when the mailbox cannot be authorized here."""
    return await asyncio.to_thread(_begin, store, base_url, mailbox, session_id, initiator, _now())


async def complete(
    store: Store,
    http: httpx.AsyncClient,
    callback_url: str,
    state: str,
    *,
    session_id: str | None,
    forget: Callable[[str], None] | None = None,
) -> Authorized:
    """Finish the authorization the provider answered at ``callback_url``: check the
    request is known, unused, unexpired and this session's; take the code (or the
    provider's refusal, in words); exchange it with the PKCE verifier; store the grant.

    Raises :class:`~mailoauth.errors.ProviderRejected` when the answer names no request in
    progress, and :class:`AuthorizationFailed` (with the mailbox) when a known request
    failed; both say what went wrong and what to do. ``forget(mailbox)`` drops a cached
    token of the old grant (the service's TokenService).
    """
    stored = await asyncio.to_thread(store.take_pending, digest(state))
    if stored is None:
        raise ProviderRejected(
            "this answer belongs to no authorization in progress: it was used already, "
            "expired long ago, or was not started here; start again with Authorize"
        )
    try:
        return await _finish(store, http, stored, callback_url, state, session_id, forget)
    except MailoauthError as exc:
        raise AuthorizationFailed(stored.mailbox, stored.initiator, exc) from exc


async def _finish(
    store: Store,
    http: httpx.AsyncClient,
    stored: StoredPending,
    callback_url: str,
    state: str,
    session_id: str | None,
    forget: Callable[[str], None] | None,
) -> Authorized:
    now = _now()
    if stored.session_hash is not None and (
        session_id is None or digest(session_id) != stored.session_hash
    ):
        log.warning(
            "authorization answer for mailbox %s arrived in another session", stored.mailbox
        )
        raise ProviderRejected(
            "this authorization was started in another browser session; sign in to the "
            "console in this browser and click Authorize again"
        )
    pending = oauth.PendingAuthorization(
        mailbox=stored.mailbox,
        url="",
        state=state,
        code_verifier=stored.code_verifier,
        redirect_uri=stored.redirect_uri,
        scopes=stored.scopes,
        expires_at=stored.expires_at,
    )
    code = oauth.parse_callback(pending, callback_url, now=now)
    mailbox = await asyncio.to_thread(store.get_mailbox, stored.mailbox)
    provider = await asyncio.to_thread(store.get_provider, mailbox.provider)
    tokens = await oauth.exchange_code(http, provider, pending, code, now=_now())
    await asyncio.to_thread(store.put_grant, grant_from_token_set(mailbox.name, tokens, _now()))
    if forget is not None:
        forget(mailbox.name)
    who = tokens.subject or mailbox.login
    log.info("mailbox %s authorized as %s (started by %s)", mailbox.name, who, stored.initiator)
    return Authorized(mailbox.name, who, tokens.scopes, stored.initiator)
