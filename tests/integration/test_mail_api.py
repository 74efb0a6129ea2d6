"""``mailoauth.mail.graph`` and ``mailoauth.mail.gmail`` against the HTTPS double of
Microsoft Graph and the Gmail API (``tests/peers/mailapi.py``): sending, fetching with
every after-fetch action, paging, errors and retries, and the double's own strictness.
Retries sleep through an injected clock, so nothing here waits."""

from __future__ import annotations

import base64
import email
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from mailoauth.errors import (
    ConfigError,
    MailConnectionError,
    MailError,
    MessageTooLarge,
    RemoteProtocolError,
    TokenRefused,
)
from mailoauth.mail.api import RetryPolicy, mime_bytes
from mailoauth.mail.fetched import FetchedMessage, FetchReport, MemoryLedger
from mailoauth.mail.gmail import check_gmail, fetch_gmail, send_gmail
from mailoauth.mail.graph import check_graph, fetch_graph, send_graph
from mailoauth.mail.transcript import Transcript
from mailoauth.secret import Secret
from tests.net import free_port
from tests.peers.mailapi import GMAIL, GRAPH, MailApi

pytestmark = pytest.mark.integration

ALICE = "alice@example.com"
BOB = "bob@example.com"
TOKEN = "ya29.a0-alices-delegated-access-token-0123456789"
APP_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOi.app-only-token.signature"


class Sleeps(list[float]):
    """The injected sleep: remembers every wait instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_message(subject: str = "hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = ALICE
    message["To"] = BOB
    message["Bcc"] = "carol@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@example.com>"
    message.set_content("Grüße from mailoauth\n")
    return message


def raw_message(number: int) -> bytes:
    """A received message with an 8-bit body, so exactness is byte for byte."""
    return (
        f"From: sender{number}@example.org\r\nTo: {ALICE}\r\nSubject: number {number}\r\n"
        f"Message-ID: <m{number}@example.org>\r\nContent-Type: text/plain; charset=latin-1\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\nbody {number} caf\xe9\r\n"
    ).encode("latin-1")


@dataclass
class Target:
    """One API of the double with the calls of its mailoauth module, as ALICE."""

    kind: str
    api: MailApi
    http: httpx.AsyncClient
    retry: RetryPolicy

    @property
    def base_url(self) -> str:
        return self.api.graph_url if self.kind == "graph" else self.api.gmail_url

    @property
    def listing_path(self) -> str:
        return "/mailFolders/inbox/messages" if self.kind == "graph" else "/users/me/messages"

    @property
    def send_path(self) -> str:
        return "/me/sendMail" if self.kind == "graph" else "/messages/send"

    async def send(self, message: EmailMessage, token: str = TOKEN, **options: Any) -> None:
        call = send_graph if self.kind == "graph" else send_gmail
        await call(
            self.http, Secret(token), message, base_url=self.base_url, retry=self.retry, **options
        )

    async def fetch(
        self,
        deliver: Callable[[FetchedMessage], Any],
        ledger: MemoryLedger,
        *,
        after_fetch: str = "keep",
        folder: str = "INBOX",
        token: str = TOKEN,
        **options: Any,
    ) -> FetchReport:
        call = fetch_graph if self.kind == "graph" else fetch_gmail
        return await call(
            self.http,
            Secret(token),
            base_url=self.base_url,
            mailbox="alice",
            folder=folder,
            after_fetch=after_fetch,
            deliver=deliver,
            ledger=ledger,
            retry=self.retry,
            **options,
        )

    async def check(self, token: str = TOKEN) -> list[str]:
        call = check_graph if self.kind == "graph" else check_gmail
        return await call(self.http, Secret(token), base_url=self.base_url, retry=self.retry)

    def deliver(self, data: bytes) -> str:
        if self.kind == "graph":
            return self.api.graph(ALICE).deliver(data)
        return self.api.gmail(ALICE).deliver(data)

    def add_folder(self, name: str) -> str:
        if self.kind == "graph":
            return self.api.graph(ALICE).add_folder(name)
        return self.api.gmail(ALICE).add_label(name)

    def sent(self) -> list[bytes]:
        box = self.api.graph(ALICE) if self.kind == "graph" else self.api.gmail(ALICE)
        return box.sent()

    def requests_to(self, path: str) -> list[Any]:
        return [r for r in self.api.requests if r.path.endswith(path)]


class Inbox:
    """A handler that keeps what it is given, and can refuse one message."""

    def __init__(self, refuse: bytes | None = None) -> None:
        self.got: list[FetchedMessage] = []
        self.refuse = refuse

    async def __call__(self, message: FetchedMessage) -> None:
        if message.data == self.refuse:
            raise OSError("disk full")
        self.got.append(message)

    @property
    def data(self) -> list[bytes]:
        return [message.data for message in self.got]


@pytest.fixture
async def http(mail_api: MailApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=mail_api.ssl_context(), timeout=10) as client:
        yield client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(params=["graph", "gmail"])
def target(
    request: pytest.FixtureRequest, mail_api: MailApi, http: httpx.AsyncClient, sleeps: Sleeps
) -> Target:
    """Each API in turn, with TOKEN accepted for ALICE."""
    mail_api.allow(TOKEN, ALICE)
    return Target(request.param, mail_api, http, RetryPolicy(sleep=sleeps))


@pytest.fixture
def gmail(mail_api: MailApi, http: httpx.AsyncClient, sleeps: Sleeps) -> Target:
    mail_api.allow(TOKEN, ALICE)
    return Target("gmail", mail_api, http, RetryPolicy(sleep=sleeps))


# --- sending -------------------------------------------------------------------------------


async def test_the_api_receives_exactly_our_mime_bytes(target: Target):
    message = make_message("exact bytes")
    await target.send(message)
    [sent] = target.sent()
    assert sent == mime_bytes(message)
    parsed = email.message_from_bytes(sent, policy=email.policy.default)
    assert parsed["Subject"] == "exact bytes"
    assert parsed["Bcc"] == "carol@example.com"  # the API needs it to deliver; it strips it
    assert parsed.get_content().rstrip() == "Grüße from mailoauth"
    [request] = target.requests_to(target.send_path)
    if target.kind == "graph":
        assert request.headers["Content-Type"] == "text/plain"
        assert base64.b64decode(request.body, validate=True) == sent
    else:
        raw = json.loads(request.body)["raw"]
        assert "+" not in raw
        assert "/" not in raw
        assert base64.urlsafe_b64decode(raw) == sent


async def test_graph_app_only_token_sends_from_the_named_mailbox(
    mail_api: MailApi, http: httpx.AsyncClient
):
    mail_api.allow(APP_TOKEN, None)
    message = make_message("app only")
    await send_graph(http, Secret(APP_TOKEN), message, base_url=mail_api.graph_url, user=ALICE)
    assert mail_api.graph(ALICE).sent() == [mime_bytes(message)]
    assert [r.path for r in mail_api.requests] == [f"/v1.0/users/{ALICE}/sendMail"]


async def test_graph_app_only_token_on_me_says_what_graph_said(
    mail_api: MailApi, http: httpx.AsyncClient
):
    mail_api.allow(APP_TOKEN, None)
    with pytest.raises(MailError) as failed:
        await send_graph(http, Secret(APP_TOKEN), make_message(), base_url=mail_api.graph_url)
    assert "only valid with delegated authentication" in str(failed.value)
    assert not failed.value.temporary


async def test_a_message_without_recipients_is_refused_before_sending(target: Target):
    message = make_message()
    del message["To"], message["Bcc"]
    with pytest.raises(ConfigError, match=r"message\.To"):
        await target.send(message)
    assert target.api.requests == []


async def test_a_message_over_the_apis_limit_is_too_large(target: Target):
    target.api.max_size = 200
    message = make_message("big")
    with pytest.raises(MessageTooLarge) as failed:
        await target.send(message)
    assert failed.value.size == len(mime_bytes(message))
    assert target.sent() == []


# --- fetching ------------------------------------------------------------------------------


async def test_fetch_delivers_oldest_first_exactly_and_only_once(target: Target):
    datas = [raw_message(n) for n in range(3)]
    uids = [target.deliver(data) for data in datas]
    inbox, ledger = Inbox(), MemoryLedger()
    report = await target.fetch(inbox, ledger)
    assert inbox.data == datas
    assert [m.uid for m in inbox.got] == uids == report.delivered
    assert {(m.mailbox, m.folder) for m in inbox.got} == {("alice", "INBOX")}
    again = Inbox()
    second = await target.fetch(again, ledger)
    assert again.got == []
    assert second.delivered == []
    assert second.skipped == 3


def _state(target: Target) -> dict[str, list[bytes]]:
    """What a user sees in ALICE's mailbox: inbox, unread in it, Processed, deleted."""
    if target.kind == "graph":
        box = target.api.graph(ALICE)
        inbox = box.in_folder("inbox")
        processed = [f for f, (name, _) in box.folders.items() if name == "Processed"]
        return {
            "inbox": [m.data for m in inbox],
            "unread": [m.data for m in inbox if not m.is_read],
            "processed": [m.data for f in processed for m in box.in_folder(f)],
            "deleted": [m.data for m in box.deleted],
        }
    mail = target.api.gmail(ALICE)
    inbox = [m for m in mail.labelled("INBOX") if "TRASH" not in m.labels]
    labels = [label for label, (name, _) in mail.labels.items() if name == "Processed"]
    return {
        "inbox": [m.data for m in inbox],
        "unread": [m.data for m in inbox if "UNREAD" in m.labels],
        "processed": [m.data for label in labels for m in mail.labelled(label)],
        "deleted": [m.data for m in mail.labelled("TRASH")],
    }


@pytest.mark.parametrize(
    ("action", "inbox", "unread", "processed", "deleted"),
    [
        ("keep", 2, 2, 0, 0),
        ("seen", 2, 0, 0, 0),
        ("move:Processed", 0, 0, 2, 0),
        ("delete", 0, 0, 0, 2),
    ],
)
async def test_each_after_fetch_action_shows_in_the_mailbox(
    target: Target, action: str, inbox: int, unread: int, processed: int, deleted: int
):
    target.add_folder("Processed")
    datas = [raw_message(n) for n in range(2)]
    for data in datas:
        target.deliver(data)
    ledger = MemoryLedger()
    report = await target.fetch(Inbox(), ledger, after_fetch=action)
    assert report.actions == (0 if action == "keep" else 2)
    counts = {name: len(found) for name, found in _state(target).items()}
    assert counts == {"inbox": inbox, "unread": unread, "processed": processed, "deleted": deleted}
    again = Inbox()
    await target.fetch(again, ledger, after_fetch=action)
    assert again.got == []


async def test_a_refusing_handler_stops_the_run_with_nothing_marked(target: Target):
    datas = [raw_message(n) for n in range(3)]
    uids = [target.deliver(data) for data in datas]
    ledger = MemoryLedger()
    refusing = Inbox(refuse=datas[1])
    report = await target.fetch(refusing, ledger, after_fetch="seen")
    assert refusing.data == datas[:1]
    assert report.delivered == uids[:1]
    assert report.remaining == 2
    assert report.error is not None
    assert uids[1] in report.error
    assert "disk full" in report.error
    assert _state(target)["unread"] == datas[1:]
    willing = Inbox()
    await target.fetch(willing, ledger, after_fetch="seen")
    assert willing.data == datas[1:]
    assert _state(target)["unread"] == []


async def test_limit_takes_the_oldest_and_leaves_the_rest_for_next_time(target: Target):
    datas = [raw_message(n) for n in range(5)]
    for data in datas:
        target.deliver(data)
    ledger, first = MemoryLedger(), Inbox()
    report = await target.fetch(first, ledger, limit=2)
    assert first.data == datas[:2]
    assert report.remaining == 3
    rest = Inbox()
    await target.fetch(rest, ledger)
    assert rest.data == datas[2:]


async def test_a_folder_larger_than_a_page_is_read_to_the_end(target: Target):
    target.api.page_size = 2
    datas = [raw_message(n) for n in range(5)]
    for data in datas:
        target.deliver(data)
    inbox = Inbox()
    await target.fetch(inbox, MemoryLedger())
    assert inbox.data == datas
    assert len(target.requests_to(target.listing_path)) == 3


async def test_an_unknown_folder_is_named_before_anything_is_fetched(target: Target):
    target.deliver(raw_message(1))
    inbox = Inbox()
    with pytest.raises(ConfigError, match="Nowhere"):
        await target.fetch(inbox, MemoryLedger(), after_fetch="move:Nowhere")
    assert inbox.got == []


async def test_check_lists_folders_or_labels(target: Target):
    target.api.page_size = 2  # Graph pages folders too
    target.add_folder("Processed")
    names = await target.check()
    assert {"Processed", "Inbox" if target.kind == "graph" else "INBOX"} <= set(names)


async def test_the_transcript_notes_each_request_and_never_the_token(target: Target):
    target.deliver(raw_message(1))
    transcript = Transcript(target.kind)
    await target.send(make_message(), transcript=transcript)
    await target.fetch(Inbox(), MemoryLedger(), after_fetch="seen", transcript=transcript)
    lines = [line.render() for line in transcript.lines]
    assert len(lines) == len(target.api.requests)
    status = "202" if target.kind == "graph" else "200"
    assert lines[0].split(": ", 1)[1].startswith(f"POST {target.base_url}")
    assert f"→ {status} (" in lines[0]
    assert not any(TOKEN in line or "Bearer" in line for line in lines)


# --- errors and retries --------------------------------------------------------------------


async def test_a_refused_token_is_token_refused_for_a_refresh(target: Target):
    bad = "expired-or-revoked-token-value"
    with pytest.raises(TokenRefused) as refused:
        await target.send(make_message(), token=bad)
    assert not refused.value.temporary
    expected = "validation failure" if target.kind == "graph" else "invalid authentication"
    assert expected in str(refused.value)
    assert bad not in str(refused.value)


async def test_a_token_without_the_send_scope_gets_a_hint(target: Target):
    read_only = {GRAPH + "Mail.ReadWrite"} if target.kind == "graph" else {GMAIL + "gmail.readonly"}
    target.api.allow(TOKEN, ALICE, scopes=read_only)
    with pytest.raises(MailError) as refused:
        await target.send(make_message())
    text = str(refused.value)
    assert refused.value.code == 403
    assert not refused.value.temporary
    if target.kind == "graph":
        assert "ErrorAccessDenied" in text
        assert "Mail.Send" in text
        assert "admin consent" in text
    else:
        assert "ACCESS_TOKEN_SCOPE_INSUFFICIENT" in text
        assert "gmail.send" in text


async def test_gmail_api_switched_off_says_to_enable_it(gmail: Target):
    gmail.api.fail(
        403, code="accessNotConfigured", message="Gmail API has not been used in project 42."
    )
    with pytest.raises(MailError, match="enable the Gmail API"):
        await gmail.check()


async def test_429_with_retry_after_is_waited_out_then_succeeds(target: Target, sleeps: Sleeps):
    target.api.fail(429, path=target.send_path, times=2, retry_after="7")
    await target.send(make_message())
    assert sleeps == [7.0, 7.0]
    assert len(target.sent()) == 1


async def test_gmails_rate_limit_403_is_retried_like_a_429(gmail: Target, sleeps: Sleeps):
    gmail.api.fail(403, code="userRateLimitExceeded", message="User-rate limit exceeded.")
    await gmail.send(make_message())
    assert sleeps == [1.0]
    assert len(gmail.sent()) == 1


async def test_503_that_persists_is_a_temporary_mail_error(target: Target, sleeps: Sleeps):
    target.api.fail(503, times=None)
    with pytest.raises(MailError) as failed:
        await target.send(make_message())
    assert failed.value.temporary
    assert failed.value.code == 503
    assert "retry later" in str(failed.value)
    assert sleeps == [1.0, 2.0]
    assert len(target.api.requests) == 3


async def test_a_retry_after_beyond_max_wait_is_reported_not_waited(target: Target, sleeps: Sleeps):
    target.api.fail(429, retry_after="3600")
    with pytest.raises(MailError, match="wait 3600 s") as failed:
        await target.send(make_message())
    assert failed.value.temporary
    assert sleeps == []


async def test_an_answer_that_is_not_json_is_a_protocol_error(target: Target):
    target.api.fail(200, path=target.listing_path, body=b"<html>captive portal</html>")
    with pytest.raises(RemoteProtocolError, match="not a JSON object"):
        await target.fetch(Inbox(), MemoryLedger())


async def test_a_redirect_is_not_followed_with_the_token(target: Target):
    target.api.fail(302, headers={"Location": "https://elsewhere.example/collect"})
    with pytest.raises(MailError, match=re.escape("redirect to https://elsewhere.example/collect")):
        await target.send(make_message())
    assert len(target.api.requests) == 1


async def test_an_unreachable_api_is_named_with_its_port(http: httpx.AsyncClient, sleeps: Sleeps):
    port = free_port()
    with pytest.raises(MailConnectionError, match=f"127.0.0.1:{port}") as failed:
        await send_graph(
            http,
            Secret(TOKEN),
            make_message(),
            base_url=f"https://127.0.0.1:{port}/v1.0",
            retry=RetryPolicy(sleep=sleeps),
        )
    assert failed.value.temporary
    assert failed.value.port == port
    assert sleeps == [1.0, 2.0]


async def test_an_untrusted_certificate_is_a_tls_error(mail_api: MailApi, sleeps: Sleeps):
    mail_api.allow(TOKEN, ALICE)
    async with httpx.AsyncClient(timeout=10) as untrusting:
        with pytest.raises(MailConnectionError, match="TLS") as failed:
            await check_gmail(
                untrusting,
                Secret(TOKEN),
                base_url=mail_api.gmail_url,
                retry=RetryPolicy(sleep=sleeps),
            )
    assert failed.value.tls
    assert not failed.value.temporary
    assert sleeps == []


async def test_a_base_url_that_is_not_https_is_refused(http: httpx.AsyncClient):
    with pytest.raises(ConfigError, match="base_url"):
        await check_graph(http, Secret(TOKEN), base_url="http://graph.microsoft.com/v1.0")


# --- the double checks what the real services check ------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "code"),
    [
        ("POST", "/v1.0/me/sendMail", {"json": {"raw": "x"}}, 415, "UnsupportedMediaType"),
        (
            "POST",
            "/v1.0/me/sendMail",
            {"content": b"not base64!", "headers": {"Content-Type": "text/plain"}},
            400,
            "ErrorMimeContentInvalidBase64String",
        ),
        (
            "POST",
            "/v1.0/me/sendMail",
            {
                "content": base64.b64encode(b"Subject: x\r\n\r\nx"),
                "headers": {"Content-Type": "text/plain"},
            },
            400,
            "ErrorInvalidRecipients",
        ),
        ("GET", "/v1.0/me/mailFolders/Processed/messages", {}, 400, "ErrorInvalidIdMalformed"),
        (
            "GET",
            "/v1.0/me/mailFolders/inbox/messages?$select=bogus",
            {},
            400,
            "RequestBroker--ParseUri",
        ),
        ("GET", f"/v1.0/users/{BOB}/mailFolders", {}, 403, "ErrorAccessDenied"),
        ("POST", "/gmail/v1/users/me/messages/send", {"json": {}}, 400, "invalidArgument"),
        ("POST", "/gmail/v1/users/me/messages/send", {"json": {"raw": "***"}}, 400, "invalid"),
        ("GET", "/gmail/v1/users/me/messages?labelIds=Processed", {}, 400, "invalidArgument"),
        ("GET", f"/gmail/v1/users/{BOB}/labels", {}, 403, "forbidden"),
    ],
)
async def test_the_double_refuses_what_the_real_api_refuses(
    mail_api: MailApi,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    code: str,
):
    mail_api.allow(TOKEN, ALICE)
    mail_api.gmail(ALICE).add_label("Processed")
    headers = {"Authorization": f"Bearer {TOKEN}", **options.pop("headers", {})}
    answer = await http.request(method, mail_api.url + path, headers=headers, **options)
    assert answer.status_code == status
    error = answer.json()["error"]
    if path.startswith("/v1.0"):
        assert error["code"] == code
        assert error["message"]
    else:
        assert error["code"] == status
        assert error["errors"][0]["reason"] == code
    assert all("authorization" not in {k.lower() for k in r.headers} for r in mail_api.requests)
