"""A real Dovecot 2.3 for the tests: OAuth2 logins validated by introspection against the
test authorization server (``tests/peers/authserver``).

``dovecot_process`` (session): writes ``dovecot.conf`` into a temp dir and runs
``dovecot -F -c CONF`` with its own ``base_dir`` / ``state_dir``, logging to
``<root>/dovecot.log``. Every listener is on 127.0.0.1 and a free port: IMAP, IMAPS, POP3,
POP3S, submission (STARTTLS) and LMTP. TLS uses a throw-away CA made with ``trustme``.
``passdb { driver = oauth2 }`` posts each token to the auth server's ``/introspect``
(``introspection_mode = post``, client ``dovecot`` / a random secret); mechanisms are
XOAUTH2 and OAUTHBEARER only. Submission relays to a small SMTP→LMTP hop (aiosmtpd in a
thread) that hands each message to Dovecot's LMTP, so a sent message lands in the
recipient's INBOX. Ready when the IMAP port greets with ``* OK``; teardown stops the
master by PID (SIGTERM, then SIGKILL after ``STOP_TIMEOUT``) and removes the dir.

Privileges: started as root (as in CI), the master drops to Debian's system users —
``default_internal_user = dovecot``, ``default_login_user = dovenull`` — and mail is owned
by ``nobody:nogroup`` (the static userdb's uid/gid; Dovecot refuses uid 0 for mail).
Started by an ordinary user, every service runs as that user (Dovecot's non-root mode:
``default_internal_user`` / ``default_login_user`` / ``default_internal_group`` are that
user, and the chrooting services get ``chroot =``, since only root may chroot).

``dovecot`` (function): the same server for one test. The ``auth_server`` fixture wipes
the authorization server's clients per test, so this fixture registers Dovecot's
introspection client again; it also empties every mailbox and starts ``log_text()``
afresh.

Missing binaries fail the fixture with how to install them; the tests never skip silently
(``scripts/test`` installs the Debian packages).
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import secrets
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.controller import Controller

from tests.net import free_port as _free_port
from tests.peers import process
from tests.peers.authserver.fixture import AuthServer

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3  # a free port can be taken between free_port() and Dovecot's bind()
HOST = "127.0.0.1"
DOVECOT = "/usr/sbin/dovecot"
DEBIAN_PACKAGES = "dovecot-core dovecot-imapd dovecot-pop3d dovecot-submissiond dovecot-lmtpd"
INTROSPECTION_CLIENT_ID = "dovecot"
ROOT_MAIL_USER = "nobody"  # owns the mail when started as root


@dataclass(frozen=True)
class DovecotPorts:
    imap: int
    imaps: int
    pop3: int
    pop3s: int
    submission: int
    lmtp: int
    relay: int  # the SMTP→LMTP hop that submission relays to

    @classmethod
    def allocate(cls) -> DovecotPorts:
        ports: set[int] = set()
        while len(ports) < 7:
            ports.add(_free_port())
        return cls(*sorted(ports))


class _LmtpHop:
    """aiosmtpd handler: each accepted message goes on to Dovecot's LMTP listener, one
    LMTP transaction per recipient (``smtplib.LMTP`` reads one reply after DATA, while
    LMTP answers once per recipient), and the SMTP reply reflects the delivery."""

    def __init__(self, lmtp_port: int) -> None:
        self.lmtp_port = lmtp_port

    def deliver(self, sender: str, recipients: list[str], message: bytes) -> None:
        with smtplib.LMTP(HOST, self.lmtp_port, local_hostname="localhost", timeout=10) as lmtp:
            for recipient in recipients:
                lmtp.sendmail(sender, [recipient], message)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        try:
            await asyncio.to_thread(
                self.deliver, envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
            )
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return f"{code} {text.decode(errors='replace')}"
        except (OSError, smtplib.SMTPException) as exc:
            return f"451 4.4.0 LMTP delivery failed: {exc}"
        return "250 2.0.0 Delivered over LMTP"


def _users() -> tuple[str, str, int, int]:
    """(internal user, login user, mail uid, mail gid) for the current privileges."""
    if os.geteuid() == 0:
        mail = pwd.getpwnam(ROOT_MAIL_USER)
        for name in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                pytest.fail(
                    f"system user {name!r} is missing: install {DEBIAN_PACKAGES}", pytrace=False
                )
        return "dovecot", "dovenull", mail.pw_uid, mail.pw_gid
    me = pwd.getpwuid(os.geteuid()).pw_name
    return me, me, os.geteuid(), os.getegid()


def _config(root: Path, ports: DovecotPorts) -> str:
    internal, login, uid, gid = _users()
    root_run = os.geteuid() == 0
    group = grp.getgrgid(gid).gr_name
    unprivileged = "" if root_run else f"default_internal_group = {group}\n"
    # Only root can chroot(): unprivileged, the chrooting services must not.
    no_chroot = "" if root_run else "\n  chroot ="
    extra = "" if root_run else "service imap-urlauth-login {\n  chroot =\n}\n"
    return f"""\
# Written by tests/peers/dovecot.py for one test session.
protocols = imap pop3 submission lmtp
listen = {HOST}
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailoauth-test-{ports.imap}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_internal_user = {internal}
default_login_user = {login}
{unprivileged}first_valid_uid = {uid}
last_valid_uid = {uid}

auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes
disable_plaintext_auth = no
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u allow_all_users=yes
}}
mail_location = maildir:{root}/mail/%u

ssl = yes
ssl_cert = <{root}/tls/server.pem
ssl_key = <{root}/tls/server.key
ssl_min_protocol = TLSv1.2

submission_relay_host = {HOST}
submission_relay_port = {ports.relay}
submission_relay_trusted = yes
submission_relay_ssl = no

service anvil {{{no_chroot}
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{{no_chroot}
  inet_listener imap {{
    address = {HOST}
    port = {ports.imap}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {ports.imaps}
    ssl = yes
  }}
}}
service pop3-login {{{no_chroot}
  inet_listener pop3 {{
    address = {HOST}
    port = {ports.pop3}
  }}
  inet_listener pop3s {{
    address = {HOST}
    port = {ports.pop3s}
    ssl = yes
  }}
}}
service submission-login {{{no_chroot}
  inet_listener submission {{
    address = {HOST}
    port = {ports.submission}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {ports.lmtp}
  }}
}}
{extra}"""


def _oauth2_config(introspection_url: str, client_secret: str) -> str:
    return f"""\
introspection_mode = post
introspection_url = {introspection_url}
client_id = {INTROSPECTION_CLIENT_ID}
client_secret = {client_secret}
username_attribute = email
active_attribute = active
active_value = true
"""


def _greets(port: int) -> bool:
    """Whether the IMAP port answers ``* OK`` (then LOGOUT, so the log shows no reset)."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock, sock.makefile("rwb") as io:
            if not io.readline().startswith(b"* OK"):
                return False
            io.write(b"r LOGOUT\r\n")
            io.flush()
            io.read()
            return True
    except OSError:
        return False


class Dovecot:
    """The running server: where it listens, its CA, its mail and log, and LMTP delivery."""

    host = HOST

    def __init__(self, root: Path, auth: AuthServer, ca: trustme.CA) -> None:
        self.root = root
        self.client_id = INTROSPECTION_CLIENT_ID
        self.client_secret = secrets.token_urlsafe(24)
        self.introspection_url = auth.introspection_url
        self.ca_pem = ca.cert_pem.bytes().decode()
        self.ca_path = root / "tls" / "ca.pem"
        self.ports = DovecotPorts.allocate()
        self.process: subprocess.Popen[bytes] | None = None
        self._hop: Controller | None = None
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (for 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def mail_dir(self, user: str) -> Path:
        """The user's Maildir (``cur``/``new``/``tmp`` of the INBOX are directly in it)."""
        return self.root / "mail" / user.lower()

    def log_text(self) -> str:
        """Dovecot's log since the current test began (the whole log outside a test)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def deliver(self, user: str, message: bytes, sender: str = "sender@example.org") -> None:
        """Put ``message`` (raw RFC 5322 bytes) in ``user``'s INBOX through LMTP."""
        with smtplib.LMTP(HOST, self.ports.lmtp, local_hostname="localhost", timeout=10) as lmtp:
            lmtp.sendmail(sender, [user], message)

    # -- per test -------------------------------------------------------------------------
    def begin_test(self, auth: AuthServer) -> None:
        auth.add_client(
            self.client_id,
            auth_method="client_secret_post",
            secret=self.client_secret,
            grant_types=(),
        )
        for name in ("mail", "home"):
            for entry in (self.root / name).iterdir():
                shutil.rmtree(entry, ignore_errors=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    # -- process ----------------------------------------------------------------------------
    def _prepare(self, ca: trustme.CA) -> None:
        tls = self.root / "tls"
        tls.mkdir()
        ca.cert_pem.write_to_path(str(self.ca_path))
        server_cert = ca.issue_cert(HOST, "localhost")
        server_cert.private_key_pem.write_to_path(str(tls / "server.key"))
        (tls / "server.pem").write_bytes(b"".join(p.bytes() for p in server_cert.cert_chain_pems))
        os.chmod(tls / "server.key", 0o600)
        ext = self.root / "dovecot-oauth2.conf.ext"  # holds the client secret: read by root
        ext.write_text(_oauth2_config(self.introspection_url, self.client_secret))
        os.chmod(ext, 0o600)
        # Mail processes run as the mail uid: they must traverse the root (not list it).
        os.chmod(self.root, 0o711)  # noqa: S103
        _, _, uid, gid = _users()
        for name in ("mail", "home"):
            (self.root / name).mkdir()
            os.chown(self.root / name, uid, gid)

    def start(self) -> None:
        hop = Controller(
            _LmtpHop(self.ports.lmtp),
            hostname=HOST,
            port=self.ports.relay,
            server_hostname="localhost",  # not socket.getfqdn(): no DNS
            ready_timeout=10,
        )
        hop.start()
        self._hop = hop
        self.config_path.write_text(_config(self.root, self.ports))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start:\n{self.log_text()}")
            if " Fatal: " in self.log_text():  # a service that cannot start is retried forever
                self.stop()
                raise RuntimeError(f"dovecot failed at start:\n{self.log_text()}")
            if _greets(self.ports.imap):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot not ready in {START_TIMEOUT}s:\n{self.log_text()}")

    def stop(self) -> None:
        if self.process is not None:
            process.stop(self.process, timeout=STOP_TIMEOUT)
            self.process = None
        if self._hop is not None:
            self._hop.stop()
            self._hop = None


def _start(auth: AuthServer, ca: trustme.CA) -> Dovecot:
    """Start on fresh ports, again on new ones if a port was taken meanwhile."""
    failure = ""
    for _ in range(START_ATTEMPTS):
        root = Path(tempfile.mkdtemp(prefix="mailoauth-dovecot-"))
        server = Dovecot(root, auth, ca)
        try:
            server._prepare(ca)
            server.start()
        except (RuntimeError, OSError) as exc:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
            failure = str(exc)
            if "address already in use" not in failure.lower():
                break
            continue
        return server
    pytest.fail(f"could not start dovecot: {failure}", pytrace=False)


@pytest.fixture(scope="session")
def dovecot_process(auth_server_process: AuthServer) -> Iterator[Dovecot]:
    if not Path(DOVECOT).exists():
        pytest.fail(
            f"{DOVECOT} is missing: install the Debian packages {DEBIAN_PACKAGES} "
            "(scripts/test does)",
            pytrace=False,
        )
    server = _start(auth_server_process, trustme.CA())
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_process: Dovecot, auth_server: AuthServer) -> Dovecot:
    dovecot_process.begin_test(auth_server)
    return dovecot_process


# -- mail users and their tokens -------------------------------------------------------------
ALICE = "alice@example.com"
BOB = "bob@example.com"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def token_for(auth_server: AuthServer) -> Iterator[Callable[[str], str]]:
    """A fresh access token of ALICE or BOB, which Dovecot accepts (password grant of a
    client ``app`` at the test authorization server)."""
    auth_server.add_mail_client()
    for user in (ALICE, BOB):
        auth_server.add_user(user, PASSWORD)
    with httpx.Client(timeout=10.0) as http:

        def get(user: str) -> str:
            response = http.post(
                auth_server.token_url,
                data={
                    "grant_type": "password",
                    "username": user,
                    "password": PASSWORD,
                    "scope": "mail",
                    "client_id": "app",
                    "client_secret": "app-secret",
                },
            )
            response.raise_for_status()
            token: str = response.json()["access_token"]
            return token

        yield get
