"""The SMTP relay with TLS, in-process on 127.0.0.1 against a real SQLite store, spoken
to by Python's smtplib with a trustme CA: STARTTLS (RFC 3207) then AUTH, implicit TLS
(RFC 8314), AUTH in the clear refused with 538 on a listener that is not loopback
(RFC 4954 section 6), and a key that does not match its certificate refused at start."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailoauth.config import RelayTls
from mailoauth.errors import ConfigError
from mailoauth.relay import SmtpRelay, add_user
from mailoauth.store import SqlStore, open_store
from tests import store_samples as s
from tests.net import free_port
from tests.stores import sqlite_settings
from tests.unit.test_relay_smtp import SALES, note

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Any:
    home = tmp_path / "home"
    settings = sqlite_settings(home)
    store = open_store(settings)
    store.put_provider(s.microsoft())
    store.put_mailbox(s.smtp_imap())
    yield store
    store.close()


@pytest.fixture
def password(store: SqlStore) -> str:
    return add_user(store, "pbx", "sales")[1].reveal()


@asynccontextmanager
async def running(relay: SmtpRelay) -> AsyncIterator[SmtpRelay]:
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


def relay_of(store: SqlStore, pem: tuple[Path, Path], **kw: Any) -> SmtpRelay:
    implicit = kw.pop("implicit", False)
    return SmtpRelay(store, "127.0.0.1", free_port(), tls=RelayTls(*pem, implicit=implicit), **kw)


async def in_thread(work: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(work)


def send(smtp: smtplib.SMTP, password: str) -> tuple[int, bytes]:
    smtp.login("pbx", password)
    smtp.mail(SALES)
    smtp.rcpt("bob@example.com")
    return smtp.data(note().as_bytes())


async def test_starttls_then_login_queues_the_message(
    store: SqlStore, pem: tuple[Path, Path], client_context: ssl.SSLContext, password: str
) -> None:
    async with running(relay_of(store, pem, loopback=False)) as relay:

        def work() -> tuple[bool, tuple[int, bytes], str | None]:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as smtp:
                smtp.ehlo("test")
                offered = smtp.has_extn("starttls")
                smtp.starttls(context=client_context)
                smtp.ehlo("test")
                sock = smtp.sock
                version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
                return offered, send(smtp, password), version

        offered, (code, reply), version = await in_thread(work)
        (entry,) = store.list_outbound()
        assert offered
        assert version in ("TLSv1.2", "TLSv1.3")
        assert (code, reply.decode()) == (250, f"2.0.0 queued as {entry.id}")
        assert entry.mailbox == "sales"


async def test_auth_before_starttls_off_loopback_is_refused_with_538(
    store: SqlStore, pem: tuple[Path, Path], password: str
) -> None:
    async with running(relay_of(store, pem, loopback=False)) as relay:

        def work() -> tuple[bool, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as smtp:
                smtp.ehlo("test")
                initial = base64.b64encode(f"\0pbx\0{password}".encode()).decode()
                return smtp.has_extn("auth"), smtp.docmd("AUTH", f"PLAIN {initial}")

        advertised, (code, reply) = await in_thread(work)
        assert not advertised
        assert code == 538
        assert reply.decode().startswith("5.7.11 Encryption required")
        assert store.list_outbound() == []


async def test_a_listener_off_loopback_without_tls_never_takes_a_password(
    store: SqlStore, password: str
) -> None:
    relay = SmtpRelay(store, "127.0.0.1", free_port(), loopback=False)
    async with running(relay):

        def work() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as smtp:
                smtp.ehlo("test")
                initial = base64.b64encode(f"\0pbx\0{password}".encode()).decode()
                return smtp.docmd("AUTH", f"PLAIN {initial}")

        code, _ = await in_thread(work)
        assert code == 538


async def test_a_loopback_listener_with_starttls_still_takes_auth_in_the_clear(
    store: SqlStore, pem: tuple[Path, Path], password: str
) -> None:
    async with running(relay_of(store, pem)) as relay:

        def work() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as smtp:
                smtp.ehlo("test")
                return send(smtp, password)

        code, _ = await in_thread(work)
        assert code == 250
        assert len(store.list_outbound()) == 1


async def test_implicit_tls_with_smtp_ssl(
    store: SqlStore, pem: tuple[Path, Path], client_context: ssl.SSLContext, password: str
) -> None:
    async with running(relay_of(store, pem, loopback=False, implicit=True)) as relay:

        def work() -> tuple[bool, tuple[int, bytes]]:
            with smtplib.SMTP_SSL(
                "127.0.0.1", relay.port, timeout=5, context=client_context
            ) as smtp:
                smtp.ehlo("test")
                return smtp.has_extn("starttls"), send(smtp, password)

        starttls, (code, reply) = await in_thread(work)
        (entry,) = store.list_outbound()
        assert not starttls  # already encrypted
        assert (code, reply.decode()) == (250, f"2.0.0 queued as {entry.id}")


async def test_a_plain_client_gets_nothing_from_an_implicit_tls_listener(
    store: SqlStore, pem: tuple[Path, Path]
) -> None:
    async with running(relay_of(store, pem, implicit=True)) as relay:

        def work() -> None:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=2) as smtp:
                smtp.ehlo("test")

        with pytest.raises((smtplib.SMTPServerDisconnected, TimeoutError, OSError)):
            await in_thread(work)


async def test_a_key_not_matching_the_certificate_is_a_config_error_at_start(
    store: SqlStore, ca: trustme.CA, pem: tuple[Path, Path], tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other))
    relay = relay_of(store, (pem[0], other))
    with pytest.raises(ConfigError) as caught:
        await relay.start()
    assert caught.value.field == "MAILOAUTH_RELAY_TLS_KEY"
    assert "is not the private key of the certificate" in str(caught.value)
