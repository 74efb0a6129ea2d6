"""The test authorization server (tests/peers/authserver) behaves like a real one:
every grant, every client authentication method, and the failures tests inject."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.material import cert_pem, key_pem, rsa_key
from tests.peers.authserver.fixture import AuthServer, ControlError

pytestmark = pytest.mark.integration

USER = "alice@example.com"
CALLBACK = "http://127.0.0.1/callback"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def key(n: int = 0) -> rsa.RSAPrivateKey:
    # always positional: functools.cache keys rsa_key() and rsa_key(n=0) apart
    return rsa_key(2048, n)


def public_pem(n: int = 0) -> str:
    return (
        key(n)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(claims: dict[str, Any], header: dict[str, Any] | None = None, n: int = 0) -> str:
    signing_key = RSAKey.import_key(key_pem(key(n)))
    return jwt.encode({"alg": "RS256", **(header or {})}, claims, signing_key)


def client_assertion(server: AuthServer, client_id: str, **header: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": server.token_url, "exp": now + 300}
    claims |= {"iat": now, "jti": uuid.uuid4().hex}
    return {
        "client_id": client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": sign(claims, header),
    }


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture
def server(auth_server: AuthServer) -> AuthServer:
    auth_server.add_user(USER, "secret-pw")
    auth_server.add_user("bob@example.com")
    auth_server.add_client("public", auth_method="none")
    auth_server.add_client("webapp", auth_method="client_secret_basic", secret="s3")
    auth_server.add_client("dovecot", auth_method="client_secret_post", secret="dv")
    return auth_server


def authorize(http: httpx.Client, server: AuthServer, **params: str) -> dict[str, str]:
    query = {"response_type": "code", "redirect_uri": CALLBACK, "state": "st4te", **params}
    response = http.get(server.authorize_url, params=query)
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def code_tokens(http: httpx.Client, server: AuthServer, **params: str) -> dict[str, Any]:
    """The public client's authorization code flow with PKCE, end to end."""
    verifier, challenge = pkce_pair()
    got = authorize(
        http,
        server,
        client_id="public",
        code_challenge=challenge,
        code_challenge_method="S256",
        **params,
    )
    form = {"grant_type": "authorization_code", "code": got["code"], "client_id": "public"}
    response = http.post(
        server.token_url, data={**form, "redirect_uri": CALLBACK, "code_verifier": verifier}
    )
    assert response.status_code == 200, response.text
    return response.json()


def token(http: httpx.Client, server: AuthServer, **form: Any) -> httpx.Response:
    auth = form.pop("auth", None)
    return http.post(server.token_url, data=form, auth=auth)


def refresh(http: httpx.Client, server: AuthServer, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "public"}
    return token(http, server, **form)


def error_of(response: httpx.Response) -> str:
    return str(response.json()["error"])


# -- authorization code ------------------------------------------------------------------
def test_metadata_names_the_endpoints(http: httpx.Client, server: AuthServer) -> None:
    meta = http.get(server.metadata_url).json()
    assert meta["token_endpoint"] == server.token_url
    assert meta["device_authorization_endpoint"] == server.device_url
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]


def test_code_flow_with_pkce_issues_tokens(http: httpx.Client, server: AuthServer) -> None:
    tokens = code_tokens(
        http,
        server,
        scope="mail offline_access",
        login_hint="bob@example.com",
        access_type="offline",
        prompt="consent",
    )
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "mail offline_access"
    assert tokens["refresh_token"]
    assert "email" not in tokens
    params = server.last_authorize_params()
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    info = server.introspect(tokens["access_token"])
    assert info["active"] is True
    assert info["email"] == info["username"] == info["sub"] == "bob@example.com"


def test_authorize_echoes_state_and_falls_back_to_the_first_user(
    http: httpx.Client, server: AuthServer
) -> None:
    tokens = code_tokens(http, server, login_hint="nobody@example.com")
    assert server.introspect(tokens["access_token"])["email"] == USER


@pytest.mark.parametrize(
    "pkce",
    [{}, {"code_challenge": "x" * 43, "code_challenge_method": "plain"}, {"code_challenge": "x"}],
)
def test_public_client_must_use_s256(
    http: httpx.Client, server: AuthServer, pkce: dict[str, str]
) -> None:
    got = authorize(http, server, client_id="public", **pkce)
    assert got["error"] == "invalid_request"
    assert got["state"] == "st4te"


def test_confidential_client_may_skip_pkce(http: httpx.Client, server: AuthServer) -> None:
    code = authorize(http, server, client_id="webapp")["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    response = token(http, server, auth=("webapp", "s3"), **form)
    assert response.status_code == 200, response.text


def test_wrong_pkce_verifier_is_invalid_grant(http: httpx.Client, server: AuthServer) -> None:
    _, challenge = pkce_pair()
    code = authorize(
        http, server, client_id="public", code_challenge=challenge, code_challenge_method="S256"
    )["code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": "public"}
    response = token(http, server, redirect_uri=CALLBACK, code_verifier=pkce_pair()[0], **form)
    assert response.status_code == 400
    assert error_of(response) == "invalid_grant"


def test_replayed_code_is_refused_and_revokes_its_tokens(
    http: httpx.Client, server: AuthServer
) -> None:
    code = authorize(http, server, client_id="webapp")["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    first = token(http, server, auth=("webapp", "s3"), **form).json()
    replay = token(http, server, auth=("webapp", "s3"), **form)
    assert error_of(replay) == "invalid_grant"
    assert server.introspect(first["access_token"]) == {"active": False}
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert error_of(token(http, server, auth=("webapp", "s3"), **form)) == "invalid_grant"


def test_expired_code_is_invalid_grant(http: httpx.Client, server: AuthServer) -> None:
    server.configure(code_lifetime=0)
    code = authorize(http, server, client_id="webapp")["code"]
    time.sleep(0.01)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    assert error_of(token(http, server, auth=("webapp", "s3"), **form)) == "invalid_grant"


def test_consent_denied_redirects_with_access_denied(
    http: httpx.Client, server: AuthServer
) -> None:
    server.configure(consent="deny")
    got = authorize(http, server, client_id="webapp")
    assert got["error"] == "access_denied"
    assert got["error_description"]
    assert got["state"] == "st4te"
    assert "code" not in got


def test_loopback_redirect_matches_any_port(http: httpx.Client, server: AuthServer) -> None:
    uri = "http://127.0.0.1:53682/callback"
    code = authorize(http, server, client_id="webapp", redirect_uri=uri)["code"]
    form = {"grant_type": "authorization_code", "code": code}
    wrong = token(http, server, auth=("webapp", "s3"), redirect_uri=CALLBACK, **form)
    assert error_of(wrong) == "invalid_grant"  # RFC 6749 §4.1.3: same URI as authorize


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:53682/other",
        "http://localhost:53682/callback",
        "http://127.0.0.1:53682/callback?x=1",
        "https://app.example.com:8443/cb",
        "http://app.example.com/cb",
        "https://app.example.com/cb/",
    ],
)
def test_other_redirect_uris_are_refused_without_redirect(
    http: httpx.Client, auth_server: AuthServer, uri: str
) -> None:
    auth_server.add_user(USER)
    auth_server.add_client(
        "app",
        auth_method="client_secret_post",
        secret="x",
        redirect_uris=(CALLBACK, "https://app.example.com/cb"),
    )
    query = {"response_type": "code", "client_id": "app", "redirect_uri": uri}
    response = http.get(auth_server.authorize_url, params=query)
    assert response.status_code == 400
    assert error_of(response) == "invalid_request"
    exact = http.get(
        auth_server.authorize_url, params={**query, "redirect_uri": "https://app.example.com/cb"}
    )
    assert exact.headers["location"].startswith("https://app.example.com/cb?code=")


def test_scope_outside_the_clients_is_invalid_scope(http: httpx.Client, server: AuthServer) -> None:
    got = authorize(http, server, client_id="webapp", scope="mail admin")
    assert got["error"] == "invalid_scope"
    response = token(
        http, server, auth=("webapp", "s3"), grant_type="client_credentials", scope="x"
    )
    assert error_of(response) == "invalid_scope"


# -- refresh -----------------------------------------------------------------------------
def test_refresh_rotates_and_detects_reuse(http: httpx.Client, server: AuthServer) -> None:
    first = code_tokens(http, server)
    second = refresh(http, server, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = refresh(http, server, second["refresh_token"]).json()
    reuse = refresh(http, server, first["refresh_token"])
    assert reuse.status_code == 400
    assert error_of(reuse) == "invalid_grant"
    assert error_of(refresh(http, server, third["refresh_token"])) == "invalid_grant"
    assert server.introspect(third["access_token"]) == {"active": False}


def test_refresh_without_rotation_keeps_the_token(http: httpx.Client, server: AuthServer) -> None:
    server.configure(rotate_refresh_tokens=False, access_token_lifetime=120)
    first = code_tokens(http, server, scope="mail offline_access")
    for _ in range(2):
        again = refresh(http, server, first["refresh_token"]).json()
        assert "refresh_token" not in again
        assert again["expires_in"] == 120
        assert again["scope"] == "mail offline_access"


def test_refresh_tokens_die_with_consent_or_expiry(http: httpx.Client, server: AuthServer) -> None:
    tokens, other = (
        code_tokens(http, server),
        code_tokens(http, server, login_hint="bob@example.com"),
    )
    server.revoke_user(USER)
    assert error_of(refresh(http, server, tokens["refresh_token"])) == "invalid_grant"
    assert server.introspect(tokens["access_token"]) == {"active": False}
    server.expire_refresh_tokens()
    assert error_of(refresh(http, server, other["refresh_token"])) == "invalid_grant"
    assert server.introspect(other["access_token"])["active"] is True
    server.expire_access_tokens()
    assert server.introspect(other["access_token"]) == {"active": False}
    with pytest.raises(ControlError, match="consent must be"):
        server.configure(consent="maybe")


# -- the other grants ----------------------------------------------------------------------
def test_parameters_in_the_url_are_refused(http: httpx.Client, server: AuthServer) -> None:
    query = {"client_id": "dovecot", "client_secret": "dv"}
    response = http.post(server.token_url, params=query, data={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert error_of(response) == "invalid_request"


def test_password_grant(http: httpx.Client, server: AuthServer) -> None:
    form = {
        "grant_type": "password",
        "username": USER,
        "client_id": "dovecot",
        "client_secret": "dv",
    }
    ok = token(http, server, password="secret-pw", **form)
    assert ok.status_code == 200
    assert ok.json()["refresh_token"]
    assert error_of(token(http, server, password="wrong", **form)) == "invalid_grant"


def test_client_credentials_grant(http: httpx.Client, server: AuthServer) -> None:
    ok = token(http, server, auth=("webapp", "s3"), grant_type="client_credentials", scope="mail")
    assert ok.status_code == 200
    body = ok.json()
    assert "refresh_token" not in body
    info = server.introspect(body["access_token"])
    assert info["sub"] == "webapp"
    assert "email" not in info
    public = token(http, server, client_id="public", grant_type="client_credentials")
    assert error_of(public) == "unauthorized_client"


def bearer_assertion(server: AuthServer, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "sa@proj.iam.gserviceaccount.com", "sub": USER, "aud": server.token_url}
    claims |= {"iat": now, "exp": now + 3600, "scope": "mail"}
    header, n = {"kid": overrides.pop("kid", "key-1")}, overrides.pop("n", 0)
    return sign({**claims, **overrides}, header, n=n)


@pytest.mark.parametrize(
    ("overrides", "ok"),
    [
        ({}, True),
        ({"kid": "other-key"}, False),
        ({"sub": "mallory@example.com"}, False),
        ({"aud": "https://oauth2.googleapis.com/token"}, False),
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, False),
        ({"iss": "unknown@proj.iam.gserviceaccount.com"}, False),
    ],
)
def test_jwt_bearer_grant(
    http: httpx.Client, server: AuthServer, overrides: dict[str, Any], ok: bool
) -> None:
    server.add_service_account(
        "sa@proj.iam.gserviceaccount.com", public_key_pem=public_pem(), key_id="key-1"
    )
    response = token(
        http, server, grant_type=JWT_BEARER, assertion=bearer_assertion(server, **overrides)
    )
    if not ok:
        assert error_of(response) == "invalid_grant"
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "mail"
    assert "refresh_token" not in body
    assert server.introspect(body["access_token"])["email"] == USER


def test_jwt_bearer_grant_checks_the_signature(http: httpx.Client, server: AuthServer) -> None:
    server.add_service_account(
        "sa@proj.iam.gserviceaccount.com", public_key_pem=public_pem(), key_id="key-1"
    )
    response = token(http, server, grant_type=JWT_BEARER, assertion=bearer_assertion(server, n=1))
    assert error_of(response) == "invalid_grant"


# -- client authentication -------------------------------------------------------------------
def credentials(server: AuthServer, used: str, client_id: str, secret: str) -> dict[str, Any]:
    if used == "client_secret_basic":
        return {"auth": (client_id, secret)}
    if used == "client_secret_post":
        return {"client_id": client_id, "client_secret": secret}
    if used == "private_key_jwt":
        return client_assertion(server, client_id)
    return {"client_id": client_id}


REGISTERED = {
    "client_secret_basic": ("webapp", "s3"),
    "client_secret_post": ("dovecot", "dv"),
    "private_key_jwt": ("jwtapp", "x"),
    "none": ("public", "x"),
}


@pytest.mark.parametrize("registered", list(REGISTERED))
@pytest.mark.parametrize("used", list(REGISTERED))
def test_each_client_is_held_to_its_auth_method(
    http: httpx.Client, server: AuthServer, registered: str, used: str
) -> None:
    server.add_client("jwtapp", auth_method="private_key_jwt", public_key_pem=public_pem())
    client_id, secret = REGISTERED[registered]
    form = {"grant_type": "password", "username": USER, "password": "secret-pw"}
    response = token(http, server, **form, **credentials(server, used, client_id, secret))
    if used == registered:
        assert response.status_code == 200, response.text
        assert server.token_auth_methods() == [registered]
    else:
        assert response.status_code == 401, response.text
        assert error_of(response) == "invalid_client"
        assert registered in response.json()["error_description"]
        assert response.headers["www-authenticate"].startswith("Basic ")


def test_private_key_jwt_with_a_certificate(http: httpx.Client, server: AuthServer) -> None:
    cert = cert_pem(key())
    server.add_client("entra", auth_method="private_key_jwt", certificate_pem=cert, key_id="k1")
    der = x509.load_pem_x509_certificate(cert.encode()).public_bytes(serialization.Encoding.DER)
    form = {"grant_type": "client_credentials", "scope": "mail"}
    good = [
        {"x5t": b64url(hashlib.sha1(der).digest())},  # noqa: S324 - the x5t definition
        {"x5t#S256": b64url(hashlib.sha256(der).digest())},
        {"kid": "k1"},
        {},
    ]
    for header in good:
        response = token(http, server, **form, **client_assertion(server, "entra", **header))
        assert response.status_code == 200, (header, response.text)
    for header in ({"x5t": b64url(b"nope")}, {"kid": "k2"}):
        response = token(http, server, **form, **client_assertion(server, "entra", **header))
        assert response.status_code == 401, (header, response.text)


def test_private_key_jwt_checks_audience_jti_and_signature(
    http: httpx.Client, server: AuthServer
) -> None:
    server.add_client("jwtapp", auth_method="private_key_jwt", public_key_pem=public_pem())
    form = {"grant_type": "client_credentials"}
    auth = client_assertion(server, "jwtapp")
    assert token(http, server, **form, **auth).status_code == 200
    assert token(http, server, **form, **auth).status_code == 401  # jti replay
    now = int(time.time())
    claims = {"iss": "jwtapp", "sub": "jwtapp", "exp": now + 60, "jti": uuid.uuid4().hex}
    for aud, n in ((server.url, 0), (server.token_url, 1)):
        auth["client_assertion"] = sign({**claims, "aud": aud, "jti": uuid.uuid4().hex}, n=n)
        assert token(http, server, **form, **auth).status_code == 401


# -- introspection, revocation, userinfo --------------------------------------------------
def test_introspection_dovecot_post_and_bearer_get(http: httpx.Client, server: AuthServer) -> None:
    tokens = code_tokens(http, server, scope="mail")
    form = {"token": tokens["access_token"], "client_id": "dovecot", "client_secret": "dv"}
    posted = http.post(server.introspection_url, data=form).json()
    assert posted["active"] is True
    assert posted["email"] == posted["username"] == posted["sub"] == USER
    assert posted["token_type"] == "Bearer"
    assert posted["client_id"] == "public"
    assert posted["scope"] == "mail"
    assert posted["exp"] > time.time() + 3000
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.get(server.introspection_url, headers=bearer).json() == posted
    unknown = http.post(server.introspection_url, data={**form, "token": "nope"})
    assert unknown.json() == {"active": False}
    assert http.get(server.introspection_url, headers={"Authorization": "Bearer nope"}).json() == {
        "active": False
    }
    assert http.get(server.introspection_url).status_code == 401
    no_auth = http.post(server.introspection_url, data={"token": tokens["access_token"]})
    assert no_auth.status_code == 401
    basic = http.post(server.introspection_url, data={"token": "x"}, auth=("dovecot", "dv"))
    assert basic.status_code == 200


def test_userinfo_names_the_user(http: httpx.Client, server: AuthServer) -> None:
    tokens = code_tokens(http, server)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.get(server.userinfo_url, headers=bearer).json()["email"] == USER
    bad = http.get(server.userinfo_url, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_revocation(http: httpx.Client, server: AuthServer) -> None:
    cc = token(http, server, auth=("webapp", "s3"), grant_type="client_credentials").json()
    assert (
        http.post(
            server.revocation_url, data={"token": cc["access_token"]}, auth=("webapp", "s3")
        ).status_code
        == 200
    )
    assert server.introspect(cc["access_token"]) == {"active": False}
    tokens = code_tokens(http, server)
    form = {
        "token": tokens["refresh_token"],
        "token_type_hint": "refresh_token",
        "client_id": "public",
    }
    assert http.post(server.revocation_url, data=form).status_code == 200
    assert server.introspect(tokens["access_token"]) == {"active": False}
    assert error_of(refresh(http, server, tokens["refresh_token"])) == "invalid_grant"
    unknown = http.post(server.revocation_url, data={**form, "token": "nope"})
    assert unknown.status_code == 200
    assert http.post(server.revocation_url, data={"token": "nope"}).status_code == 401


# -- device flow ------------------------------------------------------------------------------
def start_device(http: httpx.Client, server: AuthServer) -> dict[str, Any]:
    response = http.post(
        server.device_url, data={"client_id": "public", "scope": "mail offline_access"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def poll(http: httpx.Client, server: AuthServer, device: dict[str, Any]) -> httpx.Response:
    form = {"grant_type": DEVICE_CODE, "device_code": device["device_code"], "client_id": "public"}
    return token(http, server, **form)


def test_device_flow_approved(http: httpx.Client, server: AuthServer) -> None:
    server.configure(device_interval=0)
    device = start_device(http, server)
    assert device["verification_uri"] == f"{server.url}/device/verify"
    assert device["user_code"] in device["verification_uri_complete"]
    assert device["interval"] == 0
    assert device["expires_in"] == 600
    assert error_of(poll(http, server, device)) == "authorization_pending"
    assert parse_qs(urlsplit(device["verification_uri_complete"]).query) == {
        "user_code": [device["user_code"]]
    }
    approval = {"user_code": device["user_code"], "login_hint": "bob@example.com"}
    page = http.get(device["verification_uri"], params=approval)
    assert page.status_code == 200
    tokens = poll(http, server, device).json()
    assert tokens["scope"] == "mail offline_access"
    assert tokens["refresh_token"]
    assert server.introspect(tokens["access_token"])["email"] == "bob@example.com"
    assert error_of(poll(http, server, device)) == "invalid_grant"  # a device code is spent


def test_device_flow_slow_down_grows_the_interval(http: httpx.Client, server: AuthServer) -> None:
    device = start_device(http, server)
    assert device["interval"] == 1
    assert error_of(poll(http, server, device)) == "authorization_pending"
    assert error_of(poll(http, server, device)) == "slow_down"
    time.sleep(1.1)  # past the first interval, not past the grown one (1 + 5 s)
    assert error_of(poll(http, server, device)) == "slow_down"
    server.approve_device(device["user_code"], USER)
    assert poll(http, server, device).status_code == 200  # slow_down only while pending


def test_device_flow_denied_and_expired(http: httpx.Client, server: AuthServer) -> None:
    server.configure(device_interval=0)
    denied = start_device(http, server)
    server.deny_device(denied["user_code"])
    assert error_of(poll(http, server, denied)) == "access_denied"
    server.configure(device_code_lifetime=0)
    expired = start_device(http, server)
    time.sleep(0.01)
    assert error_of(poll(http, server, expired)) == "expired_token"
    with pytest.raises(ControlError, match="unknown user_code"):
        server.approve_device("BCDF-GHJK", USER)


# -- failure injection and outages ---------------------------------------------------------
def client_credentials(http: httpx.Client, server: AuthServer) -> httpx.Response:
    return token(http, server, auth=("webapp", "s3"), grant_type="client_credentials")


def test_status_500_then_recovery(http: httpx.Client, server: AuthServer) -> None:
    server.fail("status_500", count=2)
    for _ in range(2):
        failed = client_credentials(http, server)
        assert failed.status_code == 500
        assert failed.headers["content-type"].startswith("text/html")
    assert client_credentials(http, server).status_code == 200
    assert server.token_requests() == 3
    assert server.token_requests("client_credentials") == 3
    assert server.token_requests("password") == 0


def test_slow_answers_late(http: httpx.Client, server: AuthServer) -> None:
    server.fail("slow", count=1, seconds=0.5)
    started = time.monotonic()
    assert client_credentials(http, server).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_malformed_rate_limited_and_no_expires_in(http: httpx.Client, server: AuthServer) -> None:
    server.fail("malformed", count=1)
    garbled = client_credentials(http, server)
    assert garbled.status_code == 200
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        garbled.json()
    server.fail("rate_limited", count=1, seconds=7)
    limited = client_credentials(http, server)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    server.fail("no_expires_in", count=1)
    body = client_credentials(http, server).json()
    assert "expires_in" not in body
    assert server.introspect(body["access_token"])["active"] is True
    assert "expires_in" in client_credentials(http, server).json()
    server.fail("status_500")
    server.clear_failures()
    assert client_credentials(http, server).status_code == 200


def test_stop_and_start_keep_the_state(http: httpx.Client, server: AuthServer) -> None:
    tokens = code_tokens(http, server)
    server.stop()
    with pytest.raises(httpx.ConnectError):
        refresh(http, server, tokens["refresh_token"])
    server.start()
    assert server.introspect(tokens["access_token"])["active"] is True
    again = refresh(http, server, tokens["refresh_token"])
    assert again.status_code == 200, again.text
    assert error_of(refresh(http, server, tokens["refresh_token"])) == "invalid_grant"
    assert server.token_requests("refresh_token") == 2
