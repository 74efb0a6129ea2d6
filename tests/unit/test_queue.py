"""The outbound queue's rules without a network: what an error means for a message
(retry, fail, dead letter), the backoff with full jitter, and acceptance = a committed row
with final headers."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailoauth.errors import (
    AuthorizationNeeded,
    ConfigError,
    InUseError,
    LocalProtocolError,
    MailConnectionError,
    MailError,
    MessageTooLarge,
    ProviderRejected,
    ProviderUnavailable,
    RecipientsRefused,
    RemoteProtocolError,
    SaslError,
    SenderRefused,
)
from mailoauth.queue import QueuedMessage, QueueStatus, RetrySchedule, decide, enqueue
from mailoauth.queue.policy import is_temporary
from mailoauth.store import open_store
from tests import store_samples as s
from tests.stores import sqlite_settings

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule(
    base=timedelta(minutes=1),
    cap=timedelta(hours=1),
    minimum=timedelta(seconds=10),
    max_age=timedelta(days=5),
)


def entry(attempts: int = 1, queued_at: datetime = T0) -> QueuedMessage:
    return QueuedMessage(
        id=7,
        mailbox="sales",
        status=QueueStatus.SENDING,
        message_id="<m@contoso.com>",
        sender="sales@contoso.com",
        recipients=("bob@example.com",),
        subject="hi",
        size=100,
        created_at=queued_at,
        queued_at=queued_at,
        next_attempt_at=queued_at,
        attempts=attempts,
    )


# --- classification ---------------------------------------------------------------

TEMPORARY = [
    MailConnectionError("cannot connect to smtp.example.com:587", host="h", port=587),
    MailError("451 4.3.0 try later", code=451, temporary=True),
    RecipientsRefused("450 mailbox busy", refused={"a@b.c": "450 busy"}, temporary=True),
    SenderRefused("451 4.7.1 greylisted", code=451, temporary=True),
    SaslError("454 4.7.0 temporary authentication failure", temporary=True),
    SaslError("535 5.7.8 refused even after a refresh"),  # a human fixes the grant
    ProviderUnavailable("token endpoint answered 503", status=503),
    ProviderRejected("invalid_grant", error="invalid_grant"),
    AuthorizationNeeded("sales", "the refresh token was revoked", "run mailoauth authorize"),
    RemoteProtocolError("the server sent a malformed reply"),
]
PERMANENT = [
    RecipientsRefused("501 invalid", refused={"x@[1.2.3]": "501 Invalid TO"}),
    SenderRefused("550 5.7.1 not allowed to send as", code=550),
    MailError("554 5.6.0 message refused", code=554),
    MessageTooLarge("too large", size=30_000_000, limit=25_000_000),
    MailConnectionError("TLS failed: certificate expired", tls=True),
    ConfigError("mailboxes.sales.outgoing", "is not set"),
    LocalProtocolError("a control character in the login name"),
]


@pytest.mark.parametrize("error", TEMPORARY, ids=lambda e: type(e).__name__)
def test_temporary_errors_are_retried_later_with_their_reason(error):
    assert is_temporary(error)
    outcome = decide(entry(), error, T0 + timedelta(minutes=1), SCHEDULE, lambda: 0.5)
    assert outcome.status is QueueStatus.QUEUED
    assert outcome.error == str(error)
    assert outcome.next_attempt_at > T0 + timedelta(minutes=1)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_errors_fail_at_once_with_their_reason(error):
    assert not is_temporary(error)
    outcome = decide(entry(attempts=1), error, T0, SCHEDULE, lambda: 0.5)
    assert outcome.status is QueueStatus.FAILED
    assert outcome.error == str(error)


def test_acceptance_is_sent():
    assert decide(entry(), None, T0, SCHEDULE).status is QueueStatus.SENT


# --- backoff and dead letters -------------------------------------------------------


def test_backoff_doubles_per_attempt_up_to_the_cap():
    top = [SCHEDULE.delay(n, lambda: 0.999999) for n in (1, 2, 3, 7, 8, 30)]
    minutes = [round(d / timedelta(minutes=1)) for d in top]
    assert minutes == [1, 2, 4, 60, 60, 60]  # 2^6 = 64 min is capped at an hour


def test_full_jitter_spreads_a_backlog_over_the_whole_window():
    draws = iter([0.0, 0.25, 0.5, 0.75])
    waits = [SCHEDULE.delay(5, lambda: next(draws)) for _ in range(4)]  # window: 16 min
    assert waits == [timedelta(seconds=10), timedelta(minutes=4), timedelta(minutes=8),
                     timedelta(minutes=12)]  # fmt: skip
    # 0 would mean "at once": the minimum keeps a failing server from being hammered.


def test_retry_after_from_the_server_is_honoured():
    busy = ProviderUnavailable("429 too many requests", retry_after=900, status=429)
    outcome = decide(entry(attempts=1), busy, T0, SCHEDULE, lambda: 0.1)
    assert outcome.next_attempt_at == T0 + timedelta(seconds=900)


@given(attempt=st.integers(1, 10_000), draw=st.floats(0, 1, exclude_max=True))
def test_every_wait_is_between_the_minimum_and_the_cap(attempt, draw):
    wait = SCHEDULE.delay(attempt, lambda: draw)
    assert SCHEDULE.minimum <= wait <= SCHEDULE.cap


def test_a_message_not_sent_within_the_max_age_is_dead():
    down = MailConnectionError("cannot connect to smtp.example.com:587")
    almost = decide(entry(attempts=40), down, T0 + timedelta(days=5, minutes=-2), SCHEDULE)
    assert almost.status is QueueStatus.QUEUED
    assert almost.next_attempt_at == T0 + timedelta(days=5)  # one last try at the deadline
    dead = decide(entry(attempts=41), down, T0 + timedelta(days=5), SCHEDULE)
    assert dead.status is QueueStatus.DEAD
    assert dead.error == f"not sent within 5 days; last error: {down}"
    short = replace(SCHEDULE, max_age=timedelta(hours=6))
    assert "within 6 hours" in (decide(entry(), down, T0 + timedelta(hours=7), short).error or "")


def test_a_permanent_error_fails_even_past_the_max_age():
    refused = SenderRefused("550 not yours", code=550)
    assert decide(entry(), refused, T0 + timedelta(days=9), SCHEDULE).status is QueueStatus.FAILED


# --- accept = persisted ----------------------------------------------------------------


@pytest.fixture
def settings(tmp_path):
    home = tmp_path / "home"
    return sqlite_settings(home)


@pytest.fixture
def store(settings):
    store = open_store(settings)
    store.put_provider(s.microsoft())
    store.put_mailbox(s.smtp_imap())
    yield store
    store.close()


def message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    for name, value in {"To": "bob@example.com", "Subject": "Grüße", **headers}.items():
        msg[name] = value
    msg.set_content("Hello from the queue\n")
    return msg


def test_enqueue_commits_final_headers_before_returning(store, settings):
    original = message(Bcc="audit@example.com")
    queued = enqueue(store, "sales", original, now=lambda: T0)
    assert original["Message-ID"] is None  # the caller's message is left as it was
    assert queued.status is QueueStatus.QUEUED
    assert queued.next_attempt_at == T0  # due at once
    assert queued.sender == "sales@contoso.com"
    assert queued.recipients == ("bob@example.com", "audit@example.com")
    assert queued.subject == "Grüße"
    store.close()  # a new process sees exactly what was acknowledged
    reopened = open_store(settings)
    try:
        data = reopened.outbound_data(queued.id)
        stored = email.message_from_bytes(data, policy=policy.default)
        assert stored["Message-ID"] == queued.message_id
        assert stored["From"] == "Sales <sales@contoso.com>"
        assert stored["Date"]
        assert stored["Bcc"] == "audit@example.com"  # the APIs need it; SMTP strips it
        assert queued.size == len(data)
        assert reopened.get_outbound(queued.id) == queued
    finally:
        reopened.close()


def test_a_relay_envelope_is_kept_as_given(store):
    queued = enqueue(
        store, "sales", message(), envelope=("sales@contoso.com", ["hidden@example.com"])
    )
    assert queued.recipients == ("hidden@example.com",)


def test_what_could_never_be_sent_is_refused_before_it_is_stored(store):
    with pytest.raises(ConfigError, match="To"):
        enqueue(store, "sales", message(To=""))
    with pytest.raises(ConfigError, match="not one of mailbox 'sales'"):
        enqueue(store, "sales", message(From="ceo@contoso.com"))
    store.put_mailbox(replace(s.smtp_imap(), outgoing=None))
    with pytest.raises(ConfigError, match="cannot send"):
        enqueue(store, "sales", message())
    assert store.list_outbound() == []


def test_a_mailbox_with_unsent_messages_cannot_be_deleted(store):
    queued = enqueue(store, "sales", message())
    with pytest.raises(InUseError) as refused:
        store.delete_mailbox("sales")
    assert "1 queued message(s) not sent" in str(refused.value)
    assert "mailoauth queue purge --mailbox sales" in str(refused.value)
    store.purge_outbound(queued.id)
    store.delete_mailbox("sales")
    assert store.list_mailboxes() == []
