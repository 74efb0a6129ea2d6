"""``TokenService.get_access_token(mailbox)``: what every transport calls for a token.

Rules (DESIGN.md invariants 2 and 4):

* **Cached while fresh.** A token with more than ``margin`` left is served from memory,
  without touching the store or the network.
* **Refresh ahead.** Inside the margin the cached token is still served and one refresh
  starts in the background; a caller waits only when the token has already expired.
* **Single flight.** In a process, concurrent callers share one refresh task per mailbox;
  across processes and nodes a lease in the store (:mod:`mailoauth.store.leases`) lets one
  refresh while the others wait for its result in the store.
* **Persist before use.** A new token set, rotated refresh token included, is written to
  the store before anyone gets the access token; a refresh that returns no new refresh
  token keeps the old one.
* **Transient failures** (network, 5xx, 429) are retried with exponential backoff and full
  jitter, honouring ``Retry-After``; the still-valid token keeps being served.
* **Permanent failures** set the grant to ``needs_authorization`` with the provider's words
  and a hint (:mod:`.hints`); the stored tokens are kept, never deleted silently.

The store is synchronous; every call to it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx

from mailoauth.errors import AuthorizationNeeded, ProviderRejected, ProviderUnavailable
from mailoauth.models import Grant, GrantStatus, Mailbox, Provider, mailbox_scopes
from mailoauth.oauth import flows
from mailoauth.oauth.hints import hint_for
from mailoauth.oauth.token import TokenSet
from mailoauth.providers import GrantType
from mailoauth.secret import Secret
from mailoauth.store import Store

__all__ = ["AccessToken", "RetryPolicy", "TokenService", "grant_from_token_set"]

Clock = Callable[[], datetime]

#: After a failed refresh-ahead, callers keep the still-valid token this long before the
#: next background attempt, so a provider outage is not hammered by every caller.
RETRY_AHEAD_AFTER_FAILURE = timedelta(seconds=30)
Sleep = Callable[[float], Awaitable[None]]

_INTERACTIVE = (GrantType.AUTHORIZATION_CODE, GrantType.DEVICE_CODE)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AccessToken:
    """A usable access token and the user name to present it with (XOAUTH2 ``user=``)."""

    mailbox: str
    user: str
    token: Secret
    expires_at: datetime


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


def grant_from_token_set(
    mailbox: str, tokens: TokenSet, now: datetime, previous: Grant | None = None
) -> Grant:
    """The grant to store after a successful token request."""
    return Grant(
        mailbox=mailbox,
        status=GrantStatus.CONNECTED,
        access_token=tokens.access_token,
        expires_at=tokens.expires_at,
        refresh_token=tokens.refresh_token or (previous.refresh_token if previous else None),
        token_type=tokens.token_type,
        scopes=tokens.scopes,
        authorized_as=tokens.subject or (previous.authorized_as if previous else None),
        authorized_at=previous.authorized_at if previous and previous.authorized_at else now,
        refreshed_at=now,
    )


class TokenService:
    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        *,
        clock: Clock = _utcnow,
        margin: timedelta = timedelta(minutes=5),
        lease_ttl: timedelta = timedelta(seconds=60),
        retry: RetryPolicy = RetryPolicy(),
        sleep: Sleep = asyncio.sleep,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._http = http
        self._clock = clock
        self._margin = margin
        self._lease_ttl = lease_ttl
        self._retry = retry
        self._sleep = sleep
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._cache: dict[str, AccessToken] = {}
        self._inflight: dict[str, asyncio.Task[AccessToken]] = {}
        self._next_attempt: dict[str, datetime] = {}

    # --- the public call ----------------------------------------------------------

    async def get_access_token(self, mailbox: str) -> AccessToken:
        now = self._clock()
        cached = self._cache.get(mailbox) or await self._from_store(mailbox, now)
        if cached is not None and cached.expires_at - now > self._margin:
            return cached
        if cached is not None and cached.expires_at > now:
            # Refresh ahead in the background; after a failed attempt, wait a little.
            if now >= self._next_attempt.get(mailbox, now):
                self._refresh_task(mailbox)
            return cached
        return await asyncio.shield(self._refresh_task(mailbox))

    async def refresh(self, mailbox: str) -> AccessToken:
        """Refresh now, whatever the cache holds (the scheduler's refresh-ahead)."""
        self._cache.pop(mailbox, None)
        return await asyncio.shield(self._refresh_task(mailbox, force=True))

    async def _from_store(self, name: str, now: datetime) -> AccessToken | None:
        """An unexpired token another process (or an earlier run) stored, if any."""
        grant = await asyncio.to_thread(self._store.get_grant, name)
        if (
            grant is None
            or grant.status is not GrantStatus.CONNECTED
            or grant.access_token is None
            or grant.expires_at is None
            or grant.expires_at <= now
        ):
            return None
        mailbox = await asyncio.to_thread(self._store.get_mailbox, name)
        token = self._cache[name] = self._token(mailbox, grant)
        return token

    async def drain(self) -> list[BaseException]:
        """Wait for every refresh in flight; return the errors they ended with.

        Short-lived callers (the CLI) call this before their event loop ends: a refresh
        cancelled between the provider's answer and the store write would lose a rotated
        refresh token.
        """
        errors: list[BaseException] = []
        while self._inflight:
            done = await asyncio.gather(*self._inflight.values(), return_exceptions=True)
            errors += [e for e in done if isinstance(e, BaseException)]
        return errors

    def forget(self, mailbox: str) -> None:
        """Drop the cached token (after revocation or re-authorization)."""
        self._cache.pop(mailbox, None)

    # --- single flight --------------------------------------------------------------

    def _refresh_task(self, mailbox: str, *, force: bool = False) -> asyncio.Task[AccessToken]:
        task = self._inflight.get(mailbox)
        if task is None:
            task = asyncio.create_task(self._refresh(mailbox, force=force))
            self._inflight[mailbox] = task
            task.add_done_callback(lambda done: self._finished(mailbox, done))
        return task

    def _finished(self, mailbox: str, task: asyncio.Task[AccessToken]) -> None:
        self._inflight.pop(mailbox, None)
        if task.cancelled():
            return
        if task.exception() is None:  # also marks a background failure as seen
            self._cache[mailbox] = task.result()
            self._next_attempt.pop(mailbox, None)
        else:
            self._next_attempt[mailbox] = self._clock() + RETRY_AHEAD_AFTER_FAILURE

    async def _refresh(self, name: str, *, force: bool) -> AccessToken:
        store = self._store
        mailbox = await asyncio.to_thread(store.get_mailbox, name)
        provider = await asyncio.to_thread(store.get_provider, mailbox.provider)
        grant = await asyncio.to_thread(store.get_grant, name)
        if not force and self._usable(grant):
            return self._token(mailbox, grant)
        await self._claim(name)
        released = False
        try:
            # Another process may have refreshed while we waited for the lease.
            grant = await asyncio.to_thread(store.get_grant, name)
            if not force and self._usable(grant):
                return self._token(mailbox, grant)
            tokens = await self._renew(mailbox, provider, grant)
            new = grant_from_token_set(mailbox.name, tokens, self._clock(), grant)
            # Persisted (and the lease returned) before anyone gets the access token.
            await asyncio.to_thread(store.put_grant, new, release_lease=self._owner)
            released = True
            return self._token(mailbox, new)
        finally:
            if not released:
                await asyncio.to_thread(store.release_refresh, name, self._owner)

    async def _claim(self, name: str) -> None:
        """Wait for the cross-process lease; return early if someone else did the work."""
        deadline = self._clock() + 2 * self._lease_ttl
        while not await asyncio.to_thread(
            self._store.claim_refresh, name, self._owner, now=self._clock(), ttl=self._lease_ttl
        ):
            if self._clock() > deadline:
                raise ProviderUnavailable(
                    f"mailbox {name!r}: another process holds the refresh lease for too long; "
                    "try again"
                )
            await self._sleep(0.1)

    def _usable(self, grant: Grant | None) -> bool:
        return (
            grant is not None
            and grant.status is GrantStatus.CONNECTED
            and grant.access_token is not None
            and grant.expires_at is not None
            and grant.expires_at - self._clock() > self._margin
        )

    def _token(self, mailbox: Mailbox, grant: Grant | None) -> AccessToken:
        assert grant is not None
        assert grant.access_token is not None
        assert grant.expires_at is not None
        return AccessToken(mailbox.name, mailbox.login, grant.access_token, grant.expires_at)

    # --- talking to the provider ----------------------------------------------------

    async def _renew(self, mailbox: Mailbox, provider: Provider, grant: Grant | None) -> TokenSet:
        """A new token set, or the failure recorded on the grant and raised."""
        try:
            return await self._with_retries(mailbox, provider, grant)
        except ProviderRejected as err:
            await self._record(mailbox, grant, err, GrantStatus.NEEDS_AUTHORIZATION)
            hint = hint_for(err.error, provider, mailbox, self._clock().date())
            raise AuthorizationNeeded(mailbox.name, str(err), hint) from err
        except ProviderUnavailable as err:
            expired = grant is None or grant.expires_at is None or grant.expires_at <= self._clock()
            status = GrantStatus.ERROR if expired else GrantStatus.CONNECTED
            await self._record(mailbox, grant, err, status)
            raise

    async def _record(
        self, mailbox: Mailbox, grant: Grant | None, err: Exception, status: GrantStatus
    ) -> None:
        if grant is None:
            if mailbox.grant in _INTERACTIVE:
                return  # nothing to mark: it was never authorized
            grant = Grant(mailbox=mailbox.name, status=status)
        updated = replace(grant, status=status, last_error=str(err), last_error_at=self._clock())
        await asyncio.to_thread(self._store.put_grant, updated)

    async def _with_retries(
        self, mailbox: Mailbox, provider: Provider, grant: Grant | None
    ) -> TokenSet:
        attempt = 0
        while True:
            try:
                return await self._request(mailbox, provider, grant)
            except ProviderUnavailable as err:
                attempt += 1
                if attempt >= self._retry.attempts:
                    raise
                await self._sleep(self._retry.delay(attempt, err.retry_after))

    async def _request(self, mailbox: Mailbox, provider: Provider, grant: Grant | None) -> TokenSet:
        scopes = mailbox_scopes(mailbox, provider)
        now = self._clock()
        kind = mailbox.grant
        if kind in _INTERACTIVE:
            if grant is None or grant.refresh_token is None:
                raise AuthorizationNeeded(
                    mailbox.name,
                    "it has not been authorized yet"
                    if grant is None
                    else "the provider gave no refresh token",
                    f"run `mailoauth authorize {mailbox.name}`",
                )
            if grant.status is GrantStatus.NEEDS_AUTHORIZATION:
                raise AuthorizationNeeded(
                    mailbox.name,
                    grant.last_error or "the provider refused the grant",
                    hint_for("invalid_grant", provider, mailbox, now.date()),
                )
            return await flows.refresh(self._http, provider, grant.refresh_token, scopes, now=now)
        if kind is GrantType.PASSWORD:
            if grant is not None and grant.refresh_token is not None:
                try:
                    return await flows.refresh(
                        self._http, provider, grant.refresh_token, scopes, now=now
                    )
                except ProviderRejected:
                    pass  # the password is still there: sign in again
            return await flows.password_grant(self._http, provider, mailbox, scopes, now=now)
        if kind is GrantType.CLIENT_CREDENTIALS:
            return await flows.client_credentials(self._http, provider, scopes, now=now)
        return await flows.jwt_bearer(self._http, provider, mailbox, scopes, now=now)
