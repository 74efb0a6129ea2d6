"""`mailoauth serve` as a real process, the way an admin runs it, for the browser and
integration tests: a free loopback port, its own data directory and key, no relay
listeners (so parallel services never fight over ports), its output in a log file (a pipe
nobody reads would block it), stopped by PID — SIGTERM, then SIGKILL — and required to
have exited with status 0.

::

    with running_service(tmp_path / "home") as service:
        service.cli("provider", "add", ...)        # the CLI on the same data
        httpx.get(service.url("/healthz"))
"""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cli import MAILOAUTH, Cli
from tests.net import free_port
from tests.peers.process import stop

#: Every relay listener off: the browser tests run several services, one after another.
NO_RELAYS = {
    "MAILOAUTH_RELAY_SMTP": "off",
    "MAILOAUTH_RELAY_IMAP": "off",
    "MAILOAUTH_RELAY_POP3": "off",
}
START_TIMEOUT = 60.0  # seconds; the 2-core CI machine is often busy


@dataclass
class Service:
    """A running `mailoauth serve`, reached at ``base_url`` (its listen address; a public
    base URL it was given is ``env["MAILOAUTH_BASE_URL"]``). ``env`` holds the
    ``MAILOAUTH_*`` settings it runs with (``MAILOAUTH_HOME`` included); ``cli`` runs a
    command on the same data and returns its stdout, failing the test if it fails; ``run``
    returns the completed process instead."""

    base_url: str
    port: int
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    commands: Cli

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        return self.commands.ok(*args, stdin=stdin)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.commands.run(*args, stdin=stdin)

    def log(self) -> str:
        """What the service printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, up to 20 s for the graceful stop, then SIGKILL; the exit status."""
        stop(self.process, timeout=20)
        return self.process.returncode


def _wait_healthy(service: Service, verify: ssl.SSLContext | bool) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(
                f"mailoauth serve exited with {service.process.returncode}:\n{service.log()}"
            )
        try:
            response = httpx.get(service.url("/healthz"), timeout=2, verify=verify)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        return
    raise AssertionError(f"{service.url('/healthz')} did not answer:\n{service.log()}")


@contextmanager
def running_service(
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
) -> Iterator[Service]:
    """Start `mailoauth serve` with its data in ``home`` and wait for ``/healthz``.

    ``env`` adds or overrides ``MAILOAUTH_*`` settings. ``MAILOAUTH_BASE_URL`` is set to
    the listen address unless ``env`` has it (``""``: unset, serve's own default);
    ``args`` go to ``serve``; ``scheme``/``verify`` are for a service
    started with TLS (``verify``: an SSL context trusting the test CA). On exit the service
    is stopped and must have exited with status 0."""
    port = free_port()
    listen_url = f"{scheme}://127.0.0.1:{port}"
    settings = {**NO_RELAYS, "MAILOAUTH_BASE_URL": listen_url, **(env or {})}
    commands = Cli(home=home, env=settings)
    log_path = home.parent / f"serve-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [MAILOAUTH, "serve", "--listen", f"127.0.0.1:{port}", *args],
            env=commands.environ(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = Service(
        base_url=listen_url,
        port=port,
        home=home,
        env={"MAILOAUTH_HOME": str(home), **settings},
        process=process,
        log_path=log_path,
        commands=commands,
    )
    try:
        _wait_healthy(service, verify)
        yield service
    finally:
        status = service.stop()
    assert status == 0, f"mailoauth serve exited with {status} after SIGTERM:\n{service.log()}"
