"""post_form: every answer a provider can give, classified into ProviderRejected /
ProviderUnavailable with the endpoint's host and what to do; and no secret ever reaches
an exception or a log line, on any failure path of any grant."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import pytest

from mailoauth import oauth as flows
from mailoauth.errors import OAuthError, ProviderRejected, ProviderUnavailable
from mailoauth.models import Mailbox, Provider
from mailoauth.oauth.http import DESCRIPTION_LIMIT, clean_text, parse_retry_after, post_form
from mailoauth.providers import ClientAuthMethod, GrantType, ProviderKind
from mailoauth.secret import Secret
from tests.material import key_pem, rsa_key

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
URL = "https://idp.example:8443/oauth2/token"
HOST = "idp.example:8443"

Handler = Callable[[httpx.Request], httpx.Response]


async def post(handler: Handler, form=None, headers=None, **kw):
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await post_form(http, URL, form or {"grant_type": "x"}, headers or {}, **kw)


async def fails(handler: Handler, kind: type[OAuthError] = OAuthError, **kw) -> OAuthError:
    with pytest.raises(kind) as info:
        await post(handler, **kw)
    return info.value


def answer(status: int, body: object = None, *, text: str | None = None, headers=None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


# --- success -----------------------------------------------------------------------


async def test_success_returns_the_json_object_and_sends_a_form_accepting_json():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"access_token": "a", "token_type": "Bearer"})

    data = await post(handler, form={"grant_type": "password", "scope": "a b"}, headers={"X": "1"})
    assert data == {"access_token": "a", "token_type": "Bearer"}
    (request,) = seen
    assert request.method == "POST"
    assert request.url == URL
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["X"] == "1"
    assert request.content == b"grant_type=password&scope=a+b"


async def test_revocation_style_success_with_an_empty_body():
    assert await post(answer(200, text=""), expect_json=False) == {}


# --- transient: ProviderUnavailable ----------------------------------------------------


async def test_connection_refused_names_the_host_and_what_to_do():
    def handler(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    err = await fails(handler, ProviderUnavailable)
    assert str(err) == (
        f"cannot reach the token endpoint {HOST}: [Errno 111] Connection refused; "
        "check the network or the provider's status"
    )
    assert err.status == 0
    assert err.retry_after is None


async def test_timeout_is_unavailable():
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    err = await fails(handler, ProviderUnavailable)
    assert f"the token endpoint {HOST} did not answer in time" in str(err)
    assert "check the network" in str(err)


async def test_other_endpoints_are_named_in_the_message():
    def handler(request):
        raise httpx.ConnectError("no route", request=request)

    err = await fails(handler, ProviderUnavailable, endpoint="device endpoint")
    assert str(err).startswith(f"cannot reach the device endpoint {HOST}")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable(status):
    err = await fails(answer(status, text="<html>oops</html>"), ProviderUnavailable)
    assert err.status == status
    assert f"the token endpoint {HOST} failed (HTTP {status})" in str(err)
    assert "try again later" in str(err)


async def test_5xx_keeps_the_providers_error_and_retry_after():
    body = {"error": "server_error", "error_description": "AADSTS90033: transient"}
    err = await fails(answer(503, body, headers={"Retry-After": "7"}), ProviderUnavailable)
    assert (err.error, err.description, err.retry_after) == (
        "server_error",
        "AADSTS90033: transient",
        7.0,
    )
    assert "try again in 7 s" in str(err)


async def test_429_with_retry_after_seconds():
    err = await fails(answer(429, text="slow down", headers={"Retry-After": "30"}))
    assert isinstance(err, ProviderUnavailable)
    assert err.retry_after == 30.0
    assert err.status == 429
    assert (
        f"the token endpoint {HOST} is limiting the request rate (HTTP 429); try again in 30 s"
        == str(err)
    )


async def test_429_with_an_http_date_is_measured_against_the_servers_date():
    headers = {
        "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
        "Retry-After": "Wed, 21 Oct 2026 07:30:30 GMT",
    }
    err = await fails(answer(429, text="", headers=headers), ProviderUnavailable, now=T0)
    assert err.retry_after == 150.0


async def test_429_with_an_http_date_and_no_date_header_uses_now():
    headers = {"Retry-After": "Tue, 01 Jan 2030 12:01:00 GMT"}
    err = await fails(answer(429, text="", headers=headers), ProviderUnavailable, now=T0)
    assert err.retry_after == 60.0


async def test_429_with_a_date_in_the_past_means_now():
    headers = {"Retry-After": "Tue, 01 Jan 2030 11:00:00 GMT"}
    err = await fails(answer(429, text="", headers=headers), ProviderUnavailable, now=T0)
    assert err.retry_after == 0.0


async def test_429_without_retry_after():
    err = await fails(answer(429, {"error": "rate_limited"}), ProviderUnavailable)
    assert err.retry_after is None
    assert "try again later" in str(err)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("-3", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Tue, 01 Jan 2030 12:00:10 GMT", 10.0),
        ("Tuesday, 01-Jan-30 12:00:10 GMT", 10.0),  # RFC 850, obsolete but allowed
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, T0) == expected


def test_parse_retry_after_date_without_a_reference_is_unknown():
    assert parse_retry_after("Tue, 01 Jan 2030 12:00:10 GMT", None) is None


@pytest.mark.parametrize(
    "handler",
    [
        answer(200, text="<html>sign in</html>", headers={"Content-Type": "text/html"}),
        answer(200, text=""),
        answer(200, ["access_token"]),
        answer(200, text="{not json"),
        answer(400, text="Bad Request"),
        answer(302, text="", headers={"Location": "https://idp.example/login"}),
    ],
    ids=["html", "empty", "array", "broken", "400-text", "redirect"],
)
async def test_a_body_that_is_not_a_json_object_is_unavailable(handler):
    err = await fails(handler, ProviderUnavailable)
    assert f"the token endpoint {HOST} answered something that is not JSON" in str(err)
    assert "check the endpoint URL" in str(err)


@pytest.mark.parametrize("code", ["temporarily_unavailable", "server_error"])
async def test_transient_error_codes_are_unavailable(code):
    err = await fails(answer(400, {"error": code}), ProviderUnavailable)
    assert err.error == code
    assert err.status == 400
    assert "try again later" in str(err)


# --- permanent: ProviderRejected ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("invalid_grant", "authorize the mailbox again"),
        ("invalid_client", "client id"),
        ("unauthorized_client", "allow this grant type"),
        ("unsupported_grant_type", "choose another"),
        ("invalid_scope", "scopes"),
        ("access_denied", "declined"),
        ("expired_token", "start again"),
        ("consent_required", "interactively"),
        ("interaction_required", "interactively"),
        ("invalid_request", "check the provider's settings"),
        ("some_vendor_code", "check the provider's and the mailbox's settings"),
    ],
)
async def test_error_codes_are_rejected_with_advice(code, advice):
    body = {"error": code, "error_description": "Something the provider said."}
    err = await fails(answer(400, body), ProviderRejected)
    assert (err.error, err.description, err.status) == (code, "Something the provider said.", 400)
    assert str(err).startswith(
        f"the token endpoint {HOST} refused the request: {code} (Something the provider said.); "
    )
    assert advice in str(err)


async def test_invalid_client_with_401():
    err = await fails(answer(401, {"error": "invalid_client"}), ProviderRejected)
    assert err.status == 401
    assert err.description == ""
    assert str(err).startswith(f"the token endpoint {HOST} refused the request: invalid_client; ")


async def test_an_error_inside_a_200_is_still_an_error():
    err = await fails(answer(200, {"error": "authorization_pending"}), ProviderRejected)
    assert err.error == "authorization_pending"


async def test_a_4xx_json_without_error_code_is_rejected():
    err = await fails(answer(403, {"message": "forbidden"}), ProviderRejected)
    assert err.status == 403
    assert "without an error code" in str(err)


async def test_an_unreadable_error_code_is_not_echoed():
    err = await fails(answer(400, {"error": "bad\ncode\x00" + "x" * 100}), ProviderRejected)
    assert err.error == ""
    assert "\n" not in str(err)
    assert "an unreadable error code" in str(err)


async def test_a_non_string_description_is_ignored():
    err = await fails(answer(400, {"error": "invalid_grant", "error_description": {"a": 1}}))
    assert err.description == ""


# --- the provider's text is cleaned ----------------------------------------------------


async def test_description_is_truncated_and_single_line():
    body = {"error": "invalid_grant", "error_description": "line one\r\nline two " + "word " * 200}
    err = await fails(answer(400, body), ProviderRejected)
    assert len(err.description) <= DESCRIPTION_LIMIT
    assert err.description.startswith("line one line two word")
    assert err.description.endswith("…")
    assert "\n" not in str(err)
    assert "\r" not in str(err)


def test_clean_text_removes_token_shapes_but_keeps_ids_and_words():
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    google_like = "ya29.a0AfB_byC3xYz9QwErTy1234567890AbCdEfGhIjKlMn"
    text = (
        f"AADSTS70008: The provided authorization code or refresh token has expired. "
        f"token {jwt_like} and {google_like}. Trace ID: 5f6e2a1b-0c3d-4e5f-8a9b-0c1d2e3f4a5b "
        "see https://login.microsoftonline.com/error?code=70008"
    )
    cleaned = clean_text(text)
    assert jwt_like not in cleaned
    assert google_like not in cleaned
    assert cleaned.count("[redacted]") == 2
    assert "AADSTS70008: The provided authorization code or refresh token has expired." in cleaned
    assert "5f6e2a1b-0c3d-4e5f-8a9b-0c1d2e3f4a5b" in cleaned
    assert "https://login.microsoftonline.com/error?code=70008" in cleaned


def test_clean_text_removes_given_secrets_raw_and_form_encoded():
    cleaned = clean_text("got a b/c+d and a+b%2Fc%2Bd and a%20b%2Fc%2Bd", frozenset({"a b/c+d"}))
    assert cleaned == "got [redacted] and [redacted] and [redacted]"


# --- nothing secret reaches an exception or a log ---------------------------------------

SECRETS = {
    "client_secret": "CLIENT-SECRET-q8Zr4!x/y+z",
    "refresh_token": "REFRESH-TOKEN-7yHt2kLmNp",
    "code": "AUTHZ-CODE-3kLp9Qw",
    "code_verifier": "VERIFIER-aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefgh",
    "password": "PASSWORD-hunter2-Zx9",
    "device_code": "DEVICE-CODE-Gh7Jk2",
    "access_token": "ACCESS-TOKEN-Qp0Lm3",
}


def echo(request: httpx.Request) -> str:
    """Everything the client sent, raw and decoded, as a careless provider might echo it."""
    body = request.content.decode()
    decoded = json.dumps(dict(parse_qsl(body)))
    return f"{body} {decoded} {request.headers.get('Authorization', '')}"


FAILURES: dict[str, Handler] = {
    "rejected-echo": lambda r: httpx.Response(
        400, json={"error": "invalid_grant", "error_description": echo(r)}
    ),
    "error-code-echo": lambda r: httpx.Response(400, json={"error": echo(r)[:60]}),
    "unavailable-echo": lambda r: httpx.Response(
        503, json={"error": "temporarily_unavailable", "error_description": echo(r)}
    ),
    "rate-limited-echo": lambda r: httpx.Response(
        429, json={"error_description": echo(r)}, headers={"Retry-After": "1"}
    ),
    "not-json-echo": lambda r: httpx.Response(200, text=f"<html>{echo(r)}</html>"),
    "malformed-token-echo": lambda r: httpx.Response(200, json={"token_type": echo(r)}),
    "wrong-token-type-echo": lambda r: httpx.Response(
        200, json={"access_token": "ok", "token_type": echo(r)}
    ),
    "network-error-echo": lambda r: (_ for _ in ()).throw(
        httpx.ConnectError(f"failed sending {echo(r)}", request=r)
    ),
    "timeout-echo": lambda r: (_ for _ in ()).throw(
        httpx.ReadTimeout(f"timed out sending {echo(r)}", request=r)
    ),
}


def _provider(method: ClientAuthMethod) -> Provider:
    extra: dict[str, object] = {}
    if method is ClientAuthMethod.PRIVATE_KEY_JWT:
        extra["private_key"] = Secret(key_pem(rsa_key()))
    elif method is not ClientAuthMethod.NONE:
        extra["client_secret"] = Secret(SECRETS["client_secret"])
    return Provider(
        name="idp",
        kind=ProviderKind.GENERIC,
        client_id="app-1",
        client_auth=method,
        token_url=URL,
        device_url="https://idp.example:8443/device",
        revocation_url="https://idp.example:8443/revoke",
        **extra,
    )


def _mailbox(grant: GrantType) -> Mailbox:
    if grant is GrantType.PASSWORD:
        return Mailbox(
            name="mb",
            provider="idp",
            login="user@example.com",
            grant=grant,
            password=Secret(SECRETS["password"]),
        )
    return Mailbox(
        name="mb",
        provider="idp",
        login="user@example.com",
        grant=grant,
        service_account_email="sa@proj.iam.gserviceaccount.com",
        service_account_key=Secret(key_pem(rsa_key())),
        service_account_key_id="kid-1",
    )


def _calls(method: ClientAuthMethod):
    provider = _provider(method)
    pending = flows.PendingAuthorization(
        mailbox="mb",
        url="https://idp.example/authorize",
        state="s",
        code_verifier=Secret(SECRETS["code_verifier"]),
        redirect_uri="http://127.0.0.1:8765/cb",
        scopes=("mail",),
        expires_at=T0 + timedelta(minutes=10),
    )
    device = flows.DeviceAuthorization(
        device_code=Secret(SECRETS["device_code"]),
        user_code="ABCD-EFGH",
        verification_uri="https://idp.example/device",
        verification_uri_complete=None,
        interval=1,
        expires_at=T0 + timedelta(minutes=15),
        scopes=("mail",),
    )

    async def no_sleep(seconds):
        return None

    return {
        "refresh": lambda http: flows.refresh(
            http, provider, Secret(SECRETS["refresh_token"]), ["mail"], now=T0
        ),
        "password": lambda http: flows.password_grant(
            http, provider, _mailbox(GrantType.PASSWORD), ["mail"], now=T0
        ),
        "client_credentials": lambda http: flows.client_credentials(
            http, provider, ["mail"], now=T0
        ),
        "jwt_bearer": lambda http: flows.jwt_bearer(
            http, provider, _mailbox(GrantType.SERVICE_ACCOUNT), ["mail"], now=T0
        ),
        "exchange_code": lambda http: flows.exchange_code(
            http, provider, pending, SECRETS["code"], now=T0
        ),
        "poll_device": lambda http: flows.poll_device(
            http, provider, device, now=lambda: T0, sleep=no_sleep
        ),
        "start_device": lambda http: flows.start_device_authorization(
            http, provider, ["mail"], now=T0
        ),
        "revoke": lambda http: flows.revoke(
            http, provider, Secret(SECRETS["access_token"]), token_type_hint="access_token", now=T0
        ),
    }


CALLS = list(_calls(ClientAuthMethod.NONE))
METHODS = list(ClientAuthMethod)


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("method", METHODS, ids=[m.value for m in METHODS])
async def test_no_secret_in_any_error_or_log(failure, call, method, caplog):
    caplog.set_level(logging.DEBUG)
    sent: list[httpx.Request] = []

    def handler(request):
        sent.append(request)
        return FAILURES[failure](request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        try:
            await _calls(method)[call](http)
        except OAuthError as err:
            error: OAuthError | None = err
        else:
            error = None
    if error is None:  # RFC 7009 §2.2: any 2xx revokes, whatever its body
        assert call == "revoke"
        assert failure in ("not-json-echo", "malformed-token-echo", "wrong-token-type-echo")
    assert sent, "the failure must come from the provider's answer"
    secrets = [*SECRETS.values()]
    for request in sent:  # and the client assertions / service-account assertions we signed
        form = dict(parse_qsl(request.content.decode()))
        secrets += [form[k] for k in ("client_assertion", "assertion") if k in form]
        if "Authorization" in request.headers:
            secrets.append(request.headers["Authorization"].split(" ", 1)[1])
    shown = caplog.text
    if error is not None:
        shown += " | ".join(
            [str(error), repr(error), repr(error.args), error.description, error.error]
        )
    leaked = [s for s in secrets if s in shown or s[:12] in shown]
    assert not leaked, f"{call}/{failure} leaked {leaked}: {shown}"
