"""The config model: valid by construction, and every bad value names its field and fix."""

import dataclasses
import datetime as dt

import pytest

from mailoauth.errors import ConfigError
from mailoauth.models import (
    Grant,
    IncomingSettings,
    Mailbox,
    OutgoingSettings,
    Provider,
    check_mailbox_with_provider,
    mailbox_scopes,
)
from mailoauth.providers import ClientAuthMethod, GrantType, ProviderKind, Security, Transport
from mailoauth.secret import Secret
from tests.material import cert_pem, key_pem, rsa_key


def google(**kw):
    base = {"client_secret": Secret("s")}
    return Provider(name="g", kind=ProviderKind.GOOGLE, client_id="id", **{**base, **kw})


def microsoft(**kw):
    base = {"tenant": "contoso.onmicrosoft.com", "client_secret": Secret("s")}
    return Provider(name="ms", kind=ProviderKind.MICROSOFT, client_id="id", **{**base, **kw})


def generic(**kw):
    base = {"token_url": "https://idp.example/token", "client_secret": Secret("s")}
    return Provider(name="gen", kind=ProviderKind.GENERIC, client_id="id", **{**base, **kw})


def fails(field: str, fn, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    assert info.value.field == field, str(info.value)
    assert info.value.fix or info.value.problem
    return info.value


# --- Provider ----------------------------------------------------------------------


def test_microsoft_without_tenant_is_refused_with_the_choices():
    err = fails("tenant", microsoft, tenant=None)
    assert "common" in err.fix


def test_microsoft_tenant_must_look_like_a_tenant():
    fails("tenant", microsoft, tenant="not a tenant!")
    microsoft(tenant="9188040d-6c67-4c5b-b112-36a304b66dad")
    microsoft(tenant="organizations")


def test_presets_refuse_url_overrides():
    err = fails("token_url", google, token_url="https://evil.example/token")
    assert "generic" in err.fix


def test_generic_needs_a_token_url():
    fails("token_url", generic, token_url=None)


@pytest.mark.parametrize("url", ["ftp://idp.example/token", "idp.example/token", "https://"])
def test_urls_must_be_http_or_https(url):
    fails("token_url", generic, token_url=url)


def test_plain_http_is_only_for_loopback():
    err = fails("token_url", generic, token_url="http://idp.example/token")
    assert "https" in err.fix
    assert generic(token_url="http://127.0.0.1:9000/token").token_url.startswith("http://")


@pytest.mark.parametrize(
    "uri", ["http://mail.example.com/cb", "ftp://127.0.0.1/cb", "https://x.example/cb#frag"]
)
def test_redirect_uri_must_be_https_or_loopback_http(uri):
    fails("redirect_uri", google, redirect_uri=uri)


@pytest.mark.parametrize(
    "uri",
    ["https://mail.example.com/oauth/callback", "http://127.0.0.1:8765/cb", "http://localhost:1/"],
)
def test_good_redirect_uris(uri):
    assert google(redirect_uri=uri).redirect_uri == uri


def test_default_redirect_uri_comes_from_the_base_url():
    assert google().effective_redirect_uri("https://mail.example.com/") == (
        "https://mail.example.com/oauth/callback"
    )


def test_secret_methods_need_a_secret():
    err = fails("client_secret", google, client_secret=None)
    assert "none" in err.fix


def test_public_client_takes_no_secret():
    fails("client_secret", google, client_auth=ClientAuthMethod.NONE)


def test_private_key_jwt_needs_a_key_that_parses():
    err = fails(
        "private_key",
        generic,
        client_auth=ClientAuthMethod.PRIVATE_KEY_JWT,
        client_secret=None,
        private_key=Secret("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"),
    )
    assert "PEM" in err.problem


def test_private_key_jwt_with_matching_certificate():
    key = rsa_key()
    p = microsoft(
        client_auth="private_key_jwt",
        client_secret=None,
        private_key=Secret(key_pem(key)),
        certificate=cert_pem(key),
    )
    assert p.client_auth is ClientAuthMethod.PRIVATE_KEY_JWT


def test_microsoft_private_key_jwt_needs_the_certificate():
    fails(
        "certificate",
        microsoft,
        client_auth="private_key_jwt",
        client_secret=None,
        private_key=Secret(key_pem(rsa_key())),
    )


def test_certificate_of_another_key_is_refused():
    err = fails(
        "certificate",
        microsoft,
        client_auth="private_key_jwt",
        client_secret=None,
        private_key=Secret(key_pem(rsa_key())),
        certificate=cert_pem(rsa_key(2048, 1)),
    )
    assert "does not belong" in err.problem


def test_key_fields_without_private_key_jwt_are_refused():
    fails("key_id", google, key_id="abc")


def test_names_are_slugs():
    with pytest.raises(ConfigError, match="name"):
        Provider(name="bad name", kind="google", client_id="x", client_secret=Secret("s"))


# --- Mailbox -----------------------------------------------------------------------


def mailbox(**kw):
    return Mailbox(**{"name": "mb", "provider": "g", "login": "me@example.com", **kw})


def test_ports_fill_in_from_the_security_mode():
    out = OutgoingSettings(host="smtp.example.com", security=Security.SSL)
    assert out.port == 465
    assert OutgoingSettings(host="smtp.example.com").port == 587
    assert IncomingSettings(host="imap.example.com").port == 993
    assert IncomingSettings(transport="pop3", host="pop.example.com").port == 995
    assert IncomingSettings(transport="imap", host="x.example", security="starttls").port == 143


def test_port_out_of_range():
    fails("port", OutgoingSettings, host="smtp.example.com", port=70000)
    fails("port", OutgoingSettings, host="smtp.example.com", port=0)


def test_cleartext_to_a_remote_host_needs_an_explicit_opt_in():
    err = fails("security", OutgoingSettings, host="smtp.example.com", security="none")
    assert "allow_insecure" in err.fix
    assert OutgoingSettings(host="127.0.0.1", security="none").port == 25
    assert (
        OutgoingSettings(host="smtp.example.com", security="none", allow_insecure=True).port == 25
    )


def test_socket_transports_need_a_host_and_https_apis_may_override_theirs():
    fails("host", OutgoingSettings, transport="smtp")
    assert OutgoingSettings(transport=Transport.GRAPH).port is None
    api = OutgoingSettings(transport="graph", host="graph.microsoft.us", port=8443)
    assert (api.host, api.port) == ("graph.microsoft.us", 8443)
    fails("host", OutgoingSettings, transport="gmail_api", host="bad host")
    fails("port", IncomingSettings, transport="gmail_api", port=0)


def test_ehlo_name_is_a_host_name_and_only_for_smtp():
    assert OutgoingSettings(host="s.example", ehlo_name="app.example.org").ehlo_name
    fails("ehlo_name", OutgoingSettings, host="s.example", ehlo_name="not a name")
    fails("ehlo_name", OutgoingSettings, transport="graph", ehlo_name="app.example.org")


@pytest.mark.parametrize(
    "target",
    [
        "maildir:/var/mail/desk",
        "webhook:https://desk.example/in",
        "webhook:http://127.0.0.1:8080/x",
    ],
)
def test_delivery_targets_accepted(target):
    assert IncomingSettings(host="i.example", deliver=target).deliver == target


@pytest.mark.parametrize(
    "target",
    [
        "maildir:relative/path",
        "webhook:http://desk.example/in",
        "ftp:/x",
        "/var/mail",
        "maildir:/a\nb",
    ],
)
def test_delivery_targets_refused(target):
    fails("deliver", IncomingSettings, host="i.example", deliver=target)


def test_pop3_cannot_mark_seen_or_move():
    err = fails(
        "after_fetch", IncomingSettings, transport="pop3", host="p.example", after_fetch="seen"
    )
    assert "IMAP" in err.fix
    fails("after_fetch", IncomingSettings, host="i.example", after_fetch="move:")
    fails("after_fetch", IncomingSettings, host="i.example", after_fetch="archive")
    assert IncomingSettings(host="i.example", after_fetch="move:Done").after_fetch == "move:Done"


def test_poll_interval_is_whole_minutes_in_range():
    fails("poll_interval", IncomingSettings, host="i.example", poll_interval=0)
    fails("poll_interval", IncomingSettings, host="i.example", poll_interval=True)


def test_login_becomes_the_from_address():
    assert mailbox().addresses == ("me@example.com",)
    fails("addresses[1]", mailbox, addresses=["a@example.com", "not an address"])


def test_login_may_not_smuggle_sasl_separators():
    fails("login", mailbox, login="me@example.com\x01auth=Bearer x")


def test_password_grant_needs_a_password_and_defaults_username():
    fails("password", mailbox, grant=GrantType.PASSWORD)
    mb = mailbox(grant=GrantType.PASSWORD, password=Secret("pw"))
    assert mb.username == "me@example.com"


def test_grant_specific_fields_are_refused_elsewhere():
    fails("password", mailbox, password=Secret("pw"))
    fails("subject", mailbox, subject="x@example.com")


def test_service_account_needs_a_parsable_key():
    fails(
        "service_account_key",
        mailbox,
        grant="service_account",
        service_account_email="sa@p.iam.gserviceaccount.com",
        service_account_key=Secret("garbage"),
    )
    mb = mailbox(
        grant="service_account",
        service_account_email="sa@p.iam.gserviceaccount.com",
        service_account_key=Secret(key_pem(rsa_key())),
    )
    assert mb.subject == "me@example.com"


# --- Mailbox with provider ----------------------------------------------------------


def test_google_refuses_password_grant_and_says_what_works():
    mb = mailbox(grant=GrantType.PASSWORD, password=Secret("pw"))
    with pytest.raises(ConfigError) as info:
        check_mailbox_with_provider(mb, google())
    assert info.value.field == "grant"
    assert "authorization_code" in info.value.fix


def test_client_credentials_needs_a_real_tenant():
    mb = mailbox(provider="ms", grant=GrantType.CLIENT_CREDENTIALS)
    with pytest.raises(ConfigError, match="tenant"):
        check_mailbox_with_provider(mb, microsoft(tenant="common"))
    check_mailbox_with_provider(mb, microsoft())


def test_device_code_needs_a_device_url_on_generic():
    mb = mailbox(provider="gen", grant=GrantType.DEVICE_CODE)
    with pytest.raises(ConfigError, match="device_url"):
        check_mailbox_with_provider(mb, generic())


def test_graph_and_exchange_protocols_cannot_share_a_microsoft_token():
    mb = mailbox(
        provider="ms",
        outgoing=OutgoingSettings(transport="graph"),
        incoming=IncomingSettings(host="outlook.office365.com"),
    )
    with pytest.raises(ConfigError, match="one resource"):
        check_mailbox_with_provider(mb, microsoft())


def test_gmail_api_needs_google():
    mb = mailbox(provider="ms", outgoing=OutgoingSettings(transport="gmail_api"))
    with pytest.raises(ConfigError, match="Google"):
        check_mailbox_with_provider(mb, microsoft())


def test_scopes_derive_from_protocols_unless_overridden():
    mb = mailbox(provider="ms", outgoing=OutgoingSettings(host="smtp.office365.com"))
    assert mailbox_scopes(mb, microsoft()) == (
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    )
    custom = dataclasses.replace(mb, scopes=("custom",))
    assert mailbox_scopes(custom, microsoft()) == ("custom",)
    assert mailbox_scopes(mailbox(provider="gen"), generic(scopes=("email",))) == ("email",)


# --- Grant -------------------------------------------------------------------------


def test_grant_times_must_be_aware():
    with pytest.raises(ConfigError, match="time zone"):
        Grant(mailbox="mb", expires_at=dt.datetime(2030, 1, 1))
    g = Grant(
        mailbox="mb",
        access_token=Secret("ya29.ACCESS"),
        refresh_token=Secret("1//REFRESH"),
        expires_at=dt.datetime.now(dt.UTC),
    )
    assert "ACCESS" not in repr(g)
    assert "REFRESH" not in repr(g)


def test_alternate_host_gets_the_same_cleartext_rule():
    err = fails(
        "alternate_host",
        OutgoingSettings,
        host="127.0.0.1",
        security="none",
        alternate_host="smtp.example.com",
    )
    assert "allow_insecure" in err.fix


def test_provider_scopes_are_one_scope_per_item():
    err = fails("scopes[1]", generic, scopes=("email", "offline_access openid"))
    assert "one scope per list item" in err.fix
    fails("scopes", mailbox, scopes=())


def test_google_clients_cannot_use_private_key_jwt():
    err = fails(
        "client_auth",
        google,
        client_auth="private_key_jwt",
        client_secret=None,
        private_key=Secret(key_pem(rsa_key())),
    )
    assert "service account" in err.fix


def test_a_token_only_mailbox_gets_mail_scopes():
    assert mailbox_scopes(mailbox(), google()) == ("https://mail.google.com/",)
    assert mailbox_scopes(mailbox(provider="ms"), microsoft()) == (
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "offline_access",
    )


def test_keys_that_cannot_sign_assertions_are_refused():
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        .decode()
    )
    err = fails(
        "private_key",
        generic,
        client_auth="private_key_jwt",
        client_secret=None,
        private_key=Secret(pem),
    )
    assert "RSA" in err.fix
