"""``/_control/*``: how tests set up and steer the server (no auth: the server listens
on 127.0.0.1 only, and every request from elsewhere is refused by the app).

Bodies and answers are JSON. A bad request answers 400 ``{"error": ...}``, an unknown
user code or user 404.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .grants import introspection_payload
from .models import AUTH_METHODS, SECRET_METHODS, Client, ServiceAccount, User
from .store import FAILURE_MODES, Failure, Store


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValueError("a JSON object body is required")
    return data


def _ok(**extra: Any) -> Response:
    return jsonify({"ok": True, **extra})


def _check_client(client: Client) -> None:
    if client.auth_method not in AUTH_METHODS:
        raise ValueError(f"auth_method must be one of {AUTH_METHODS}")
    if (client.auth_method in SECRET_METHODS) != bool(client.secret):
        raise ValueError("a secret is required by, and only by, the client_secret_* methods")
    has_key = bool(client.public_key_pem or client.certificate_pem)
    if (client.auth_method == "private_key_jwt") != has_key:
        raise ValueError("a public key or certificate is required by, and only by, private_key_jwt")


def control_blueprint(store: Store) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix="/_control")

    @bp.errorhandler(KeyError)
    def _not_found(error: KeyError) -> tuple[Response, int]:
        return jsonify({"error": str(error.args[0]) if error.args else "not found"}), 404

    @bp.errorhandler(ValueError)
    @bp.errorhandler(TypeError)
    def _bad(error: Exception) -> tuple[Response, int]:
        return jsonify({"error": str(error)}), 400

    @bp.get("/health")
    def health() -> Response:
        return jsonify({"ok": True, "pid": os.getpid()})

    @bp.post("/reset")
    def reset() -> Response:
        store.reset()
        return _ok()

    @bp.post("/clients")
    def add_client() -> Response:
        client = Client(**_body())
        _check_client(client)
        with store.lock:
            store.state.clients[client.client_id] = client
        return _ok()

    @bp.post("/users")
    def add_user() -> Response:
        user = User(**_body())
        with store.lock:
            store.state.users[user.username] = user
        return _ok()

    @bp.post("/service_accounts")
    def add_service_account() -> Response:
        account = ServiceAccount(**_body())
        with store.lock:
            store.state.service_accounts[account.email] = account
        return _ok()

    @bp.post("/config")
    def configure() -> Response:
        with store.lock:
            store.state.config.update(_body())
            return jsonify(vars(store.state.config))

    @bp.post("/fail")
    def fail() -> Response:
        body = _body()
        mode = body.get("mode")
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {FAILURE_MODES}")
        failure = Failure(
            remaining=int(body.get("count", 1)), seconds=float(body.get("seconds", 0))
        )
        with store.lock:
            store.state.failures[mode] = failure
        return _ok()

    @bp.post("/clear_failures")
    def clear_failures() -> Response:
        with store.lock:
            store.state.failures.clear()
        return _ok()

    @bp.post("/revoke_user")
    def revoke_user() -> Response:
        with store.lock:
            store.revoke_user(str(_body()["username"]))
        return _ok()

    @bp.post("/expire_refresh_tokens")
    def expire_refresh_tokens() -> Response:
        with store.lock:
            store.expire_refresh_tokens()
        return _ok()

    @bp.post("/expire_access_tokens")
    def expire_access_tokens() -> Response:
        with store.lock:
            store.expire_access_tokens()
        return _ok()

    @bp.post("/device/approve")
    def approve_device() -> Response:
        body = _body()
        with store.lock:
            store.decide_device(str(body["user_code"]), str(body["username"]), approve=True)
        return _ok()

    @bp.post("/device/deny")
    def deny_device() -> Response:
        with store.lock:
            store.decide_device(str(_body()["user_code"]), None, approve=False)
        return _ok()

    @bp.get("/token_requests")
    def token_requests() -> Response:
        grant_type = request.args.get("grant_type")
        with store.lock:
            seen = store.state.token_requests
            count = len(seen) if grant_type is None else seen.count(grant_type)
        return jsonify({"count": count})

    @bp.get("/token_auth_methods")
    def token_auth_methods() -> Response:
        with store.lock:
            return jsonify(list(store.state.token_auth_methods))

    @bp.get("/last_authorize_params")
    def last_authorize_params() -> Response:
        with store.lock:
            return jsonify(dict(store.state.last_authorize_params))

    @bp.post("/introspect")
    def introspect() -> Response:
        with store.lock:
            return jsonify(introspection_payload(store.find_token(str(_body()["token"]))))

    return bp
