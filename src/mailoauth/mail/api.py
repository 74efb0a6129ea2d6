"""What the HTTPS mail APIs (:mod:`.graph`, :mod:`.gmail`) share: one authorized request
(``Authorization: Bearer``, RFC 6750 §2.1; no redirect followed; no token sent to another
origin than ``base_url``) with one transcript note per attempt, no header, no body
(``POST https://…/me/sendMail (1234 bytes) → 202 (0 bytes, 85 ms)``); and the fetch loop.

What an answer means (:mod:`mailoauth.errors`)::

    401                    TokenRefused, not temporary: the caller refreshes once, retries once
    403                    MailError, permanent, with the API's hint (scope, consent, licence);
                           throttling 403s (Gmail's rateLimitExceeded) count as 429
    413, "too large"       MessageTooLarge
    429, 500, 502-504      retried (RetryPolicy; Retry-After, RFC 9110 §10.2.3, up to max_wait),
                           then MailError(temporary=True); sendMail too, as both vendors advise
    3xx                    MailError: a redirect is not followed with the token
    other statuses         MailError quoting the API's error code and message
    no connection          MailConnectionError naming host:port; retried unless TLS failed or
                           a POST went out (it may have been done: the error says so)
    a 2xx that is no JSON  RemoteProtocolError
"""

from __future__ import annotations

import asyncio
import email.policy
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol

import httpx

from mailoauth.errors import (
    ConfigError,
    MailConnectionError,
    MailError,
    MessageTooLarge,
    RemoteProtocolError,
    TokenRefused,
)
from mailoauth.mail.connect import caused_by_tls
from mailoauth.mail.fetched import Deliver, FetchedMessage, FetchLedger, FetchReport
from mailoauth.mail.transcript import REDACTED, Transcript
from mailoauth.secret import Secret

__all__ = ["DEFAULT_RETRY", "ApiProfile", "ApiSession", "RetryPolicy", "fetch_new", "mime_bytes"]

Sleep = Callable[[float], Awaitable[None]]

_RETRYABLE: Final = frozenset({429, 500, 502, 503, 504})
_TOO_LARGE: Final = ("too large", "exceeds the limit", "exceeds the maximum", "sizeexceeded")
_MAX_TEXT: Final = 300


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of 429 / 5xx / no connection in one call: ``attempts`` in all, waiting the
    ``Retry-After`` or ``backoff`` doubling; a longer wait than ``max_wait`` is not done."""

    attempts: int = 3
    backoff: float = 1.0
    max_wait: float = 60.0
    sleep: Sleep = asyncio.sleep


DEFAULT_RETRY: Final = RetryPolicy()


@dataclass(frozen=True)
class ApiProfile:
    """One API: its name in messages, its transcript protocol, what to say on a 403."""

    name: str
    protocol: str
    forbidden_hint: Callable[[str], str]
    throttle_codes: frozenset[str] = frozenset()  # 403 codes that mean "slow down"


def mime_bytes(message: EmailMessage) -> bytes:
    """The message as the APIs take it: RFC 5322 with CRLF, Bcc kept (both APIs take the
    recipients from the headers and remove Bcc before delivery)."""
    if not any(message.get_all(name) for name in ("To", "Cc", "Bcc")):
        raise ConfigError("message.To", "names no recipient", "set To, Cc or Bcc")
    return message.as_bytes(policy=email.policy.SMTP)


def items(body: dict[str, Any], key: str, what: str) -> list[dict[str, Any]]:
    """``body[key]``, a list of JSON objects (absent = empty, as Gmail sends it)."""
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise RemoteProtocolError(f"{what}: {key!r} is not a list of objects")
    return value


def text_field(item: dict[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise RemoteProtocolError(f"{what}: {key!r} is missing or not a string")
    return value


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP-date."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _google_reason(error: dict[str, Any]) -> str:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("ErrorInfo"):
            return str(detail.get("reason", ""))
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("reason", ""))
    return str(error.get("status", ""))


@dataclass(eq=False)
class _Retry(Exception):  # noqa: N818 - a signal inside ApiSession.request
    error: MailError
    wait: float | None


class ApiSession:
    """The requests of one call to one API with one token."""

    def __init__(
        self,
        profile: ApiProfile,
        http: httpx.AsyncClient,
        token: Secret,
        base_url: str,
        transcript: Transcript | None,
        retry: RetryPolicy,
    ) -> None:
        base = httpx.URL(base_url.rstrip("/"))
        if base.scheme != "https" or not base.host:
            raise ConfigError(
                "base_url",
                f"{base_url!r} is not an https URL, so the token could travel in clear text",
                f"give the {profile.name} address starting with https://",
            )
        self.profile = profile
        self.base = base
        self.host = base.host
        self.port = base.port or 443
        self._at: dict[str, Any] = {"host": self.host, "port": self.port}
        self.transcript = transcript or Transcript(profile.protocol, enabled=False)
        self.transcript.hide(token)
        self._http = http
        self._token = token
        self._retry = retry

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def same_origin(self, link: str) -> str:
        """A paging link, refused unless at ``base_url``'s origin (it will carry the token)."""
        url = httpx.URL(link)
        if (url.scheme, url.host, url.port) != (self.base.scheme, self.base.host, self.base.port):
            raise RemoteProtocolError(
                f"{self.profile.name} sent a paging link to {url.scheme}://{url.host}, not "
                f"{self.host}; the token is not sent there"
            )
        return link

    async def json(
        self,
        method: str,
        url: str,
        *,
        action: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
        message_size: int = 0,
    ) -> dict[str, Any]:
        response = await self.request(
            method,
            url,
            action=action,
            params=params,
            body=body,
            expect=expect,
            message_size=message_size,
        )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            kind = response.headers.get("content-type", "no content type")
            raise RemoteProtocolError(
                f"{self.profile.name} answered {method} {response.request.url.path} with "
                f"something that is not a JSON object ({kind}); check base_url (a proxy?)"
            )
        return answer

    async def request(
        self,
        method: str,
        url: str,
        *,
        action: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        expect: tuple[int, ...] = (200,),
        message_size: int = 0,
    ) -> httpx.Response:
        """Send, retrying per the policy; return the answer when its status is in
        ``expect``, else raise what it means. ``action`` completes "could not …"."""
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        headers.update({"Content-Type": content_type} if content_type else {})
        request = self._http.build_request(
            method, url, params=params, json=body, content=content, headers=headers
        )
        policy = self._retry
        for attempt in range(1, max(policy.attempts, 1) + 1):
            line = f"{method} {request.url} ({len(request.content)} bytes)"
            started = time.monotonic()
            try:
                response = await self._http.send(request, follow_redirects=False)
            except httpx.TransportError as exc:
                self.transcript.note(f"{line} → {type(exc).__name__}")
                failure = self._transport_error(request, action, exc)
            else:
                took = (time.monotonic() - started) * 1000
                size = f"{len(response.content)} bytes, {took:.0f} ms"
                self.transcript.note(f"{line} → {response.status_code} ({size})")
                if response.status_code in expect:
                    return response
                failure = self._status_error(response, action, message_size)
            if not isinstance(failure, _Retry):
                raise failure
            wait = failure.wait if failure.wait is not None else policy.backoff * 2 ** (attempt - 1)
            if attempt >= policy.attempts or wait > policy.max_wait:
                raise failure.error
            await policy.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_error(
        self, request: httpx.Request, action: str, exc: httpx.TransportError
    ) -> Exception:
        name, server = self.profile.name, f"{self.host}:{self.port}"
        if caused_by_tls(exc):
            return MailConnectionError(
                f"TLS with {name} at {server} failed ({exc}); check that base_url names the "
                "API's host and that its certificate is trusted (ca_file)",
                tls=True,
                **self._at,
            )
        unsafe = request.method == "POST" and not isinstance(
            exc, httpx.ConnectError | httpx.ConnectTimeout
        )
        error = MailConnectionError(
            f"could not {action}: no answer from {name} at {server} ({type(exc).__name__}: "
            f"{str(exc) or 'no details'}){' (it may have been done)' if unsafe else ''}; check "
            "base_url and that the network allows it, or retry later",
            **self._at,
        )
        return error if unsafe else _Retry(error, None)

    def _clean(self, text: str) -> str:
        text = " ".join(text.split()).replace(self._token.reveal(), REDACTED)
        return text if len(text) <= _MAX_TEXT else f"{text[:_MAX_TEXT]}…"

    def _failure(self, response: httpx.Response) -> tuple[str, str]:
        """(code, message) from Graph's ``{"error": {"code", "message"}}`` or Google's
        ``{"error": {"code": 403, "message", "errors": [{"reason"}], "status", "details"}}``."""
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):  # not JSON, or not an object
            error = None
        if isinstance(error, dict):
            code = error.get("code")
            reason = code if isinstance(code, str) else _google_reason(error)
            return self._clean(reason), self._clean(str(error.get("message", "")))
        return "", self._clean(response.text if response.content else response.reason_phrase)

    def _status_error(self, response: httpx.Response, action: str, size: int) -> Exception:
        status, name = response.status_code, self.profile.name
        if 300 <= status < 400:
            location = self._clean(response.headers.get("location", "nowhere"))
            return MailError(
                f"could not {action}: {name} answered {status}, a redirect to {location}; "
                "mailoauth does not send the token elsewhere: check base_url",
                code=status,
                **self._at,
            )
        code, message = self._failure(response)
        said = f"{status} {code}: {message}" if code else f"{status}: {message}"
        if status == 401:
            return TokenRefused(
                f"{name} refused the access token ({said}) when asked to {action}; refresh "
                "the token, and authorize the mailbox again if a fresh one is refused too"
            )
        if status == 413 or any(mark in f"{code} {message}".lower() for mark in _TOO_LARGE):
            return MessageTooLarge(
                f"{name} refused the message of {size} bytes as too large ({said}); "
                "send smaller attachments or a link instead",
                size=size,
                **self._at,
            )
        throttled = status == 403 and code in self.profile.throttle_codes
        if status in _RETRYABLE or throttled:
            wait = _retry_after(response.headers.get("retry-after"))
            asked = f"; it asked to wait {wait:g} s" if wait is not None else ""
            error = MailError(
                f"could not {action}: {name} answered {said}{asked}; retry later",
                code=status,
                temporary=True,
                **self._at,
            )
            return _Retry(error, wait)
        hint = f"; {self.profile.forbidden_hint(code)}" if status == 403 else ""
        return MailError(
            f"could not {action}: {name} answered {said}{hint}", code=status, **self._at
        )


def parse_after_fetch(text: str) -> tuple[str, str]:
    """``keep`` / ``seen`` / ``delete`` / ``move:FOLDER`` → (verb, folder or "")."""
    verb, _, target = text.partition(":")
    if verb not in ("keep", "seen", "delete", "move") or (verb == "move") != bool(target):
        raise ConfigError(
            "after_fetch", f"{text!r} is not an action", "use keep, seen, delete or move:FOLDER"
        )
    return verb, target


class FetchSource(Protocol):
    """One folder of one API: ``download`` gives None for a message gone since the
    listing; ``after_fetch`` does the action and says whether there was one."""

    async def download(self, uid: str) -> bytes | None: ...
    async def after_fetch(self, uid: str) -> bool: ...


async def fetch_new(
    *,
    mailbox: str,
    folder: str,
    listed: Sequence[str],
    source: FetchSource,
    deliver: Deliver,
    ledger: FetchLedger,
    limit: int | None,
) -> FetchReport:
    """The delivery rule of :mod:`.fetched` over the ids ``listed`` (oldest first): skip
    the seen ones, then per new message download → deliver → after-fetch → add_seen. A
    handler that raises stops the run with nothing marked; an API error propagates."""
    if limit is not None and limit < 0:
        raise ConfigError("limit", f"{limit} is negative", "give 0 or more, or no limit")
    present = list(dict.fromkeys(listed))  # a page boundary may repeat an id
    seen = await ledger.seen(folder)
    await ledger.keep_seen(folder, present)
    new = [uid for uid in present if uid not in seen]
    take = new if limit is None else new[:limit]
    report = FetchReport(mailbox, folder, skipped=len(present) - len(new))
    report.remaining = len(new) - len(take)
    for index, uid in enumerate(take):
        data = await source.download(uid)
        if data is None:
            continue  # deleted or moved at the server since the listing
        try:
            await deliver(FetchedMessage(mailbox, folder, uid, data))
        except Exception as exc:  # any refusal means "not now": nothing is marked
            report.error = (
                f"the handler did not take message {uid} ({type(exc).__name__}: {exc}); "
                "it stays new at the server and is offered again next time"
            )
            report.remaining += len(take) - index
            return report
        if await source.after_fetch(uid):
            report.actions += 1
        await ledger.add_seen(folder, uid)
        report.delivered.append(uid)
    return report
