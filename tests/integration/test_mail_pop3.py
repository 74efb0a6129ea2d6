"""``mailoauth.mail.pop3`` against the real Dovecot POP3 service: messages put in ALICE's
INBOX over LMTP come back byte for byte, each once (UIDL tracking), in order; delete and
keep; a handler that refuses a message loses nothing; a run that dies before QUIT
leaves its deletions undone and the next run finishes them without delivering again;
STLS and POP3S; refused logins; a transcript without the token."""

from __future__ import annotations

import base64
import poplib
from collections.abc import Callable
from pathlib import Path

import pytest

from mailoauth.errors import MailConnectionError, SaslError
from mailoauth.mail.fetched import FetchedMessage, FetchReport, MemoryLedger
from mailoauth.mail.pop3 import check_pop3, fetch_pop3
from mailoauth.mail.transcript import Transcript
from mailoauth.models import IncomingSettings
from mailoauth.sasl import XOAuth2Client
from mailoauth.secret import Secret
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, Dovecot

pytestmark = pytest.mark.integration

TokenFor = Callable[[str], str]


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, not even QUIT."""


class Handler:
    """The deliver callback: keeps what it was given; raises ``error`` on the
    ``fail_at``-th message (1-based) of this handler's life."""

    def __init__(self, fail_at: int = 0, error: BaseException | None = None) -> None:
        self.got: list[FetchedMessage] = []
        self.fail_at = fail_at
        self.error = error or RuntimeError("disk full")
        self.calls = 0

    async def __call__(self, message: FetchedMessage) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        self.got.append(message)

    @property
    def subjects(self) -> list[str]:
        return [_subject(message.data) for message in self.got]


def _subject(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.startswith(b"Subject: "):
            return line[9:].decode()
    return ""


def mail(subject: str, body: bytes = b"hello\r\n") -> bytes:
    head = f"From: sender@example.org\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
    return (
        head.encode()
        + f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\n".encode()
        + body
    )


def settings(
    dovecot: Dovecot, security: str = "none", after_fetch: str = "keep"
) -> IncomingSettings:
    port = dovecot.ports.pop3s if security == "ssl" else dovecot.ports.pop3
    return IncomingSettings(
        transport="pop3",  # type: ignore[arg-type]
        host=dovecot.host,
        port=port,
        security=security,  # type: ignore[arg-type]
        after_fetch=after_fetch,
    )


@pytest.fixture
def token(token_for: TokenFor) -> Secret:
    return Secret(token_for(ALICE))


async def fetch(
    dovecot: Dovecot,
    token: Secret,
    ledger: MemoryLedger,
    handler: Handler,
    **options: object,
) -> FetchReport:
    security = str(options.pop("security", "none"))
    after_fetch = str(options.pop("after_fetch", "keep"))
    return await fetch_pop3(
        settings(dovecot, security, after_fetch),
        ALICE,
        token,
        mailbox="alice",
        deliver=handler,
        ledger=ledger,
        ca_file=str(dovecot.ca_path),
        timeout=10,
        **options,  # type: ignore[arg-type]
    )


async def count(dovecot: Dovecot, token: Secret) -> int:
    return await check_pop3(settings(dovecot), ALICE, token, timeout=10)


def stored(dovecot: Dovecot) -> list[bytes]:
    """What Dovecot keeps on disk, oldest first, with the CRLF line ends POP3 sends."""
    files = [p for sub in ("new", "cur") for p in (Path(dovecot.mail_dir(ALICE)) / sub).glob("*")]
    files.sort(key=lambda p: p.name)
    return [p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for p in files]


# -- fetching ---------------------------------------------------------------------------------


async def test_messages_arrive_byte_for_byte_in_order_and_only_once(
    dovecot: Dovecot, token: Secret
):
    stuffed = b"a line\r\n.starts with a dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n."
    sent = [mail("first"), mail("dots", stuffed + b"\r\n"), mail("third", b"x" * 5000 + b"\r\n")]
    for message in sent:
        dovecot.deliver(ALICE, message)
    ledger, handler = MemoryLedger(), Handler()

    report = await fetch(dovecot, token, ledger, handler)

    assert handler.subjects == ["first", "dots", "third"]
    assert [m.data for m in handler.got] == stored(dovecot)
    for message, original in zip(handler.got, sent, strict=True):
        assert message.data.endswith(original)  # Dovecot adds Return-Path and the like
        assert (message.mailbox, message.folder) == ("alice", "INBOX")
    assert report.delivered == [m.uid for m in handler.got]
    assert len(set(report.delivered)) == 3
    assert (report.skipped, report.remaining, report.actions, report.error) == (0, 0, 0, None)

    again = Handler()
    second = await fetch(dovecot, token, ledger, again)
    assert again.got == []
    assert (second.delivered, second.skipped) == ([], 3)

    dovecot.deliver(ALICE, mail("later"))
    third = await fetch(dovecot, token, ledger, again)
    assert again.subjects == ["later"]
    assert third.skipped == 3
    assert await count(dovecot, token) == 4  # keep: all still on the server


async def test_delete_removes_what_was_delivered(dovecot: Dovecot, token: Secret):
    for subject in ("one", "two"):
        dovecot.deliver(ALICE, mail(subject))
    handler = Handler()
    report = await fetch(dovecot, token, MemoryLedger(), handler, after_fetch="delete")
    assert handler.subjects == ["one", "two"]
    assert report.actions == 2
    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=10)  # an independent client
    try:
        initial = base64.b64encode(XOAuth2Client(ALICE, token).start()).decode()
        assert pop._shortcmd(f"AUTH XOAUTH2 {initial}").startswith(b"+OK")
        assert pop.stat() == (0, 0)
    finally:
        pop.quit()


async def test_a_refused_message_stops_the_run_and_nothing_is_lost(dovecot: Dovecot, token: Secret):
    for subject in ("one", "two", "three"):
        dovecot.deliver(ALICE, mail(subject))
    ledger, handler = MemoryLedger(), Handler(fail_at=2)

    report = await fetch(dovecot, token, ledger, handler, after_fetch="delete")

    assert handler.subjects == ["one"]
    assert report.delivered == [handler.got[0].uid]
    assert report.remaining == 2
    assert report.error is not None
    assert "disk full" in report.error
    assert ledger.seen_ids["INBOX"] == {handler.got[0].uid}
    assert await count(dovecot, token) == 2  # "one" deleted at QUIT, the others kept

    retry = Handler()
    assert (await fetch(dovecot, token, ledger, retry)).remaining == 0
    assert retry.subjects == ["two", "three"]


async def test_a_run_that_dies_before_quit_deletes_nothing_and_the_next_run_finishes(
    dovecot: Dovecot, token: Secret
):
    for subject in ("one", "two"):
        dovecot.deliver(ALICE, mail(subject))
    ledger, crashing = MemoryLedger(), Handler(fail_at=2, error=Crash())
    with pytest.raises(Crash):
        await fetch(dovecot, token, ledger, crashing, after_fetch="delete")
    [delivered] = crashing.got
    assert ledger.seen_ids["INBOX"] == {delivered.uid}  # remembered as delivered ...
    assert await count(dovecot, token) == 2  # ... but its DELE was rolled back: no QUIT

    handler = Handler()
    report = await fetch(dovecot, token, ledger, handler, after_fetch="delete")
    assert handler.subjects == ["two"]  # "one" is not delivered a second time
    assert (report.skipped, report.actions) == (1, 2)
    assert await count(dovecot, token) == 0
    assert ledger.seen_ids["INBOX"] == {delivered.uid, handler.got[0].uid}
    await fetch(dovecot, token, ledger, handler)
    assert ledger.seen_ids["INBOX"] == set()  # trimmed to what the server still has


async def test_limit_takes_the_oldest_and_leaves_the_rest_for_next_time(
    dovecot: Dovecot, token: Secret
):
    for subject in ("one", "two", "three"):
        dovecot.deliver(ALICE, mail(subject))
    ledger, handler = MemoryLedger(), Handler()
    report = await fetch(dovecot, token, ledger, handler, limit=2)
    assert (handler.subjects, report.remaining) == (["one", "two"], 1)
    report = await fetch(dovecot, token, ledger, handler, limit=2)
    assert (handler.subjects, report.remaining) == (["one", "two", "three"], 0)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_stls_and_pop3s(dovecot: Dovecot, token: Secret, security: str):
    dovecot.deliver(ALICE, mail("over tls"))
    transcript = Transcript("pop3")
    handler = Handler()
    await fetch(dovecot, token, MemoryLedger(), handler, security=security, transcript=transcript)
    assert handler.subjects == ["over tls"]
    notes = [line.text for line in transcript.lines if line.direction == "*"]
    assert ("TLS started" in notes) == (security == "starttls")


async def test_a_certificate_from_another_ca_is_refused(dovecot: Dovecot, token: Secret):
    with pytest.raises(MailConnectionError) as failed:
        await fetch_pop3(
            settings(dovecot, "ssl"),
            ALICE,
            token,
            mailbox="alice",
            deliver=Handler(),
            ledger=MemoryLedger(),
            timeout=10,
        )
    assert failed.value.tls
    assert f"{dovecot.host}:{dovecot.ports.pop3s}" in str(failed.value)


# -- logins and transcripts -------------------------------------------------------------------


async def test_check_counts_the_messages(dovecot: Dovecot, token: Secret):
    assert await count(dovecot, token) == 0
    for subject in ("one", "two"):
        dovecot.deliver(ALICE, mail(subject))
    assert (
        await check_pop3(settings(dovecot, "ssl"), ALICE, token, ca_file=str(dovecot.ca_path)) == 2
    )


async def test_a_garbage_token_is_refused_for_good(dovecot: Dovecot, token_for: TokenFor):
    token_for(ALICE)  # registers the users
    garbage = "not-a-token-" + "x" * 300  # too long for the AUTH line: sent after "+ "
    dovecot.deliver(ALICE, mail("kept"))
    handler = Handler()
    with pytest.raises(SaslError) as refused:
        await fetch(dovecot, Secret(garbage), MemoryLedger(), handler)
    assert not refused.value.temporary
    assert refused.value.status == "invalid_token"  # auto picks OAUTHBEARER from CAPA
    assert "[AUTH]" in refused.value.server_message
    assert f"{dovecot.host}:{dovecot.ports.pop3}" in str(refused.value)
    assert garbage not in str(refused.value)
    assert handler.got == []


async def test_a_revoked_token_is_refused_for_good(
    dovecot: Dovecot, auth_server: AuthServer, token: Secret
):
    auth_server.revoke_user(ALICE)
    with pytest.raises(SaslError) as refused:
        await check_pop3(settings(dovecot), ALICE, token, mechanism="xoauth2", timeout=10)
    assert (refused.value.temporary, refused.value.status) == (False, "401")
    assert token.reveal() not in str(refused.value)


async def test_the_transcript_shows_the_commands_but_not_the_token(dovecot: Dovecot, token: Secret):
    dovecot.deliver(ALICE, mail("traced"))
    transcript = Transcript("pop3")
    await fetch(dovecot, token, MemoryLedger(), Handler(), transcript=transcript)
    text = "\n".join(line.render() for line in transcript.lines)
    assert "C: UIDL" in text
    assert "C: RETR 1" in text
    assert "Subject: traced" in text
    assert "C: AUTH OAUTHBEARER [redacted" in text
    secret = token.reveal()
    assert secret not in text
    assert base64.b64encode(secret.encode()).decode() not in text
    assert "auth=Bearer" not in text
