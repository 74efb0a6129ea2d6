"""``enqueue``: accept a message for later delivery. Accepted means committed.

DESIGN.md invariant 1: a message is acknowledged only after it is durably stored. The
headers are completed *before* storing (:func:`~mailoauth.mail.sending.prepare_message`:
From, Reply-To, Message-ID, Date), so every attempt — a re-send after a crash included —
carries the same Message-ID, and a recipient's duplicate suppression can recognise it.
The message is stored as RFC 5322 bytes (UTF-8 headers kept as they are), its envelope
beside it; the store's write is one transaction, committed (SQLite ``synchronous=FULL``)
before this returns.
"""

from __future__ import annotations

import email.policy
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage

from mailoauth.errors import ConfigError
from mailoauth.mail.sending import prepare_message
from mailoauth.mail.smtp import envelope_of
from mailoauth.store import NewMessage, QueuedMessage, Store

__all__ = ["enqueue", "prepare_entry"]

Clock = Callable[[], datetime]
_SUBJECT = 255  # characters of the Subject kept for listings


def _utcnow() -> datetime:
    return datetime.now(UTC)


def enqueue(
    store: Store,
    mailbox: str,
    message: EmailMessage,
    *,
    envelope: tuple[str, Sequence[str]] | None = None,
    now: Clock = _utcnow,
) -> QueuedMessage:
    """Store ``message`` for delivery from ``mailbox``; returns once it is committed.
    :func:`prepare_entry` says what is checked and raised."""
    return store.queue_message(mailbox, prepare_entry(store, mailbox, message, envelope), now=now())


def prepare_entry(
    store: Store,
    mailbox: str,
    message: EmailMessage,
    envelope: tuple[str, Sequence[str]] | None = None,
) -> NewMessage:
    """The row :func:`enqueue` stores for ``message``, headers completed, not stored yet
    (the relay commits several at once: :mod:`.group`).

    ``envelope`` (MAIL FROM, RCPT TO) defaults to the headers' (From; To, Cc, Bcc); a
    relay passes the one its client gave. Bcc stays in the stored bytes: the SMTP client
    removes it on the wire, and the HTTPS APIs need it to know the recipients. Raises
    ConfigError for a message that could never go (no recipient, a sender that is not
    one of the mailbox's addresses, a mailbox that cannot send), NotFoundError for an
    unknown mailbox. Synchronous, like the store: async callers use a worker thread.
    """
    box = store.get_mailbox(mailbox)
    if box.outgoing is None:
        raise ConfigError(
            f"mailboxes.{mailbox}.outgoing",
            "is not set, so this mailbox cannot send",
            "add [mailboxes.NAME.outgoing] with transport = 'smtp' (or graph / gmail_api)",
        )
    prepared = prepare_message(box, message)
    if envelope is None:
        sender, recipients = envelope_of(prepared)
    else:
        sender, recipients = envelope[0], list(envelope[1])
        if not sender or not recipients:
            raise ConfigError("envelope", "needs a sender and a recipient", "give both")
    return NewMessage(
        message_id=str(prepared["Message-ID"]),
        sender=sender,
        recipients=tuple(recipients),
        subject=str(prepared.get("Subject", ""))[:_SUBJECT],
        data=prepared.as_bytes(policy=email.policy.SMTPUTF8),
    )
