"""Mail benchmark: mailoauth's SMTP, IMAP and POP3 clients against the stdlib floor.

Run ``.venv/bin/python bench/mail.py`` (60-90 s). It starts the integration tests' real
peers without pytest — the test authorization server and Dovecot 2.3 (``tests/peers``),
on 127.0.0.1 only — takes one access token of ALICE (password grant), stops both at the
end, and fails only if a message went missing or Dovecot logged a failure. Every client
logs in with that token over XOAUTH2 and verifies Dovecot's certificate (its test CA):

1. SMTP submission (STARTTLS), msg/s for 2 KB and 200 KB messages, into Bob's Maildir
   through Dovecot's relay hop and LMTP: over one connection (``send_messages`` vs one
   ``smtplib.SMTP`` session), a connection per message (``send_message`` vs smtplib), and
   8 connections at once (8 asyncio tasks with ``send_messages`` vs 8 smtplib threads).
2. IMAPS fetch, MB/s, of 300 messages of 40 KB and 4 of 1 MB: ``fetch_imap`` (keep, a
   fresh MemoryLedger, a handler counting bytes) vs ``imaplib.IMAP4_SSL`` and one
   ``UID FETCH 1:* (BODY.PEEK[])``.
3. POP3S fetch of the same: ``fetch_pop3`` vs ``poplib.POP3_SSL``, UIDL, RETR each.

Reading it: absolute figures include Dovecot, the relay, introspection and the disk, and
move from run to run; compare the **ratio mailoauth / stdlib** (1.00 = the stdlib's
speed, above 1 faster). Both clients run interleaved, order swapped each round, against
the same server; each cell is a median. The CPU columns are the client process's own CPU
time per message (per MB when fetching), which the server's share hides in the rate. The
clients run in a child process, so the relay hop (a thread of the Dovecot peer) does not
take their interpreter lock.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import multiprocessing
import os
import poplib
import shutil
import smtplib
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.peers

import httpx
import trustme

from mailoauth.mail.fetched import FetchedMessage, MemoryLedger
from mailoauth.mail.imap import fetch_imap
from mailoauth.mail.pop3 import fetch_pop3
from mailoauth.mail.smtp import send_message
from mailoauth.mail.smtp_batch import send_messages
from mailoauth.models import IncomingSettings, OutgoingSettings
from mailoauth.providers import Security, Transport
from mailoauth.secret import Secret
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot, _start

EHLO = "localhost"  # both clients greet with it: no FQDN lookup in the figures
SMTP_ROUNDS = 5
FETCH_ROUNDS = 7
CONCURRENCY = 8
#: (message size, messages over one connection, one per connection, over 8 connections)
SMTP_CASES = [(2_000, 64, 24, 96), (200_000, 32, 16, 48)]
INBOX_SMALL = (300, 40_000)  # count, bytes
INBOX_LARGE = (4, 1_000_000)


@dataclass(frozen=True)
class Target:
    """What the client process needs of the running peers."""

    host: str
    submission: int
    imaps: int
    pop3s: int
    ca_file: str
    token: str  # ALICE's access token
    inbox: int  # messages in ALICE's INBOX


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def body(size: int, seed: int) -> str:
    """``size`` bytes of 76-column base64 lines (an attachment's shape, 7bit-safe)."""
    text = base64.b64encode(os.urandom(size * 3 // 4 + 3)).decode()[:size]
    lines = [text[i : i + 76] for i in range(0, len(text), 76)]
    return f"message {seed}\n" + "\n".join(lines) + "\n"


def message(size: int, seed: int, to: str = BOB) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"] = ALICE, to
    mail["Subject"] = f"bench {size} bytes #{seed}"
    mail["Message-ID"] = f"<bench-{size}-{seed}@example.com>"
    mail.set_content(body(size, seed))
    return mail


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Cell:
    """One row: per run of each client, (units per second, client CPU seconds per unit)."""

    ours: list[tuple[float, float]] = field(default_factory=list)
    floor: list[tuple[float, float]] = field(default_factory=list)

    def add(self, mine: bool, units: float, run: Callable[[], object]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        (self.ours if mine else self.floor).append((units / wall, cpu / units))

    def row(self, label: str) -> str:
        rate, cpu = (statistics.median(x) for x in zip(*self.ours, strict=True))
        rate_, cpu_ = (statistics.median(x) for x in zip(*self.floor, strict=True))
        figures = f"{rate:>8.1f}{rate_:>8.1f}{rate / rate_:>7.2f}"
        return f"  {label:<44}{figures}{cpu * 1e3:>9.2f}{cpu_ * 1e3:>7.2f}"


def header(title: str, unit: str) -> None:
    rate, cpu = f" {unit}/s ", f" CPU ms/{unit} "
    print(f"{title}\n  {'':<44}{rate:-^23} {cpu:-^15}", flush=True)
    print(f"  {'':<44}{'ours':>8}{'stdlib':>8}{'ratio':>7}{'ours':>9}{'stdlib':>7}", flush=True)


def interleaved(rounds: int, run: Callable[[bool], None]) -> None:
    """``run(mine)`` for both clients each round, the order swapped every round."""
    for round_ in range(rounds):
        for mine in (True, False) if round_ % 2 == 0 else (False, True):
            run(mine)


# -- SMTP -----------------------------------------------------------------------------------


class Smtp:
    """Sends a batch one of three ways: ``one`` connection, ``each`` message on its own
    connection, or ``parallel`` over 8 connections; mailoauth or smtplib."""

    def __init__(self, target: Target, runner: asyncio.Runner) -> None:
        self.target = target
        self.runner = runner
        self.context = ssl.create_default_context(cafile=target.ca_file)
        self.settings = OutgoingSettings(
            host=target.host,
            port=target.submission,
            security=Security.STARTTLS,
            ehlo_name=EHLO,
        )
        self.token = Secret(target.token)
        self.auth = base64.b64encode(xoauth2(ALICE, target.token)).decode()

    def send(self, mine: bool, mode: str, batch: Sequence[EmailMessage]) -> None:
        if mine:
            self.runner.run(self._mailoauth(mode, batch))
        elif mode == "one":
            self._smtplib(batch)
        elif mode == "each":
            for mail in batch:
                self._smtplib([mail])
        else:
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(pool.map(self._smtplib, split(batch)))

    async def _mailoauth(self, mode: str, batch: Sequence[EmailMessage]) -> None:
        if mode == "one":
            await self._send_messages(batch)
        elif mode == "each":
            for mail in batch:
                await send_message(
                    self.settings, ALICE, self.token, mail, ca_file=self.target.ca_file
                )
        else:
            await asyncio.gather(*(self._send_messages(part) for part in split(batch)))

    async def _send_messages(self, batch: Sequence[EmailMessage]) -> None:
        await send_messages(self.settings, ALICE, self.token, batch, ca_file=self.target.ca_file)

    def _smtplib(self, batch: Sequence[EmailMessage]) -> None:
        target = self.target
        with smtplib.SMTP(target.host, target.submission, EHLO, timeout=30) as smtp:
            smtp.starttls(context=self.context)
            smtp.ehlo()
            code, reply = smtp.docmd("AUTH", "XOAUTH2 " + self.auth)
            if code != 235:
                raise RuntimeError(f"smtplib login refused: {code} {reply!r}")
            for mail in batch:
                smtp.send_message(mail)


def split(batch: Sequence[EmailMessage]) -> list[Sequence[EmailMessage]]:
    return [batch[i::CONCURRENCY] for i in range(CONCURRENCY)]


def smtp_row(smtp: Smtp, size: int, mode: str, count: int) -> None:
    batch = [message(size, n) for n in range(count)]
    cell = Cell()
    interleaved(
        SMTP_ROUNDS, lambda mine: cell.add(mine, count, lambda: smtp.send(mine, mode, batch))
    )
    how = {"one": "one connection", "each": "a connection per message"}
    way = how.get(mode, f"{CONCURRENCY} connections at once")
    print(cell.row(f"{size // 1000} KB, {way} ({count} msgs)"), flush=True)


def bench_smtp(target: Target, runner: asyncio.Runner) -> None:
    smtp = Smtp(target, runner)
    warm = [message(2_000, -1)]
    smtp.send(True, "one", warm)  # TLS contexts, caches, imports
    smtp.send(False, "one", warm)
    header(f"SMTP submission, STARTTLS + AUTH XOAUTH2, median of {SMTP_ROUNDS}", "msg")
    for size, *counts in SMTP_CASES:
        for mode, count in zip(("one", "each", "parallel"), counts, strict=True):
            smtp_row(smtp, size, mode, count)


# -- IMAP and POP3 --------------------------------------------------------------------------


def mailoauth_fetch(target: Target, runner: asyncio.Runner, protocol: str) -> tuple[int, int]:
    imap = protocol == "imap"
    fetch, port = (fetch_imap, target.imaps) if imap else (fetch_pop3, target.pop3s)
    settings = IncomingSettings(
        transport=Transport(protocol), host=target.host, port=port, security=Security.SSL
    )
    token, ledger, sizes = Secret(target.token), MemoryLedger(), list[int]()

    async def count(fetched: FetchedMessage) -> None:  # the handler: takes every message
        sizes.append(len(fetched.data))

    run = fetch(
        settings, ALICE, token, mailbox="b", deliver=count, ledger=ledger, ca_file=target.ca_file
    )
    report = runner.run(run)  # after_fetch = "keep" (the default): nothing changes
    assert report.error is None, report.error
    return len(sizes), sum(sizes)


def imaplib_fetch(target: Target, context: ssl.SSLContext) -> tuple[int, int]:
    imap = imaplib.IMAP4_SSL(target.host, target.imaps, ssl_context=context, timeout=30)
    try:
        imap.authenticate("XOAUTH2", lambda _: xoauth2(ALICE, target.token))
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        bodies = [item[1] for item in data if isinstance(item, tuple)]
        imap.logout()  # closes the connection
    finally:
        if imap.state != "LOGOUT":
            imap.shutdown()
    return len(bodies), sum(len(b) for b in bodies)


def poplib_fetch(target: Target, context: ssl.SSLContext) -> tuple[int, int]:
    pop = poplib.POP3_SSL(target.host, target.pop3s, context=context, timeout=30)
    try:
        initial = base64.b64encode(xoauth2(ALICE, target.token)).decode()
        fits = len("AUTH XOAUTH2 " + initial) <= 253  # RFC 5034 §4: 255 octets with CRLF
        for line in ["AUTH XOAUTH2 " + initial] if fits else ["AUTH XOAUTH2", initial]:
            pop._shortcmd(line)  # type: ignore[attr-defined]
        _, listing, _ = pop.uidl()
        size = 0
        for entry in listing:
            _, lines, _ = pop.retr(int(entry.split()[0]))
            size += sum(len(line) + 2 for line in lines)
        pop.quit()
    finally:
        pop.close()
    return len(listing), size


Fetch = Callable[[], tuple[int, int]]  # -> (messages, bytes)


def fetch_row(name: str, inbox: int, ours: Fetch, floor: Fetch) -> None:
    sizes = {ours()[1], floor()[1]}  # warm-up: Dovecot's index and cache, TLS contexts
    megabytes = max(sizes) / 1e6

    def fetched(mine: bool) -> None:
        messages, size = (ours if mine else floor)()
        assert messages == inbox, (name, mine, messages)
        assert size in sizes, (name, mine, size)

    cell = Cell()
    interleaved(FETCH_ROUNDS, lambda mine: cell.add(mine, megabytes, lambda: fetched(mine)))
    header(f"{name} fetch, one login, XOAUTH2, median of {FETCH_ROUNDS}", "MB")
    print(cell.row(f"{inbox} messages, {megabytes:.1f} MB"), flush=True)


def bench_fetch(target: Target, runner: asyncio.Runner) -> None:
    context = ssl.create_default_context(cafile=target.ca_file)
    for name, protocol, floor in (
        ("IMAPS", "imap", imaplib_fetch),
        ("POP3S", "pop3", poplib_fetch),
    ):
        ours = partial(mailoauth_fetch, target, runner, protocol)
        fetch_row(name, target.inbox, ours, partial(floor, target, context))


# -- the client process and the peers ---------------------------------------------------------


def clients(target: Target) -> None:
    """Runs in its own process (see the module docstring)."""
    with asyncio.Runner() as runner:
        bench_smtp(target, runner)
        print(flush=True)
        bench_fetch(target, runner)
    print(flush=True)


def alice_token(auth: AuthServer) -> str:
    """An access token of ALICE from the password grant (as the ``token_for`` fixture)."""
    auth.add_client("app", auth_method="client_secret_post", secret="app-secret")
    auth.add_user(ALICE, PASSWORD)
    form = {"grant_type": "password", "username": ALICE, "password": PASSWORD, "scope": "mail"}
    form |= {"client_id": "app", "client_secret": "app-secret"}
    response = httpx.post(auth.token_url, data=form, timeout=10)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def fill_inbox(dovecot: Dovecot) -> int:
    for number, size in (INBOX_SMALL, INBOX_LARGE):
        for n in range(number):
            dovecot.deliver(ALICE, message(size, n, to=ALICE).as_bytes())
    return INBOX_SMALL[0] + INBOX_LARGE[0]


def maildir_count(dovecot: Dovecot, user: str) -> int:
    root = dovecot.mail_dir(user)
    return sum(len(list((root / sub).iterdir())) for sub in ("new", "cur") if (root / sub).is_dir())


def expected_sent() -> int:  # by the SMTP section, with its two warm-up messages
    return 2 + 2 * SMTP_ROUNDS * sum(sum(counts) for _, *counts in SMTP_CASES)


def check_log(dovecot: Dovecot) -> int:
    lines = dovecot.log_text().splitlines()
    logins = sum(" Login: " in line for line in lines)
    bad_words = ("auth failed", "Aborted login", "Error:", "Fatal:", "Panic:", "temporary")
    bad = [line for line in lines if any(word in line for word in bad_words)]
    print(f"Dovecot log: {logins} logins, {len(bad)} failures or errors")
    for line in bad[:5]:
        print(f"  {line}")
    return len(bad)


def main() -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="mailoauth-bench-auth-"))
    auth = AuthServer(free_port(), state_dir)
    dovecot: Dovecot | None = None
    child = None
    print(__doc__.split("\n\n")[0])
    print(
        "Ratios (mailoauth / stdlib: same token and server, interleaved runs) are what to "
        "compare;\nabsolute figures include Dovecot, its relay hop, LMTP and the disk.\n",
        flush=True,
    )
    try:
        auth.start()
        dovecot = _start(auth, trustme.CA())
        dovecot.begin_test(auth)  # registers Dovecot's introspection client
        ports, token, inbox = dovecot.ports, alice_token(auth), fill_inbox(dovecot)
        where = (dovecot.host, ports.submission, ports.imaps, ports.pop3s, str(dovecot.ca_path))
        target = Target(*where, token, inbox)
        child = multiprocessing.get_context("spawn").Process(target=clients, args=(target,))
        child.start()
        child.join()
        arrived, sent = maildir_count(dovecot, BOB), expected_sent()
        print(f"{arrived} of the {sent} messages sent arrived in Bob's Maildir")
        failures = check_log(dovecot)
        return child.exitcode or int(arrived != sent or failures > 0)
    finally:
        if child is not None and child.is_alive():
            child.terminate()
            child.join(10)
        if dovecot is not None:
            dovecot.stop()
            shutil.rmtree(dovecot.root, ignore_errors=True)
        auth.close()
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
