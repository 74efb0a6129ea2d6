"""The grants, byte by byte against a scripted token endpoint (httpx.MockTransport), and
parse_token_response as a total function over JSON (hypothesis)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import RSAKey

from mailoauth.errors import ConfigError, OAuthError, ProviderRejected, ProviderUnavailable
from mailoauth.models import Mailbox, Provider
from mailoauth.oauth import (
    DEFAULT_LIFETIME,
    DeviceAuthorization,
    PendingAuthorization,
    TokenSet,
    begin_authorization,
    client_credentials,
    exchange_code,
    jwt_bearer,
    parse_callback,
    parse_token_response,
    password_grant,
    poll_device,
    refresh,
    revoke,
    start_device_authorization,
)
from mailoauth.providers import ClientAuthMethod, GrantType, ProviderKind
from mailoauth.secret import Secret
from tests.material import key_pem, rsa_key

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TOKEN_URL = "https://idp.example/token"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPES = ("https://mail.example/imap", "offline_access")


class Endpoint:
    """A scripted provider: answers in order (the last one repeats), records requests."""

    def __init__(self, *answers: tuple[int, object] | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer):
            return answer(request)
        status, body = answer
        return httpx.Response(status, json=body)

    def form(self, i: int = -1) -> dict[str, str]:
        pairs = parse_qsl(self.requests[i].content.decode(), keep_blank_values=True)
        assert len(pairs) == len(dict(pairs)), "a form field was sent twice"
        return dict(pairs)


def ok(**extra: object) -> tuple[int, dict[str, object]]:
    return 200, {"access_token": "AT", "token_type": "Bearer", "expires_in": 3600, **extra}


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint(ok(refresh_token="RT2"))


@pytest.fixture
async def http(endpoint):
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        yield client


def generic(method=ClientAuthMethod.CLIENT_SECRET_POST, **kw) -> Provider:
    if method in (ClientAuthMethod.CLIENT_SECRET_POST, ClientAuthMethod.CLIENT_SECRET_BASIC):
        kw.setdefault("client_secret", Secret("cs"))
    return Provider(
        name="idp",
        kind=ProviderKind.GENERIC,
        client_id="app-1",
        client_auth=method,
        token_url=TOKEN_URL,
        authorization_url=kw.pop("authorization_url", "https://idp.example/authorize"),
        device_url="https://idp.example/device",
        revocation_url=kw.pop("revocation_url", "https://idp.example/revoke"),
        **kw,
    )


def google(**kw) -> Provider:
    kw.setdefault("client_secret", Secret("cs"))
    return Provider(name="g", kind=ProviderKind.GOOGLE, client_id="g-app", **kw)


def microsoft(**kw) -> Provider:
    return Provider(
        name="ms",
        kind=ProviderKind.MICROSOFT,
        tenant="contoso.onmicrosoft.com",
        client_id="ms-app",
        client_auth=ClientAuthMethod.NONE,
        **kw,
    )


def mailbox(**kw) -> Mailbox:
    return Mailbox(name="mb", provider="idp", login="user@example.com", **kw)


# --- parse_token_response ------------------------------------------------------------


def parse(data, scopes=SCOPES) -> TokenSet:
    return parse_token_response(data, now=T0, requested_scopes=scopes)


def test_full_response():
    tokens = parse(
        {
            "access_token": "AT",
            "token_type": "Bearer",
            "expires_in": 3599,
            "refresh_token": "RT",
            "scope": "a b",
        }
    )
    assert tokens == TokenSet(
        access_token=Secret("AT"),
        expires_at=T0 + timedelta(seconds=3599),
        token_type="Bearer",
        refresh_token=Secret("RT"),
        scopes=("a", "b"),
    )


def test_missing_expires_in_means_the_default_lifetime():
    assert parse({"access_token": "AT", "token_type": "Bearer"}).expires_at == T0 + DEFAULT_LIFETIME


def test_expires_in_as_a_string_is_accepted():
    tokens = parse({"access_token": "AT", "token_type": "Bearer", "expires_in": "120"})
    assert tokens.expires_at == T0 + timedelta(seconds=120)


@pytest.mark.parametrize("value", ["soon", -1, True, [], "nan", "inf"])
def test_unusable_expires_in_is_malformed(value):
    with pytest.raises(ProviderUnavailable, match="malformed"):
        parse({"access_token": "AT", "token_type": "Bearer", "expires_in": value})


def test_absurd_expires_in_is_capped():
    tokens = parse({"access_token": "AT", "token_type": "Bearer", "expires_in": 10**30})
    assert tokens.expires_at == T0 + timedelta(days=366)


@pytest.mark.parametrize("kind", ["bearer", "BEARER", "Bearer", None])
def test_token_type_is_case_insensitive(kind):
    data = {"access_token": "AT", "token_type": kind}
    assert parse({k: v for k, v in data.items() if v is not None}).token_type == "Bearer"


@pytest.mark.parametrize("kind", ["mac", "DPoP", "N_A"])
def test_a_token_that_is_not_bearer_is_rejected(kind):
    with pytest.raises(ProviderRejected, match="Bearer tokens only"):
        parse({"access_token": "AT", "token_type": kind})


@pytest.mark.parametrize("data", [{}, {"access_token": ""}, {"access_token": 5}, {"error": "x"}])
def test_missing_access_token_is_malformed(data):
    with pytest.raises(ProviderUnavailable, match="malformed token response"):
        parse({**data, "token_type": "Bearer"})


def test_scope_missing_means_the_requested_scopes():
    assert parse({"access_token": "AT", "token_type": "Bearer"}).scopes == SCOPES
    assert parse({"access_token": "AT", "scope": ""}).scopes == SCOPES


def test_scope_as_a_list_is_accepted():
    assert parse({"access_token": "AT", "scope": ["a", "b c"]}).scopes == ("a", "b", "c")


def test_no_refresh_token_gives_none():
    assert parse({"access_token": "AT", "token_type": "Bearer"}).refresh_token is None


def test_subject_comes_from_the_id_token_claims():
    payload = base64.urlsafe_b64encode(json.dumps({"email": "u@example.com"}).encode())
    id_token = f"eyJhbGciOiJub25lIn0.{payload.decode().rstrip('=')}.sig"
    assert parse({"access_token": "AT", "id_token": id_token}).subject == "u@example.com"
    assert parse({"access_token": "AT", "id_token": "not.a.jwt"}).subject is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    ["access_token", "token_type", "expires_in", "refresh_token", "scope", "id_token", "error"]
)
VALUES = JSON | st.sampled_from(["Bearer", "bearer", "3600", "a.b.c", "eyJ.eyJ.x", "1e308"])


LIKELY = st.fixed_dictionaries(
    {"access_token": st.text(min_size=1) | JSON},
    optional={
        "token_type": st.sampled_from(["Bearer", "bearer", "mac"]) | JSON,
        "expires_in": st.integers() | st.floats() | st.text(max_size=6) | JSON,
        "refresh_token": st.text() | JSON,
        "scope": st.text() | st.lists(st.text()) | JSON,
        "id_token": st.text() | JSON,
    },
)


@given(st.dictionaries(KEYS | st.text(max_size=8), VALUES, max_size=7) | LIKELY)
def test_parse_token_response_returns_a_token_set_or_raises_oauth_error(data):
    try:
        tokens = parse(data)
    except OAuthError:
        return
    assert isinstance(tokens, TokenSet)
    assert tokens.access_token.reveal() == data["access_token"]
    assert T0 <= tokens.expires_at <= T0 + timedelta(days=366)
    assert all(isinstance(scope, str) and scope for scope in tokens.scopes)


# --- refresh, password, client credentials --------------------------------------------


async def test_refresh_sends_the_token_scope_and_client_auth(http, endpoint):
    tokens = await refresh(http, generic(), Secret("RT1"), SCOPES, now=T0)
    assert endpoint.requests[0].url == TOKEN_URL
    assert endpoint.form() == {
        "grant_type": "refresh_token",
        "refresh_token": "RT1",
        "scope": " ".join(SCOPES),
        "client_id": "app-1",
        "client_secret": "cs",
    }
    assert tokens.access_token == Secret("AT")
    assert tokens.refresh_token == Secret("RT2")
    assert tokens.expires_at == T0 + timedelta(hours=1)
    assert tokens.scopes == SCOPES


@pytest.mark.parametrize("endpoint", [Endpoint(ok())])
async def test_refresh_without_a_new_refresh_token_gives_none(http, endpoint):
    tokens = await refresh(http, generic(), Secret("RT1"), SCOPES, now=T0)
    assert tokens.refresh_token is None


async def test_refresh_without_scopes_sends_no_scope(http, endpoint):
    await refresh(http, generic(), Secret("RT1"), (), now=T0)
    assert "scope" not in endpoint.form()


@pytest.mark.parametrize("endpoint", [Endpoint((400, {"error": "invalid_grant"}))])
async def test_refresh_rejected(http, endpoint):
    with pytest.raises(ProviderRejected) as info:
        await refresh(http, generic(), Secret("RT1"), SCOPES, now=T0)
    assert info.value.error == "invalid_grant"


async def test_password_grant_sends_username_and_password(http, endpoint):
    box = mailbox(grant=GrantType.PASSWORD, username="jdoe", password=Secret("pw"))
    await password_grant(http, generic(ClientAuthMethod.NONE), box, ["mail"], now=T0)
    assert endpoint.form() == {
        "grant_type": "password",
        "username": "jdoe",
        "password": "pw",
        "scope": "mail",
        "client_id": "app-1",
    }


async def test_password_grant_username_defaults_to_the_login(http, endpoint):
    box = mailbox(grant=GrantType.PASSWORD, password=Secret("pw"))
    await password_grant(http, generic(), box, ["mail"], now=T0)
    assert endpoint.form()["username"] == "user@example.com"


async def test_client_credentials_with_basic_auth(http, endpoint):
    provider = generic(ClientAuthMethod.CLIENT_SECRET_BASIC)
    await client_credentials(http, provider, ["https://x/.default"], now=T0)
    assert endpoint.form() == {"grant_type": "client_credentials", "scope": "https://x/.default"}
    auth = endpoint.requests[0].headers["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"app-1:cs").decode()


# --- jwt_bearer (service accounts) --------------------------------------------------------


def service_mailbox() -> Mailbox:
    return mailbox(
        grant=GrantType.SERVICE_ACCOUNT,
        service_account_email="sa@proj.iam.gserviceaccount.com",
        service_account_key=Secret(key_pem(rsa_key())),
        service_account_key_id="0123456789abcdef",
        subject="boss@example.com",
    )


def public_key() -> RSAKey:
    pem = (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return RSAKey.import_key(pem)


async def test_jwt_bearer_signs_the_google_assertion_and_sends_no_client_auth(http, endpoint):
    provider = google(client_auth=ClientAuthMethod.NONE, client_secret=None)
    scopes = ["https://mail.google.com/"]
    tokens = await jwt_bearer(http, provider, service_mailbox(), scopes, now=T0)
    assert endpoint.requests[0].url == GOOGLE_TOKEN_URL
    form = endpoint.form()
    assert set(form) == {"grant_type", "assertion"}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert "Authorization" not in endpoint.requests[0].headers
    token = jwt.decode(form["assertion"], public_key())
    assert token.header == {"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"}
    iat = int(T0.timestamp())
    claims = {k: v for k, v in token.claims.items() if k != "jti"}
    assert claims == {
        "iss": "sa@proj.iam.gserviceaccount.com",
        "sub": "boss@example.com",
        "aud": GOOGLE_TOKEN_URL,
        "scope": "https://mail.google.com/",
        "iat": iat,
        "exp": iat + 3600,
    }
    assert tokens.scopes == ("https://mail.google.com/",)


async def test_jwt_bearer_applies_configured_client_auth(http, endpoint):
    await jwt_bearer(http, google(), service_mailbox(), ["s"], now=T0)
    form = endpoint.form()
    assert form["client_id"] == "g-app"
    assert form["client_secret"] == "cs"
    assert "assertion" in form


# --- authorization code + PKCE ----------------------------------------------------------

REDIRECT = "http://127.0.0.1:8765/oauth/callback"


def begin(provider=None, **kw) -> PendingAuthorization:
    return begin_authorization(
        provider or generic(),
        mailbox(),
        redirect_uri=REDIRECT,
        scopes=kw.pop("scopes", SCOPES),
        now=T0,
        **kw,
    )


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_authorization_url_carries_every_parameter():
    pending = begin()
    parts = urlsplit(pending.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://idp.example/authorize"
    params = {k: v[0] for k, v in query(pending.url).items()}
    assert params == {
        "response_type": "code",
        "client_id": "app-1",
        "redirect_uri": REDIRECT,
        "scope": " ".join(SCOPES),
        "state": pending.state,
        "code_challenge": params["code_challenge"],
        "code_challenge_method": "S256",
        "login_hint": "user@example.com",
    }
    assert all(len(v) == 1 for v in query(pending.url).values())
    assert pending.mailbox == "mb"
    assert pending.redirect_uri == REDIRECT
    assert pending.scopes == SCOPES
    assert pending.expires_at == T0 + timedelta(minutes=10)


def test_pkce_challenge_is_base64url_sha256_of_the_verifier():
    pending = begin()
    verifier = pending.code_verifier.reveal()
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert query(pending.url)["code_challenge"] == [expected]
    assert verifier not in pending.url
    assert "Secret('••••••')" in repr(pending)


def test_state_has_at_least_128_bits_and_is_fresh_each_time():
    states = {begin().state for _ in range(20)}
    assert len(states) == 20
    for state in states:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", state)
        assert len(base64.urlsafe_b64decode(state + "=" * (-len(state) % 4))) >= 16
    assert len({begin().code_verifier.reveal() for _ in range(5)}) == 5


def test_google_asks_for_offline_access_and_consent():
    params = {k: v[0] for k, v in query(begin(google()).url).items()}
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["login_hint"] == "user@example.com"
    assert urlsplit(begin(google()).url).netloc == "accounts.google.com"


def test_microsoft_gets_no_google_parameters():
    params = query(begin(microsoft()).url)
    assert "access_type" not in params
    assert "prompt" not in params
    assert begin(microsoft()).url.startswith(
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?"
    )


def test_an_existing_query_on_the_authorization_url_is_kept():
    provider = generic(authorization_url="https://idp.example/authorize?tenant=acme&x=1")
    params = query(begin(provider).url)
    assert params["tenant"] == ["acme"]
    assert params["x"] == ["1"]
    assert params["response_type"] == ["code"]


def test_no_authorization_url_is_a_config_error():
    provider = generic(authorization_url=None)
    with pytest.raises(ConfigError) as info:
        begin(provider)
    assert info.value.field == "authorization_url"


def callback(pending: PendingAuthorization, **params: str) -> str:
    return httpx.URL(pending.redirect_uri, params=params).__str__()


def test_parse_callback_returns_the_code():
    pending = begin()
    url = callback(pending, code="C0DE", state=pending.state)
    assert parse_callback(pending, f"  {url}\n", now=T0 + timedelta(minutes=9)) == "C0DE"


def test_parse_callback_after_the_ttl_is_expired():
    pending = begin(ttl=timedelta(minutes=2))
    url = callback(pending, code="C", state=pending.state)
    with pytest.raises(ProviderRejected, match="expired"):
        parse_callback(pending, url, now=T0 + timedelta(minutes=2, seconds=1))


@pytest.mark.parametrize(
    "params",
    [{"code": "C", "state": "forged"}, {"code": "C"}, {"error": "access_denied", "state": "x"}],
    ids=["mismatch", "missing", "error-with-wrong-state"],
)
def test_parse_callback_state_must_match(params):
    pending = begin()
    with pytest.raises(ProviderRejected) as info:
        parse_callback(pending, callback(pending, **params), now=T0)
    assert str(info.value) == (
        "the answer does not belong to this authorization request (state mismatch); start again"
    )


def test_parse_callback_access_denied():
    pending = begin()
    url = callback(
        pending, error="access_denied", error_description="The user said no", state=pending.state
    )
    with pytest.raises(ProviderRejected) as info:
        parse_callback(pending, url, now=T0)
    assert info.value.error == "access_denied"
    assert str(info.value).startswith("consent was declined at the provider (The user said no)")


def test_parse_callback_other_error_with_its_description():
    pending = begin()
    url = callback(
        pending,
        error="invalid_scope",
        error_description="AADSTS70011: scope is not valid",
        state=pending.state,
    )
    with pytest.raises(ProviderRejected) as info:
        parse_callback(pending, url, now=T0)
    assert info.value.error == "invalid_scope"
    assert info.value.description == "AADSTS70011: scope is not valid"
    assert "invalid_scope (AADSTS70011: scope is not valid)" in str(info.value)


def test_parse_callback_without_code():
    pending = begin()
    with pytest.raises(ProviderRejected, match="no authorization code"):
        parse_callback(pending, callback(pending, state=pending.state), now=T0)


@pytest.mark.parametrize("text", ["C0DE", "", "127.0.0.1:8765/oauth/callback?code=C&state=s"])
def test_parse_callback_requires_the_whole_url(text):
    with pytest.raises(ProviderRejected, match="paste the whole address"):
        parse_callback(begin(), text, now=T0)


def test_parse_callback_refuses_repeated_parameters():
    pending = begin()
    url = f"{REDIRECT}?code=A&code=B&state={pending.state}"
    with pytest.raises(ProviderRejected, match="repeats a parameter"):
        parse_callback(pending, url, now=T0)


async def test_exchange_code_sends_code_verifier_and_redirect_uri(http, endpoint):
    provider = generic(ClientAuthMethod.CLIENT_SECRET_BASIC)
    pending = begin(provider)
    tokens = await exchange_code(http, provider, pending, "C0DE", now=T0)
    assert endpoint.form() == {
        "grant_type": "authorization_code",
        "code": "C0DE",
        "redirect_uri": REDIRECT,
        "code_verifier": pending.code_verifier.reveal(),
    }
    assert endpoint.requests[0].headers["Authorization"].startswith("Basic ")
    assert tokens.refresh_token == Secret("RT2")
    assert tokens.scopes == SCOPES


# --- device code ----------------------------------------------------------------------

MS_DEVICE = {
    "device_code": "DC",
    "user_code": "ABCD-EFGH",
    "verification_uri": "https://microsoft.com/devicelogin",
    "expires_in": 900,
    "interval": 5,
    "message": "To sign in, use a web browser...",
}


@pytest.mark.parametrize("endpoint", [Endpoint((200, MS_DEVICE))])
async def test_start_device_authorization_microsoft(http, endpoint):
    device = await start_device_authorization(http, microsoft(), ["a", "b"], now=T0)
    assert endpoint.requests[0].url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
    )
    assert endpoint.form() == {"scope": "a b", "client_id": "ms-app"}
    assert device == DeviceAuthorization(
        device_code=Secret("DC"),
        user_code="ABCD-EFGH",
        verification_uri="https://microsoft.com/devicelogin",
        verification_uri_complete=None,
        interval=5.0,
        expires_at=T0 + timedelta(seconds=900),
        scopes=("a", "b"),
    )


GOOGLE_DEVICE = {
    "device_code": "DC",
    "user_code": "GQVQ-JKEC",
    "verification_url": "https://www.google.com/device",
    "expires_in": "1800",
}


@pytest.mark.parametrize("endpoint", [Endpoint((200, GOOGLE_DEVICE))])
async def test_start_device_authorization_accepts_googles_verification_url(http, endpoint):
    device = await start_device_authorization(http, generic(), ["s"], now=T0)
    assert device.verification_uri == "https://www.google.com/device"
    assert device.interval == 5.0  # RFC 8628 §3.2 default
    assert device.expires_at == T0 + timedelta(minutes=30)
    assert endpoint.form() == {"scope": "s", "client_id": "app-1", "client_secret": "cs"}


@pytest.mark.parametrize(
    "endpoint", [Endpoint((200, {"device_code": "DC", "user_code": "U", "expires_in": 600}))]
)
async def test_start_device_authorization_without_a_uri_is_malformed(http, endpoint):
    with pytest.raises(ProviderUnavailable, match="verification_uri"):
        await start_device_authorization(http, generic(), ["s"], now=T0)


async def test_start_device_authorization_needs_a_device_url(http):
    provider = google()  # Google has one; a generic provider without one does not
    assert provider.endpoints().device_url
    bare = Provider(
        name="x", kind=ProviderKind.GENERIC, client_id="c", token_url=TOKEN_URL,
        client_auth=ClientAuthMethod.NONE,
    )  # fmt: skip
    with pytest.raises(ConfigError):
        await start_device_authorization(http, bare, ["s"], now=T0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Sleeper:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.now += timedelta(seconds=seconds)


def device(interval: float = 5, minutes: int = 15) -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code=Secret("DC"),
        user_code="ABCD-EFGH",
        verification_uri="https://idp.example/activate",
        verification_uri_complete=None,
        interval=interval,
        expires_at=T0 + timedelta(minutes=minutes),
        scopes=("s",),
    )


def error(code: str, status: int = 400) -> tuple[int, dict[str, str]]:
    return status, {"error": code}


@pytest.mark.parametrize(
    "endpoint",
    [
        Endpoint(
            error("authorization_pending"),
            error("slow_down"),
            error("authorization_pending"),
            ok(refresh_token="RT"),
        )
    ],
)
async def test_poll_device_honours_pending_and_slow_down(http, endpoint):
    clock = Clock()
    sleep = Sleeper(clock)
    provider = generic(ClientAuthMethod.NONE)
    tokens = await poll_device(http, provider, device(), now=clock, sleep=sleep)
    assert sleep.waits == [5, 5, 10, 10]
    assert len(endpoint.requests) == 4
    assert endpoint.form() == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": "DC",
        "client_id": "app-1",
    }
    assert tokens.refresh_token == Secret("RT")
    assert tokens.expires_at == T0 + timedelta(seconds=30) + timedelta(hours=1)
    assert tokens.scopes == ("s",)


@pytest.mark.parametrize("code", ["access_denied", "authorization_declined"])
async def test_poll_device_stops_when_declined(code):
    endpoint = Endpoint(error("authorization_pending"), error(code))
    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        with pytest.raises(ProviderRejected) as info:
            await poll_device(http, generic(), device(), now=clock, sleep=Sleeper(clock))
    assert info.value.error == code
    assert "declined at https://idp.example/activate" in str(info.value)
    assert len(endpoint.requests) == 2


@pytest.mark.parametrize("endpoint", [Endpoint(error("expired_token"))])
async def test_poll_device_stops_on_expired_token(http, endpoint):
    clock = Clock()
    with pytest.raises(ProviderRejected) as info:
        await poll_device(http, generic(), device(), now=clock, sleep=Sleeper(clock))
    assert info.value.error == "expired_token"
    assert "ABCD-EFGH expired" in str(info.value)


@pytest.mark.parametrize("endpoint", [Endpoint(error("authorization_pending"))])
async def test_poll_device_stops_when_expires_at_passes(http, endpoint):
    clock = Clock()
    sleep = Sleeper(clock)
    with pytest.raises(ProviderRejected, match="expired"):
        await poll_device(http, generic(), device(interval=30, minutes=2), now=clock, sleep=sleep)
    assert len(endpoint.requests) == 3  # at 30 s, 60 s, 90 s; the fourth wait ends at 120 s
    assert clock.now == T0 + timedelta(minutes=2)


@pytest.mark.parametrize(
    "endpoint",
    [
        Endpoint(
            lambda r: httpx.Response(503, text="", headers={"Retry-After": "20"}),
            lambda r: httpx.Response(502, text=""),
            ok(),
        )
    ],
)
async def test_poll_device_backs_off_on_transient_failures(http, endpoint):
    clock = Clock()
    sleep = Sleeper(clock)
    await poll_device(http, generic(), device(), now=clock, sleep=sleep)
    assert sleep.waits == [5, 20, 40]


@pytest.mark.parametrize("endpoint", [Endpoint(lambda r: httpx.Response(503, text=""))])
async def test_poll_device_gives_up_after_three_transient_failures(http, endpoint):
    clock = Clock()
    with pytest.raises(ProviderUnavailable):
        await poll_device(http, generic(), device(), now=clock, sleep=Sleeper(clock))
    assert len(endpoint.requests) == 3


@pytest.mark.parametrize("endpoint", [Endpoint(error("invalid_client", 401))])
async def test_poll_device_other_errors_stop_at_once(http, endpoint):
    clock = Clock()
    with pytest.raises(ProviderRejected) as info:
        await poll_device(http, generic(), device(), now=clock, sleep=Sleeper(clock))
    assert info.value.error == "invalid_client"
    assert len(endpoint.requests) == 1


# --- revocation -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [Endpoint(lambda r: httpx.Response(200, text=""))])
async def test_revoke_posts_the_token_and_hint(http, endpoint):
    assert await revoke(http, generic(), Secret("RT"), token_type_hint="refresh_token", now=T0)
    assert endpoint.requests[0].url == "https://idp.example/revoke"
    assert endpoint.form() == {
        "token": "RT",
        "token_type_hint": "refresh_token",
        "client_id": "app-1",
        "client_secret": "cs",
    }


async def test_revoke_without_an_endpoint_returns_false_and_sends_nothing(http, endpoint):
    assert not await revoke(http, microsoft(), Secret("RT"), token_type_hint="refresh_token")
    assert endpoint.requests == []


@pytest.mark.parametrize("endpoint", [Endpoint(error("invalid_token"))])
async def test_revoking_an_already_invalid_token_counts_as_revoked(http, endpoint):
    assert await revoke(http, google(), Secret("RT"), token_type_hint="refresh_token", now=T0)
    assert endpoint.requests[0].url == "https://oauth2.googleapis.com/revoke"


def busy(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, headers={"Retry-After": "9"})


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        (Endpoint(busy), ProviderUnavailable),
        (Endpoint(error("unsupported_token_type")), ProviderRejected),
        (Endpoint(error("invalid_client", 401)), ProviderRejected),
    ],
)  # fmt: skip
async def test_revoke_failures_are_classified(http, endpoint, kind):
    with pytest.raises(kind):
        await revoke(http, generic(), Secret("RT"), token_type_hint="access_token", now=T0)
