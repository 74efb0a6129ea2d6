"""``webhook_handler`` against a real HTTP server on 127.0.0.1 (``http.server`` in a
thread, answering from a script): acceptance, retries with backoff and ``Retry-After``,
refusals, redirects, timeouts, and a signature the server verifies by the documented
scheme. Waits between attempts are recorded, not slept."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mailoauth.errors import MailError
from mailoauth.mail.fetched import FetchedMessage
from mailoauth.mail.handlers import delivery_key, webhook_handler
from mailoauth.secret import Secret
from tests.net import free_port

pytestmark = pytest.mark.integration

KEY = "whsec-integration"
# CRLF lines, 8-bit bytes and a body large enough to be sent in several writes.
RAW = (
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
    b"Message-ID: <hook-1@example.org>\r\n\r\n" + bytes(range(256)) * 800 + b"\r\n"
)
MESSAGE = FetchedMessage(mailbox="sales", folder="INBOX/Orders", uid="1700.42", data=RAW)


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall: float = 0.0  # seconds to wait before answering


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None  # None: the server has no key


@dataclass
class Hook:
    """What the server answers (``script`` in order, then ``otherwise``) and what it got."""

    port: int
    key: str | None = None
    script: list[Reply] = field(default_factory=list)
    otherwise: Reply = field(default_factory=lambda: Reply(200))
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/in") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def verify(self, headers: dict[str, str], body: bytes) -> bool | None:
        """The receiver's side of the documented scheme."""
        if self.key is None:
            return None
        signed = (
            "".join(
                f"{headers.get(name, '')}\n"
                for name in (
                    "X-Mailoauth-Timestamp",
                    "X-Mailoauth-Mailbox",
                    "X-Mailoauth-Folder",
                    "X-Mailoauth-Uid",
                )
            ).encode()
            + body
        )
        expected = "sha256=" + hmac.new(self.key.encode(), signed, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(headers.get("X-Mailoauth-Timestamp", "0"))) < 300
        return fresh and hmac.compare_digest(expected, headers.get("X-Mailoauth-Signature", ""))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        hook = self.server.hook
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = dict(self.headers.items())
        ok = hook.verify(headers, body)
        hook.received.append(Received(self.command, self.path, headers, body, ok))
        reply = hook.script.pop(0) if hook.script else hook.otherwise
        if ok is False:
            reply = Reply(401, body=b"bad signature")
        if reply.stall:
            hook.release.wait(reply.stall)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_POST = do_GET = _answer  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    hook: Hook

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout test) breaks the pipe; that is expected


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(port=free_port())
    server = _Server(("127.0.0.1", state.port), _Handler)
    server.hook = state
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


class Sleeps(list[float]):
    """The injected ``sleep``: records each wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def deliver_to(
    url: str, message: FetchedMessage = MESSAGE, *, follow: bool = False, **options: object
) -> None:
    async with httpx.AsyncClient(follow_redirects=follow) as http:
        deliver = webhook_handler(url, http=http, **options)  # type: ignore[arg-type]
        await deliver(message)


@pytest.mark.parametrize("status", [200, 202, 204])
async def test_a_2xx_answer_accepts_the_message_as_sent(hook, status):
    hook.script = [Reply(status)]
    sleeps = Sleeps()
    await deliver_to(hook.url("/in?mailbox=sales"), sleep=sleeps)
    [got] = hook.received
    assert got.method == "POST"
    assert got.path == "/in?mailbox=sales"
    assert got.body == RAW
    assert got.headers["Content-Type"] == "message/rfc822"
    assert got.headers["X-Mailoauth-Mailbox"] == "sales"
    assert got.headers["X-Mailoauth-Folder"] == "INBOX/Orders"
    assert got.headers["X-Mailoauth-Uid"] == "1700.42"
    assert got.headers["Idempotency-Key"] == delivery_key(MESSAGE)
    assert "X-Mailoauth-Signature" not in got.headers
    assert sleeps == []


async def test_the_server_verifies_the_signature(hook):
    hook.key = KEY
    await deliver_to(hook.url(), signing_key=Secret(KEY))
    [got] = hook.received
    assert got.signature_ok is True
    assert got.headers["X-Mailoauth-Signature"].startswith("sha256=")


async def test_a_signature_with_the_wrong_key_is_refused_by_the_server(hook):
    hook.key = KEY
    with pytest.raises(MailError, match="HTTP 401: bad signature") as caught:
        await deliver_to(hook.url(), signing_key=Secret("another key"), sleep=Sleeps())
    assert not caught.value.temporary
    assert [got.signature_ok for got in hook.received] == [False]


async def test_two_failures_then_success_delivers_after_three_requests(hook):
    hook.script = [Reply(500), Reply(500), Reply(200)]
    sleeps = Sleeps()
    await deliver_to(hook.url(), sleep=sleeps)
    assert len(hook.received) == 3
    assert {got.body for got in hook.received} == {RAW}
    assert len({got.headers["Idempotency-Key"] for got in hook.received}) == 1
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 1.0  # full jitter under 1 s, then under 2 s
    assert 0 <= sleeps[1] <= 2.0


async def test_a_server_that_keeps_failing_is_a_temporary_error(hook):
    hook.otherwise = Reply(503, body=b"maintenance")
    sleeps = Sleeps()
    with pytest.raises(MailError) as caught:
        await deliver_to(hook.url(), attempts=4, sleep=sleeps)
    error = caught.value
    assert error.temporary
    assert error.code == 503
    assert len(hook.received) == 4
    assert len(sleeps) == 3
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleeps, (1, 2, 4), strict=True))
    assert f"the webhook {hook.url()} did not take message 1700.42 of sales/INBOX/Orders" in (
        str(error)
    )
    assert "after 4 attempts (last: HTTP 503: maintenance)" in str(error)
    assert "offered again at the next fetch" in str(error)


async def test_a_400_is_refused_at_once_with_the_start_of_the_answer(hook):
    answer = b"invalid message: " + b"x" * 300
    hook.script = [Reply(400, body=answer)]
    with pytest.raises(MailError) as caught:
        await deliver_to(hook.url(), sleep=Sleeps())
    error = caught.value
    assert not error.temporary
    assert error.code == 400
    assert len(hook.received) == 1
    assert "HTTP 400: invalid message: xxx" in str(error)
    assert "x" * 180 in str(error)  # 200 characters of the answer in all
    assert "x" * 200 not in str(error)


async def test_retry_after_in_seconds_is_waited_for(hook):
    hook.script = [Reply(429, {"Retry-After": "7"}), Reply(408, {"Retry-After": "0"})]
    sleeps = Sleeps()
    await deliver_to(hook.url(), sleep=sleeps)
    assert sleeps == [7.0, 0.0]
    assert len(hook.received) == 3


async def test_retry_after_as_a_date_is_measured_against_the_servers_clock(hook):
    hook.script = [Reply(503, {"Retry-After": formatdate(time.time() + 3, usegmt=True)})]
    sleeps = Sleeps()
    await deliver_to(hook.url(), sleep=sleeps)
    assert len(sleeps) == 1
    assert 2.0 <= sleeps[0] <= 3.0


async def test_a_retry_after_too_long_ends_the_attempts_at_once(hook):
    hook.script = [Reply(429, {"Retry-After": "3600"})]
    sleeps = Sleeps()
    with pytest.raises(MailError, match="asked to wait 3600 s") as caught:
        await deliver_to(hook.url(), sleep=sleeps)
    assert caught.value.temporary
    assert sleeps == []
    assert len(hook.received) == 1


async def test_a_redirect_is_a_refusal_and_is_not_followed(hook):
    hook.script = [Reply(302, {"Location": "/moved?token=s3cr3t-in-query"})]
    with pytest.raises(MailError) as caught:  # even by a client that follows redirects
        await deliver_to(hook.url(), follow=True, sleep=Sleeps())
    message = str(caught.value)
    assert not caught.value.temporary
    assert f"HTTP 302, a redirect to {hook.url('/moved')};" in message
    assert "set incoming.deliver to the final URL" in message
    assert "s3cr3t" not in message
    assert [got.path for got in hook.received] == ["/in"]


async def test_credentials_in_the_url_never_reach_a_message(hook):
    hook.script = [Reply(403, body=b"forbidden")]
    url = f"http://hook-user:p4ssw0rd-value@127.0.0.1:{hook.port}/in?token=t0ken-value"
    with pytest.raises(MailError) as caught:
        await deliver_to(url, sleep=Sleeps())
    message = str(caught.value)
    assert f"the webhook http://127.0.0.1:{hook.port}/in refused" in message
    assert "p4ssw0rd" not in message
    assert "t0ken" not in message
    assert hook.received[0].path == "/in?token=t0ken-value"


async def test_a_stalled_server_times_out_and_is_tried_again(hook):
    hook.script = [Reply(200, stall=5), Reply(200)]
    sleeps = Sleeps()
    started = time.monotonic()
    await deliver_to(hook.url(), timeout=0.2, sleep=sleeps)
    assert time.monotonic() - started < 2
    assert len(hook.received) == 2
    assert len(sleeps) == 1


async def test_nothing_listening_is_a_temporary_error_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/in"
    sleeps = Sleeps()
    with pytest.raises(MailError) as caught:
        await deliver_to(url, attempts=2, sleep=sleeps)
    assert caught.value.temporary
    assert caught.value.code == 0
    assert f"the webhook {url} did not take" in str(caught.value)
    assert "(last: cannot connect: " in str(caught.value)
    assert len(sleeps) == 1
