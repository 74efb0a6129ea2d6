"""The Flask app of the test authorization server: the OAuth endpoints, failure
injection on ``/token`` and state persistence after every request.

Endpoints (base ``http://127.0.0.1:PORT``):

- ``GET /authorize`` — RFC 6749 §4.1.1 with PKCE (RFC 7636); auto-consent as the user
  named by ``login_hint`` (else the first user), or access_denied in ``deny`` mode; in
  ``page`` mode a consent page whose Allow / Deny buttons POST to ``/authorize`` (what a
  browser test clicks in the console's popup).
- ``POST /token`` — RFC 6749 §3.2 (all grants, see ``grants.py``).
- ``POST /device``, ``GET /device/verify`` — RFC 8628 §3.1 and §3.3.
- ``POST /revoke`` — RFC 7009. ``POST /introspect`` — RFC 7662; ``GET /introspect``
  with ``Authorization: Bearer`` answers the same JSON (Dovecot ``introspection_mode = auth``).
- ``GET /userinfo`` — a Bearer-protected resource (RFC 6750) naming the token's user.
- ``GET /.well-known/oauth-authorization-server`` — RFC 8414 metadata.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask, Response, abort, jsonify, request

from .control import control_blueprint
from .grants import TOKEN_AUTH, introspection_payload
from .models import DEVICE_CODE, JWT_BEARER, AccessToken
from .server import LoopbackAuthorizationServer
from .store import Store

LOOPBACK = ("127.0.0.1", "::1")
ERROR_PAGE = "<html><head><title>500 Internal Server Error</title></head><body>oops</body></html>"


def _consent_page(params: dict[str, str], username: str) -> Response:
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
    )
    scopes = html.escape(params.get("scope", ""))
    body = f"""<!doctype html><html><head><title>Test provider: consent</title></head><body>
<h1>Allow access?</h1><p id="who">{html.escape(username)}</p><p id="scopes">{scopes}</p>
<form method="post" action="/authorize">{fields}
<button name="decision" value="allow">Allow</button>
<button name="decision" value="deny">Deny</button></form></body></html>"""
    return Response(body, content_type="text/html")


class StoreBearerValidator(BearerTokenValidator):
    """RFC 6750 §2.1 access tokens, looked up in the store."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return self.store.state.access_tokens.get(token_string)


def _inject_failure(store: Store) -> Response | None:
    """Answer a ``/token`` request with an armed failure instead of processing it."""
    if store.take_failure("status_500"):
        return Response(ERROR_PAGE, status=500, content_type="text/html")
    limited = store.take_failure("rate_limited")
    if limited:
        body = {"error": "rate_limited", "error_description": "Too many requests"}
        return Response(
            json.dumps(body),
            status=429,
            content_type="application/json",
            headers={"Retry-After": str(math.ceil(limited.seconds))},
        )
    if store.take_failure("malformed"):
        return Response('{"access_token": "', status=200, content_type="application/json")
    return None


def create_app(state_dir: Path, port: int) -> Flask:
    app = Flask("mailoauth_test_authserver")
    base_url = f"http://127.0.0.1:{port}"
    store = Store(state_dir)
    server = LoopbackAuthorizationServer(app, store, base_url)
    protector = ResourceProtector()
    protector.register_token_validator(StoreBearerValidator(store))
    app.register_blueprint(control_blueprint(store))

    @app.before_request
    def _loopback_only() -> None:
        if request.remote_addr not in LOOPBACK:
            abort(403)

    @app.before_request
    def _form_body_only() -> Response | None:
        """RFC 6749 §2.3.1/§3.2: POST endpoints take their parameters (and client
        credentials) in the form body only; authlib would also read the query string."""
        if request.method == "POST" and request.args and not request.path.startswith("/_control"):
            body = {"error": "invalid_request", "error_description": "Parameters in the URL."}
            return Response(json.dumps(body), status=400, content_type="application/json")
        return None

    @app.after_request
    def _persist(response: Response) -> Response:
        if request.path != "/_control/health":
            store.save()
        return response

    @app.get("/authorize")
    def authorize() -> Any:
        with store.lock:
            store.state.last_authorize_params = request.args.to_dict()
            user = store.pick_user(request.args.get("login_hint"))
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            if store.state.config.consent == "page":
                return _consent_page(request.args.to_dict(), user.username if user else "")
            approved = store.state.config.consent == "approve" and user is not None
            return server.create_authorization_response(
                grant=grant, grant_user=user if approved else None
            )

    @app.post("/authorize")
    def decide() -> Any:
        with store.lock:
            user = store.pick_user(request.form.get("login_hint"))
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            approved = request.form.get("decision") == "allow" and user is not None
            return server.create_authorization_response(
                grant=grant, grant_user=user if approved else None
            )

    @app.post("/token")
    def token() -> Any:
        with store.lock:
            store.state.token_requests.append(request.form.get("grant_type", ""))
            slow = store.take_failure("slow")
        if slow:
            time.sleep(slow.seconds)
        with store.lock:
            failed = _inject_failure(store)
            if failed is not None:
                return failed
            strip_expiry = store.take_failure("no_expires_in")
            response: Response = server.create_token_response()
        if strip_expiry and response.status_code == 200:
            data = json.loads(response.get_data())
            data.pop("expires_in", None)
            response.set_data(json.dumps(data))
        return response

    @app.post("/device")
    def device_authorization() -> Any:
        with store.lock:
            return server.create_endpoint_response("device_authorization")

    @app.get("/device/verify")
    def device_verify() -> Any:
        user_code = request.args.get("user_code", "")
        with store.lock:
            user = store.pick_user(request.args.get("login_hint"))
            approve = store.state.config.consent == "approve" and user is not None
            try:
                store.decide_device(user_code, user.username if user else None, approve=approve)
            except KeyError as error:
                return Response(f"<p>{error.args[0]}</p>", status=404, content_type="text/html")
            except ValueError as error:
                return Response(f"<p>{error}</p>", status=400, content_type="text/html")
        verdict = "approved" if approve else "denied"
        return Response(f"<p>Device {verdict}.</p>", content_type="text/html")

    @app.post("/revoke")
    def revoke() -> Any:
        with store.lock:
            return server.create_endpoint_response("revocation")

    @app.post("/introspect")
    def introspect() -> Any:
        with store.lock:
            return server.create_endpoint_response("introspection")

    @app.get("/introspect")
    def introspect_bearer() -> Any:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return Response(
                json.dumps({"error": "invalid_request"}),
                status=401,
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="introspect"'},
            )
        with store.lock:
            found = store.state.access_tokens.get(value.strip())
            return jsonify(introspection_payload(found))

    @app.get("/userinfo")
    def userinfo() -> Any:
        # acquire() turns authlib's errors into a 401 + WWW-Authenticate (RFC 6750 §3);
        # acquire_token() alone would let them escape as a 500.
        with store.lock, protector.acquire() as token:
            if token.user is None:
                return jsonify({"sub": token.client_id})
            return jsonify({"sub": token.user, "email": token.user, "email_verified": True})

    @app.get("/.well-known/oauth-authorization-server")
    def metadata() -> Any:
        return jsonify(
            {
                "issuer": base_url,
                "authorization_endpoint": f"{base_url}/authorize",
                "token_endpoint": f"{base_url}/token",
                "device_authorization_endpoint": f"{base_url}/device",
                "revocation_endpoint": f"{base_url}/revoke",
                "introspection_endpoint": f"{base_url}/introspect",
                "userinfo_endpoint": f"{base_url}/userinfo",
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "password",
                    "client_credentials",
                    JWT_BEARER,
                    DEVICE_CODE,
                ],
                "token_endpoint_auth_methods_supported": TOKEN_AUTH,
                "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256"],
                "code_challenge_methods_supported": ["S256", "plain"],
            }
        )

    return app
