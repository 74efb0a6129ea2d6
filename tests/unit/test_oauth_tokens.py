"""TokenService rules on a real SQLite store, with the grant requests replaced by a fake
token endpoint (the integration tests run the same paths against a real server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mailoauth.config import Settings
from mailoauth.errors import AuthorizationNeeded, ProviderRejected, ProviderUnavailable
from mailoauth.models import Grant, GrantStatus, Mailbox, OutgoingSettings, Provider
from mailoauth.oauth import tokens as tokens_module
from mailoauth.oauth.token import TokenSet
from mailoauth.oauth.tokens import RetryPolicy, TokenService
from mailoauth.providers import GrantType, ProviderKind
from mailoauth.secret import Secret
from mailoauth.store import open_store

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FakeEndpoint:
    """Stands in for the grant functions of ``oauth.flows``; counts and scripts answers."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[str] = []
        self.failures: list[Exception] = []
        self.rotate = True
        self.delay = 0.0
        self.seen_refresh_tokens: list[str] = []

    async def _answer(self, kind: str) -> TokenSet:
        self.calls.append(kind)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        n = len(self.calls)
        return TokenSet(
            access_token=Secret(f"access-{n}"),
            expires_at=self.clock() + timedelta(hours=1),
            refresh_token=Secret(f"refresh-{n}") if self.rotate else None,
            scopes=("mail",),
        )

    async def refresh(self, http, provider, refresh_token, scopes, *, now):
        self.seen_refresh_tokens.append(refresh_token.reveal())
        return await self._answer("refresh")

    async def client_credentials(self, http, provider, scopes, *, now):
        return await self._answer("client_credentials")

    async def password_grant(self, http, provider, mailbox, scopes, *, now):
        return await self._answer("password")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def endpoint(clock, monkeypatch) -> FakeEndpoint:
    fake = FakeEndpoint(clock)
    for name in ("refresh", "client_credentials", "password_grant"):
        monkeypatch.setattr(tokens_module.flows, name, getattr(fake, name))
    return fake


@pytest.fixture
def store(tmp_path: Path):
    store = open_store(Settings.load({}, data_dir=tmp_path))
    store.put_provider(
        Provider(
            name="idp",
            kind=ProviderKind.GENERIC,
            client_id="c",
            client_secret=Secret("s"),
            token_url="https://idp.example/token",
            authorization_url="https://idp.example/authorize",
        )
    )
    for name, grant in (
        ("mb", GrantType.AUTHORIZATION_CODE),
        ("app", GrantType.CLIENT_CREDENTIALS),
    ):
        store.put_mailbox(
            Mailbox(
                name=name,
                provider="idp",
                login=f"{name}@example.com",
                grant=grant,
                outgoing=OutgoingSettings(host="smtp.example.com"),
            )
        )
    yield store
    store.close()


def authorized(store, *, expires_in: timedelta, refresh: str = "refresh-0") -> None:
    store.put_grant(
        Grant(
            mailbox="mb",
            access_token=Secret("access-0"),
            refresh_token=Secret(refresh),
            expires_at=T0 + expires_in,
            scopes=("mail",),
            authorized_at=T0 - timedelta(days=1),
        )
    )


async def service(store, clock, **kw) -> tuple[TokenService, httpx.AsyncClient]:
    http = httpx.AsyncClient()
    return TokenService(store, http, clock=clock, sleep=kw.pop("sleep", _no_sleep), **kw), http


async def _no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


async def test_fresh_stored_token_is_served_without_a_request(store, clock, endpoint):
    authorized(store, expires_in=timedelta(hours=1))
    tokens, http = await service(store, clock)
    async with http:
        got = await tokens.get_access_token("mb")
    assert got.token.reveal() == "access-0"
    assert got.user == "mb@example.com"
    assert endpoint.calls == []


async def test_a_thousand_concurrent_callers_cause_one_refresh(store, clock, endpoint):
    authorized(store, expires_in=timedelta(seconds=-1))
    endpoint.delay = 0.05
    tokens, http = await service(store, clock)
    async with http:
        got = await asyncio.gather(*(tokens.get_access_token("mb") for _ in range(1000)))
    assert endpoint.calls == ["refresh"]
    assert {g.token.reveal() for g in got} == {"access-1"}


async def test_rotated_refresh_token_is_stored_before_the_token_is_handed_out(
    store, clock, endpoint
):
    authorized(store, expires_in=timedelta(seconds=-1))
    tokens, http = await service(store, clock)
    async with http:
        got = await tokens.get_access_token("mb")
    stored = store.get_grant("mb")
    assert got.token == stored.access_token
    assert stored.refresh_token.reveal() == "refresh-1"
    assert endpoint.seen_refresh_tokens == ["refresh-0"]


async def test_refresh_without_a_new_refresh_token_keeps_the_old_one(store, clock, endpoint):
    authorized(store, expires_in=timedelta(seconds=-1))
    endpoint.rotate = False
    tokens, http = await service(store, clock)
    async with http:
        await tokens.get_access_token("mb")
    assert store.get_grant("mb").refresh_token.reveal() == "refresh-0"


async def test_refresh_ahead_serves_the_old_token_and_refreshes_in_the_background(
    store, clock, endpoint
):
    authorized(store, expires_in=timedelta(minutes=2))  # inside the 5-minute margin
    tokens, http = await service(store, clock)
    async with http:
        first = await tokens.get_access_token("mb")
        assert first.token.reveal() == "access-0"  # no waiting
        for _ in range(50):
            await asyncio.sleep(0.01)
            if endpoint.calls:
                break
        await asyncio.sleep(0.05)
        second = await tokens.get_access_token("mb")
    assert endpoint.calls == ["refresh"]
    assert second.token.reveal() == "access-1"


async def test_invalid_grant_marks_the_mailbox_and_keeps_its_tokens(store, clock, endpoint):
    authorized(store, expires_in=timedelta(seconds=-1))
    endpoint.failures = [
        ProviderRejected("idp.example refused: invalid_grant", error="invalid_grant", status=400)
    ]
    tokens, http = await service(store, clock)
    async with http:
        with pytest.raises(AuthorizationNeeded) as info:
            await tokens.get_access_token("mb")
    assert "mailoauth authorize mb" in str(info.value)
    stored = store.get_grant("mb")
    assert stored.status is GrantStatus.NEEDS_AUTHORIZATION
    assert "invalid_grant" in stored.last_error
    assert stored.refresh_token.reveal() == "refresh-0"  # never deleted silently


async def test_a_mailbox_needing_authorization_does_not_hammer_the_provider(store, clock, endpoint):
    authorized(store, expires_in=timedelta(seconds=-1))
    endpoint.failures = [ProviderRejected("refused", error="invalid_grant", status=400)]
    tokens, http = await service(store, clock)
    async with http:
        for _ in range(3):
            with pytest.raises(AuthorizationNeeded):
                await tokens.get_access_token("mb")
    assert endpoint.calls == ["refresh"]


async def test_transient_failures_retry_with_backoff_and_honour_retry_after(store, clock, endpoint):
    authorized(store, expires_in=timedelta(seconds=-1))
    endpoint.failures = [
        ProviderUnavailable("idp.example answered 503", status=503),
        ProviderUnavailable("idp.example answered 429", status=429, retry_after=7),
    ]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    tokens, http = await service(store, clock, sleep=sleep, retry=RetryPolicy(base_delay=1))
    async with http:
        got = await tokens.get_access_token("mb")
    assert got.token.reveal() == "access-3"
    assert endpoint.calls == ["refresh"] * 3
    assert 0 <= slept[0] <= 2  # full jitter under 1 s * 2**1
    assert slept[1] == 7


async def test_transient_failure_with_a_valid_token_keeps_serving_it(store, clock, endpoint):
    authorized(store, expires_in=timedelta(minutes=2))
    endpoint.failures = [ProviderUnavailable("down", status=503)] * 10
    tokens, http = await service(store, clock, retry=RetryPolicy(attempts=2))
    async with http:
        for _ in range(3):
            assert (await tokens.get_access_token("mb")).token.reveal() == "access-0"
            await asyncio.sleep(0.02)
    stored = store.get_grant("mb")
    assert stored.status is GrantStatus.CONNECTED
    assert stored.last_error == "down"
    # One background attempt (two tries), then callers wait before the next attempt.
    assert endpoint.calls == ["refresh", "refresh"]


async def test_never_authorized_says_how_to_authorize(store, clock, endpoint):
    tokens, http = await service(store, clock)
    async with http:
        with pytest.raises(AuthorizationNeeded, match="has not been authorized yet"):
            await tokens.get_access_token("mb")
    assert endpoint.calls == []


async def test_client_credentials_needs_no_prior_authorization(store, clock, endpoint):
    tokens, http = await service(store, clock)
    async with http:
        got = await tokens.get_access_token("app")
    assert endpoint.calls == ["client_credentials"]
    assert got.user == "app@example.com"
    assert store.get_grant("app").access_token == got.token


async def test_two_processes_share_one_refresh_through_the_store_lease(store, clock, endpoint):
    authorized(store, expires_in=timedelta(seconds=-1))
    endpoint.delay = 0.2
    a, http_a = await service(store, clock, owner="node-a")
    b, http_b = await service(store, clock, owner="node-b")
    async with http_a, http_b:
        got_a, got_b = await asyncio.gather(a.get_access_token("mb"), b.get_access_token("mb"))
    assert endpoint.calls == ["refresh"]
    assert got_a.token == got_b.token
