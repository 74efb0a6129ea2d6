"""Provider presets are public facts: pin them as data."""

import pytest

from mailoauth.providers import (
    DEFAULT_PORTS,
    Direction,
    GrantType,
    ProviderKind,
    Security,
    Transport,
    default_scopes,
    google_endpoints,
    microsoft_endpoints,
    preset_authorize_params,
    suggested_host,
    unsupported_grant_reason,
)

OUT, IN = Direction.OUTGOING, Direction.INCOMING


def test_google_endpoints_are_the_documented_urls():
    e = google_endpoints()
    assert e.authorization_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert e.token_url == "https://oauth2.googleapis.com/token"
    assert e.revocation_url == "https://oauth2.googleapis.com/revoke"
    assert e.device_url == "https://oauth2.googleapis.com/device/code"


def test_google_asks_for_offline_access_and_consent_to_get_a_refresh_token():
    assert preset_authorize_params(ProviderKind.GOOGLE) == {
        "access_type": "offline",
        "prompt": "consent",
    }
    assert preset_authorize_params(ProviderKind.MICROSOFT) == {}


def test_microsoft_endpoints_carry_the_tenant():
    e = microsoft_endpoints("contoso.onmicrosoft.com")
    base = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0"
    assert e.authorization_url == f"{base}/authorize"
    assert e.token_url == f"{base}/token"
    assert e.device_url == f"{base}/devicecode"
    assert e.revocation_url is None


@pytest.mark.parametrize(
    ("cloud", "host"),
    [("usgov", "login.microsoftonline.us"), ("china", "login.chinacloudapi.cn")],
)
def test_microsoft_national_clouds_use_their_authority(cloud, host):
    assert microsoft_endpoints("common", cloud).token_url == (
        f"https://{host}/common/oauth2/v2.0/token"
    )


def test_google_mail_protocols_use_the_full_mail_scope():
    scopes = default_scopes(
        ProviderKind.GOOGLE, GrantType.AUTHORIZATION_CODE, {OUT: Transport.SMTP, IN: Transport.POP3}
    )
    assert scopes == ("https://mail.google.com/",)


def test_gmail_api_send_only_asks_for_gmail_send():
    scopes = default_scopes(
        ProviderKind.GOOGLE, GrantType.AUTHORIZATION_CODE, {OUT: Transport.GMAIL_API}
    )
    assert scopes == ("https://www.googleapis.com/auth/gmail.send",)


def test_microsoft_delegated_scopes_per_protocol_plus_offline_access():
    scopes = default_scopes(
        ProviderKind.MICROSOFT,
        GrantType.AUTHORIZATION_CODE,
        {OUT: Transport.SMTP, IN: Transport.POP3},
    )
    assert scopes == (
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "offline_access",
    )


def test_microsoft_app_only_uses_exchange_default_scope():
    scopes = default_scopes(
        ProviderKind.MICROSOFT, GrantType.CLIENT_CREDENTIALS, {OUT: Transport.SMTP}
    )
    assert scopes == ("https://outlook.office365.com/.default",)
    graph = default_scopes(
        ProviderKind.MICROSOFT, GrantType.CLIENT_CREDENTIALS, {OUT: Transport.GRAPH}
    )
    assert graph == ("https://graph.microsoft.com/.default",)


def test_microsoft_graph_delegated_send():
    scopes = default_scopes(
        ProviderKind.MICROSOFT, GrantType.AUTHORIZATION_CODE, {OUT: Transport.GRAPH}
    )
    assert scopes == ("https://graph.microsoft.com/Mail.Send", "offline_access")


def test_generic_has_no_preset_scopes():
    assert default_scopes(ProviderKind.GENERIC, GrantType.PASSWORD, {OUT: Transport.SMTP}) == ()


@pytest.mark.parametrize(
    ("kind", "transport", "security", "host"),
    [
        (ProviderKind.GOOGLE, Transport.SMTP, Security.STARTTLS, "smtp.gmail.com"),
        (ProviderKind.GOOGLE, Transport.SMTP, Security.SSL, "smtp.gmail.com"),
        (ProviderKind.GOOGLE, Transport.IMAP, Security.SSL, "imap.gmail.com"),
        (ProviderKind.GOOGLE, Transport.POP3, Security.SSL, "pop.gmail.com"),
        (ProviderKind.MICROSOFT, Transport.SMTP, Security.STARTTLS, "smtp.office365.com"),
        (ProviderKind.MICROSOFT, Transport.IMAP, Security.SSL, "outlook.office365.com"),
        (ProviderKind.MICROSOFT, Transport.POP3, Security.SSL, "outlook.office365.com"),
        (ProviderKind.MICROSOFT, Transport.SMTP, Security.SSL, None),
        (ProviderKind.GENERIC, Transport.SMTP, Security.STARTTLS, None),
    ],
)
def test_suggested_hosts(kind, transport, security, host):
    assert suggested_host(kind, transport, security) == host


def test_default_ports_follow_the_security_mode():
    assert DEFAULT_PORTS[Transport.SMTP] == {
        Security.STARTTLS: 587,
        Security.SSL: 465,
        Security.NONE: 25,
    }
    assert DEFAULT_PORTS[Transport.IMAP][Security.SSL] == 993
    assert DEFAULT_PORTS[Transport.IMAP][Security.STARTTLS] == 143
    assert DEFAULT_PORTS[Transport.POP3][Security.SSL] == 995
    assert DEFAULT_PORTS[Transport.POP3][Security.STARTTLS] == 110


@pytest.mark.parametrize(
    ("kind", "grant"),
    [
        (ProviderKind.GOOGLE, GrantType.PASSWORD),
        (ProviderKind.GOOGLE, GrantType.CLIENT_CREDENTIALS),
        (ProviderKind.GOOGLE, GrantType.DEVICE_CODE),
        (ProviderKind.MICROSOFT, GrantType.SERVICE_ACCOUNT),
    ],
)
def test_grants_a_provider_cannot_do_are_explained(kind, grant):
    reason = unsupported_grant_reason(kind, grant)
    assert reason
    assert "use" in reason


def test_grants_that_work_have_no_reason():
    assert unsupported_grant_reason(ProviderKind.MICROSOFT, GrantType.PASSWORD) is None
    assert unsupported_grant_reason(ProviderKind.GOOGLE, GrantType.SERVICE_ACCOUNT) is None
