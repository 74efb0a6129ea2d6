"""Where fetched mail goes: the :data:`~mailoauth.mail.fetched.Deliver` handlers.

A fetcher (IMAP, POP3, Graph, Gmail) calls ``await deliver(FetchedMessage(...))``.
Returning means the message is stored for good somewhere else; raising means "not now":
the fetch stops and the message stays new at the server (the no-loss rule of
:mod:`mailoauth.mail.fetched`). Both handlers keep that promise:

* :func:`maildir_handler` (:mod:`.maildir`) returns only once the file and its name in
  ``new/`` are on disk (``fsync``), and leaves nothing half-written when it raises;
* :func:`webhook_handler` (:mod:`.webhook`) returns only on a 2xx answer; it retries
  what may pass later and raises :class:`~mailoauth.errors.MailError` (``temporary``
  when a later fetch may succeed) otherwise.

A crash between a handler's success and the ledger's record delivers a message once
more. Both handlers name each message by :func:`~.key.delivery_key` (mailbox, folder,
uid): the Maildir writer skips a message it finds already written, and the webhook sends
the key as ``Idempotency-Key`` for the receiver to do the same.

:func:`handler_for` builds the handler a mailbox's ``incoming.deliver`` setting names:
``maildir:/absolute/path`` or ``webhook:https://host/path``.
"""

from __future__ import annotations

import httpx

from mailoauth.errors import ConfigError
from mailoauth.mail.fetched import Deliver
from mailoauth.mail.handlers.key import delivery_key
from mailoauth.mail.handlers.maildir import maildir_handler
from mailoauth.mail.handlers.webhook import webhook_handler
from mailoauth.secret import Secret
from mailoauth.validate import check_delivery_target

__all__ = ["delivery_key", "handler_for", "maildir_handler", "webhook_handler"]

FIELD = "incoming.deliver"


def handler_for(
    target: str, *, http: httpx.AsyncClient, signing_key: Secret | None = None
) -> Deliver:
    """The handler for ``target`` as stored in ``incoming.deliver``; ``http`` and
    ``signing_key`` serve a webhook. A malformed target raises
    :class:`~mailoauth.errors.ConfigError` naming ``incoming.deliver``."""
    check_delivery_target(FIELD, target)
    kind, _, rest = target.partition(":")
    if kind == "maildir":
        return maildir_handler(rest)
    if kind == "webhook":
        try:
            return webhook_handler(rest, http=http, signing_key=signing_key)
        except ConfigError as exc:
            raise ConfigError(FIELD, exc.problem, exc.fix) from None
    raise ConfigError(
        FIELD, f"{target!r} is not a delivery target", "use maildir:/path or webhook:https://..."
    )
