"""Client authentication (RFC 6749 §2.3, RFC 7523 §2.2): the exact form and headers of
each method, and private_key_jwt assertions verified with the public key."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, RSAKey

from mailoauth.errors import ConfigError
from mailoauth.models import Provider
from mailoauth.oauth.client_auth import CLIENT_ASSERTION_TYPE, authenticate
from mailoauth.providers import ClientAuthMethod, ProviderKind
from mailoauth.secret import Secret
from tests.material import cert_pem, key_pem, rsa_key

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TOKEN_URL = "https://idp.example/oauth2/token"
MS_TOKEN_URL = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
FORM = {"grant_type": "refresh_token", "refresh_token": "rt"}


def generic(method: ClientAuthMethod, **kw) -> Provider:
    return Provider(
        name="idp",
        kind=ProviderKind.GENERIC,
        client_id=kw.pop("client_id", "app-1"),
        client_auth=method,
        token_url=TOKEN_URL,
        **kw,
    )


def public_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ec_pem(curve: ec.EllipticCurve) -> str:
    key = ec.generate_private_key(curve)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# --- the shared-secret and public methods -------------------------------------------


def test_client_secret_post_puts_id_and_secret_in_the_body():
    provider = generic(ClientAuthMethod.CLIENT_SECRET_POST, client_secret=Secret("s3cret"))
    form, headers = authenticate(provider, TOKEN_URL, FORM, T0)
    assert form == {**FORM, "client_id": "app-1", "client_secret": "s3cret"}
    assert headers == {}


def test_client_secret_basic_form_urlencodes_id_and_secret_then_base64():
    provider = generic(
        ClientAuthMethod.CLIENT_SECRET_BASIC,
        client_id="app 1/é",
        client_secret=Secret("s:cr+t=~ x"),
    )
    form, headers = authenticate(provider, TOKEN_URL, FORM, T0)
    assert form == FORM  # nothing in the body: one method per request (§2.3)
    expected = base64.b64encode(b"app+1%2F%C3%A9:s%3Acr%2Bt%3D~+x").decode()
    assert headers == {"Authorization": f"Basic {expected}"}


def test_client_secret_basic_plain_ascii():
    provider = generic(ClientAuthMethod.CLIENT_SECRET_BASIC, client_secret=Secret("secret"))
    _, headers = authenticate(provider, TOKEN_URL, {}, T0)
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"app-1:secret").decode()


def test_none_sends_the_client_id_only():
    provider = generic(ClientAuthMethod.NONE)
    form, headers = authenticate(provider, TOKEN_URL, FORM, T0)
    assert form == {**FORM, "client_id": "app-1"}
    assert headers == {}


def test_the_callers_form_is_not_modified():
    provider = generic(ClientAuthMethod.CLIENT_SECRET_POST, client_secret=Secret("s"))
    original = dict(FORM)
    authenticate(provider, TOKEN_URL, original, T0)
    assert original == FORM


# --- private_key_jwt -----------------------------------------------------------------


def jwt_provider(**kw) -> Provider:
    kw.setdefault("private_key", Secret(key_pem(rsa_key())))
    return generic(ClientAuthMethod.PRIVATE_KEY_JWT, **kw)


def assertion_of(form: dict[str, str]) -> str:
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    return form["client_assertion"]


def test_private_key_jwt_claims_and_signature_verify_with_the_public_key():
    provider = jwt_provider(key_id="key-7")
    form, headers = authenticate(provider, TOKEN_URL, FORM, T0)
    assert headers == {}
    assert {k: v for k, v in form.items() if not k.startswith("client_assertion")} == {
        **FORM,
        "client_id": "app-1",
    }
    token = jwt.decode(assertion_of(form), RSAKey.import_key(public_pem(key_pem(rsa_key()))))
    assert token.header == {"alg": "RS256", "typ": "JWT", "kid": "key-7"}
    iat = int(T0.timestamp())
    claims = dict(token.claims)
    assert len(claims.pop("jti")) >= 22
    assert claims == {
        "iss": "app-1",
        "sub": "app-1",
        "aud": TOKEN_URL,
        "iat": iat,
        "nbf": iat,
        "exp": iat + 300,
    }


def test_private_key_jwt_does_not_verify_with_another_key():
    form, _ = authenticate(jwt_provider(), TOKEN_URL, {}, T0)
    other = RSAKey.import_key(public_pem(key_pem(rsa_key(2048, 1))))
    with pytest.raises(BadSignatureError):
        jwt.decode(assertion_of(form), other)


def test_each_assertion_has_a_fresh_jti():
    provider = jwt_provider()
    jtis = {
        jwt.decode(
            assertion_of(authenticate(provider, TOKEN_URL, {}, T0)[0]),
            RSAKey.import_key(public_pem(key_pem(rsa_key()))),
        ).claims["jti"]
        for _ in range(5)
    }
    assert len(jtis) == 5


def test_certificate_adds_x5t_sha1_and_x5t_s256_of_the_der_certificate():
    pem = cert_pem(rsa_key())
    provider = Provider(
        name="ms",
        kind=ProviderKind.MICROSOFT,
        tenant="contoso.onmicrosoft.com",
        client_id="11111111-2222-3333-4444-555555555555",
        client_auth=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=Secret(key_pem(rsa_key())),
        certificate=pem,
    )
    token_url = provider.endpoints().token_url
    assert token_url == MS_TOKEN_URL
    form, _ = authenticate(provider, token_url, {"grant_type": "client_credentials"}, T0)
    token = jwt.decode(assertion_of(form), RSAKey.import_key(public_pem(key_pem(rsa_key()))))
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert token.header["x5t"] == b64url(hashlib.sha1(der, usedforsecurity=False).digest())
    assert token.header["x5t#S256"] == b64url(hashlib.sha256(der).digest())
    assert len(token.header["x5t"]) == 27  # 20 bytes, unpadded
    assert "kid" not in token.header
    assert token.claims["aud"] == MS_TOKEN_URL
    assert token.claims["iss"] == token.claims["sub"] == provider.client_id


def test_ec_p256_key_signs_es256():
    pem = ec_pem(ec.SECP256R1())
    form, _ = authenticate(jwt_provider(private_key=Secret(pem)), TOKEN_URL, {}, T0)
    token = jwt.decode(assertion_of(form), ECKey.import_key(public_pem(pem)))
    assert token.header["alg"] == "ES256"
    assert token.claims["aud"] == TOKEN_URL


def test_ec_p384_key_signs_es384():
    pem = ec_pem(ec.SECP384R1())
    form, _ = authenticate(jwt_provider(private_key=Secret(pem)), TOKEN_URL, {}, T0)
    token = jwt.decode(assertion_of(form), ECKey.import_key(public_pem(pem)), algorithms=["ES384"])
    assert token.header["alg"] == "ES384"


@pytest.mark.parametrize(
    "pem",
    [
        ec_pem(ec.SECP256K1()),
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode(),
    ],
    ids=["secp256k1", "ed25519"],
)
def test_a_key_that_cannot_sign_here_is_a_config_error_without_the_key(pem):
    # Refused when the provider is built (Ed25519) or at the first signature (secp256k1).
    with pytest.raises(ConfigError) as info:
        authenticate(jwt_provider(private_key=Secret(pem)), TOKEN_URL, {}, T0)
    assert info.value.field == "private_key"
    assert "PRIVATE KEY" not in str(info.value)
    assert "RSA" in info.value.fix
