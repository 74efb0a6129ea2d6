"""pytest fixtures for the test authorization server.

``auth_server_process`` (session): ``python -m tests.peers.authserver`` on 127.0.0.1 and
a free port, state in a temp dir, log in ``<state dir>/server.log``; ready when
``/_control/health`` answers (deadline ``START_TIMEOUT``). Teardown stops it by PID:
SIGTERM, then SIGKILL after ``STOP_TIMEOUT``, and removes the dir.

``auth_server`` (function): the same server, restarted if a test left it stopped, with
its state reset — each test starts with no clients, users, grants or failures.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailoauth.models import Provider
from mailoauth.providers import ProviderKind
from mailoauth.secret import Secret
from tests.net import free_port as _free_port
from tests.peers import process

from .models import DEFAULT_SCOPES

#: The confidential client the mail tests use (client_secret_post).
MAIL_CLIENT, MAIL_CLIENT_SECRET = "app", "app-secret"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
REPO_ROOT = Path(__file__).resolve().parents[3]


class ControlError(RuntimeError):
    """The server refused a control call (bad arguments, unknown user code...)."""


class AuthServer:
    """A handle on the running server: its URLs, and the control API as methods."""

    def __init__(self, port: int, state_dir: Path) -> None:
        self.port = port
        self.state_dir = state_dir
        self.url = f"http://127.0.0.1:{port}"
        self.authorize_url = f"{self.url}/authorize"
        self.token_url = f"{self.url}/token"
        self.device_url = f"{self.url}/device"
        self.revocation_url = f"{self.url}/revoke"
        self.introspection_url = f"{self.url}/introspect"
        self.userinfo_url = f"{self.url}/userinfo"
        self.metadata_url = f"{self.url}/.well-known/oauth-authorization-server"
        self.process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=f"{self.url}/_control", timeout=10.0)

    @property
    def log(self) -> Path:
        return self.state_dir / "server.log"

    # -- process ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process on the same port, with the state the last one left."""
        if self.running:
            return
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.peers.authserver",
                    "--port",
                    str(self.port),
                    "--state-dir",
                    str(self.state_dir),
                ],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"authserver exited at start:\n{self.log.read_text()}", pytrace=False)
            with contextlib.suppress(httpx.TransportError):
                if self._http.get("/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"authserver not ready in {START_TIMEOUT}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the process (by PID: SIGTERM, then SIGKILL); the state stays on disk."""
        if self.process is None:
            return
        process.stop(self.process, timeout=STOP_TIMEOUT)
        self.process = None

    def close(self) -> None:
        self.stop()
        self._http.close()

    # -- control API --------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        if response.status_code >= 400:
            raise ControlError(f"{method} /_control{path}: {response.status_code} {response.text}")
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/reset")

    def add_client(
        self,
        client_id: str,
        *,
        auth_method: str,
        secret: str | None = None,
        public_key_pem: str | None = None,
        certificate_pem: str | None = None,
        key_id: str | None = None,
        redirect_uris: Sequence[str] = ("http://127.0.0.1/callback",),
        scopes: Sequence[str] = DEFAULT_SCOPES,
        grant_types: Sequence[str] | None = None,
    ) -> None:
        self._call(
            "POST",
            "/clients",
            {
                "client_id": client_id,
                "auth_method": auth_method,
                "secret": secret,
                "public_key_pem": public_key_pem,
                "certificate_pem": certificate_pem,
                "key_id": key_id,
                "redirect_uris": list(redirect_uris),
                "scopes": list(scopes),
                "grant_types": None if grant_types is None else list(grant_types),
            },
        )

    def add_mail_client(self) -> None:
        """Register :data:`MAIL_CLIENT`, the client of :meth:`mail_provider`."""
        self.add_client(MAIL_CLIENT, auth_method="client_secret_post", secret=MAIL_CLIENT_SECRET)

    def mail_provider(self, name: str = "test") -> Provider:
        """A generic provider at this server with :data:`MAIL_CLIENT` (scope ``mail``)."""
        return Provider(
            name=name,
            kind=ProviderKind.GENERIC,
            client_id=MAIL_CLIENT,
            client_secret=Secret(MAIL_CLIENT_SECRET),
            token_url=self.token_url,
            authorization_url=self.authorize_url,
            scopes=("mail",),
        )

    def add_user(self, username: str, password: str = "pw") -> None:  # noqa: S107
        self._call("POST", "/users", {"username": username, "password": password})

    def add_service_account(
        self,
        email: str,
        *,
        public_key_pem: str,
        key_id: str,
        scopes: Sequence[str] = DEFAULT_SCOPES,
    ) -> None:
        body = {"email": email, "public_key_pem": public_key_pem, "key_id": key_id}
        self._call("POST", "/service_accounts", {**body, "scopes": list(scopes)})

    def configure(
        self,
        *,
        access_token_lifetime: int | None = None,
        code_lifetime: int | None = None,
        rotate_refresh_tokens: bool | None = None,
        consent: str | None = None,
        device_interval: int | None = None,
        slow_down_increment: int | None = None,
        device_code_lifetime: int | None = None,
    ) -> dict[str, Any]:
        """Change the given settings (``None`` leaves one as it is); returns them all.
        Defaults after a reset: 3600, 60, True, "approve", 1, 5, 600."""
        changes = {
            "access_token_lifetime": access_token_lifetime,
            "code_lifetime": code_lifetime,
            "rotate_refresh_tokens": rotate_refresh_tokens,
            "consent": consent,
            "device_interval": device_interval,
            "slow_down_increment": slow_down_increment,
            "device_code_lifetime": device_code_lifetime,
        }
        result: dict[str, Any] = self._call("POST", "/config", changes)
        return result

    def fail(self, mode: str, *, count: int = 1_000_000, seconds: float = 0) -> None:
        """Arm a failure of the next ``count`` ``/token`` requests: status_500, slow
        (sleep ``seconds``, then answer normally), malformed, no_expires_in, rate_limited
        (429 with ``Retry-After: ceil(seconds)``)."""
        self._call("POST", "/fail", {"mode": mode, "count": count, "seconds": seconds})

    def clear_failures(self) -> None:
        self._call("POST", "/clear_failures")

    def revoke_user(self, username: str) -> None:
        self._call("POST", "/revoke_user", {"username": username})

    def expire_refresh_tokens(self) -> None:
        self._call("POST", "/expire_refresh_tokens")

    def expire_access_tokens(self) -> None:
        self._call("POST", "/expire_access_tokens")

    def approve_device(self, user_code: str, username: str) -> None:
        self._call("POST", "/device/approve", {"user_code": user_code, "username": username})

    def deny_device(self, user_code: str) -> None:
        self._call("POST", "/device/deny", {"user_code": user_code})

    def token_requests(self, grant_type: str | None = None) -> int:
        params = None if grant_type is None else {"grant_type": grant_type}
        count: int = self._call("GET", "/token_requests", params=params)["count"]
        return count

    def token_auth_methods(self) -> list[str]:
        """The client auth method of each authenticated ``/token`` request, in order."""
        methods: list[str] = self._call("GET", "/token_auth_methods")
        return methods

    def last_authorize_params(self) -> dict[str, str]:
        params: dict[str, str] = self._call("GET", "/last_authorize_params")
        return params

    def introspect(self, access_token: str) -> dict[str, Any]:
        payload: dict[str, Any] = self._call("POST", "/introspect", {"token": access_token})
        return payload


@pytest.fixture(scope="session")
def auth_server_process() -> Iterator[AuthServer]:
    state_dir = Path(tempfile.mkdtemp(prefix="mailoauth-authserver-"))
    server = AuthServer(_free_port(), state_dir)
    try:
        server.start()
        yield server
    finally:
        server.close()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def auth_server(auth_server_process: AuthServer) -> AuthServer:
    auth_server_process.start()
    auth_server_process.reset()
    return auth_server_process
