"""A passthrough login over TLS: after STARTTLS (RFC 3207) or on an implicit-TLS listener
(RFC 8314), aiosmtpd hands the encrypted connection over to the passthrough machinery
right after the 235; the transaction goes through to the upstream, the session goes on,
and when the client leaves the relay counts the connection closed."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from pathlib import Path

import httpx
import pytest

from mailoauth.config import RelayTls
from mailoauth.oauth.tokens import TokenService
from mailoauth.relay import RelayMode, SmtpRelay, add_user
from mailoauth.store import SqlStore
from tests.net import free_port
from tests.unit.test_relay_passthrough import SENDER, Toy, message, store, toy

pytestmark = pytest.mark.integration
__all__ = ["store", "toy"]  # the fixtures, imported for this module's tests


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
async def test_a_passthrough_login_over_tls_is_handed_over_and_relayed(
    store: SqlStore,
    toy: Toy,
    pem: tuple[Path, Path],
    client_context: ssl.SSLContext,
    implicit: bool,
) -> None:
    _, password = add_user(store, "scanner", "scans", mode=RelayMode.PASSTHROUGH)
    async with httpx.AsyncClient() as http:
        relay = SmtpRelay(
            store,
            "127.0.0.1",
            free_port(),
            tls=RelayTls(*pem, implicit=implicit),
            loopback=False,  # AUTH only under TLS, as on a public address
            tokens=TokenService(store, http),
        )
        await relay.start()
        try:

            def send() -> tuple[dict[str, object], tuple[int, bytes], tuple[int, bytes]]:
                if implicit:
                    smtp = smtplib.SMTP_SSL(
                        "127.0.0.1", relay.port, context=client_context, timeout=10
                    )
                else:
                    smtp = smtplib.SMTP("127.0.0.1", relay.port, timeout=10)
                    smtp.starttls(context=client_context)
                with smtp:
                    smtp.login("scanner", password.reveal())
                    refused = smtp.sendmail(SENDER, ["bob@example.com"], message(1))
                    again = smtp.ehlo()  # a re-EHLO after the hand-over: the relay's own
                    return refused, again, smtp.noop()

            refused, again, noop = await asyncio.to_thread(send)
            assert refused == {}
            assert again[0] == 250
            assert b"SIZE" in again[1]
            assert noop == (250, b"OK")
            assert toy.messages == [message(1).replace(b"\n.", b"\n..") + b".\r\n"]
            counters = relay.counters
            assert counters.snapshot().messages == {("passthrough", "relayed"): 1}
            deadline = time.monotonic() + 5
            while counters.snapshot().connections.get("smtp", 0):
                assert time.monotonic() < deadline, counters.snapshot()
                await asyncio.sleep(0.02)
        finally:
            await relay.stop()
