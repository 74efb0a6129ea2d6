"""``mailoauth.mail.imap`` against the real Dovecot: fetch over IMAPS and STARTTLS with
OAUTHBEARER / XOAUTH2, the ledger's cursor, every after-fetch action (and the fallbacks
for servers without MOVE or UIDPLUS), a refusing handler, ``limit``, a changed
UIDVALIDITY, refused logins and the transcript.

What the server holds afterwards is checked with a second, independent client: Python's
imaplib, logging in with a hand-built XOAUTH2 message.
"""

from __future__ import annotations

import base64
import imaplib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from mailoauth.errors import ConfigError, SaslError
from mailoauth.mail.fetched import Cursor, FetchedMessage, FetchReport, MemoryLedger
from mailoauth.mail.imap import check_imap, fetch_imap
from mailoauth.mail.imap_session import ImapSession
from mailoauth.mail.transcript import Transcript
from mailoauth.models import IncomingSettings
from mailoauth.secret import Secret
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, Dovecot

pytestmark = pytest.mark.integration

GARBAGE = "not-a-token-the-server-ever-issued"
ARCHIVE = "Entwürfe"  # not ASCII: travels as modified UTF-7 ("Entw&APw-rfe")

TokenFor = Callable[[str], str]


def message(n: int) -> bytes:
    return (
        f"From: sender@example.org\r\nTo: {ALICE}\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.org>\r\n\r\nbody of message {n}\r\n"
    ).encode()


def incoming(dovecot: Dovecot, **overrides: object) -> IncomingSettings:
    fields: dict[str, object] = {
        "host": dovecot.host,
        "port": dovecot.ports.imaps,
        "security": "ssl",
    }
    fields.update(overrides)
    return IncomingSettings(**fields)  # type: ignore[arg-type]


@dataclass
class Handler:
    """Collects what it is handed; refuses the message whose subject is ``refuse``."""

    refuse: str | None = None
    got: list[FetchedMessage] = field(default_factory=list)

    async def __call__(self, fetched: FetchedMessage) -> None:
        if self.refuse is not None and f"Subject: {self.refuse}\r\n".encode() in fetched.data:
            raise RuntimeError(f"the handler is full ({self.refuse})")
        self.got.append(fetched)


@dataclass
class Fetcher:
    dovecot: Dovecot
    token: str
    ledger: MemoryLedger = field(default_factory=MemoryLedger)

    async def __call__(
        self, handler: Handler | None = None, **options: object
    ) -> tuple[FetchReport, Handler]:
        handler = handler or Handler()
        settings = {k: options.pop(k) for k in ("port", "security", "after_fetch") if k in options}
        report = await fetch_imap(
            incoming(self.dovecot, **settings),
            ALICE,
            Secret(self.token),
            mailbox="alice",
            deliver=handler,
            ledger=self.ledger,
            ca_file=str(self.dovecot.ca_path),
            timeout=10,
            **options,  # type: ignore[arg-type]
        )
        return report, handler


@pytest.fixture
def fetch(dovecot: Dovecot, token_for: TokenFor) -> Fetcher:
    return Fetcher(dovecot, token_for(ALICE))


def server(dovecot: Dovecot, token: str) -> imaplib.IMAP4_SSL:
    """An independent IMAP session as ALICE (imaplib, XOAUTH2 built by hand)."""
    imap = imaplib.IMAP4_SSL(
        dovecot.host, dovecot.ports.imaps, ssl_context=dovecot.ssl_context(), timeout=10
    )
    xoauth2 = f"user={ALICE}\x01auth=Bearer {token}\x01\x01".encode()
    assert imap.authenticate("XOAUTH2", lambda _: xoauth2)[0] == "OK"
    return imap


def flags_by_subject(dovecot: Dovecot, token: str, folder: str = "INBOX") -> dict[str, set[str]]:
    """Subject → flags of every message in ``folder``, as imaplib sees it (read-only)."""
    imap = server(dovecot, token)
    try:
        typ, count = imap.select(folder, readonly=True)  # folder: ASCII without spaces here
        assert typ == "OK"
        found: dict[str, set[str]] = {}
        if count == [b"0"]:
            return found
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for item in data:
            if isinstance(item, tuple):
                subject = item[1].decode().strip().removeprefix("Subject: ")
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                found[subject] = set(flags.group(1).decode().split()) if flags else set()
        return found
    finally:
        imap.logout()


def exact_bytes(dovecot: Dovecot, token: str) -> list[bytes]:
    imap = server(dovecot, token)
    try:
        imap.select("INBOX", readonly=True)
        _, numbers = imap.search(None, "ALL")
        return [imap.fetch(n, "(BODY.PEEK[])")[1][0][1] for n in numbers[0].split()]  # type: ignore[index]
    finally:
        imap.logout()


def subjects(handler: Handler) -> list[str]:
    return [re.search(rb"Subject: (.*)\r\n", m.data).group(1).decode() for m in handler.got]  # type: ignore[union-attr]


# -- fetching and the cursor ------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["auto", "xoauth2"])
async def test_new_messages_arrive_oldest_first_with_the_servers_bytes_once(
    dovecot: Dovecot, fetch: Fetcher, mechanism: str
):
    for n in (1, 2, 3):
        dovecot.deliver(ALICE, message(n))
    report, handler = await fetch(mechanism=mechanism)
    assert subjects(handler) == ["message 1", "message 2", "message 3"]
    assert [m.data for m in handler.got] == exact_bytes(dovecot, fetch.token)
    assert all(m.data.endswith(message(n)) for n, m in zip((1, 2, 3), handler.got, strict=True))
    validity = handler.got[0].uid.split(".")[0]
    assert [m.uid for m in handler.got] == [f"{validity}.{uid}" for uid in (1, 2, 3)]
    assert {(m.mailbox, m.folder) for m in handler.got} == {("alice", "INBOX")}
    assert (report.delivered, report.remaining, report.actions, report.error) == (
        [m.uid for m in handler.got],
        0,
        0,
        None,
    )
    assert fetch.ledger.cursors["INBOX"] == Cursor(validity, "3")

    again, handler = await fetch(mechanism=mechanism)
    assert handler.got == []
    assert (again.delivered, again.skipped) == ([], 3)

    dovecot.deliver(ALICE, message(4))
    later, handler = await fetch(mechanism=mechanism)
    assert subjects(handler) == ["message 4"]
    assert later.skipped == 3
    # keep: BODY.PEEK and EXAMINE left everything unseen
    assert all("\\Seen" not in f for f in flags_by_subject(dovecot, fetch.token).values())


async def test_starttls_on_the_imap_port(dovecot: Dovecot, fetch: Fetcher):
    dovecot.deliver(ALICE, message(1))
    transcript = Transcript("imap")
    report, handler = await fetch(
        port=dovecot.ports.imap, security="starttls", transcript=transcript
    )
    assert subjects(handler) == ["message 1"]
    texts = [line.text for line in transcript.lines]
    starttls = next(i for i, t in enumerate(texts) if re.fullmatch(r"A\d+ STARTTLS", t))
    authenticate = next(i for i, t in enumerate(texts) if " AUTHENTICATE " in t)
    assert starttls < texts.index("TLS started") < authenticate
    assert report.error is None


async def test_limit_takes_the_oldest_and_leaves_the_rest_for_next_time(
    dovecot: Dovecot, fetch: Fetcher
):
    for n in (1, 2, 3):
        dovecot.deliver(ALICE, message(n))
    report, handler = await fetch(limit=2)
    assert subjects(handler) == ["message 1", "message 2"]
    assert report.remaining == 1
    report, handler = await fetch()
    assert subjects(handler) == ["message 3"]
    assert report.remaining == 0


async def test_a_changed_uidvalidity_voids_the_cursor(dovecot: Dovecot, fetch: Fetcher):
    for n in (1, 2):
        dovecot.deliver(ALICE, message(n))
    fetch.ledger.cursors["INBOX"] = Cursor("12345", "99")  # another folder incarnation
    transcript = Transcript("imap")
    report, handler = await fetch(transcript=transcript)
    assert subjects(handler) == ["message 1", "message 2"]
    assert fetch.ledger.cursors["INBOX"].validity != "12345"
    assert "fetched from the start" in report.notes[0]
    assert any("UIDVALIDITY" in line.text and "12345" in line.text for line in transcript.lines)


# -- the handler refuses ----------------------------------------------------------------------
async def test_a_refusing_handler_stops_the_run_and_loses_nothing(dovecot: Dovecot, fetch: Fetcher):
    for n in (1, 2, 3):
        dovecot.deliver(ALICE, message(n))
    report, handler = await fetch(Handler(refuse="message 2"), after_fetch="seen")
    assert subjects(handler) == ["message 1"]
    assert report.error == "the handler is full (message 2)"
    assert (len(report.delivered), report.remaining, report.actions) == (1, 2, 1)
    assert fetch.ledger.cursors["INBOX"].position == "1"
    flags = flags_by_subject(dovecot, fetch.token)
    assert ["\\Seen" in flags[f"message {n}"] for n in (1, 2, 3)] == [True, False, False]

    report, handler = await fetch(after_fetch="seen")
    assert subjects(handler) == ["message 2", "message 3"]
    assert report.error is None


# -- after-fetch actions ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "fallback"),
    [
        ("seen", False),
        ("delete", False),
        ("delete", True),
        (f"move:{ARCHIVE}", False),
        (f"move:{ARCHIVE}", True),
    ],
    ids=["seen", "delete", "delete without UIDPLUS", "move", "move without MOVE and UIDPLUS"],
)
async def test_after_fetch_actions_show_at_the_server(
    dovecot: Dovecot, fetch: Fetcher, monkeypatch: pytest.MonkeyPatch, action: str, fallback: bool
):
    if fallback:
        monkeypatch.setattr(ImapSession, "ignored", frozenset({"MOVE", "UIDPLUS"}))
    for n in (1, 2):
        dovecot.deliver(ALICE, message(n))
    transcript = Transcript("imap")
    report, handler = await fetch(after_fetch=action, transcript=transcript)
    assert subjects(handler) == ["message 1", "message 2"]
    assert report.actions == 2
    inbox = flags_by_subject(dovecot, fetch.token)
    sent = [line.text for line in transcript.lines if line.direction == "C"]
    if action == "seen":
        assert inbox == {"message 1": {"\\Seen"}, "message 2": {"\\Seen"}}
    else:
        assert inbox == {}
    if action.startswith("move"):
        moved = flags_by_subject(dovecot, fetch.token, "Entw&APw-rfe")
        assert set(moved) == {"message 1", "message 2"}
        assert any(t.endswith("CREATE Entw&APw-rfe") for t in sent)  # TRYCREATE, then made
        assert any(("UID COPY" if fallback else "UID MOVE") in t for t in sent)
    if fallback and action != "seen":
        assert sum(re.fullmatch(r"A\d+ EXPUNGE", t) is not None for t in sent) == 1
        assert not any("UID EXPUNGE" in t for t in sent)


# -- logins, folders, transcripts -------------------------------------------------------------
@pytest.mark.parametrize("which", ["garbage", "revoked"])
async def test_a_refused_token_is_a_sasl_error_that_is_not_temporary(
    dovecot: Dovecot, auth_server: AuthServer, token_for: TokenFor, which: str
):
    token = GARBAGE if which == "garbage" else token_for(ALICE)
    if which == "revoked":
        auth_server.revoke_user(ALICE)
    with pytest.raises(SaslError) as refused:
        await check_imap(
            incoming(dovecot), ALICE, Secret(token), ca_file=str(dovecot.ca_path), timeout=10
        )
    assert not refused.value.temporary
    assert "AUTHENTICATIONFAILED" in refused.value.server_message
    assert token not in str(refused.value)


async def test_check_lists_the_folders_decoded(dovecot: Dovecot, token_for: TokenFor):
    token = token_for(ALICE)
    imap = server(dovecot, token)
    try:
        assert imap.create("Entw&APw-rfe")[0] == "OK"
    finally:
        imap.logout()
    names = await check_imap(
        incoming(dovecot, port=dovecot.ports.imap, security="starttls"),
        ALICE,
        Secret(token),
        ca_file=str(dovecot.ca_path),
        timeout=10,
    )
    assert sorted(names) == sorted(["INBOX", ARCHIVE])


async def test_a_missing_folder_is_named(dovecot: Dovecot, fetch: Fetcher):
    fetch.dovecot = dovecot
    with pytest.raises(ConfigError) as missing:
        await fetch_imap(
            incoming(dovecot, folder="No Such Folder"),
            ALICE,
            Secret(fetch.token),
            mailbox="alice",
            deliver=Handler(),
            ledger=fetch.ledger,
            ca_file=str(dovecot.ca_path),
            timeout=10,
        )
    assert missing.value.field == "incoming.folder"
    assert "'No Such Folder'" in str(missing.value)
    assert f"{dovecot.host}:{dovecot.ports.imaps}" in str(missing.value)


async def test_the_transcript_shows_the_conversation_but_never_the_token(
    dovecot: Dovecot, fetch: Fetcher
):
    dovecot.deliver(ALICE, message(1))
    transcript = Transcript("imap")
    await fetch(transcript=transcript, after_fetch="seen")
    texts = [line.text for line in transcript.lines]
    assert any(
        re.fullmatch(r"A\d+ AUTHENTICATE OAUTHBEARER \[redacted \d+ bytes\]", t) for t in texts
    )
    assert any(re.fullmatch(r"A\d+ SELECT INBOX", t) for t in texts)
    assert any(re.fullmatch(r"A\d+ UID FETCH 1 \(UID BODY\.PEEK\[\]\)", t) for t in texts)
    assert any("Subject: message 1" in t for t in texts)
    token = fetch.token
    forms = [token, base64.b64encode(token.encode()).decode()]
    forms += [base64.b64encode(f"{p}{token}".encode()).decode()[8:-8] for p in ("", "x", "xx")]
    for text in texts:
        for form in forms:
            assert form not in text
