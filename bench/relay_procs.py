"""The relay benchmark's processes: the upstream, ``mailoauth relay`` and email-oauth2-proxy.

Each runs as its own child process with its own temp directory, so its CPU time can be
read from ``/proc/<pid>/stat`` (user + system, all threads) around each measurement. The
certificates (a trustme CA, a server certificate for 127.0.0.1) are made at run time.

email-oauth2-proxy is installed (once) into ``bench/.venv-emailproxy`` with pip, pinned to
the version the issue's figures are for; the same by hand::

    python3 -m venv bench/.venv-emailproxy
    bench/.venv-emailproxy/bin/pip install emailproxy==2026.7.3
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import trustme

BENCH = Path(__file__).resolve().parent
MAILOAUTH = str(Path(sys.executable).with_name("mailoauth"))
EMAILPROXY_VERSION = "2026.7.3"
EMAILPROXY_VENV = BENCH / ".venv-emailproxy"
MAILBOX_LOGIN = "bench@example.com"
PROXY_PASSWORD = "bench-app-password"  # email-oauth2-proxy's account password (any works)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Certs:
    ca: Path  # PEM of the CA that clients trust
    cert: Path  # the server's chain
    key: Path


def make_certs(directory: Path) -> Certs:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    certs = Certs(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(certs.ca))
    issued.private_key_and_cert_chain_pem.write_to_path(str(certs.cert))
    issued.private_key_pem.write_to_path(str(certs.key))
    return certs


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Process:
    """A child process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def cpu(self) -> float:
        return cpu_seconds(self.popen.pid)

    def check(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}): {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def errors(self) -> list[str]:
        """The log's ERROR and Traceback lines."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in lines if " ERROR " in line or line.startswith("Traceback")]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def start(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    out: IO[bytes] = log.open("ab")
    with out:
        popen = subprocess.Popen(  # noqa: S603 - our own argv
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    return Process(name, popen, log)


def wait_listening(process: Process, *ports: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    for port in ports:
        while True:
            process.check()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{process.name} is not listening on {port}") from None
                time.sleep(0.05)


def listening(process: Process, *ports: int) -> None:
    """Wait until ``process`` listens on ``ports``; stop it if it does not."""
    try:
        wait_listening(process, *ports)
    except BaseException:
        process.stop()
        raise


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the upstream ---------------------------------------------------------------------------


@dataclass
class Upstream:
    process: Process
    smtp: int
    imap: int
    http: int

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.http}/token"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/stats", timeout=10) as r:
            stats: dict[str, int] = json.load(r)
            return stats


def start_upstream(directory: Path, certs: Certs, token: str, folders: list[str]) -> Upstream:
    argv = [sys.executable, str(BENCH / "relay_upstream.py"), "--cert", str(certs.cert)]
    argv += ["--key", str(certs.key), "--token", token]
    argv += [arg for spec in folders for arg in ("--folder", spec)]
    log = directory / "upstream.log"
    with log.open("ab") as err:
        popen = subprocess.Popen(  # noqa: S603 - our own argv
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
        )
    process = Process("upstream", popen, log)
    assert popen.stdout is not None
    line = popen.stdout.readline()  # printed once listening
    if not line:
        process.check()
        raise RuntimeError("the upstream printed no ports")
    ports = json.loads(line)
    return Upstream(process, ports["smtp"], ports["imap"], ports["http"])


# -- mailoauth ------------------------------------------------------------------------------


@dataclass
class Mailoauth:
    """``mailoauth relay`` and its relay users (login → password)."""

    process: Process
    smtp: int
    imap: int | None
    users: dict[str, str] = field(default_factory=dict)


def mailoauth_env(home: Path, certs: Certs) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILOAUTH_")}
    return env | {
        "MAILOAUTH_HOME": str(home),
        "MAILOAUTH_CA_FILE": str(certs.ca),
        "APP_SECRET": "bench-secret",
        "MAIL_PW": "bench-mailbox-password",
        "COLUMNS": "200",
    }


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - the mailoauth beside this Python
        [MAILOAUTH, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"mailoauth {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def imap_relay_built() -> bool:
    """Whether this tree has the IMAP relay (relay/imap.py, MAILOAUTH_RELAY_IMAP)."""
    from mailoauth.config import Settings

    fields = {f.name for f in dataclasses.fields(Settings)}
    return importlib.util.find_spec("mailoauth.relay.imap") is not None and "relay_imap" in fields


def passthrough_built() -> bool:
    """Whether relay users have a mode (``add_user(..., mode=...)``, ``--mode passthrough``)."""
    from mailoauth.relay import users

    return "mode" in inspect.signature(users.add_user).parameters


def start_mailoauth(
    directory: Path, upstream: Upstream, certs: Certs, *, passthrough: bool, imap: bool
) -> Mailoauth:
    """Apply a mailbox on the upstream, add the relay users, start ``mailoauth relay``."""
    home = directory / "mailoauth"
    env = mailoauth_env(home, certs)
    smtp_port, imap_port = free_port(), free_port() if imap else None
    env["MAILOAUTH_RELAY_SMTP"] = f"127.0.0.1:{smtp_port}"
    env["MAILOAUTH_RELAY_IMAP"] = "off" if imap_port is None else f"127.0.0.1:{imap_port}"
    env["MAILOAUTH_RELAY_POP3"] = "off"  # not measured: never in the way of another listener
    config = directory / "mail.toml"
    outgoing = (
        f'host = "127.0.0.1", port = {upstream.smtp}, security = "ssl", ehlo_name = "localhost"'
    )
    config.write_text(
        f"""
[providers.bench]
kind = "generic"
client_id = "bench"
client_secret = "env:APP_SECRET"
token_url = "{upstream.token_url}"
authorization_url = "http://127.0.0.1:{upstream.http}/authorize"
scopes = ["mail"]

[mailboxes.bench]
provider = "bench"
grant = "password"
password = "env:MAIL_PW"
login = "{MAILBOX_LOGIN}"
outgoing = {{ {outgoing} }}
incoming = {{ host = "127.0.0.1", port = {upstream.imap}, security = "ssl" }}
"""
    )
    cli(env, "apply", str(config))
    protocols = "smtp,imap" if imap else "smtp"
    modes: dict[str, list[str]] = {"bench-queue": []}
    if passthrough:
        modes["bench-live"] = ["--mode", "passthrough"]
    with ThreadPoolExecutor() as pool:  # two CLI start-ups at once
        outs = pool.map(
            lambda login: cli(env, "relay-user", "add", login, "--mailbox", "bench",
                              "--protocols", protocols, *modes[login]),
            modes,
        )  # fmt: skip
        users = {
            login: out.splitlines()[1].removeprefix("password:").strip()
            for login, out in zip(modes, outs, strict=True)
        }
    # BENCH_RELAY_CMD runs the relay another way, e.g. under a profiler:
    # "python -m cProfile -o relay.prof .venv/bin/mailoauth relay"
    command = os.environ.get("BENCH_RELAY_CMD", f"{MAILOAUTH} relay").split()
    process = start("mailoauth relay", command, directory / "relay.log", env)
    relay = Mailoauth(process, smtp_port, imap_port, users)
    listening(process, smtp_port, *([imap_port] if imap_port else []))
    return relay


# -- email-oauth2-proxy ---------------------------------------------------------------------


def install_emailproxy() -> str | None:
    """Install email-oauth2-proxy into its venv if needed; None, or pip's error."""
    python = EMAILPROXY_VENV / "bin" / "python"
    have = EMAILPROXY_VENV / "bin" / "emailproxy"
    if have.exists():
        return None
    steps = [
        [sys.executable, "-m", "venv", str(EMAILPROXY_VENV)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"emailproxy=={EMAILPROXY_VERSION}"],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(  # noqa: S603 - venv and pip, pinned package
            step, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if "is ignored" not in line]
            return f"`{' '.join(step)}` failed: " + " / ".join(lines[-4:])
    return None


@dataclass
class EmailProxy:
    process: Process
    smtp: int
    imap: int


def start_emailproxy(directory: Path, upstream: Upstream, certs: Certs) -> EmailProxy:
    """email-oauth2-proxy, headless, SMTP and IMAP in the clear locally, implicit TLS to
    the upstream, the password grant (``oauth2_flow = password``) at the upstream's token
    endpoint; it trusts the bench CA through SSL_CERT_FILE."""
    smtp, imap = free_port(), free_port()
    config = directory / "emailproxy.config"
    config.write_text(
        f"""[IMAP-{imap}]
server_address = 127.0.0.1
server_port = {upstream.imap}
local_address = 127.0.0.1

[SMTP-{smtp}]
server_address = 127.0.0.1
server_port = {upstream.smtp}
server_starttls = False
local_address = 127.0.0.1

[{MAILBOX_LOGIN}]
token_url = {upstream.token_url}
oauth2_scope = mail
oauth2_flow = password
client_id = bench
client_secret = bench-secret
"""
    )
    env = dict(os.environ) | {"SSL_CERT_FILE": str(certs.ca)}
    argv = [str(EMAILPROXY_VENV / "bin" / "python"), str(EMAILPROXY_VENV / "bin" / "emailproxy")]
    argv += ["--no-gui", "--config-file", str(config), "--log-file", str(directory / "ep.log")]
    process = start("email-oauth2-proxy", argv, directory / "emailproxy.out", env)
    proxy = EmailProxy(process, smtp, imap)
    listening(process, smtp, imap)
    return proxy


@dataclass
class Forwarder:
    processes: list[Process]
    smtp: int
    imap: int


def start_forwarder(directory: Path, upstream: Upstream) -> Forwarder | str:
    """socat (Debian's, in C) forwarding bytes from a plain local port to the upstream's
    TLS port, one process per connection: no SMTP or IMAP logic at all, so its figures
    are the cost of the extra hop itself — the most any relay process could reach on this
    machine. The client logs in with the token, as direct. A string: why it cannot run."""
    socat = shutil.which("socat")
    if socat is None:
        return "n/a (apt-get install socat)"
    processes, ports = [], []
    for name, target in (("smtp", upstream.smtp), ("imap", upstream.imap)):
        port = free_port()
        argv = [
            socat,
            f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=512,nodelay",
            f"OPENSSL:127.0.0.1:{target},verify=0,nodelay",
        ]
        process = start(f"socat {name}", argv, directory / f"socat-{name}.log")
        listening(process, port)
        processes.append(process)
        ports.append(port)
    return Forwarder(processes, ports[0], ports[1])
