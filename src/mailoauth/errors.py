"""The one exception tree of mailoauth.

Every error a user can cause says *what* is wrong, *where* (the field, the file, the
mailbox) and *what to do next*, in one line. Callers catch :class:`MailoauthError` and
print ``str(error)``; no traceback ever reaches a user for an expected failure.

::

    MailoauthError                      exit_code 1: an operation failed
    ├── ConfigError                     exit_code 2: bad input; names the field and the fix
    ├── NotFoundError                   exit_code 2: a named provider / mailbox does not exist
    ├── InUseError                      exit_code 2: cannot remove, something still uses it
    ├── SecretKeyError                  exit_code 2: encryption key missing, wrong or damaged
    ├── StoreError                      exit_code 1: the database failed or is not migrated
    ├── OAuthError                      exit_code 1: a token or authorization request failed
    │   ├── ProviderRejected            permanent: invalid_grant, invalid_client, denied, ...
    │   └── ProviderUnavailable         transient: network, timeout, 5xx, 429, bad answer
    ├── AuthorizationNeeded             exit_code 1: a mailbox has no usable grant; a human
    │                                   must (re-)authorize it; says why and how
    ├── LocalProtocolError              exit_code 2: we were about to send what a protocol
    │                                   forbids (a control character in a login name)
    ├── RemoteProtocolError             exit_code 1: the peer sent what its protocol forbids
    ├── TokenRefused                    exit_code 1: a mail server or mail API refused the
    │   │                               access token; ``temporary`` if retryable
    │   └── SaslError                   a refused SASL login; carries status / scope
    └── MailError                       exit_code 1: sending through a mail server failed
        ├── MailConnectionError         could not connect (names host:port), TLS failed,
        │                               connection lost; ``temporary`` unless TLS failed
        └── MessageRefused              the server refused the message; nothing was sent
            ├── SenderRefused           MAIL FROM refused
            ├── RecipientsRefused       RCPT TO refused; ``refused`` maps each to the reply
            └── MessageTooLarge         over the server's SIZE; ``size`` / ``limit``

Later layers (OAuth flows, mail transports, the relay) add their branches here, keeping
the split h11 makes between *local* mistakes (our side, our config) and *remote* ones
(what the provider or mail server answered). This module imports nothing of ours.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationNeeded",
    "ConfigError",
    "InUseError",
    "LocalProtocolError",
    "MailConnectionError",
    "MailError",
    "MailoauthError",
    "MessageRefused",
    "MessageTooLarge",
    "NotFoundError",
    "OAuthError",
    "ProviderRejected",
    "ProviderUnavailable",
    "RecipientsRefused",
    "RemoteProtocolError",
    "SaslError",
    "SecretKeyError",
    "SenderRefused",
    "StoreError",
    "TokenRefused",
]


class MailoauthError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing one-line message."""

    exit_code: int = 1


class ConfigError(MailoauthError, ValueError):
    """Bad input: a value in a config file, a CLI option or an API request.

    ``field`` is the dotted path of the offending value (``mailboxes.sales.outgoing.port``),
    ``problem`` says what is wrong with it and ``fix`` what to do instead.
    """

    exit_code = 2

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.field}: {self.problem}" if self.field else self.problem
        return f"{text}; {self.fix}" if self.fix else text

    def within(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` put in front of its field path."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return ConfigError(field, self.problem, self.fix)


class NotFoundError(MailoauthError, LookupError):
    """A provider, mailbox or other named object does not exist."""

    exit_code = 2

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        self.kind = kind
        self.name = name
        hint = hint or f"see `mailoauth {kind} list` for the names that exist"
        super().__init__(f"{kind} {name!r} does not exist; {hint}")


class InUseError(MailoauthError):
    """Removing the object would leave others pointing at nothing."""

    exit_code = 2


class SecretKeyError(MailoauthError):
    """The key that protects stored secrets is missing, malformed or not the right one."""

    exit_code = 2


class StoreError(MailoauthError):
    """The database could not be opened, migrated, read or written."""


class OAuthError(MailoauthError):
    """An OAuth2 request failed. ``error`` is the RFC 6749 §5.2 code when the server sent
    one (``invalid_grant``), ``description`` its text (already free of secrets), ``status``
    the HTTP status (0 when no answer came)."""

    def __init__(
        self,
        message: str,
        *,
        error: str = "",
        description: str = "",
        status: int = 0,
    ) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(message)


class ProviderRejected(OAuthError):  # noqa: N818 - reads as what happened
    """Permanent: retrying cannot help (``invalid_grant``, ``invalid_client``, consent
    denied, a forged or expired authorization response). A human must act."""


class ProviderUnavailable(OAuthError):  # noqa: N818 - reads as what happened
    """Transient: timeout, connection refused, 5xx, 429, a malformed answer. Retry later;
    ``retry_after`` is the server's ``Retry-After`` in seconds when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        error: str = "",
        description: str = "",
        status: int = 0,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, error=error, description=description, status=status)


class AuthorizationNeeded(MailoauthError):  # noqa: N818 - reads as what happened
    """A mailbox has no usable grant: never authorized, or the provider refused it."""

    def __init__(self, mailbox: str, reason: str, hint: str) -> None:
        self.mailbox = mailbox
        self.reason = reason
        self.hint = hint
        super().__init__(f"mailbox {mailbox!r} needs authorization: {reason}; {hint}")


class LocalProtocolError(MailoauthError):
    """We were about to send something the protocol forbids: a login name with a control
    character (XOAUTH2 frames fields with ``\\x01``), an empty token, a call out of order.
    Nothing was sent; fix the input. The message never contains a secret."""

    exit_code = 2


class RemoteProtocolError(MailoauthError):
    """The peer sent bytes its protocol does not allow: bad base64, a challenge where none
    may come, a malformed PLAIN message. Give up on this exchange (close or cancel it);
    the message describes what arrived without quoting any secret in it."""


class TokenRefused(MailoauthError):  # noqa: N818 - reads as what happened
    """A mail server or mail API refused the access token: a SASL login refused (see
    :class:`SaslError`) or an HTTPS API's ``401``. A refusal that is not ``temporary``
    usually means the token went bad before its expiry (revoked, rotated): refresh once
    and retry once; a second refusal is the answer."""

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        self.temporary = temporary
        super().__init__(message)


class SaslError(TokenRefused):
    """The mail server refused a SASL login.

    ``status`` and ``scope`` come from the server's error challenge when it sent one
    (XOAUTH2 / OAUTHBEARER JSON, e.g. ``401`` or ``invalid_token``); ``server_message`` is
    its final reply (``535 5.7.8 ...``); ``temporary`` is true when the server said "try
    again later" (Dovecot's ``NO [UNAVAILABLE]``), so a retry may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        mechanism: str = "",
        status: str = "",
        scope: str = "",
        server_message: str = "",
        temporary: bool = False,
    ) -> None:
        self.mechanism = mechanism
        self.status = status
        self.scope = scope
        self.server_message = server_message
        super().__init__(message, temporary=temporary)


class MailError(MailoauthError):
    """Sending through a mail server failed. ``host`` / ``port`` name the server, ``code``
    its SMTP reply code (0 when none came), ``temporary`` whether a retry may succeed."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        port: int = 0,
        code: int = 0,
        temporary: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.code = code
        self.temporary = temporary
        super().__init__(message)


class MailConnectionError(MailError):
    """No usable connection: refused, timed out, a 4xx greeting, TLS failed, or the
    connection was lost mid-way. ``tls`` is true when TLS (certificate, handshake, a
    missing STARTTLS) was the problem, which a retry does not fix."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        port: int = 0,
        tls: bool = False,
        permanent: bool = False,
    ) -> None:
        self.tls = tls
        temporary = not (tls or permanent)  # a 5xx greeting will not change by retrying
        super().__init__(message, host=host, port=port, temporary=temporary)


class MessageRefused(MailError):  # noqa: N818 - reads as what happened
    """The server refused the message (sender, recipients, size, content). Permanent
    unless ``temporary``; nothing was delivered."""


class SenderRefused(MessageRefused):
    """``MAIL FROM`` was refused: the login may not send as that address."""


class RecipientsRefused(MessageRefused):
    """``RCPT TO`` was refused for ``refused`` (address → the server's reply); the
    transaction was reset, so no recipient got the message."""

    def __init__(
        self,
        message: str,
        *,
        refused: dict[str, str],
        host: str = "",
        port: int = 0,
        temporary: bool = False,
    ) -> None:
        self.refused = refused
        super().__init__(message, host=host, port=port, temporary=temporary)


class MessageTooLarge(MessageRefused):
    """The message is larger than the server accepts (its ``SIZE`` limit, or 552)."""

    def __init__(
        self, message: str, *, size: int, limit: int = 0, host: str = "", port: int = 0
    ) -> None:
        self.size = size
        self.limit = limit
        super().__init__(message, host=host, port=port, code=552)
