"""The scheduler: its plan on a fake clock (nothing sleeps), its alerts, and its runner with
fake jobs (asyncio with tiny timeouts) — isolation, limits, live changes, stopping."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from mailoauth.errors import AuthorizationNeeded, MailConnectionError, StoreError
from mailoauth.mail import FetchReport
from mailoauth.models import Grant, GrantStatus, IncomingSettings, Mailbox, Provider
from mailoauth.providers import GrantType, ProviderKind
from mailoauth.scheduler import (
    GrantState,
    Job,
    JobKind,
    Planner,
    Scheduler,
    SchedulerOptions,
    Snapshot,
)
from mailoauth.scheduler.alerts import Alerts
from mailoauth.scheduler.plan import Outcome, next_slot, poll_offset
from mailoauth.scheduler.snapshot import MailboxEntry
from mailoauth.secret import Secret

T0 = datetime(2030, 1, 1, 12, 0, 7, 250_000, tzinfo=UTC)
OPTIONS = SchedulerOptions()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def provider(*, secret_expires: date | None = None, name: str = "corp") -> Provider:
    return Provider(
        name=name,
        kind=ProviderKind.GENERIC,
        client_id="app",
        client_secret=Secret("client-secret-XYZ"),
        client_secret_expires=secret_expires,
        token_url="https://id.example.com/token",
        authorization_url="https://id.example.com/authorize",
    )


def mailbox(
    name: str,
    *,
    grant: GrantType = GrantType.PASSWORD,
    poll: int | None = 5,
    password: str = "pw-SECRET-1",  # noqa: S107
) -> Mailbox:
    incoming = (
        None
        if poll is None
        else IncomingSettings(host="imap.example.com", poll_interval=poll, deliver="maildir:/m/x")
    )
    return Mailbox(
        name=name,
        provider="corp",
        login=f"{name}@example.com",
        grant=grant,
        password=Secret(password) if grant is GrantType.PASSWORD else None,
        incoming=incoming,
    )


def grant(
    name: str,
    *,
    expires_in: timedelta = timedelta(hours=1),
    lifetime: timedelta = timedelta(hours=1),
    status: GrantStatus = GrantStatus.CONNECTED,
    now: datetime = T0,
) -> Grant:
    expires = now + expires_in
    return Grant(
        mailbox=name,
        status=status,
        access_token=Secret("at"),
        refresh_token=Secret("rt"),
        expires_at=expires,
        refreshed_at=expires - lifetime,
        last_error="invalid_grant: password changed"
        if status is not GrantStatus.CONNECTED
        else None,
    )


def snap(*entries: tuple[Mailbox, Grant | None], prov: Provider | None = None) -> Snapshot:
    prov = prov or provider()
    return Snapshot(tuple(MailboxEntry(m, prov, g) for m, g in entries), (prov,))


def simulate(planner: Planner, until: datetime, took: timedelta = timedelta(0)) -> list[tuple]:
    """Run the plan event by event, each job taking ``took``; (time, job) of every start."""
    started: list[tuple[datetime, Job]] = []
    now = T0
    while (wake := planner.next_wake(())) is not None and max(wake, now) <= until:
        now = max(wake, now)
        for job in planner.take(now, ()):
            started.append((now, job))
            planner.finished(job, now, now + took, Outcome(True, now + timedelta(hours=1)))
    return started


# --- the plan: polling ------------------------------------------------------------------


def test_poll_offsets_are_stable_per_mailbox_and_spread_over_the_interval():
    interval = timedelta(minutes=5)
    assert poll_offset("helpdesk", interval) == poll_offset("helpdesk", interval)
    offsets = [poll_offset(f"box{i}", interval).total_seconds() for i in range(300)]
    assert all(0 <= o < 300 for o in offsets)
    per_10s = Counter(int(o // 10) for o in offsets)
    assert len(per_10s) == 30  # every 10-second window of the interval is used
    assert max(per_10s.values()) <= 25  # ~10 expected: nothing like "all on the minute"
    assert sum(1 for o in offsets if o < 1) <= 5


def test_first_poll_within_seconds_then_every_interval_at_the_stable_offset():
    planner = Planner(OPTIONS)
    planner.update(snap((mailbox("helpdesk"), grant("helpdesk"))), T0)
    starts = [t for t, job in simulate(planner, T0 + timedelta(minutes=31)) if job.kind == "fetch"]
    assert T0 <= starts[0] <= T0 + timedelta(seconds=OPTIONS.first_poll_spread)
    later = starts[1:]
    assert later[0] - starts[0] >= timedelta(minutes=2, seconds=30)  # never twice in a row
    assert {b - a for a, b in itertools.pairwise(later)} == {timedelta(minutes=5)}
    offset = poll_offset("helpdesk", timedelta(minutes=5))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert all((t - epoch - offset) % timedelta(minutes=5) == timedelta(0) for t in later)
    assert len(later) == 6


def test_each_mailbox_keeps_its_own_interval():
    planner = Planner(OPTIONS)
    planner.update(snap((mailbox("fast", poll=1), None), (mailbox("slow", poll=15), None)), T0)
    started = simulate(planner, T0 + timedelta(minutes=60))
    fetches = Counter(job.mailbox for _, job in started if job.kind is JobKind.FETCH)
    assert fetches["fast"] in (60, 61)
    assert fetches["slow"] in (4, 5)


def test_a_poll_is_never_started_twice_and_a_slow_one_is_not_caught_up():
    planner = Planner(OPTIONS)
    planner.update(snap((mailbox("helpdesk", poll=1), grant("helpdesk"))), T0)
    now = T0 + timedelta(seconds=3)
    (job,) = [j for j in planner.take(now, ()) if j.kind is JobKind.FETCH]
    later = now + timedelta(minutes=20)  # still running, twenty slots later
    assert [j for j in planner.take(later, {job}) if j.kind is JobKind.FETCH] == []
    assert [j for j in planner.take(later, ()) if j.kind is JobKind.FETCH] == []
    planner.finished(job, now, later, Outcome(True))
    after = planner.next_poll("helpdesk")
    assert after is not None
    assert later < after <= later + timedelta(minutes=1)  # the next slot, once


def test_next_slot_is_at_or_after_the_time_given():
    interval = timedelta(minutes=5)
    slot = next_slot(T0, "x", interval)
    assert T0 <= slot < T0 + interval
    assert next_slot(slot, "x", interval) == slot
    assert next_slot(slot + timedelta(microseconds=1), "x", interval) == slot + interval


# --- the plan: refresh-ahead ------------------------------------------------------------


def refresh_due(planner: Planner, at: datetime, name: str = "helpdesk") -> bool:
    return Job(JobKind.REFRESH, name) in planner.take(at, ())


def test_refresh_ahead_inside_the_margin_only():
    planner = Planner(OPTIONS)
    planner.update(snap((mailbox("helpdesk", poll=None), grant("helpdesk"))), T0)
    assert not refresh_due(planner, T0 + timedelta(minutes=49, seconds=59))
    assert refresh_due(planner, T0 + timedelta(minutes=50))
    job = Job(JobKind.REFRESH, "helpdesk")
    # Running: not started again, however due it is.
    assert job not in planner.take(T0 + timedelta(minutes=55), {job})
    done = T0 + timedelta(minutes=50, seconds=1)
    planner.finished(job, done, done, Outcome(True, done + timedelta(hours=1)))
    assert planner.next_refresh("helpdesk") == done + timedelta(minutes=50)


def test_a_token_shorter_than_the_margin_is_refreshed_at_half_its_life_not_in_a_loop():
    planner = Planner(OPTIONS)
    short = grant("helpdesk", expires_in=timedelta(minutes=8), lifetime=timedelta(minutes=8))
    planner.update(snap((mailbox("helpdesk", poll=None), short)), T0)
    assert not refresh_due(planner, T0 + timedelta(minutes=3, seconds=59))
    assert refresh_due(planner, T0 + timedelta(minutes=4))


def test_tokens_are_fetched_for_mailboxes_that_need_no_human_but_not_for_interactive_ones():
    planner = Planner(OPTIONS)
    planner.update(
        snap(
            (mailbox("robot", poll=None), None),
            (mailbox("person", grant=GrantType.AUTHORIZATION_CODE), None),
        ),
        T0,
    )
    jobs = planner.take(T0 + timedelta(minutes=30), ())
    assert jobs == [Job(JobKind.REFRESH, "robot")]  # nothing at all for "person"


def test_refresh_failures_back_off_and_a_success_resets():
    planner = Planner(OPTIONS)
    expiring = grant("helpdesk", expires_in=timedelta(minutes=5))
    planner.update(snap((mailbox("helpdesk", poll=None), expiring)), T0)
    job = Job(JobKind.REFRESH, "helpdesk")
    assert refresh_due(planner, T0)
    planner.finished(job, T0, T0, Outcome(False))
    assert planner.next_refresh("helpdesk") == T0 + timedelta(seconds=30)
    planner.finished(job, T0, T0, Outcome(False))
    assert planner.next_refresh("helpdesk") == T0 + timedelta(seconds=60)
    planner.finished(job, T0, T0, Outcome(True, T0 + timedelta(hours=1)))
    assert planner.next_refresh("helpdesk") == T0 + timedelta(minutes=50)


def test_a_refused_grant_is_left_alone_until_its_configuration_changes():
    planner = Planner(OPTIONS)
    refused = grant("helpdesk", status=GrantStatus.NEEDS_AUTHORIZATION, expires_in=-timedelta(1))
    planner.update(snap((mailbox("helpdesk"), refused)), T0)
    assert planner.take(T0 + timedelta(hours=2), ()) == []  # no refresh, no poll
    # A new password arrives through the CLI: one more attempt, and polling resumes.
    planner.update(snap((mailbox("helpdesk", password="pw-NEW-2"), refused)), T0)
    jobs = planner.take(T0 + timedelta(seconds=5), ())
    assert Job(JobKind.REFRESH, "helpdesk") in jobs
    planner.finished(Job(JobKind.REFRESH, "helpdesk"), T0, T0, Outcome(False, None, True))
    assert planner.take(T0 + timedelta(hours=3), ()) == []


# --- the plan: live changes and the queue ---------------------------------------------


def test_mailboxes_added_changed_and_removed_are_picked_up_at_the_next_pass():
    planner = Planner(OPTIONS)
    planner.update(snap((mailbox("a", poll=60), grant("a"))), T0)
    assert {j.mailbox for j in planner.take(T0 + timedelta(seconds=3), ())} == {"a"}
    planner.finished(Job(JobKind.FETCH, "a"), T0, T0, Outcome(True))
    later = T0 + timedelta(minutes=1)
    changed = mailbox("a", poll=1)  # was hourly
    planner.update(snap((changed, grant("a")), (mailbox("b"), grant("b"))), later)
    soon = later + timedelta(seconds=OPTIONS.first_poll_spread)
    assert {(j.kind, j.mailbox) for j in planner.take(soon, ())} == {
        (JobKind.FETCH, "a"),
        (JobKind.FETCH, "b"),
    }
    planner.update(snap((changed, grant("a"))), later)
    assert planner.next_poll("b") is None
    assert list(planner.names()) == ["a"]


def test_the_queue_is_drained_every_few_seconds_never_twice_at_once():
    planner = Planner(OPTIONS, drain=True)
    drain = Job(JobKind.DRAIN)
    assert planner.take(T0, ()) == [drain]
    assert planner.take(T0 + timedelta(minutes=5), {drain}) == []
    end = T0 + timedelta(minutes=5)
    planner.finished(drain, T0, end, Outcome(True))
    assert planner.take(end + timedelta(seconds=14), ()) == []
    assert planner.take(end + timedelta(seconds=15), ()) == [drain]
    assert Planner(OPTIONS).take(T0, ()) == []  # no queue: no drain


# --- alerts -----------------------------------------------------------------------------


def test_an_expiring_client_secret_is_warned_once_per_provider_per_day():
    alerts = Alerts()
    expiring = snap(prov=provider(secret_expires=date(2030, 1, 11)))
    first = alerts.check(expiring, T0)
    assert [a.level for a in first] == [logging.WARNING]
    assert "expires on 2030-01-11 (in 10 days)" in first[0].message
    assert "client-secret-XYZ" not in first[0].message
    assert alerts.check(expiring, T0 + timedelta(hours=5)) == []
    assert len(alerts.check(expiring, T0 + timedelta(days=1))) == 1
    assert "expired on" in alerts.check(expiring, T0 + timedelta(days=20))[0].message
    assert Alerts().check(snap(prov=provider(secret_expires=date(2030, 3, 1))), T0) == []


def test_grant_states_are_warned_once_per_change():
    alerts = Alerts()
    refused = grant("robot", status=GrantStatus.NEEDS_AUTHORIZATION)
    person = mailbox("person", grant=GrantType.AUTHORIZATION_CODE)
    texts = [a.message for a in alerts.check(snap((mailbox("robot"), refused), (person, None)), T0)]
    assert len(texts) == 2
    assert "mailbox 'robot' needs authorization (invalid_grant: password changed)" in texts[0]
    assert "pw-SECRET-1" not in texts[0]
    assert "run `mailoauth authorize person`" in texts[1]
    assert alerts.check(snap((mailbox("robot"), refused), (person, None)), T0) == []
    again = alerts.check(snap((mailbox("robot"), grant("robot")), (person, None)), T0)
    assert [(a.level, a.message) for a in again] == [
        (logging.INFO, "mailbox 'robot' is connected again")
    ]
    # A password mailbox without a token yet is the scheduler's job, not a human's.
    assert Alerts().check(snap((mailbox("new"), None)), T0) == []


# --- the runner ---------------------------------------------------------------------------


@dataclass
class FakeWork:
    """Jobs that do what each test scripts; ``snap`` may be an exception to raise."""

    snap: Snapshot | Exception
    fetch_delay: dict[str, asyncio.Event | None] | None = None
    failures: dict[str, Exception] | None = None
    active: int = 0
    peak: int = 0

    def snapshot(self) -> Snapshot:
        if isinstance(self.snap, Exception):
            raise self.snap
        return self.snap

    async def refresh(self, name: str, seen: datetime | None) -> datetime | None:
        if error := (self.failures or {}).get(name):
            raise error
        return T0 + timedelta(hours=2)

    async def fetch(self, name: str) -> FetchReport:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if (gate := (self.fetch_delay or {}).get(name)) is not None:
                await gate.wait()
            if error := (self.failures or {}).get(name):
                raise error
            return FetchReport(name, "INBOX", delivered=["1.1"])
        finally:
            self.active -= 1


async def settle(scheduler: Scheduler, *, until_running: int = 0) -> None:
    for _ in range(200):
        if scheduler.status().running <= until_running:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{scheduler.status().running} jobs still running")


def three_boxes() -> Snapshot:
    return snap(*((mailbox(n), grant(n)) for n in ("a", "bad", "c")))


async def test_a_failing_mailbox_does_not_stop_the_others_and_is_logged_once(caplog):
    caplog.set_level(logging.DEBUG, logger="mailoauth.scheduler")
    broken = MailConnectionError("cannot connect to imap.example.com:993; check incoming.host")
    work = FakeWork(three_boxes(), failures={"bad": broken})
    clock = Clock()
    scheduler = Scheduler(work, clock=clock)
    await scheduler.plan()
    clock.advance(seconds=3)
    assert len(await scheduler.step()) == 3
    await settle(scheduler)
    status = scheduler.status()
    assert status.mailboxes["a"].last_fetch.delivered == 1
    assert status.mailboxes["c"].last_fetch.delivered == 1
    assert status.mailboxes["bad"].last_fetch.error == str(broken)
    assert (status.counters.fetches_ok, status.counters.fetches_failed) == (2, 1)
    assert status.counters.messages_fetched == 2
    clock.advance(minutes=8)  # past every mailbox's next slot
    await scheduler.step()  # the loop goes on: every mailbox polled again
    await settle(scheduler)
    assert scheduler.status().counters.fetches_failed == 2
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == [f"fetch bad failed: {broken}"]


async def test_a_slow_mailbox_does_not_delay_the_others_and_times_out():
    gate = asyncio.Event()  # never set: "slow" hangs
    work = FakeWork(three_boxes(), fetch_delay={"bad": gate})
    clock = Clock()
    scheduler = Scheduler(work, clock=clock, options=SchedulerOptions(fetch_timeout=0.2))
    await scheduler.plan()
    clock.advance(seconds=3)
    await scheduler.step()
    await settle(scheduler, until_running=1)  # a and c are done while bad hangs
    status = scheduler.status()
    assert status.mailboxes["a"].last_fetch is not None
    assert status.mailboxes["bad"].running == (JobKind.FETCH,)
    clock.advance(minutes=10)
    assert Job(JobKind.FETCH, "bad") not in await scheduler.step()  # not started twice
    await settle(scheduler)
    outcome = scheduler.status().mailboxes["bad"].last_fetch
    assert outcome.error == "did not finish within 0.2 s; tried again at its next turn"


async def test_at_most_max_fetches_run_at_once():
    gates = {f"m{i}": asyncio.Event() for i in range(5)}
    work = FakeWork(snap(*((mailbox(n), grant(n)) for n in gates)), fetch_delay=dict(gates))
    clock = Clock()
    scheduler = Scheduler(work, clock=clock, options=SchedulerOptions(max_fetches=2))
    await scheduler.plan()
    clock.advance(seconds=3)
    await scheduler.step()
    await asyncio.sleep(0.02)
    assert work.active == 2
    for gate in gates.values():
        gate.set()
    await settle(scheduler)
    assert work.peak == 2
    assert scheduler.status().counters.fetches_ok == 5


async def test_a_refused_grant_is_counted_blocked_and_not_retried():
    refusal = AuthorizationNeeded("robot", "invalid_grant", "check the password")
    expiring = grant("robot", expires_in=timedelta(minutes=2))
    work = FakeWork(snap((mailbox("robot", poll=None), expiring)), failures={"robot": refusal})
    clock = Clock()
    scheduler = Scheduler(work, clock=clock)
    assert await scheduler.step() == [Job(JobKind.REFRESH, "robot")]
    await settle(scheduler)
    work.snap = snap((mailbox("robot", poll=None), replace(expiring, status="needs_authorization")))
    status = scheduler.status()
    assert status.counters.refreshes_failed == 1
    assert status.mailboxes["robot"].state is GrantState.NEEDS_AUTHORIZATION
    assert status.mailboxes["robot"].last_refresh.error == str(refusal)
    clock.advance(hours=1)
    assert await scheduler.step() == []


async def test_an_unreadable_store_keeps_the_last_plan_and_the_loop(caplog):
    work = FakeWork(snap((mailbox("a"), grant("a"))))
    clock = Clock()
    scheduler = Scheduler(work, clock=clock)
    await scheduler.plan()
    work.snap = StoreError("the database is locked; try again")
    clock.advance(seconds=31)
    jobs = await scheduler.step()
    assert jobs == [Job(JobKind.FETCH, "a")]  # still polled from the last good plan
    assert scheduler.status().last_plan_error == "the database is locked; try again"
    assert "could not read the mailboxes (the database is locked" in caplog.text
    work.snap = snap((mailbox("a"), grant("a")), (mailbox("b"), grant("b")))
    clock.advance(seconds=31)
    await scheduler.step()
    assert set(scheduler.status().mailboxes) == {"a", "b"}  # added while running
    await settle(scheduler)


@dataclass(frozen=True)
class DrainReport:
    sent: int
    failed: int


async def test_the_loop_drains_the_queue_and_stops_cleanly():
    drains = 0

    async def drain() -> DrainReport:
        nonlocal drains
        drains += 1
        return DrainReport(sent=2, failed=1)

    hang = asyncio.Event()
    work = FakeWork(snap((mailbox("stuck"), grant("stuck"))), fetch_delay={"stuck": hang})
    options = SchedulerOptions(drain_every=0.03, tick=0.01, first_poll_spread=0.0, stop_grace=0.1)
    scheduler = Scheduler(work, drain=drain, options=options)
    scheduler.start()
    await asyncio.sleep(0.3)
    assert scheduler.status().mailboxes["stuck"].running == (JobKind.FETCH,)
    started = asyncio.get_running_loop().time()
    await scheduler.stop()
    assert asyncio.get_running_loop().time() - started < 1  # the hung fetch was cancelled
    counters = scheduler.status().counters
    assert drains >= 4
    assert counters.drains_ok == drains
    assert (counters.sends_ok, counters.sends_failed) == (2 * drains, drains)
    assert scheduler.status().running == 0
