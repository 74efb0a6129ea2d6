"""An HTTPS double of Microsoft Graph mail and the Gmail API, for the tests of
``mailoauth.mail.graph`` / ``mailoauth.mail.gmail`` (Google and Microsoft cannot be
reached from here).

One ``ThreadingHTTPServer`` on 127.0.0.1 (an OS-chosen port: bound before anyone needs
to know it, so no race), TLS from a throw-away ``trustme`` CA (``ca_path``,
``ssl_context()``), started once per session in a thread and reset per test. Graph lives
under ``/v1.0``, Gmail under ``/gmail/v1``; mailboxes are kept in memory per user.

What it checks, as the real services do (with their error JSON shapes: Graph
``{"error": {"code", "message", "innerError"}}``, Google
``{"error": {"code", "message", "errors": [{"reason"}], "status", "details"}}``):

* ``Authorization: Bearer`` against the tokens a test registered with :meth:`allow`
  (401 otherwise), and their scopes (403: Graph ``ErrorAccessDenied``, Gmail
  ``ACCESS_TOKEN_SCOPE_INSUFFICIENT``). Graph's ``/me`` needs a delegated token; an
  app-only one names the mailbox (``/users/{id}``), a delegated one only its own.
* sendMail: ``Content-Type: text/plain``, a strictly base64 body, a recipient; 202.
  messages.send: JSON with ``raw`` in base64url (base64 too, as proto3 JSON allows), a
  recipient. Query options ($select properties, $orderby, $top, $filter, labelIds,
  maxResults, pageToken, format), JSON bodies of PATCH / move / modify, folder and
  label ids (a display name where an id belongs is ``ErrorInvalidIdMalformed``).

Tests drive it directly: ``graph(user)`` / ``gmail(user)`` give a mailbox to fill and
inspect, ``fail()`` injects answers (429 with Retry-After, 503, a redirect, bad JSON),
``page_size`` caps every page (server-driven paging), ``max_size`` the message size,
``requests`` records what arrived (never the Authorization header; tokens are kept only
as SHA-256 digests). A request the double could not handle fails the test.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
import secrets
import ssl
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import pytest
import trustme

HOST = "127.0.0.1"
GRAPH = "https://graph.microsoft.com/"
GMAIL = "https://www.googleapis.com/auth/"
GMAIL_FULL = "https://mail.google.com/"
ALL_SCOPES = frozenset(
    {GRAPH + "Mail.Send", GRAPH + "Mail.ReadWrite", GMAIL + "gmail.send", GMAIL + "gmail.modify"}
)
GRAPH_FOLDERS = {
    "inbox": "Inbox",
    "archive": "Archive",
    "deleteditems": "Deleted Items",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "junkemail": "Junk Email",
}
GMAIL_SYSTEM = ("INBOX", "SENT", "TRASH", "SPAM", "UNREAD", "STARRED", "IMPORTANT", "DRAFT")
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
GRAPH_CODES = {
    400: "BadRequest",
    403: "ErrorAccessDenied",
    404: "ErrorItemNotFound",
    413: "ErrorMessageSizeExceeded",
    429: "ApplicationThrottled",
    503: "ServiceUnavailable",
}
MAX_PAGE = {"graph": 1000, "gmail": 500}


class Reply(Exception):  # noqa: N818 - raised from any depth, it is the answer
    def __init__(
        self,
        status: int,
        body: dict[str, Any] | bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        self.status = status
        self.payload = json.dumps(body).encode() if isinstance(body, dict) else body
        self.headers = {"Content-Type": content_type, **(headers or {})}


def graph_error(status: int, code: str, message: str, **headers: str) -> Reply:
    inner = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "request-id": "0"}
    return Reply(
        status, {"error": {"code": code, "message": message, "innerError": inner}}, headers
    )


def google_error(
    status: int, message: str, reason: str, info: str | None = None, **headers: str
) -> Reply:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if info:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": info}]
    return Reply(status, {"error": error}, headers)


def bad_google_request(message: str, reason: str = "invalidArgument") -> Reply:
    return google_error(400, message, reason)


# --- mailboxes ------------------------------------------------------------------------
_clock = itertools.count()
_EPOCH = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def _next_time() -> datetime:
    return _EPOCH + timedelta(seconds=next(_clock))


def _recipients(data: bytes) -> bool:
    parsed = BytesParser(policy=default_policy).parsebytes(data, headersonly=True)
    return any(parsed.get_all(name) for name in ("To", "Cc", "Bcc"))


@dataclass
class GraphMessage:
    id: str
    folder: str  # a folder id
    data: bytes
    received: datetime
    is_read: bool = False

    def resource(self, select: list[str] | None = None) -> dict[str, Any]:
        full = {
            "@odata.etag": f'W/"{self.id[-8:]}"',
            "id": self.id,
            "receivedDateTime": self.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "isRead": self.is_read,
            "parentFolderId": self.folder,
        }
        return full if select is None else {k: full[k] for k in ["@odata.etag", "id", *select]}


@dataclass
class GraphBox:
    """One user's mailbox as Graph shows it: folders (well-known ones made up front)."""

    folders: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id → name, wk
    messages: dict[str, GraphMessage] = field(default_factory=dict)
    deleted: list[GraphMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        for well_known, name in GRAPH_FOLDERS.items():
            self.folders[_graph_id()] = (name, well_known)

    def folder_id(self, ref: str) -> str | None:
        for folder_id, (_, well_known) in self.folders.items():
            if ref == folder_id or ref.lower() == well_known:
                return folder_id
        return None

    def add_folder(self, name: str) -> str:
        folder_id = _graph_id()
        self.folders[folder_id] = (name, None)
        return folder_id

    def deliver(self, data: bytes, folder: str = "inbox", *, read: bool = False) -> str:
        folder_id = self.folder_id(folder)
        assert folder_id is not None, f"no folder {folder!r}: add_folder() it first"
        message = GraphMessage(_graph_id(), folder_id, data, _next_time(), read)
        self.messages[message.id] = message
        return message.id

    def in_folder(self, folder: str) -> list[GraphMessage]:
        folder_id = self.folder_id(folder)
        return sorted(
            (m for m in self.messages.values() if m.folder == folder_id), key=lambda m: m.received
        )

    def sent(self) -> list[bytes]:
        return [m.data for m in self.in_folder("sentitems")]


def _graph_id() -> str:
    return "AAMkAD" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b") + "AAA="


@dataclass
class GmailMessage:
    id: str
    labels: set[str]
    data: bytes
    internal_date: datetime

    def resource(self) -> dict[str, Any]:
        return {"id": self.id, "threadId": self.id, "labelIds": sorted(self.labels)}


@dataclass
class GmailBox:
    """One user's mailbox as Gmail shows it: label id → (name, type)."""

    labels: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {name: (name, "system") for name in GMAIL_SYSTEM}
    )
    messages: dict[str, GmailMessage] = field(default_factory=dict)

    def add_label(self, name: str) -> str:
        label_id = f"Label_{len(self.labels)}"
        self.labels[label_id] = (name, "user")
        return label_id

    def deliver(self, data: bytes, labels: tuple[str, ...] = ("INBOX", "UNREAD")) -> str:
        message = GmailMessage(secrets.token_hex(8), set(labels), data, _next_time())
        self.messages[message.id] = message
        return message.id

    def labelled(self, label: str) -> list[GmailMessage]:
        """Oldest first (the API lists newest first)."""
        found = [m for m in self.messages.values() if label in m.labels]
        return sorted(found, key=lambda m: m.internal_date)

    def sent(self) -> list[bytes]:
        return [m.data for m in self.labelled("SENT")]


# --- the service ----------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    user: str | None  # None: an app-only (client credentials) token
    scopes: frozenset[str]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # without Authorization
    body: bytes


@dataclass
class Failure:
    status: int
    path: str
    method: str | None
    times: int | None  # None: forever
    headers: dict[str, str]
    body: bytes | None
    code: str | None
    message: str | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _json_body(headers: Message, body: bytes, error: Reply) -> dict[str, Any]:
    if headers.get_content_type() != "application/json":
        raise error
    try:
        value = json.loads(body)
    except ValueError:
        raise error from None
    if not isinstance(value, dict):
        raise error
    return value


def _int(value: str, low: int, high: int, error: Reply) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise error
    return int(value)


class MailApi:
    """The double: its address, its CA, the mailboxes and the knobs a test turns."""

    def __init__(self, root: Path) -> None:
        self.ca = trustme.CA()
        self.ca_path = root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.crashes: list[str] = []
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.reset()

    # -- what tests use ----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def gmail_url(self) -> str:
        return self.url

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))

    def reset(self) -> None:
        with self._lock:
            self._grants: dict[str, Grant] = {}
            self._graph: dict[str, GraphBox] = {}
            self._gmail: dict[str, GmailBox] = {}
            self.failures: list[Failure] = []
            self.requests: list[Recorded] = []
            self.page_size: int | None = None
            self.max_size = 4 * 1024 * 1024

    def allow(self, token: str, user: str | None, *, scopes: set[str] | None = None) -> None:
        """Accept ``token`` for ``user`` (None: an app-only Graph token, any mailbox)."""
        self._grants[_digest(token)] = Grant(
            user.lower() if user else None, frozenset(ALL_SCOPES if scopes is None else scopes)
        )

    def graph(self, user: str) -> GraphBox:
        return self._graph.setdefault(user.lower(), GraphBox())

    def gmail(self, user: str) -> GmailBox:
        return self._gmail.setdefault(user.lower(), GmailBox())

    def fail(
        self,
        status: int,
        *,
        path: str = "",
        method: str | None = None,
        times: int | None = 1,
        retry_after: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer ``status`` to the next ``times`` requests whose path contains ``path``
        (in the API's error shape, with ``code`` / ``message``, unless ``body`` is given)."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = retry_after
        self.failures.append(Failure(status, path, method, times, extra, body, code, message))

    # -- serving -----------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Message, body: bytes) -> Reply:
        url = urlsplit(target)
        query = parse_qs(url.query, keep_blank_values=True)
        path = url.path
        with self._lock:
            kept = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            self.requests.append(Recorded(method, path, query, kept, body))
            try:
                if path.startswith("/v1.0/"):
                    grant = self._authenticate("graph", headers.get("Authorization", ""))
                    self._injected("graph", method, path)
                    return _GraphApi(self, grant).route(method, path[5:], query, headers, body)
                if path.startswith("/gmail/v1/users/"):
                    grant = self._authenticate("gmail", headers.get("Authorization", ""))
                    self._injected("gmail", method, path)
                    return _GmailApi(self, grant).route(method, path[16:], query, headers, body)
                raise Reply(404, b"Not Found", content_type="text/plain")
            except Reply as reply:
                return reply

    def _authenticate(self, api: str, header: str) -> Grant:
        scheme, _, token = header.partition(" ")
        grant = self._grants.get(_digest(token)) if scheme.lower() == "bearer" else None
        if grant is not None:
            return grant
        if api == "graph":
            raise graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure." if token else "Access token is empty.",
                **{"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )
        raise google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            "authError",
            **{"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
        )

    def _injected(self, api: str, method: str, path: str) -> None:
        for failure in self.failures:
            if failure.path in path and failure.method in (None, method):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times == 0:
                        self.failures.remove(failure)
                status, headers = failure.status, failure.headers
                if failure.body is not None or status < 400:
                    raise Reply(status, failure.body or b"", headers, content_type="text/html")
                if api == "graph":
                    code = failure.code or GRAPH_CODES.get(status, "UnknownError")
                    raise graph_error(status, code, failure.message or "Injected.", **headers)
                reason = failure.code or "backendError"
                raise google_error(status, failure.message or "Injected.", reason, **headers)

    def page(self, api: str, wanted: int) -> int:
        return min(wanted, self.page_size or MAX_PAGE[api])

    # -- process -----------------------------------------------------------------------
    def start(self) -> None:
        cert = self.ca.issue_cert(HOST, "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._server = _Server(self, context)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class _GraphApi:
    """Graph v1.0 mail, for one authenticated request."""

    ROUTES = (
        ("POST", re.compile(r"/sendMail"), "send"),
        ("GET", re.compile(r"/mailFolders"), "folders"),
        ("GET", re.compile(r"/mailFolders/(?P<ref>[^/]+)/messages"), "listing"),
        ("GET", re.compile(r"/messages/(?P<uid>[^/]+)/(?:\$|%24)value"), "value"),
        ("PATCH", re.compile(r"/messages/(?P<uid>[^/]+)"), "patch"),
        ("DELETE", re.compile(r"/messages/(?P<uid>[^/]+)"), "delete"),
        ("POST", re.compile(r"/messages/(?P<uid>[^/]+)/move"), "move"),
    )
    MESSAGE_FIELDS = ("id", "receivedDateTime", "isRead", "parentFolderId")
    FOLDER_FIELDS = ("id", "displayName", "parentFolderId", "totalItemCount")

    def __init__(self, api: MailApi, grant: Grant) -> None:
        self.api = api
        self.grant = grant

    def route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Message, body: bytes
    ) -> Reply:
        owner = re.fullmatch(r"/(me|users/(?P<user>[^/]+))(?P<rest>/.*)", path)
        if owner is None:
            raise graph_error(400, "BadRequest", f"Resource not found for the segment {path!r}.")
        self.prefix = path[: owner.start("rest")]
        self.box = self._box(owner.group("user"))
        for verb, pattern, name in self.ROUTES:
            found = pattern.fullmatch(owner.group("rest"))
            if found and verb == method:
                self.query = {key: values[-1] for key, values in query.items()}
                args = {k: unquote(v) for k, v in found.groupdict().items()}
                reply: Reply = getattr(self, name)(headers, body, **args)
                return reply
        raise graph_error(405, "Request_BadRequest", f"{method} is not allowed on {path}.")

    def _box(self, user: str | None) -> GraphBox:
        if user is None and self.grant.user is None:
            raise graph_error(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        wanted = unquote(user).lower() if user else self.grant.user
        if self.grant.user is not None and wanted != self.grant.user:
            raise graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials.")
        assert wanted is not None
        return self.api.graph(wanted)

    def _need(self, *scopes: str) -> None:
        if not any(GRAPH + scope in self.grant.scopes for scope in scopes):
            raise graph_error(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )

    def _select(self, allowed: tuple[str, ...], kind: str) -> list[str] | None:
        if "$select" not in self.query:
            return None
        fields = [name.strip() for name in self.query["$select"].split(",")]
        for name in fields:
            if name not in allowed:
                raise graph_error(
                    400,
                    "RequestBroker--ParseUri",
                    f"Could not find a property named '{name}' on type 'microsoft.graph.{kind}'.",
                )
        return fields

    def _folder(self, ref: str) -> str:
        folder_id = self.box.folder_id(ref)
        if folder_id is None:
            raise graph_error(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        return folder_id

    def _message(self, uid: str) -> GraphMessage:
        if uid not in self.box.messages:
            raise graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return self.box.messages[uid]

    def _paged(self, items: list[dict[str, Any]], path: str, default: int) -> Reply:
        allowed = {"$select", "$top", "$skip", "$orderby", "$filter"}
        for option in self.query:
            if option not in allowed:
                raise graph_error(400, "BadRequest", f"Query option '{option}' is not allowed.")
        bad_top = graph_error(400, "BadRequest", "Invalid value for $top.")
        top = _int(self.query.get("$top", str(default)), 1, 1000, bad_top)
        skip = _int(self.query.get("$skip", "0"), 0, 10**9, graph_error(400, "BadRequest", "$skip"))
        size = self.api.page("graph", top)
        answer: dict[str, Any] = {"value": items[skip : skip + size]}
        if skip + size < len(items):
            rest = {**self.query, "$skip": str(skip + size)}
            link = f"{self.api.graph_url}{self.prefix}{path}?{urlencode(rest, safe='$,')}"
            answer["@odata.nextLink"] = link
        return Reply(200, answer)

    def send(self, headers: Message, body: bytes) -> Reply:
        self._need("Mail.Send")
        if headers.get_content_type() != "text/plain":
            raise graph_error(415, "UnsupportedMediaType", "Use text/plain for MIME content.")
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if not data:
            raise graph_error(
                400,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            )
        if len(data) > self.api.max_size:
            raise graph_error(
                413, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size."
            )
        if not _recipients(data):
            raise graph_error(
                400,
                "ErrorInvalidRecipients",
                "At least one recipient is required, but none were found.",
            )
        self.box.deliver(data, "sentitems", read=True)
        return Reply(202)

    def folders(self, headers: Message, body: bytes) -> Reply:
        self._need("Mail.ReadWrite", "Mail.Read")
        select = self._select(self.FOLDER_FIELDS, "mailFolder")
        names = [(fid, name) for fid, (name, _) in self.box.folders.items()]
        if "$filter" in self.query:
            match = re.fullmatch(r"displayName eq '((?:[^']|'')*)'", self.query["$filter"])
            if match is None:
                raise graph_error(400, "ErrorInvalidUrlQueryFilter", "Invalid filter clause.")
            names = [(fid, n) for fid, n in names if n == match.group(1).replace("''", "'")]
        items = []
        for folder_id, name in names:
            full = {"id": folder_id, "displayName": name, "parentFolderId": "root"}
            full["totalItemCount"] = sum(m.folder == folder_id for m in self.box.messages.values())
            items.append(full if select is None else {k: full[k] for k in ["id", *select]})
        return self._paged(items, "/mailFolders", 10)

    def listing(self, headers: Message, body: bytes, ref: str) -> Reply:
        self._need("Mail.ReadWrite", "Mail.Read")
        folder_id = self._folder(ref)
        select = self._select(self.MESSAGE_FIELDS, "message")
        order = self.query.get("$orderby", "receivedDateTime desc")
        if order not in ("receivedDateTime", "receivedDateTime asc", "receivedDateTime desc"):
            raise graph_error(400, "BadRequest", f"Invalid $orderby: {order!r}.")
        found = [m for m in self.box.messages.values() if m.folder == folder_id]
        found.sort(key=lambda m: m.received, reverse=order.endswith("desc"))
        path = f"/mailFolders/{quote(ref, safe='')}/messages"
        return self._paged([m.resource(select) for m in found], path, 10)

    def value(self, headers: Message, body: bytes, uid: str) -> Reply:
        self._need("Mail.ReadWrite", "Mail.Read")
        return Reply(200, self._message(uid).data, content_type="text/plain")

    def patch(self, headers: Message, body: bytes, uid: str) -> Reply:
        self._need("Mail.ReadWrite")
        message = self._message(uid)
        change = _json_body(headers, body, graph_error(400, "BadRequest", _UNREADABLE))
        if set(change) != {"isRead"} or not isinstance(change["isRead"], bool):
            raise graph_error(400, "BadRequest", f"Unsupported change {sorted(change)}.")
        message.is_read = change["isRead"]
        return Reply(200, message.resource())

    def move(self, headers: Message, body: bytes, uid: str) -> Reply:
        self._need("Mail.ReadWrite")
        message = self._message(uid)
        request = _json_body(headers, body, graph_error(400, "BadRequest", _UNREADABLE))
        target = request.get("destinationId")
        if set(request) != {"destinationId"} or not isinstance(target, str):
            raise graph_error(400, "ErrorInvalidParameter", "destinationId is required.")
        moved = GraphMessage(_graph_id(), self._folder(target), message.data, message.received)
        moved.is_read = message.is_read
        del self.box.messages[uid]  # Graph ids change with the folder
        self.box.messages[moved.id] = moved
        return Reply(201, moved.resource())

    def delete(self, headers: Message, body: bytes, uid: str) -> Reply:
        self._need("Mail.ReadWrite")
        self.box.deleted.append(self._message(uid))
        del self.box.messages[uid]
        return Reply(204, content_type="text/plain")


_UNREADABLE = (
    "Unable to read JSON request payload. Please ensure Content-Type header is set and "
    "payload is of valid JSON format."
)
_RAW_REQUIRED = (
    "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
)


class _GmailApi:
    """Gmail v1 users.messages and users.labels, for one authenticated request."""

    ROUTES = (
        ("POST", re.compile(r"/messages/send"), "send"),
        ("GET", re.compile(r"/messages"), "listing"),
        ("GET", re.compile(r"/messages/(?P<uid>[^/]+)"), "get"),
        ("POST", re.compile(r"/messages/(?P<uid>[^/]+)/modify"), "modify"),
        ("POST", re.compile(r"/messages/(?P<uid>[^/]+)/trash"), "trash"),
        ("GET", re.compile(r"/labels"), "labels"),
    )
    SEND = ("gmail.send", "gmail.compose", "gmail.modify")
    READ = ("gmail.readonly", "gmail.modify")
    WRITE = ("gmail.modify",)

    def __init__(self, api: MailApi, grant: Grant) -> None:
        self.api = api
        self.grant = grant

    def route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Message, body: bytes
    ) -> Reply:
        user, _, rest = path.partition("/")
        if self.grant.user is None:
            raise google_error(400, "Precondition check failed.", "failedPrecondition")
        if unquote(user).lower() not in ("me", self.grant.user):
            raise google_error(403, f"Delegation denied for {self.grant.user}", "forbidden")
        self.box = self.api.gmail(self.grant.user)
        self.query = query
        for verb, pattern, name in self.ROUTES:
            found = pattern.fullmatch(f"/{rest}")
            if found and verb == method:
                args = {k: unquote(v) for k, v in found.groupdict().items()}
                reply: Reply = getattr(self, name)(headers, body, **args)
                return reply
        raise google_error(404, "Not Found", "notFound")

    def _need(self, scopes: tuple[str, ...]) -> None:
        granted = self.grant.scopes
        if GMAIL_FULL not in granted and not any(GMAIL + s in granted for s in scopes):
            raise google_error(
                403,
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
                info="ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            )

    def _one(self, name: str, default: str) -> str:
        values = self.query.get(name, [default])
        return values[-1]

    def _message(self, uid: str) -> GmailMessage:
        if uid not in self.box.messages:
            raise google_error(404, "Requested entity was not found.", "notFound")
        return self.box.messages[uid]

    def _labels(self, ids: Any) -> set[str]:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise bad_google_request("labelIds must be a list of strings")
        for label_id in ids:
            if label_id not in self.box.labels:
                raise bad_google_request(f"Invalid label: {label_id}")
        return set(ids)

    def send(self, headers: Message, body: bytes) -> Reply:
        self._need(self.SEND)
        request = _json_body(headers, body, bad_google_request(_RAW_REQUIRED))
        raw = request.get("raw")
        if not isinstance(raw, str) or not raw:
            raise bad_google_request(_RAW_REQUIRED)
        try:
            padded = raw.translate(str.maketrans("-_", "+/")) + "=" * (-len(raw) % 4)
            data = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raise bad_google_request(
                "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed for "
                f"{raw[:20]!r}",
                "invalid",
            ) from None
        if len(data) > self.api.max_size:
            raise google_error(
                413,
                f"Request payload size exceeds the limit: {self.api.max_size} bytes.",
                "uploadTooLarge",
            )
        if not _recipients(data):
            raise bad_google_request("Recipient address required")
        message_id = self.box.deliver(data, ("SENT",))
        return Reply(200, self.box.messages[message_id].resource())

    def listing(self, headers: Message, body: bytes) -> Reply:
        self._need(self.READ)
        for name in self.query:
            if name not in ("labelIds", "maxResults", "pageToken", "includeSpamTrash"):
                raise bad_google_request(f"Unknown parameter: {name}")
        wanted = self._labels(self.query.get("labelIds", []))
        top = _int(self._one("maxResults", "100"), 1, 500, bad_google_request("Invalid maxResults"))
        token = self._one("pageToken", "")
        bad_token = bad_google_request("Invalid pageToken")
        start = _int(token.removeprefix("p"), 0, 10**9, bad_token) if token else 0
        hidden = set() if self._one("includeSpamTrash", "false") == "true" else {"SPAM", "TRASH"}
        hidden -= wanted
        found = [
            m for m in self.box.messages.values() if wanted <= m.labels and not hidden & m.labels
        ]
        found.sort(key=lambda m: m.internal_date, reverse=True)  # newest first
        size = self.api.page("gmail", top)
        answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if found[start : start + size]:
            answer["messages"] = [
                {"id": m.id, "threadId": m.id} for m in found[start : start + size]
            ]
        if start + size < len(found):
            answer["nextPageToken"] = f"p{start + size}"
        return Reply(200, answer)

    def get(self, headers: Message, body: bytes, uid: str) -> Reply:
        self._need(self.READ)
        message = self._message(uid)
        form = self._one("format", "full")
        if form not in ("minimal", "full", "raw", "metadata"):
            raise bad_google_request(f"Invalid value at 'format' ({form})", "invalid")
        answer = {**message.resource(), "sizeEstimate": len(message.data)}
        answer["internalDate"] = str(int(message.internal_date.timestamp() * 1000))
        if form == "raw":
            answer["raw"] = base64.urlsafe_b64encode(message.data).decode()
        return Reply(200, answer)

    def modify(self, headers: Message, body: bytes, uid: str) -> Reply:
        self._need(self.WRITE)
        message = self._message(uid)
        request = _json_body(headers, body, bad_google_request("Invalid JSON payload received."))
        add = self._labels(request.get("addLabelIds", []))
        remove = self._labels(request.get("removeLabelIds", []))
        if not add and not remove:
            raise bad_google_request("No label add or removes specified")
        message.labels = (message.labels | add) - remove
        return Reply(200, message.resource())

    def trash(self, headers: Message, body: bytes, uid: str) -> Reply:
        self._need(self.WRITE)
        message = self._message(uid)
        message.labels = (message.labels - {"UNREAD"}) | {"TRASH"}
        return Reply(200, message.resource())

    def labels(self, headers: Message, body: bytes) -> Reply:
        self._need(self.READ)
        labels = [{"id": i, "name": n, "type": t} for i, (n, t) in self.box.labels.items()]
        return Reply(200, {"labels": labels})


# --- HTTP -----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            reply = self.server.api.handle(self.command, self.path, self.headers, body)
        except Exception:
            self.server.api.crashes.append(traceback.format_exc())
            reply = Reply(500, b"the double crashed", content_type="text/plain")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.payload)))
        self.end_headers()
        if reply.status != 204:
            self.wfile.write(reply.payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: MailApi, context: ssl.SSLContext) -> None:
        super().__init__((HOST, 0), _Handler)
        self.api = api
        self.socket = context.wrap_socket(self.socket, server_side=True)


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mail_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailApi]:
    api = MailApi(tmp_path_factory.mktemp("mailapi"))
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def mail_api(mail_api_server: MailApi) -> Iterator[MailApi]:
    """The double, emptied: no tokens, mailboxes, failures or recorded requests."""
    mail_api_server.reset()
    mail_api_server.crashes.clear()
    yield mail_api_server
    if mail_api_server.crashes:
        pytest.fail(f"the mail API double crashed:\n{mail_api_server.crashes[0]}")
