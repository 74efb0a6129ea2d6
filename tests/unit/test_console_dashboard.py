"""The dashboard's rows from the store's and the scheduler's values (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from mailoauth.models import GrantStatus
from mailoauth.providers import GrantType
from mailoauth.scheduler import (
    Counters,
    FetchOutcome,
    GrantState,
    MailboxStatus,
    RefreshOutcome,
    SchedulerStatus,
    Snapshot,
)
from mailoauth.scheduler.snapshot import MailboxEntry
from mailoauth.store import OutboundSummary
from mailoauth.web.console.dashboard import build_dashboard
from tests import store_samples as s

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def entry(grant=None, *, interactive=True) -> MailboxEntry:
    mailbox = s.smtp_imap()
    if not interactive:
        mailbox = s.password_grant()
    return MailboxEntry(mailbox, s.microsoft(), grant)


def test_each_grant_state_gets_its_label_and_what_to_do():
    refused = replace(
        s.grant(), status=GrantStatus.NEEDS_AUTHORIZATION, last_error="invalid_grant: revoked"
    )
    snapshot = Snapshot(
        (
            entry(s.grant()),
            entry(None),
            entry(refused),
            entry(replace(s.grant(), status=GrantStatus.ERROR, last_error="timeout")),
        ),
        (s.microsoft(),),
    )
    rows = build_dashboard(snapshot, None, {}, NOW).mailboxes
    assert [r.label for r in rows] == [
        "connected",
        "not authorized",
        "needs authorization",
        "error",
    ]
    assert rows[0].problem is None
    assert "mailoauth authorize sales" in rows[1].problem
    assert rows[2].problem.startswith("invalid_grant: revoked. To fix: authorize it again")
    assert "keeps retrying" in rows[3].problem


def test_a_password_mailbox_without_a_token_is_told_the_service_gets_one():
    row = build_dashboard(Snapshot((entry(None, interactive=False),)), None, {}, NOW).mailboxes[0]
    assert row.grant == GrantType.PASSWORD.value
    assert "gets one" in row.problem


def test_scheduler_outcomes_and_the_queue_fill_the_row():
    fetched = FetchOutcome(at=NOW - timedelta(minutes=3), delivered=2, seconds=0.4)
    refreshed = RefreshOutcome(at=NOW - timedelta(minutes=1), expires_at=NOW + timedelta(hours=1))
    status = SchedulerStatus(
        started_at=NOW - timedelta(hours=1),
        counters=Counters(),
        mailboxes={
            "sales": MailboxStatus(
                name="sales",
                state=GrantState.CONNECTED,
                next_poll=NOW + timedelta(minutes=2),
                next_refresh=None,
                last_fetch=fetched,
                last_refresh=refreshed,
            )
        },
    )
    grant = replace(s.grant(), refreshed_at=NOW - timedelta(hours=2))
    queue = {"sales": OutboundSummary(waiting=3, failed=1, last_sent_at=NOW)}
    view = build_dashboard(Snapshot((entry(grant),)), status, queue, NOW)
    row = view.mailboxes[0]
    assert row.last_fetch == fetched
    assert row.next_poll == NOW + timedelta(minutes=2)
    assert row.last_refresh == refreshed.at  # newer than the stored one
    assert (row.waiting, row.failed, row.last_sent) == (3, 1, NOW)
    assert view.scheduler_running
    assert view.counts[GrantState.CONNECTED] == 1


def test_client_secrets_expiring_within_30_days_are_flagged_and_never_shown():
    soon = replace(s.microsoft(), client_secret_expires=date(2026, 12, 20))
    later = replace(s.google(), client_secret_expires=date(2027, 6, 1))
    gone = replace(s.generic(), client_secret_expires=date(2026, 11, 1))
    view = build_dashboard(Snapshot((), (soon, later, gone)), None, {}, NOW)
    by_name = {p.name: p for p in view.providers}
    assert "expires on 2026-12-20 (in 27 days)" in by_name["contoso"].warning
    assert by_name["google-main"].warning is None
    assert "expired on 2026-11-01" in by_name["corp"].warning
    assert {p.credential for p in view.providers} == {"set"}
    assert len(view.warnings) == 2
    assert s.MS_CLIENT_SECRET not in repr(view)
