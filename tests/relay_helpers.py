"""What the relay's process-level tests share (crash, upstream down, hostile input, swaks):
the real `mailoauth relay` in a subprocess that can be killed and restarted, a TCP gate
in front of Dovecot's submission port that can take the upstream away and hold its reply
to a message, an SMTP client like an application's, and Dovecot's INBOX read back.

Nothing here is mocked: the relay is the installed console script, the upstream is the
Dovecot peer (tokens from the test authorization server), the client is stdlib smtplib.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import resource
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailoauth.config import Settings
from mailoauth.store import SqlStore, open_store
from tests.cli import MAILOAUTH, Cli
from tests.mail_setup import apply_password_mailboxes
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, Dovecot

HOST = "127.0.0.1"
START_TIMEOUT = 30.0  # a loaded 2-core machine starts Python slowly
APP = "app"  # the relay user the tests log in as
_KEEP = 1 << 16  # bytes of a gate session's client side kept for held_request


# --- set-up ---------------------------------------------------------------------------------


def relay_mailbox(
    cli: Cli,
    auth: AuthServer,
    dovecot: Dovecot,
    tmp_path: Path,
    *,
    upstream: int | None = None,
    relay: str | None = None,
    first_token: bool = False,
) -> str:
    """Mailbox ``alice`` (password grant at ``auth``) sending to BOB through Dovecot's
    submission port with STARTTLS, or through ``upstream`` (a :class:`Gate` port) in the
    clear; the relay on ``relay`` (default a free loopback port); relay user ``app``.
    ``first_token``: fetch a token now, so no relay process is killed halfway through a
    refresh (its single-flight lease would keep the next process waiting for 60 s).
    Returns the relay user's password."""
    cli.env["MAILOAUTH_RELAY_SMTP"] = relay or f"{HOST}:{free_port()}"
    # Only the SMTP relay: fixed default IMAP / POP3 ports would collide between tests.
    cli.env.update({"MAILOAUTH_RELAY_IMAP": "off", "MAILOAUTH_RELAY_POP3": "off"})
    if upstream is None:
        outgoing = f'{{ host = "{HOST}", port = {dovecot.ports.submission} }}'
    else:
        outgoing = f'{{ host = "{HOST}", port = {upstream}, security = "none" }}'
    apply_password_mailboxes(
        cli, auth, dovecot, tmp_path, {"alice": f'login = "{ALICE}"\noutgoing = {outgoing}'}
    )
    if first_token:
        cli.ok("token", "alice")
    login, password = cli.ok("relay-user", "add", APP, "--mailbox", "alice").splitlines()
    assert login == f"login:    {APP}"
    return password.removeprefix("password: ")


def relay_port(cli: Cli) -> int:
    return int(cli.env["MAILOAUTH_RELAY_SMTP"].rpartition(":")[2])


def open_cli_store(cli: Cli) -> SqlStore:
    """The store the CLI uses, opened in this process (to poll it without a subprocess)."""
    return open_store(Settings.load({}, data_dir=cli.home))


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it);
    returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 16)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the relay process ----------------------------------------------------------------------


class RelayProcess:
    """``mailoauth relay`` (or ``args``) in a subprocess, its stderr appended to ``log``
    across restarts. ``start`` returns once the port greets with 220."""

    def __init__(self, cli: Cli, log: Path, args: tuple[str, ...] = ("relay",)) -> None:
        self.cli, self.log, self.args = cli, log, args
        self.port = relay_port(cli)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [MAILOAUTH, *self.args],
                env=self.cli.environ(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while not greets(self.port):
            assert self.process.poll() is None, f"the relay exited:\n{self.log_text()}"
            assert time.monotonic() < deadline, f"the relay did not listen:\n{self.log_text()}"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, like a crash or the OOM killer: no clean-up runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> int:
        """SIGTERM; the exit status (after the relay let its delivery runs finish)."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise
        finally:
            self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def greets(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            return sock.recv(4).startswith(b"220")
    except OSError:
        return False


@contextlib.contextmanager
def running(relay: RelayProcess) -> Iterator[RelayProcess]:
    relay.start()
    try:
        yield relay
    finally:
        status = relay.stop()
    assert status == 0, relay.log_text()


# --- the gate in front of Dovecot -----------------------------------------------------------


class Gate:
    """A TCP forwarder on 127.0.0.1 in front of ``upstream``, on an event loop of its own
    thread. :meth:`close` takes the upstream away (new connections refused, open ones cut)
    and :meth:`open` brings it back on the same port. :meth:`hold_next_reply` keeps the
    upstream's reply to the next end of DATA (``<CRLF>.<CRLF>``) from the client: the
    server has accepted the message, the client has not heard it, and the test can kill
    the client right there (``held`` is set, ``held_reply`` is what was kept and
    ``held_request`` the end of what the client had sent)."""

    def __init__(self, upstream: int) -> None:
        self.port = free_port()
        self.upstream = upstream
        self.held = threading.Event()
        self.held_reply = self.held_request = b""
        self._armed = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gate", daemon=True)
        self._thread.start()

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    def open(self) -> None:
        self._call(self._open())

    def close(self) -> None:
        self._call(self._close())

    def hold_next_reply(self) -> None:
        self._call(self._arm())

    async def _arm(self) -> None:
        self.held.clear()
        self.held_reply = self.held_request = b""
        self._armed = True

    def shutdown(self) -> None:
        self.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._session, HOST, self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for _ in range(500):  # the sessions notice and end (5 s at most)
            if not self._writers:
                return
            await asyncio.sleep(0.01)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream)
        except OSError:
            await _closed(writer)
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        holding = False

        async def client_to_upstream() -> None:
            nonlocal holding
            sent = b""
            while data := await reader.read(65536):
                if self._armed and b"\r\n.\r\n" in sent[-4:] + data:
                    self._armed, holding = False, True
                    self.held_request = sent + data
                sent = (sent + data)[-_KEEP:]
                up_writer.write(data)
                await up_writer.drain()

        async def upstream_to_client() -> None:
            while data := await up_reader.read(65536):
                if holding:
                    self.held_reply += data
                    self.held.set()
                    continue
                writer.write(data)
                await writer.drain()

        pumps = [asyncio.ensure_future(p()) for p in (client_to_upstream, upstream_to_client)]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for side in (writer, up_writer):
                await _closed(side)
                self._writers.discard(side)


async def _closed(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


# --- the application's side -----------------------------------------------------------------


def note(message_id: str, body: str = "You have a new voicemail.") -> bytes:
    """A message as an application submits it: RFC 5322 bytes with CRLF line ends."""
    message = EmailMessage()
    message["From"] = f"PBX <{ALICE}>"
    message["To"] = BOB
    message["Subject"] = f"voicemail {message_id}"
    message["Message-ID"] = message_id
    message.set_content(f"{body}\n")
    return message.as_bytes(policy=email.policy.SMTP)


@dataclass(frozen=True)
class Client:
    """An application's SMTP settings for the relay: one session per :meth:`submit`."""

    port: int
    password: str
    login: str = APP
    source: str | None = None  # a 127.x.y.z address to connect from
    tls: ssl.SSLContext | None = None  # STARTTLS before AUTH
    timeout: float = 20

    def connect(self) -> smtplib.SMTP:
        source = None if self.source is None else (self.source, 0)
        smtp = smtplib.SMTP(HOST, self.port, timeout=self.timeout, source_address=source)
        smtp.ehlo("app.example")
        if self.tls is not None:
            smtp.starttls(context=self.tls)
            smtp.ehlo("app.example")
        return smtp

    def submit(self, data: bytes, mechanism: str = "PLAIN") -> tuple[int, str]:
        """EHLO, [STARTTLS], AUTH, MAIL, RCPT, DATA, QUIT: the reply to DATA."""
        with self.connect() as smtp:
            smtp.user, smtp.password = self.login, self.password
            method = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
            smtp.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
            for reply in (smtp.mail(ALICE), smtp.rcpt(BOB)):
                if reply[0] != 250:
                    raise smtplib.SMTPResponseException(*reply)
            code, text = smtp.data(data)
            return code, text.decode()


# --- Dovecot's side -------------------------------------------------------------------------


def inbox(dovecot: Dovecot, user: str = BOB) -> list[tuple[str, str]]:
    """``(Message-ID, body)`` of every message in ``user``'s INBOX, duplicates included."""
    found = []
    for sub in ("new", "cur"):
        folder = dovecot.mail_dir(user) / sub
        for path in folder.iterdir() if folder.is_dir() else ():
            message = email.message_from_bytes(path.read_bytes())
            payload = message.get_payload(decode=True)
            body = payload.decode(errors="replace") if isinstance(payload, bytes) else ""
            found.append((str(message["Message-ID"]), body.strip()))
    return sorted(found)


def wait_for_inbox(
    dovecot: Dovecot, message_ids: set[str], seconds: float = 30
) -> list[tuple[str, str]]:
    """The INBOX once it holds every one of ``message_ids`` (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        found = inbox(dovecot)
        if message_ids <= {m for m, _ in found} or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
