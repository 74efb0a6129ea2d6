"""Every grant and every client authentication method of ``mailoauth.oauth`` against the
test authorization server (``tests/peers/authserver``) over real HTTP on loopback.

The server checks what a real one checks: PKCE, one-time codes, refresh rotation, JWT
signatures / ``kid`` / ``x5t`` / ``aud`` / ``jti`` / lifetimes, device polling pace. Its
clock is the wall clock, so these tests pass ``datetime.now(UTC)`` as ``now``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from mailoauth.errors import ProviderRejected, ProviderUnavailable
from mailoauth.models import Mailbox, Provider
from mailoauth.oauth import (
    DEFAULT_LIFETIME,
    TokenSet,
    begin_authorization,
    client_credentials,
    exchange_code,
    jwt_bearer,
    parse_callback,
    password_grant,
    poll_device,
    refresh,
    revoke,
    start_device_authorization,
)
from mailoauth.providers import ClientAuthMethod, GrantType, ProviderKind
from mailoauth.secret import Secret
from tests.material import cert_pem, key_pem, rsa_key

pytestmark = pytest.mark.integration

USER = "user@example.com"
PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
SCOPES = ("mail", "offline_access")
METHODS = [m.value for m in ClientAuthMethod]


def now() -> datetime:
    return datetime.now(UTC)


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


def register(auth_server, method: str, client_id: str = "app") -> Provider:
    """A client registered at the server for ``method``, and our Provider for it."""
    extra: dict[str, object] = {}
    server_side: dict[str, object] = {}
    if method in ("client_secret_post", "client_secret_basic"):
        extra["client_secret"] = Secret("s3cret/with+odd=chars")
        server_side["secret"] = "s3cret/with+odd=chars"
    elif method == "private_key_jwt":
        key, cert = rsa_key(), cert_pem(rsa_key())  # one certificate: x5t names it
        extra.update(private_key=Secret(key_pem(key)), key_id="key-1", certificate=cert)
        server_side.update(certificate_pem=cert, key_id="key-1")
    auth_server.add_client(
        client_id, auth_method=method, redirect_uris=[REDIRECT], scopes=SCOPES, **server_side
    )
    auth_server.add_user(USER, PASSWORD)
    return Provider(
        name="test",
        kind=ProviderKind.GENERIC,
        client_id=client_id,
        client_auth=ClientAuthMethod(method),
        authorization_url=auth_server.authorize_url,
        token_url=auth_server.token_url,
        device_url=auth_server.device_url,
        revocation_url=auth_server.revocation_url,
        **extra,
    )


def mailbox(**kw) -> Mailbox:
    return Mailbox(name="mb", provider="test", login=USER, **kw)


def assert_usable(auth_server, tokens: TokenSet, user: str | None = USER) -> None:
    found = auth_server.introspect(tokens.access_token.reveal())
    assert found["active"] is True
    assert found["token_type"] == "Bearer"
    if user is not None:
        assert found["email"] == user
    assert tokens.expires_at > now()


async def authorize(http, auth_server, provider: Provider) -> TokenSet:
    pending = begin_authorization(
        provider, mailbox(), redirect_uri=REDIRECT, scopes=SCOPES, now=now()
    )
    answer = await http.get(pending.url, follow_redirects=False)
    assert answer.status_code in (302, 303), answer.text
    code = parse_callback(pending, answer.headers["Location"], now=now())
    return await exchange_code(http, provider, pending, code, now=now())


# --- authorization code + refresh + revocation, for every client auth method ----------


@pytest.mark.parametrize("method", METHODS)
async def test_authorization_code_refresh_and_revoke(http, auth_server, method):
    provider = register(auth_server, method)
    tokens = await authorize(http, auth_server, provider)
    assert_usable(auth_server, tokens)
    assert tokens.refresh_token is not None
    assert set(tokens.scopes) == set(SCOPES)
    sent = auth_server.last_authorize_params()
    assert sent["code_challenge_method"] == "S256"
    assert sent["login_hint"] == USER
    assert auth_server.token_auth_methods() == [method]

    renewed = await refresh(http, provider, tokens.refresh_token, SCOPES, now=now())
    assert_usable(auth_server, renewed)
    assert renewed.refresh_token is not None
    assert renewed.refresh_token != tokens.refresh_token  # rotated
    assert auth_server.token_requests("refresh_token") == 1

    assert await revoke(
        http, provider, renewed.refresh_token, token_type_hint="refresh_token", now=now()
    )
    with pytest.raises(ProviderRejected) as info:
        await refresh(http, provider, renewed.refresh_token, SCOPES, now=now())
    assert info.value.error == "invalid_grant"
    assert auth_server.introspect(renewed.access_token.reveal())["active"] is False


async def test_refresh_without_rotation_gives_no_new_refresh_token(http, auth_server):
    provider = register(auth_server, "client_secret_post")
    tokens = await authorize(http, auth_server, provider)
    auth_server.configure(rotate_refresh_tokens=False)
    assert tokens.refresh_token is not None
    renewed = await refresh(http, provider, tokens.refresh_token, SCOPES, now=now())
    assert renewed.refresh_token is None
    assert_usable(auth_server, renewed)


async def test_a_code_cannot_be_used_twice(http, auth_server):
    provider = register(auth_server, "none")
    pending = begin_authorization(
        provider, mailbox(), redirect_uri=REDIRECT, scopes=SCOPES, now=now()
    )
    answer = await http.get(pending.url, follow_redirects=False)
    code = parse_callback(pending, answer.headers["Location"], now=now())
    await exchange_code(http, provider, pending, code, now=now())
    with pytest.raises(ProviderRejected) as info:
        await exchange_code(http, provider, pending, code, now=now())
    assert info.value.error == "invalid_grant"


async def test_an_expired_code_is_refused(http, auth_server):
    provider = register(auth_server, "client_secret_post")
    auth_server.configure(code_lifetime=1)
    pending = begin_authorization(
        provider, mailbox(), redirect_uri=REDIRECT, scopes=SCOPES, now=now()
    )
    answer = await http.get(pending.url, follow_redirects=False)
    code = parse_callback(pending, answer.headers["Location"], now=now())
    await asyncio.sleep(1.2)
    with pytest.raises(ProviderRejected) as info:
        await exchange_code(http, provider, pending, code, now=now())
    assert info.value.error == "invalid_grant"


async def test_consent_denied_at_the_server(http, auth_server):
    provider = register(auth_server, "none")
    auth_server.configure(consent="deny")
    pending = begin_authorization(
        provider, mailbox(), redirect_uri=REDIRECT, scopes=SCOPES, now=now()
    )
    answer = await http.get(pending.url, follow_redirects=False)
    with pytest.raises(ProviderRejected) as info:
        parse_callback(pending, answer.headers["Location"], now=now())
    assert info.value.error == "access_denied"
    assert str(info.value).startswith("consent was declined at the provider")


# --- the other grants -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_password_grant(http, auth_server, method):
    provider = register(auth_server, method)
    box = mailbox(grant=GrantType.PASSWORD, password=Secret(PASSWORD))
    tokens = await password_grant(http, provider, box, SCOPES, now=now())
    assert_usable(auth_server, tokens)
    assert auth_server.token_auth_methods() == [method]


async def test_password_grant_with_a_wrong_password(http, auth_server):
    provider = register(auth_server, "client_secret_basic")
    box = mailbox(grant=GrantType.PASSWORD, password=Secret("wrong password"))
    with pytest.raises(ProviderRejected) as info:
        await password_grant(http, provider, box, SCOPES, now=now())
    assert "wrong password" not in str(info.value)


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic", "private_key_jwt"])
async def test_client_credentials(http, auth_server, method):
    provider = register(auth_server, method)
    tokens = await client_credentials(http, provider, ["mail"], now=now())
    assert_usable(auth_server, tokens, user=None)
    assert tokens.refresh_token is None
    assert auth_server.token_auth_methods() == [method]


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic", "private_key_jwt"])
async def test_a_wrong_client_credential_is_invalid_client(http, auth_server, method):
    provider = register(auth_server, method)
    if method == "private_key_jwt":
        other = rsa_key(2048, 1)
        auth_server.add_client("app", auth_method=method, public_key_pem=public_pem(other))
    else:
        auth_server.add_client("app", auth_method=method, secret="another secret")
    with pytest.raises(ProviderRejected) as info:
        await client_credentials(http, provider, ["mail"], now=now())
    assert info.value.error == "invalid_client"
    assert info.value.status == 401
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("method", ["none", "client_secret_post"])
async def test_jwt_bearer_service_account(http, auth_server, method):
    provider = register(auth_server, method)
    key = rsa_key()
    auth_server.add_service_account(
        "robot@proj.iam.gserviceaccount.com", public_key_pem=public_pem(key), key_id="sa-key-1"
    )
    box = mailbox(
        grant=GrantType.SERVICE_ACCOUNT,
        service_account_email="robot@proj.iam.gserviceaccount.com",
        service_account_key=Secret(key_pem(key)),
        service_account_key_id="sa-key-1",
    )
    tokens = await jwt_bearer(http, provider, box, ["mail"], now=now())
    assert_usable(auth_server, tokens)
    assert tokens.scopes == ("mail",)
    assert auth_server.token_requests("urn:ietf:params:oauth:grant-type:jwt-bearer") == 1


async def test_jwt_bearer_with_an_unknown_key_id_is_rejected(http, auth_server):
    provider = register(auth_server, "none")
    key = rsa_key()
    auth_server.add_service_account(
        "robot@proj.iam.gserviceaccount.com", public_key_pem=public_pem(key), key_id="sa-key-1"
    )
    box = mailbox(
        grant=GrantType.SERVICE_ACCOUNT,
        service_account_email="robot@proj.iam.gserviceaccount.com",
        service_account_key=Secret(key_pem(key)),
        service_account_key_id="another-key",
    )
    with pytest.raises(ProviderRejected) as info:
        await jwt_bearer(http, provider, box, ["mail"], now=now())
    assert info.value.error == "invalid_grant"


# --- device code --------------------------------------------------------------------------


class ApprovingSleep:
    """Really waits (the server measures the pace) and approves after the first poll."""

    def __init__(self, auth_server, user_code: str, *, deny: bool = False) -> None:
        self.auth_server = auth_server
        self.user_code = user_code
        self.deny = deny
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) == 2:
            if self.deny:
                self.auth_server.deny_device(self.user_code)
            else:
                self.auth_server.approve_device(self.user_code, USER)
        await asyncio.sleep(seconds)


@pytest.mark.parametrize("method", METHODS)
async def test_device_code(http, auth_server, method):
    provider = register(auth_server, method)
    auth_server.configure(device_interval=1)
    device = await start_device_authorization(http, provider, SCOPES, now=now())
    assert device.verification_uri.startswith(auth_server.url)
    assert device.interval == 1.0
    sleep = ApprovingSleep(auth_server, device.user_code)
    tokens = await poll_device(http, provider, device, now=now, sleep=sleep)
    assert_usable(auth_server, tokens)
    assert sleep.waits == [1.0, 1.0]  # pending once, then approved
    assert auth_server.token_requests("urn:ietf:params:oauth:grant-type:device_code") == 2


async def test_device_code_slow_down_from_the_server(http, auth_server):
    provider = register(auth_server, "none")
    auth_server.configure(device_interval=1, slow_down_increment=1)
    device = await start_device_authorization(http, provider, SCOPES, now=now())
    waits: list[float] = []

    async def too_fast(seconds: float) -> None:
        # The second poll comes at once, so the server answers slow_down and raises its
        # own interval to 2 s; waiting 2.5 s (not our 6) is then enough for it.
        waits.append(seconds)
        if len(waits) == 3:
            auth_server.approve_device(device.user_code, USER)
        await asyncio.sleep({1: seconds, 2: 0.0}.get(len(waits), 2.5))

    tokens = await poll_device(http, provider, device, now=now, sleep=too_fast)
    assert_usable(auth_server, tokens)
    assert waits == [1.0, 1.0, 6.0]  # slow_down: our interval grows by 5 s (RFC 8628 §3.5)


async def test_device_code_denied(http, auth_server):
    provider = register(auth_server, "none")
    auth_server.configure(device_interval=1)
    device = await start_device_authorization(http, provider, SCOPES, now=now())
    sleep = ApprovingSleep(auth_server, device.user_code, deny=True)
    with pytest.raises(ProviderRejected) as info:
        await poll_device(http, provider, device, now=now, sleep=sleep)
    assert info.value.error == "access_denied"
    assert "declined" in str(info.value)


# --- failures the server can be told to produce ----------------------------------------


async def test_server_error_is_unavailable(http, auth_server):
    provider = register(auth_server, "client_secret_post")
    auth_server.fail("status_500", count=1)
    with pytest.raises(ProviderUnavailable) as info:
        await client_credentials(http, provider, ["mail"], now=now())
    assert info.value.status == 500
    assert await client_credentials(http, provider, ["mail"], now=now())


async def test_rate_limited_carries_retry_after(http, auth_server):
    provider = register(auth_server, "client_secret_post")
    auth_server.fail("rate_limited", count=1, seconds=3)
    with pytest.raises(ProviderUnavailable) as info:
        await client_credentials(http, provider, ["mail"], now=now())
    assert info.value.status == 429
    assert info.value.retry_after == 3.0


async def test_malformed_answer_is_unavailable(http, auth_server):
    provider = register(auth_server, "client_secret_post")
    auth_server.fail("malformed", count=1)
    with pytest.raises(ProviderUnavailable, match="not JSON"):
        await client_credentials(http, provider, ["mail"], now=now())


async def test_missing_expires_in_means_the_default_lifetime(http, auth_server):
    provider = register(auth_server, "client_secret_post")
    auth_server.fail("no_expires_in", count=1)
    before = now()
    tokens = await client_credentials(http, provider, ["mail"], now=before)
    assert tokens.expires_at == before + DEFAULT_LIFETIME


async def test_a_slow_server_times_out(auth_server):
    provider = register(auth_server, "client_secret_post")
    auth_server.fail("slow", count=1, seconds=1.0)
    async with httpx.AsyncClient(timeout=0.2) as http:
        with pytest.raises(ProviderUnavailable, match="did not answer in time"):
            await client_credentials(http, provider, ["mail"], now=now())


async def test_a_stopped_server_cannot_be_reached(http, auth_server):
    provider = register(auth_server, "client_secret_post")
    auth_server.stop()
    with pytest.raises(ProviderUnavailable) as info:
        await client_credentials(http, provider, ["mail"], now=now())
    assert str(info.value).startswith(
        f"cannot reach the token endpoint 127.0.0.1:{auth_server.port}"
    )
