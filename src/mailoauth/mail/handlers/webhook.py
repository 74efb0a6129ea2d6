"""Deliver fetched mail to a webhook: one HTTP POST per message (RFC 9110 §9.3.3).

The request::

    POST /path?query HTTP/1.1
    Content-Type: message/rfc822                (RFC 2046 §5.2.1)
    X-Mailoauth-Mailbox: sales
    X-Mailoauth-Folder: INBOX
    X-Mailoauth-Uid: 1700000000.42
    X-Mailoauth-Timestamp: 1700000123          (Unix seconds, set per attempt)
    X-Mailoauth-Signature: sha256=3f1c…        (only with a signing key)
    Idempotency-Key: 9b0e…                     (64 hex digits, see below)

    <the raw RFC 5322 message, byte for byte as fetched>

The mailbox, folder and uid header values are percent-encoded UTF-8: every byte outside
visible ASCII (0x21-0x7E), and ``%`` itself, is written ``%XX`` (a folder
``Sent Items`` arrives as ``Sent%20Items``; decode with ``urllib.parse.unquote``).

**Idempotency.** ``Idempotency-Key`` is :func:`~mailoauth.mail.handlers.key.delivery_key`:
the same for every delivery of one (mailbox, folder, uid), including the re-delivery the
no-loss rule makes after a crash. A receiver that must not see a message twice stores the
keys it accepted and answers 2xx again for a known one.

**Signature** (with ``signing_key``; the scheme of Stripe's and GitHub's webhooks, with the
metadata headers signed too so they cannot be swapped)::

    signed    = (timestamp + "\\n" + mailbox + "\\n" + folder + "\\n" + uid + "\\n").encode()
                + body
    signature = "sha256=" + HMAC-SHA256(key=signing_key.encode("utf-8"), signed).hexdigest()

where ``timestamp``, ``mailbox``, ``folder`` and ``uid`` are the values of the
``X-Mailoauth-Timestamp``, ``-Mailbox``, ``-Folder`` and ``-Uid`` headers exactly as
received (still percent-encoded), and ``body`` is the request body. The receiver
recomputes it, compares with :func:`hmac.compare_digest`, and refuses a timestamp more
than five minutes from its clock (so a captured request cannot be replayed later).

**Answers.** 2xx: accepted. 408, 425, 429, 5xx, a network failure or a timeout (``timeout``
seconds without progress while connecting, sending or reading): tried again up to
``attempts`` times in all, after exponential backoff with full jitter (a random wait up to
1 s, 2 s, 4 s ... capped at 30 s), or after the server's ``Retry-After`` (RFC 9110
§10.2.3) when it sends one; a ``Retry-After`` over 60 s ends the attempts at once. Then
:class:`~mailoauth.errors.MailError` with ``temporary`` set: the message stays new at the
server and is offered again at the next fetch. A 3xx is not followed (it would send the
message somewhere the configuration does not name): it is a refusal, as is any other
status; refusals raise at once, with the status and the start of the answer.

Messages and logs name the URL without its user info and query, which may hold secrets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import string
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, NamedTuple
from urllib.parse import quote, urljoin, urlsplit

import httpx

from mailoauth.errors import ConfigError, MailError
from mailoauth.mail.fetched import Deliver, FetchedMessage
from mailoauth.mail.handlers.key import delivery_key
from mailoauth.oauth.http import clean_text, parse_retry_after
from mailoauth.secret import Secret
from mailoauth.validate import check_url

__all__ = ["RETRY_STATUSES", "header_value", "webhook_handler"]

log = logging.getLogger(__name__)

#: Statuses that mean "not now": RFC 9110 §15.5.9 (408), RFC 8470 §5.2 (425),
#: RFC 6585 §4 (429); and every 5xx.
RETRY_STATUSES: Final = frozenset({408, 425, 429})
BASE_DELAY: Final = 1.0
MAX_DELAY: Final = 30.0
MAX_RETRY_AFTER: Final = 60.0
TEXT_LIMIT: Final = 200
_READ_LIMIT: Final = 4096
_SAFE: Final = "".join(c for c in string.punctuation if c != "%")

Sleep = Callable[[float], Awaitable[None]]


def header_value(text: str) -> str:
    """``text`` as a header value: UTF-8, every byte outside 0x21-0x7E and ``%`` as %XX."""
    return quote(text, safe=_SAFE)


def webhook_handler(
    url: str,
    *,
    http: httpx.AsyncClient,
    signing_key: Secret | None = None,
    attempts: int = 5,
    timeout: float = 30,
    sleep: Sleep = asyncio.sleep,
) -> Deliver:
    """A handler that POSTs each message to ``url`` (https, or http to a loopback host).

    ``http`` is the caller's client (its connection pool is reused across messages; its
    redirect setting is overridden: redirects are never followed). ``sleep`` waits
    between attempts (injected by tests)."""
    check_url("url", url)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigError("attempts", f"{attempts!r} is not a number of attempts", "give 1 or more")
    if not timeout > 0:
        raise ConfigError("timeout", f"{timeout!r} is not a time in seconds", "give e.g. 30")
    if signing_key is not None and not signing_key:
        raise ConfigError("signing_key", "is empty", "give a long random secret, or none")
    return _Webhook(url, http, signing_key, attempts, float(timeout), sleep)


def shown(url: str) -> str:
    """``url`` without user info, query and fragment: safe for messages and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class _Answer(NamedTuple):
    status: int  # 0: no answer (network failure, timeout)
    reason: str  # what went wrong, for the message
    retry_after: float | None = None
    location: str = ""


class _Webhook:
    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        signing_key: Secret | None,
        attempts: int,
        timeout: float,
        sleep: Sleep,
    ) -> None:
        self.url = url
        self.shown = shown(url)
        parts = urlsplit(url)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        # Parts of the URL that must never appear in a message.
        hidden = {url, parts.query, parts.password or ""}
        self._hidden = frozenset(item for item in hidden if item)
        self._http = http
        self._key = signing_key
        self._attempts = attempts
        self._timeout = timeout
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"<webhook {self.shown}>"

    async def __call__(self, message: FetchedMessage) -> None:
        what = f"message {message.uid} of {message.mailbox}/{message.folder}"
        answer = _Answer(0, "no attempt")
        for attempt in range(1, self._attempts + 1):
            answer = await self._post(message)
            if 200 <= answer.status < 300:
                log.debug("the webhook %s took %s (HTTP %d)", self.shown, what, answer.status)
                return
            if not _retryable(answer.status):
                raise self._refused(what, answer)
            if answer.retry_after is not None and answer.retry_after > MAX_RETRY_AFTER:
                raise self._later(what, answer, f": it asked to wait {answer.retry_after:.0f} s")
            if attempt < self._attempts:
                delay = _delay(attempt, answer.retry_after)
                log.info(
                    "the webhook %s did not take %s (%s); attempt %d of %d in %.1f s",
                    self.shown,
                    what,
                    answer.reason,
                    attempt + 1,
                    self._attempts,
                    delay,
                )
                await self._sleep(delay)
        raise self._later(what, answer, f" after {self._attempts} attempts")

    def _headers(self, message: FetchedMessage) -> dict[str, str]:
        timestamp = str(int(time.time()))
        meta = [header_value(v) for v in (message.mailbox, message.folder, message.uid)]
        headers = {
            "Content-Type": "message/rfc822",
            "X-Mailoauth-Mailbox": meta[0],
            "X-Mailoauth-Folder": meta[1],
            "X-Mailoauth-Uid": meta[2],
            "X-Mailoauth-Timestamp": timestamp,
            "Idempotency-Key": delivery_key(message),
        }
        if self._key is not None:
            signed = "".join(f"{part}\n" for part in (timestamp, *meta)).encode() + message.data
            mac = hmac.new(self._key.reveal().encode("utf-8"), signed, hashlib.sha256)
            headers["X-Mailoauth-Signature"] = f"sha256={mac.hexdigest()}"
        return headers

    async def _post(self, message: FetchedMessage) -> _Answer:
        try:
            async with self._http.stream(
                "POST",
                self.url,
                content=message.data,
                headers=self._headers(message),
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                head = await _read_head(response)
        except httpx.TimeoutException:
            return _Answer(0, f"no answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            text = clean_text(str(exc) or type(exc).__name__, self._hidden, 120)
            failed = "cannot connect" if isinstance(exc, httpx.ConnectError) else "failed"
            return _Answer(0, f"{failed}: {text}")
        status = response.status_code
        text = head.decode(response.encoding or "utf-8", "replace")
        text = clean_text(text, self._hidden, TEXT_LIMIT)
        location = response.headers.get("Location", "")
        if location:  # may be relative (RFC 9110 §10.2.2); may carry secrets of its own
            location = clean_text(shown(urljoin(self.url, location)), limit=TEXT_LIMIT)
        return _Answer(
            status,
            f"HTTP {status}: {text}" if text else f"HTTP {status}",
            _retry_after(response),
            location,
        )

    def _refused(self, what: str, answer: _Answer) -> MailError:
        if 300 <= answer.status < 400:
            target = f" to {answer.location}" if answer.location else ""
            detail = (
                f"answered HTTP {answer.status}, a redirect{target}; mail is never sent on "
                "to where a redirect points: set incoming.deliver to the final URL"
            )
        else:
            detail = (
                f"refused {what} ({answer.reason}); fix the receiving service or "
                "incoming.deliver: fetching stops at this message until the webhook takes it"
            )
        return MailError(
            f"the webhook {self.shown} {detail}",
            host=self._host,
            port=self._port,
            code=answer.status,
        )

    def _later(self, what: str, answer: _Answer, why: str) -> MailError:
        return MailError(
            f"the webhook {self.shown} did not take {what}{why} (last: {answer.reason}); "
            "the message stays new on the server and is offered again at the next fetch; "
            "check the receiving service",
            host=self._host,
            port=self._port,
            code=answer.status,
            temporary=True,
        )


def _retryable(status: int) -> bool:
    return status == 0 or status in RETRY_STATUSES or 500 <= status < 600


def _delay(attempt: int, retry_after: float | None) -> float:
    """The wait after failed attempt ``attempt`` (1-based): the server's ``Retry-After``,
    else full jitter over an exponential ceiling (the AWS architecture blog's scheme)."""
    if retry_after is not None:
        return retry_after
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)))  # noqa: S311


async def _read_head(response: httpx.Response) -> bytes:
    """At most :data:`_READ_LIMIT` bytes of the body: enough to quote, never a flood."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= _READ_LIMIT:
            break
    return head[:_READ_LIMIT]


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds; an HTTP date is measured against the answer's ``Date``
    (so the two clocks' skew cancels out), else against ours."""
    reference = datetime.now(UTC)
    date = response.headers.get("Date")
    if date:
        try:
            served = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            served = None
        if served is not None:
            reference = served if served.tzinfo is not None else served.replace(tzinfo=UTC)
    return parse_retry_after(response.headers.get("Retry-After"), reference)
