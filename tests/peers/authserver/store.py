"""In-memory state of the test authorization server, guarded by one lock and written to
``<state dir>/state.json`` after every request, so that stopping the process and starting
it again on the same port (a simulated outage) keeps clients, users and issued grants.

One re-entrant lock serialises every request's work on the state: the grant handlers of
authlib read, check and then update (a code is looked up, then marked used), and the
lock makes each such sequence atomic — two concurrent exchanges of one code cannot both
succeed (RFC 6749 §4.1.2: a code is used once).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .models import (
    AccessToken,
    AuthCode,
    Client,
    Config,
    DeviceCredential,
    RefreshToken,
    ServiceAccount,
    User,
)

FAILURE_MODES = ("status_500", "slow", "malformed", "no_expires_in", "rate_limited")

_TABLES: dict[str, type[Any]] = {
    "clients": Client,
    "users": User,
    "service_accounts": ServiceAccount,
    "codes": AuthCode,
    "access_tokens": AccessToken,
    "refresh_tokens": RefreshToken,
    "devices": DeviceCredential,
}


@dataclass
class Failure:
    """An injected failure of ``/token``: applies to the next ``remaining`` requests."""

    remaining: int
    seconds: float = 0.0


@dataclass
class State:
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    devices: dict[str, DeviceCredential] = field(default_factory=dict)
    config: Config = field(default_factory=Config)
    failures: dict[str, Failure] = field(default_factory=dict)
    token_requests: list[str] = field(default_factory=list)
    token_auth_methods: list[str] = field(default_factory=list)
    last_authorize_params: dict[str, str] = field(default_factory=dict)
    used_jtis: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {name: {k: asdict(v) for k, v in getattr(self, name).items()} for name in _TABLES}
        data["config"] = asdict(self.config)
        data["failures"] = {k: asdict(v) for k, v in self.failures.items()}
        for name in ("token_requests", "token_auth_methods", "last_authorize_params", "used_jtis"):
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        state = cls()
        for name, model in _TABLES.items():
            setattr(state, name, {k: model(**v) for k, v in data.get(name, {}).items()})
        state.config = Config(**data.get("config", {}))
        state.failures = {k: Failure(**v) for k, v in data.get("failures", {}).items()}
        for name in ("token_requests", "token_auth_methods", "last_authorize_params", "used_jtis"):
            setattr(state, name, data.get(name, getattr(state, name)))
        return state


class Store:
    """The state plus the operations the grants and the control API need."""

    def __init__(self, state_dir: Path) -> None:
        self.lock = threading.RLock()
        self.path = state_dir / "state.json"
        self.state = State()
        if self.path.exists():
            self.state = State.from_json(json.loads(self.path.read_text()))

    # -- persistence --------------------------------------------------------------
    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state.to_json()))
            os.replace(tmp, self.path)

    def reset(self) -> None:
        with self.lock:
            self.state = State()

    # -- lookups --------------------------------------------------------------------
    def pick_user(self, login_hint: str | None) -> User | None:
        """The user who "consents": the one named by ``login_hint``, else the first."""
        users = self.state.users
        if login_hint and login_hint in users:
            return users[login_hint]
        return next(iter(users.values()), None)

    def find_token(self, value: str, hint: str | None = None) -> AccessToken | RefreshToken | None:
        """RFC 7009 §2.1 / RFC 7662 §2.1: the hint only orders the search."""
        access = self.state.access_tokens.get(value)
        refresh = self.state.refresh_tokens.get(value)
        if hint == "refresh_token":
            return refresh or access
        return access or refresh

    # -- issuing --------------------------------------------------------------------
    def issue(
        self,
        token: dict[str, Any],
        *,
        client_id: str,
        user: str | None,
        grant_type: str,
        family: str | None,
    ) -> str:
        """Record a token response (RFC 6749 §5.1); returns the grant family id."""
        family = family or uuid.uuid4().hex
        now = time.time()
        self.state.access_tokens[token["access_token"]] = AccessToken(
            access_token=token["access_token"],
            client_id=client_id,
            user=user,
            scope=token.get("scope", ""),
            grant_type=grant_type,
            family=family,
            issued_at=now,
            expires_at=now + int(token.get("expires_in", 0)),
        )
        if token.get("refresh_token") and user is not None:
            self.state.refresh_tokens[token["refresh_token"]] = RefreshToken(
                refresh_token=token["refresh_token"],
                client_id=client_id,
                user=user,
                scope=token.get("scope", ""),
                family=family,
                issued_at=now,
            )
        return family

    # -- revoking -------------------------------------------------------------------
    def revoke_family(self, family: str | None) -> None:
        """Revoke every access and refresh token of one grant (RFC 6749 §4.1.2 code
        replay, §10.4 refresh token reuse, RFC 7009 §2.1 revoking a refresh token)."""
        if family is None:
            return
        for access in self.state.access_tokens.values():
            if access.family == family:
                access.revoked = True
        for refresh in self.state.refresh_tokens.values():
            if refresh.family == family and refresh.status in ("active", "rotated"):
                refresh.status = "revoked"

    def revoke_user(self, username: str) -> None:
        """The user withdrew consent: every token and unused code of the user dies."""
        for access in self.state.access_tokens.values():
            if access.user == username:
                access.revoked = True
        for refresh in self.state.refresh_tokens.values():
            if refresh.user == username:
                refresh.status = "revoked"
        for code in self.state.codes.values():
            if code.user == username:
                code.used = True

    def expire_refresh_tokens(self) -> None:
        for refresh in self.state.refresh_tokens.values():
            if refresh.status == "active":
                refresh.status = "expired"

    def expire_access_tokens(self) -> None:
        now = time.time()
        for access in self.state.access_tokens.values():
            access.expires_at = min(access.expires_at, now - 1)

    # -- failure injection ------------------------------------------------------------
    def take_failure(self, mode: str) -> Failure | None:
        """Consume one use of an injected failure, if it is armed."""
        failure = self.state.failures.get(mode)
        if failure is None or failure.remaining <= 0:
            return None
        failure.remaining -= 1
        if failure.remaining <= 0:
            del self.state.failures[mode]
        return failure

    def use_jti(self, key: str) -> bool:
        """RFC 7523 §3 item 7: a client assertion's ``jti`` may be used once."""
        if key in self.state.used_jtis:
            return False
        self.state.used_jtis.append(key)
        return True

    # -- device flow (RFC 8628 §3.3: the user's decision) ----------------------------
    def decide_device(self, user_code: str, username: str | None, *, approve: bool) -> None:
        """Record the user's decision on a device authorization; ``KeyError`` if the user
        code is unknown, ``ValueError`` if it expired or was decided already."""
        found = next((d for d in self.state.devices.values() if d.user_code == user_code), None)
        if found is None:
            raise KeyError(f"unknown user_code {user_code!r}")
        if found.is_expired():
            raise ValueError(f"user_code {user_code!r} expired")
        if found.status != "pending":
            raise ValueError(f"user_code {user_code!r} is already {found.status}")
        if approve:
            if username is None or username not in self.state.users:
                raise KeyError(f"unknown user {username!r}")
            found.status, found.user = "approved", username
        else:
            found.status = "denied"
