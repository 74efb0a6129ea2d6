"""``mailoauth.mail.smtp.send_message`` against the real Dovecot submission service
(STARTTLS with the fixture's CA, XOAUTH2 and OAUTHBEARER), delivered through LMTP into
the recipient's Maildir; the size check against an aiosmtpd server with a SIZE limit."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from mailoauth.errors import (
    MailConnectionError,
    MessageTooLarge,
    RecipientsRefused,
    SaslError,
)
from mailoauth.mail import send
from mailoauth.mail.smtp import send_message
from mailoauth.mail.smtp_batch import send_messages
from mailoauth.models import Grant, GrantStatus, Mailbox, OutgoingSettings
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import GrantType
from mailoauth.secret import Secret
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot
from tests.stores import open_sqlite

pytestmark = pytest.mark.integration

GARBAGE = "not-a-token-the-server-ever-issued"

TokenFor = Callable[[str], Secret]


@pytest.fixture
def secret_for(token_for: Callable[[str], str]) -> TokenFor:
    """The peer's user tokens, as the Secret the library takes."""
    return lambda user: Secret(token_for(user))


def submission(dovecot: Dovecot, **overrides: object) -> OutgoingSettings:
    fields: dict[str, object] = {
        "host": dovecot.host,
        "port": dovecot.ports.submission,
        "security": "starttls",
    }
    fields.update(overrides)
    return OutgoingSettings(**fields)  # type: ignore[arg-type]


def make_message(subject: str, to: str = BOB, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = ALICE
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@example.com>"
    for name, value in headers.items():
        message[name] = value
    message.set_content(f"{subject}: sent by mailoauth.mail.smtp\n")
    return message


def inbox(dovecot: Dovecot, user: str) -> list[email.message.Message]:
    found = []
    for sub in ("new", "cur"):
        folder = Path(dovecot.mail_dir(user)) / sub
        if folder.is_dir():
            found += [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.iterdir())]
    return found


@pytest.mark.parametrize("mechanism", ["auto", "xoauth2", "oauthbearer"])
async def test_a_sent_message_arrives_in_the_recipients_inbox(
    dovecot: Dovecot, secret_for: TokenFor, mechanism: str
):
    message = make_message(f"hello {mechanism}", Cc="carol@example.com")
    await send_message(
        submission(dovecot),
        ALICE,
        secret_for(ALICE),
        message,
        mechanism=mechanism,
        ca_file=str(dovecot.ca_path),
        timeout=10,
    )
    for user in (BOB, "carol@example.com"):
        [got] = inbox(dovecot, user)
        assert got["Message-ID"] == message["Message-ID"]
        assert "sent by mailoauth.mail.smtp" in got.get_payload()


@pytest.mark.parametrize(
    ("mechanism", "status"), [("xoauth2", "401"), ("oauthbearer", "invalid_token")]
)
async def test_a_bad_token_is_refused_with_the_challenges_status(
    dovecot: Dovecot, secret_for: TokenFor, mechanism: str, status: str
):
    secret_for(ALICE)  # registers the users
    with pytest.raises(SaslError) as refused:
        await send_message(
            submission(dovecot),
            ALICE,
            Secret(GARBAGE),
            make_message("refused"),
            mechanism=mechanism,
            ca_file=str(dovecot.ca_path),
            timeout=10,
        )
    assert refused.value.status == status
    assert refused.value.mechanism == mechanism.upper()
    assert not refused.value.temporary
    assert "535" in refused.value.server_message
    assert GARBAGE not in str(refused.value)
    assert inbox(dovecot, BOB) == []


async def test_an_unreachable_server_is_named_with_its_port(dovecot: Dovecot):
    port = free_port()
    with pytest.raises(MailConnectionError) as failed:
        await send_message(
            submission(dovecot, port=port),
            ALICE,
            Secret(GARBAGE),
            make_message("unreachable"),
            ca_file=str(dovecot.ca_path),
            timeout=5,
        )
    assert f"127.0.0.1:{port}" in str(failed.value)
    assert "outgoing.port" in str(failed.value)
    assert failed.value.temporary
    assert GARBAGE not in str(failed.value)


async def test_the_alternate_host_is_used_when_the_primary_port_is_closed(
    dovecot: Dovecot, secret_for: TokenFor
):
    settings = submission(
        dovecot,
        port=free_port(),
        alternate_host=dovecot.host,
        alternate_port=dovecot.ports.submission,
    )
    await send_message(
        settings,
        ALICE,
        secret_for(ALICE),
        make_message("via alternate"),
        ca_file=str(dovecot.ca_path),
        timeout=10,
    )
    [got] = inbox(dovecot, BOB)
    assert got["Subject"] == "via alternate"


async def test_an_untrusted_certificate_is_a_tls_error(dovecot: Dovecot):
    with pytest.raises(MailConnectionError) as failed:
        await send_message(
            submission(dovecot),
            ALICE,
            Secret(GARBAGE),
            make_message("untrusted"),
            ca_file=None,  # the system CAs do not know the test CA
            timeout=10,
        )
    assert failed.value.tls
    assert not failed.value.temporary
    assert "TLS with 127.0.0.1" in str(failed.value)


async def test_refused_recipients_are_each_named_and_nothing_is_sent(
    dovecot: Dovecot, secret_for: TokenFor
):
    bad = ["bob@[1.2.3]", "carol@[300.1.1.1]"]  # Dovecot: 501 Invalid TO
    message = make_message("some refused", to=f"{BOB}, " + ", ".join(bad))
    with pytest.raises(RecipientsRefused) as refused:
        await send_message(
            submission(dovecot),
            ALICE,
            secret_for(ALICE),
            message,
            ca_file=str(dovecot.ca_path),
            timeout=10,
        )
    assert sorted(refused.value.refused) == sorted(bad)
    for address in bad:
        assert address in str(refused.value)
        assert refused.value.refused[address].startswith("501 ")
    assert not refused.value.temporary
    assert inbox(dovecot, BOB) == []


class _Accept:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        return "250 OK"


async def test_a_message_over_the_size_limit_is_refused_before_login():
    controller = Controller(_Accept(), hostname="127.0.0.1", port=free_port(), data_size_limit=2000)
    controller.start()
    try:
        message = make_message("too large")
        message.set_content("x" * 5000)
        settings = OutgoingSettings(host="127.0.0.1", port=controller.port, security="none")
        with pytest.raises(MessageTooLarge) as refused:
            await send_message(settings, ALICE, Secret(GARBAGE), message, timeout=5)
    finally:
        controller.stop()
    assert refused.value.limit == 2000
    assert refused.value.size > 5000
    assert "2000 bytes" in str(refused.value)


async def test_send_fills_the_headers_and_refreshes_a_refused_token_once(
    dovecot: Dovecot, auth_server: AuthServer, token_for: Callable[[str], str], tmp_path: Path
):
    """The library path with real parts: a store whose grant holds a token Dovecot refuses
    (revoked early, as far as mailoauth can tell still valid for an hour), the token
    service refreshing it at the test authorization server, Dovecot taking the new one."""
    del token_for  # registers the client "app" and the users
    home = tmp_path / "home"
    store = open_sqlite(home)
    try:
        store.put_provider(auth_server.mail_provider())
        store.put_mailbox(
            Mailbox(
                name="alice",
                provider="test",
                login=ALICE,
                grant=GrantType.PASSWORD,
                password=Secret(PASSWORD),
                display_name="Alice Example",
                reply_to="replies@example.com",
                outgoing=submission(dovecot),
            )
        )
        store.put_grant(
            Grant(
                mailbox="alice",
                access_token=Secret(GARBAGE),
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        message = EmailMessage()
        message["To"] = BOB
        message["Subject"] = "through send()"
        message.set_content("headers filled by mailoauth.mail.send\n")
        before = auth_server.token_requests()
        async with httpx.AsyncClient() as http:
            tokens = TokenService(store, http)
            await send(store, tokens, "alice", message, ca_file=str(dovecot.ca_path), timeout=10)
            await tokens.drain()
        assert auth_server.token_requests() == before + 1  # refreshed exactly once
        grant = store.get_grant("alice")
        assert grant is not None
        assert grant.access_token != Secret(GARBAGE)
        assert grant.status is GrantStatus.CONNECTED
        assert grant.last_error is None
    finally:
        store.close()
    assert message["From"] is None  # the caller's message is left as it was
    [got] = inbox(dovecot, BOB)
    assert got["From"] == f"Alice Example <{ALICE}>"
    assert got["Reply-To"] == "replies@example.com"
    assert got["Message-ID"].endswith("@example.com>")
    assert got["Date"]


async def test_send_messages_delivers_a_batch_over_one_login(
    dovecot: Dovecot, secret_for: TokenFor
):
    messages = [make_message(f"batch {n}") for n in range(3)]
    await send_messages(
        submission(dovecot),
        ALICE,
        secret_for(ALICE),
        messages,
        ca_file=str(dovecot.ca_path),
        timeout=10,
    )
    got = sorted(m["Message-ID"] for m in inbox(dovecot, BOB))
    assert got == sorted(m["Message-ID"] for m in messages)
    logins = [
        line for line in dovecot.log_text().splitlines() if "submission-login: Info: Login:" in line
    ]
    assert len(logins) == 1, logins
    assert f"user=<{ALICE}>" in logins[0]
