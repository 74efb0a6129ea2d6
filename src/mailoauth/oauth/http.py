"""POST a form to an OAuth2 endpoint and classify the answer into our exception tree.

Every token, device-authorization and revocation request goes through :func:`post_form`
(RFC 6749 §3.2 and §4.1.3: ``application/x-www-form-urlencoded`` POSTs; RFC 8628 §3.1;
RFC 7009 §2.1). The answer becomes a JSON object or one of two exceptions:

:class:`~mailoauth.errors.ProviderUnavailable` (transient: retry later)
    the network failed or timed out; HTTP 5xx; HTTP 429 (RFC 6585 §4) with ``retry_after``
    from ``Retry-After`` in seconds or as an HTTP date (RFC 9110 §10.2.3, measured against
    the answer's ``Date``); a body that is not a JSON object; the RFC 6749 §5.2 codes
    ``temporarily_unavailable`` and ``server_error``.
:class:`~mailoauth.errors.ProviderRejected` (permanent: a human must act)
    any other RFC 6749 §5.2 / RFC 8628 §3.5 error code (``invalid_grant``,
    ``invalid_client``, ``access_denied``, ``authorization_pending`` ...), or a 4xx
    without one.

Both carry ``error`` (the code), ``description`` (the provider's text) and ``status``.
Messages name the endpoint's host and say what to do next.

Nothing secret leaves this module: the provider's text is cut to :data:`DESCRIPTION_LIMIT`
characters, every value of a secret form field (and of the Basic credentials) is cut out
of it, as is anything shaped like a token (:func:`clean_text`); the request itself is
never echoed, and log lines name only the endpoint, the host and the status.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, NoReturn
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

import httpx

from mailoauth.errors import OAuthError, ProviderRejected, ProviderUnavailable

__all__ = ["DESCRIPTION_LIMIT", "SECRET_FIELDS", "clean_text", "parse_retry_after", "post_form"]

log = logging.getLogger(__name__)

#: Form fields whose values are secrets: never logged, cut out of any provider text.
SECRET_FIELDS: Final = frozenset(
    {
        "client_secret",
        "client_assertion",
        "assertion",
        "refresh_token",
        "access_token",
        "code",
        "code_verifier",
        "password",
        "device_code",
        "token",
    }
)
DESCRIPTION_LIMIT: Final = 300
_REDACTED: Final = "[redacted]"

_TRANSIENT_CODES: Final = frozenset({"temporarily_unavailable", "server_error"})
_WHAT_TO_DO: Final = {
    "invalid_grant": (
        "the grant (refresh token, authorization code or password) is not valid any more: "
        "authorize the mailbox again"
    ),
    "invalid_client": (
        "check the provider's client id and its secret, key or certificate (and whether the "
        "secret has expired)"
    ),
    "unauthorized_client": "allow this grant type for the app at the provider",
    "unsupported_grant_type": "the provider does not offer this grant: choose another one",
    "invalid_scope": (
        "the app may not request these scopes: add the API permissions at the provider, or "
        "change the mailbox's scopes"
    ),
    "access_denied": "the user or an administrator declined access: authorize again",
    "expired_token": "the device code expired before sign-in finished: start again",
    "consent_required": "a person must sign in and consent: authorize the mailbox interactively",
    "interaction_required": (
        "a person must sign in (MFA or consent): authorize the mailbox interactively"
    ),
    "invalid_request": (
        "check the provider's settings (endpoint URLs, client_auth method, redirect URI)"
    ),
}
_DEFAULT_TO_DO: Final = "check the provider's and the mailbox's settings"

# Shaped like a token: a JWT, or a long run of token characters mixing case and digits.
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
_RUN: Final = re.compile(r"[A-Za-z0-9_~+/=.-]{32,}")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ERROR_CODE: Final = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")


def _looks_random(run: str) -> bool:
    return (
        not _UUID.fullmatch(run)
        and any(c.isdigit() for c in run)
        and any(c.islower() for c in run)
        and any(c.isupper() for c in run)
    )


def clean_text(
    text: str, secrets: frozenset[str] = frozenset(), limit: int = DESCRIPTION_LIMIT
) -> str:
    """``text`` fit for a message or a log: no control characters, none of ``secrets``
    (raw or form-encoded), nothing shaped like a token, at most ``limit`` characters."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            for form in {secret, quote_plus(secret, safe=""), quote(secret, safe="")}:
                text = text.replace(form, _REDACTED)
    text = _CONTROL.sub(" ", text)
    text = _JWT.sub(_REDACTED, text)
    text = _RUN.sub(lambda m: _REDACTED if _looks_random(m.group()) else m.group(), text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def parse_retry_after(value: str | None, reference: datetime | None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds, or an HTTP date minus ``reference``."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):
        return float(value)
    if reference is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    return max(0.0, (when - reference).total_seconds())


def _reference_time(response: httpx.Response, now: datetime | None) -> datetime | None:
    """The server's own ``Date`` (so clock skew cancels out), else ``now``."""
    date = response.headers.get("Date")
    if date:
        try:
            served = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            served = None
        if served is not None:
            return served if served.tzinfo is not None else served.replace(tzinfo=UTC)
    return now


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _secrets_in(form: dict[str, str], headers: dict[str, str]) -> frozenset[str]:
    found = {value for name, value in form.items() if name in SECRET_FIELDS and value}
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    if credentials:
        found.add(credentials)
        if scheme.lower() == "basic":
            found.update(_basic_parts(credentials))
    return frozenset(found)


def _basic_parts(credentials: str) -> set[str]:
    try:
        pair = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, ValueError):
        return set()
    secret = pair.partition(":")[2]  # the client id is not a secret
    return {secret, unquote_plus(secret)} - {""}


async def post_form(
    http: httpx.AsyncClient,
    url: str,
    form: dict[str, str],
    headers: dict[str, str],
    *,
    endpoint: str = "token endpoint",
    now: datetime | None = None,
    expect_json: bool = True,
) -> dict[str, Any]:
    """POST ``form`` to ``url``; the JSON object answered, or an :class:`OAuthError`.

    ``endpoint`` names the endpoint in messages ("token endpoint"). ``now`` measures an
    HTTP-date ``Retry-After`` when the answer has no ``Date``. With ``expect_json=False``
    a 2xx answer that is not JSON is a success (RFC 7009 §2.2) and gives ``{}``.
    """
    host = urlsplit(url).netloc or url
    secrets = _secrets_in(form, headers)
    log.debug("POST to the %s %s", endpoint, host)
    try:
        response = await http.post(
            url, data=form, headers={"Accept": "application/json", **headers}
        )
    except httpx.TimeoutException as exc:
        reason = clean_text(str(exc) or type(exc).__name__, secrets, 120)
        log.debug("the %s %s timed out", endpoint, host)
        raise ProviderUnavailable(
            f"the {endpoint} {host} did not answer in time ({reason}); check the network or "
            "the provider's status, then try again"
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        reason = clean_text(str(exc) or type(exc).__name__, secrets, 120)
        log.debug("cannot reach the %s %s: %s", endpoint, host, reason)
        raise ProviderUnavailable(
            f"cannot reach the {endpoint} {host}: {reason}; check the network or the "
            "provider's status"
        ) from exc
    status = response.status_code
    log.debug("the %s %s answered HTTP %d", endpoint, host, status)
    data = _json_object(response.content)
    if status == 429 or status >= 500:
        _raise_transient(endpoint, host, response, data, secrets, now)
    if data is None:
        if not expect_json and 200 <= status < 300:
            return {}
        kind = clean_text(response.headers.get("Content-Type", "no content type"), limit=60)
        raise ProviderUnavailable(
            f"the {endpoint} {host} answered something that is not JSON (HTTP {status}, "
            f"{kind}); check the endpoint URL, any proxy in between, or the provider's status",
            status=status,
        )
    if data.get("error") not in (None, ""):
        raise _classified(endpoint, host, status, data, secrets)
    if 200 <= status < 300:
        return data
    raise ProviderRejected(
        f"the {endpoint} {host} refused the request (HTTP {status}) without an error code; "
        f"{_DEFAULT_TO_DO}",
        status=status,
    )


def _error_fields(data: dict[str, Any] | None, secrets: frozenset[str]) -> tuple[str, str]:
    if data is None:
        return "", ""
    raw_error, raw_text = data.get("error"), data.get("error_description")
    error = raw_error if isinstance(raw_error, str) and _ERROR_CODE.fullmatch(raw_error) else ""
    error = clean_text(error, secrets, 64)
    text = clean_text(raw_text, secrets) if isinstance(raw_text, str) else ""
    return error, text


def _raise_transient(
    endpoint: str,
    host: str,
    response: httpx.Response,
    data: dict[str, Any] | None,
    secrets: frozenset[str],
    now: datetime | None,
) -> NoReturn:
    status = response.status_code
    error, text = _error_fields(data, secrets)
    wait = parse_retry_after(response.headers.get("Retry-After"), _reference_time(response, now))
    said = f": {error}" if error else ""
    said += f" ({text})" if text else ""
    when = f"try again in {wait:.0f} s" if wait is not None else "try again later"
    if status == 429:
        message = f"the {endpoint} {host} is limiting the request rate (HTTP 429{said}); {when}"
    else:
        message = (
            f"the {endpoint} {host} failed (HTTP {status}{said}); {when}, or check the "
            "provider's status"
        )
    raise ProviderUnavailable(
        message, retry_after=wait, error=error, description=text, status=status
    )


def _classified(
    endpoint: str, host: str, status: int, data: dict[str, Any], secrets: frozenset[str]
) -> OAuthError:
    error, text = _error_fields(data, secrets)
    code = error or "an unreadable error code"
    said = f"{code} ({text})" if text else code
    log.debug("the %s %s answered error %s", endpoint, host, code)
    if error in _TRANSIENT_CODES:
        return ProviderUnavailable(
            f"the {endpoint} {host} is not available right now: {said}; try again later",
            error=error,
            description=text,
            status=status,
        )
    to_do = _WHAT_TO_DO.get(error, _DEFAULT_TO_DO)
    return ProviderRejected(
        f"the {endpoint} {host} refused the request: {said}; {to_do}",
        error=error,
        description=text,
        status=status,
    )
