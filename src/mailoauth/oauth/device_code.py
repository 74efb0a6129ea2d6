"""The device authorization grant (RFC 8628), for machines without a browser.

:func:`start_device_authorization` asks the device endpoint for a code (§3.1, §3.2); a
person enters ``user_code`` at ``verification_uri`` on any device (§3.3) while
:func:`poll_device` asks the token endpoint at ``interval`` (§3.4, §3.5):

* ``authorization_pending`` → wait ``interval`` and ask again;
* ``slow_down`` → add 5 seconds to the interval for this and every later request;
* ``access_denied`` (Microsoft: ``authorization_declined``) / ``expired_token`` → stop
  with :class:`~mailoauth.errors.ProviderRejected`; so does reaching ``expires_at``;
* a transient failure (network, 5xx, 429) → back off (double the interval, or the
  server's ``Retry-After``) and go on, as §3.5 asks; three in a row stop the flow.

Microsoft answers ``verification_uri``; Google (predating the RFC) ``verification_url``:
both are accepted. Client authentication follows the provider's ``client_auth`` at both
endpoints (§3.1 and RFC 6749 §2.3); for ``none`` only ``client_id`` is sent.

Time and waiting are the caller's: ``now`` is a clock function and ``sleep`` an awaitable
(asyncio.sleep by default), so tests run the whole dialogue without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from mailoauth.errors import ConfigError, ProviderRejected, ProviderUnavailable
from mailoauth.models import Provider
from mailoauth.oauth.client_auth import authenticate
from mailoauth.oauth.http import clean_text, post_form
from mailoauth.oauth.token import TokenSet
from mailoauth.oauth.token_endpoint import parse_seconds, request_token
from mailoauth.secret import Secret

__all__ = [
    "DEVICE_CODE_GRANT",
    "DeviceAuthorization",
    "parse_device_response",
    "poll_device",
    "start_device_authorization",
]

DEVICE_CODE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL: Final = 5.0  # seconds (RFC 8628 §3.2)
SLOW_DOWN_STEP: Final = 5.0  # seconds (RFC 8628 §3.5)
MAX_BACKOFF: Final = 60.0
MAX_TRANSIENT_FAILURES: Final = 3
_DECLINED: Final = frozenset({"access_denied", "authorization_declined"})


@dataclass(frozen=True, kw_only=True)
class DeviceAuthorization:
    """What the device endpoint granted: show ``user_code`` and ``verification_uri``."""

    device_code: Secret
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: float
    expires_at: datetime
    #: The scopes requested, the TokenSet's scopes when the token response names none.
    scopes: tuple[str, ...] = ()


def parse_device_response(
    data: Mapping[str, Any], *, now: datetime, scopes: Sequence[str], endpoint: str
) -> DeviceAuthorization:
    """The DeviceAuthorization in a device authorization response (RFC 8628 §3.2)."""

    def text(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and value.strip() else None

    device_code = text("device_code")
    user_code = text("user_code")
    uri = text("verification_uri") or text("verification_url")
    lifetime = parse_seconds(data.get("expires_in"))
    interval = parse_seconds(data.get("interval", DEFAULT_INTERVAL))
    if (
        device_code is None
        or user_code is None
        or uri is None
        or lifetime is None
        or interval is None
    ):
        missing = [
            name
            for name, value in (
                ("device_code", device_code),
                ("user_code", user_code),
                ("verification_uri", uri),
                ("expires_in", lifetime),
                ("interval", interval),
            )
            if value is None
        ]
        raise ProviderUnavailable(
            f"{endpoint} answered a malformed device authorization ({', '.join(missing)} "
            "missing or unusable); try again later, and report it to the provider if it "
            "persists"
        )
    complete = text("verification_uri_complete") or text("verification_url_complete")
    return DeviceAuthorization(
        device_code=Secret(device_code),
        user_code=clean_text(user_code, limit=64),
        verification_uri=clean_text(uri, limit=500),
        verification_uri_complete=clean_text(complete, limit=500) if complete else None,
        interval=min(interval, MAX_BACKOFF),
        expires_at=now + timedelta(seconds=min(lifetime, 86400.0)),
        scopes=tuple(scopes),
    )


async def start_device_authorization(
    http: httpx.AsyncClient, provider: Provider, scopes: Sequence[str], *, now: datetime
) -> DeviceAuthorization:
    """Ask the device endpoint for a user code (RFC 8628 §3.1)."""
    endpoints = provider.endpoints()
    if endpoints.device_url is None:
        raise ConfigError(
            "device_url",
            f"provider {provider.name!r} has no device authorization endpoint",
            "set device_url, or use the authorization_code grant",
        )
    form, headers = authenticate(
        provider, endpoints.token_url, {"scope": " ".join(scopes)} if scopes else {}, now
    )
    if "client_id" not in form:  # RFC 8628 §3.1: client_id unless the client authenticates
        form["client_id"] = provider.client_id
    data = await post_form(
        http, endpoints.device_url, form, headers, endpoint="device endpoint", now=now
    )
    host = urlsplit(endpoints.device_url).netloc
    return parse_device_response(
        data, now=now, scopes=scopes, endpoint=f"the device endpoint {host}"
    )


async def poll_device(
    http: httpx.AsyncClient,
    provider: Provider,
    device: DeviceAuthorization,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TokenSet:
    """Poll the token endpoint until the person approves, declines, or the code expires."""
    interval = device.interval
    failures = 0
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": device.device_code.reveal()}
    while True:
        _check_expiry(device, now())
        await sleep(interval)
        _check_expiry(device, now())
        try:
            return await request_token(http, provider, form, scopes=device.scopes, now=now())
        except ProviderUnavailable as err:
            failures += 1
            if failures >= MAX_TRANSIENT_FAILURES:
                raise
            interval = min(max(interval * 2, err.retry_after or 0.0), MAX_BACKOFF)
            continue
        except ProviderRejected as err:
            failures = 0
            if err.error == "authorization_pending":
                continue
            if err.error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if err.error in _DECLINED:
                raise ProviderRejected(
                    f"sign-in was declined at {device.verification_uri}; start the device "
                    "authorization again and approve it",
                    error=err.error,
                    description=err.description,
                    status=err.status,
                ) from err
            if err.error == "expired_token":
                raise _expired(device) from err
            raise


def _check_expiry(device: DeviceAuthorization, now: datetime) -> None:
    if now >= device.expires_at:
        raise _expired(device)


def _expired(device: DeviceAuthorization) -> ProviderRejected:
    return ProviderRejected(
        f"the code {device.user_code} expired before anyone approved it at "
        f"{device.verification_uri}; start the device authorization again",
        error="expired_token",
    )
