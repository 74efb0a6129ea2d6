"""Mail over OAuth2: send, fetch and check a mailbox over its configured transports.

::

    mailoauth.mail
    ├── sending     send(): complete the headers, pick SMTP / Graph / Gmail API
    ├── fetching    fetch(): IMAP / POP3 / Graph / Gmail API into a handler, no loss
    ├── checking    check(): the whole chain step by step (``mailoauth test``)
    ├── auth        with_token (refresh once on a refused token), recording (transcripts)
    ├── smtp, smtp_batch, connect, mechanism  SMTP submission on aiosmtplib + mailoauth.sasl
    ├── imap, pop3, stream                IMAP / POP3 clients over mailoauth.protocols
    ├── graph, gmail                      the HTTPS mail APIs
    ├── handlers                          Maildir, webhook: where fetched mail goes
    ├── fetched                           FetchedMessage, Deliver, FetchLedger, FetchReport
    └── transcript                        redacting debug transcripts

Every function takes the store and the :class:`~mailoauth.oauth.tokens.TokenService`;
the CLI and the service build those once (composition roots) and pass them in.

The names below load on first use (PEP 562 ``__getattr__``): importing one submodule,
say ``mailoauth.mail.connect`` for ``mailoauth token``, does not load every client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailoauth.lazy import lazy_exports

if TYPE_CHECKING:
    from mailoauth.mail.checking import CheckStep, check
    from mailoauth.mail.fetched import Deliver, FetchedMessage, FetchReport, MemoryLedger
    from mailoauth.mail.fetching import StoreLedger, fetch
    from mailoauth.mail.handlers import handler_for, maildir_handler, webhook_handler
    from mailoauth.mail.sending import prepare_message, send
    from mailoauth.mail.smtp import send_message

#: Each public name and the submodule that defines it.
_EXPORTS = {
    "CheckStep": "checking",
    "check": "checking",
    "Deliver": "fetched",
    "FetchedMessage": "fetched",
    "FetchReport": "fetched",
    "MemoryLedger": "fetched",
    "StoreLedger": "fetching",
    "fetch": "fetching",
    "handler_for": "handlers",
    "maildir_handler": "handlers",
    "webhook_handler": "handlers",
    "prepare_message": "sending",
    "send": "sending",
    "send_message": "smtp",
}

__all__ = [
    "CheckStep",
    "Deliver",
    "FetchReport",
    "FetchedMessage",
    "MemoryLedger",
    "StoreLedger",
    "check",
    "fetch",
    "handler_for",
    "maildir_handler",
    "prepare_message",
    "send",
    "send_message",
    "webhook_handler",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
