"""Sample configuration for the store tests (SQLite and PostgreSQL share it), with secrets
distinctive enough to search for in raw database bytes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

from mailoauth.models import Grant, IncomingSettings, Mailbox, OutgoingSettings, Provider
from mailoauth.providers import ClientAuthMethod, GrantType, ProviderKind
from mailoauth.secret import Secret
from tests.material import cert_pem, key_pem, rsa_key

CLIENT_SECRET = "cs-7Hq2-DISTINCT-client-secret-zX91"
MS_CLIENT_SECRET = "cs-Contoso-DISTINCT-secret-Qm55"
PASSWORD = "pw-Lemon-Kite-DISTINCT-4471"
REFRESH_TOKEN = "rt-1//0gDISTINCT-refresh-token-Qp8"
ACCESS_TOKEN = "at-ya29.DISTINCT-access-token-Mn3"
PUBLIC_CLIENT_ID = "client-id-PUBLIC-4f1e.apps.googleusercontent.com"


def pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


JWT_KEY_PEM = key_pem(rsa_key())
SA_KEY_PEM = key_pem(rsa_key(n=1))
JWT_CERT_PEM = cert_pem(rsa_key())


def google() -> Provider:
    return Provider(
        name="google-main",
        kind=ProviderKind.GOOGLE,
        client_id=PUBLIC_CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET),
    )


def microsoft() -> Provider:
    return Provider(
        name="contoso",
        kind=ProviderKind.MICROSOFT,
        tenant="contoso.onmicrosoft.com",
        client_id="00000000-1111-2222-3333-444444444444",
        client_secret=Secret(MS_CLIENT_SECRET),
    )


def generic() -> Provider:
    return Provider(
        name="corp",
        kind=ProviderKind.GENERIC,
        client_id="mailoauth",
        client_auth=ClientAuthMethod.CLIENT_SECRET_BASIC,
        client_secret=Secret("corp-client-secret"),
        authorization_url="https://id.example.com/authorize",
        token_url="https://id.example.com/token",
        scopes=("mail", "offline_access"),
    )


def private_key_jwt() -> Provider:
    return Provider(
        name="contoso-cert",
        kind=ProviderKind.MICROSOFT,
        tenant="8f3c2b1a-0d4e-4f5a-9b6c-7d8e9f0a1b2c",
        client_id="55555555-6666-7777-8888-999999999999",
        client_auth=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=Secret(JWT_KEY_PEM),
        certificate=JWT_CERT_PEM,
    )


def all_providers() -> list[Provider]:
    return [google(), microsoft(), generic(), private_key_jwt()]


def smtp_imap() -> Mailbox:
    return Mailbox(
        name="sales",
        provider="contoso",
        login="sales@contoso.com",
        outgoing=OutgoingSettings(host="smtp.office365.com"),
        incoming=IncomingSettings(host="outlook.office365.com", folder="Orders"),
        display_name="Sales",
    )


def password_grant() -> Mailbox:
    return Mailbox(
        name="legacy",
        provider="corp",
        login="legacy@example.com",
        grant=GrantType.PASSWORD,
        password=Secret(PASSWORD),
        outgoing=OutgoingSettings(host="smtp.example.com"),
    )


def service_account() -> Mailbox:
    return Mailbox(
        name="ops",
        provider="google-main",
        login="ops@example.com",
        grant=GrantType.SERVICE_ACCOUNT,
        service_account_email="sa@proj.iam.gserviceaccount.com",
        service_account_key_id="0123456789abcdef",
        service_account_key=Secret(SA_KEY_PEM),
        incoming=IncomingSettings(host="imap.gmail.com"),
    )


def all_mailboxes() -> list[Mailbox]:
    return [smtp_imap(), password_grant(), service_account()]


def grant(mailbox: str = "sales") -> Grant:
    plus_two = timezone(timedelta(hours=2))
    return Grant(
        mailbox=mailbox,
        access_token=Secret(ACCESS_TOKEN),
        refresh_token=Secret(REFRESH_TOKEN),
        expires_at=datetime(2031, 5, 1, 14, 30, 15, 123456, tzinfo=plus_two),
        scopes=("https://outlook.office.com/SMTP.Send", "offline_access"),
        authorized_as="sales@contoso.com",
        authorized_at=datetime(2031, 5, 1, 13, 0, tzinfo=UTC),
        refreshed_at=datetime(2031, 5, 1, 13, 30, 15, 500, tzinfo=UTC),
    )


def secret_values() -> list[str]:
    """Every secret in the samples, and the forms an encoder might store them in."""
    values = [CLIENT_SECRET, MS_CLIENT_SECRET, PASSWORD, REFRESH_TOKEN, ACCESS_TOKEN]
    values += pem_body_lines(JWT_KEY_PEM) + pem_body_lines(SA_KEY_PEM)
    encoded = [base64.b64encode(v.encode()).decode() for v in values[:5]]
    return values + encoded


def store_everything(store) -> None:
    store.apply(all_providers(), all_mailboxes())
    store.put_grant(grant("sales"))
