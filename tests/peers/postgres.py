"""A real PostgreSQL for the tests: Debian's server binaries, a throw-away cluster.

``postgres_server`` (session): ``initdb`` in a temp dir, ``postgres`` listening on
127.0.0.1 and a free port only (plus a Unix socket in the temp dir), trust authentication.
PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres``
system user and the binaries run through ``runuser``. Teardown stops the postmaster by its
PID: SIGINT ("fast" shutdown — SIGTERM's "smart" mode would wait for every client to
disconnect), then SIGKILL after a deadline, and removes the dir.

``postgres_url`` (function): a fresh, empty database per test.

Missing binaries fail the fixture with how to install them; the tests never skip silently
(``scripts/test`` installs the ``postgresql`` package).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.net import free_port as _free_port
from tests.peers import process

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def _newest_bin_dir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail(
            "PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin/postgres): "
            "install the Debian package `postgresql` (scripts/test does)",
            pytrace=False,
        )
    return found[-1].parent


@dataclass
class PostgresServer:
    port: int
    root: Path
    process: subprocess.Popen[bytes]
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def admin_connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def create_database(self) -> str:
        name = f"mailoauth_test_{next(self._counter)}"
        with self.admin_connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown, sent to the postmaster behind runuser.
        process.stop(
            self.process, first=signal.SIGINT, pid=self.postmaster_pid(), timeout=STOP_TIMEOUT
        )


def _as_postgres_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _start(bin_dir: Path, root: Path) -> PostgresServer:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    initdb = subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ]
        ),
        check=False,
        capture_output=True,
        text=True,
    )
    if initdb.returncode != 0:
        pytest.fail(f"initdb failed:\n{initdb.stdout}{initdb.stderr}", pytrace=False)
    port = _free_port()
    log = (root / "postgres.log").open("wb")
    postmaster = subprocess.Popen(
        _as_postgres_user(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(root / "data"),
                "-k",
                str(root),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "synchronous_commit=off",
            ]
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = PostgresServer(port=port, root=root, process=postmaster)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if postmaster.poll() is not None:
            pytest.fail(f"postgres exited at start:\n{server.log.read_text()}", pytrace=False)
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
            check=False,
        )
        if ready.returncode == 0:
            return server
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"postgres did not get ready in {START_TIMEOUT}s:\n{server.log.read_text()}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _newest_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="mailoauth-pg-"))
    try:
        server = _start(bin_dir, root)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url(postgres_server.create_database())
