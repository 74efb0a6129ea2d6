"""The scheduler's event loop: reads the store, starts due jobs, keeps them apart.

Isolation rules:

* Every job is its own asyncio task with a timeout (``fetch_timeout``,
  ``refresh_timeout``, ``drain_timeout``); the loop only starts tasks, so a slow or failing
  mailbox never delays another or the loop.
* At most ``max_fetches`` fetches and ``max_refreshes`` refreshes run at once; waiting for
  a slot does not count toward the timeout.
* A job still running is not started again (the plan skips it).
* A job's exception is caught, counted and logged as ``str(error)`` (our errors carry no
  secret); the loop itself catches everything too and carries on at the next tick.
* A failure is logged as a warning when it starts or its text changes, then at debug
  level until the job works again (one info line), so a broken mailbox polled every
  minute does not flood the log; every failure is counted for ``/metrics``.

``stop()`` ends the loop, gives running jobs ``stop_grace`` seconds, then cancels the rest.
Token refreshes run shielded inside :class:`~mailoauth.oauth.tokens.TokenService`, so the
owner of the token service must still await ``TokenService.drain()`` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mailoauth.errors import AuthorizationNeeded, MailoauthError
from mailoauth.mail.fetched import FetchReport
from mailoauth.scheduler.alerts import Alerts
from mailoauth.scheduler.plan import Job, JobKind, Outcome, Planner, SchedulerOptions
from mailoauth.scheduler.snapshot import Snapshot
from mailoauth.scheduler.status import (
    Counters,
    FetchOutcome,
    MailboxStatus,
    RefreshOutcome,
    SchedulerStatus,
    SendCounts,
)

__all__ = ["Clock", "Drain", "Scheduler", "Work"]

log = logging.getLogger("mailoauth.scheduler")

Clock = Callable[[], datetime]
Drain = Callable[[], Awaitable[object]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Work(Protocol):
    """The I/O behind the jobs (:class:`~mailoauth.scheduler.work.ServiceWork`, or a fake)."""

    def snapshot(self) -> Snapshot:
        """Every mailbox with provider and grant; blocking, run in a worker thread."""
        ...

    async def refresh(self, mailbox: str, seen_expiry: datetime | None) -> datetime | None:
        """Refresh ahead unless someone else did since ``seen_expiry``; the new expiry."""
        ...

    async def fetch(self, mailbox: str) -> FetchReport: ...


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MailoauthError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Scheduler:
    """Refresh-ahead, polling and queue drain for every mailbox in the store."""

    def __init__(
        self,
        work: Work,
        *,
        drain: Drain | None = None,
        options: SchedulerOptions | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self._work = work
        self._drain = drain
        self._options = options = options or SchedulerOptions()
        self._clock = clock
        self._planner = Planner(options, drain=drain is not None)
        self._alerts = Alerts()
        self._slots = {
            JobKind.FETCH: asyncio.Semaphore(options.max_fetches),
            JobKind.REFRESH: asyncio.Semaphore(options.max_refreshes),
        }
        self._timeouts = {
            JobKind.FETCH: options.fetch_timeout,
            JobKind.REFRESH: options.refresh_timeout,
            JobKind.DRAIN: options.drain_timeout,
        }
        self._running: dict[Job, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_plan: datetime | None = None  # None: at the next step
        self._counts: Counter[str] = Counter()
        self._fetches: dict[str, FetchOutcome] = {}
        self._refreshes: dict[str, RefreshOutcome] = {}
        self._failing: dict[Job, str] = {}  # the last error of each failing job
        self._started_at: datetime | None = None
        self._last_plan_at: datetime | None = None
        self._last_plan_error: str | None = None

    # --- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop in a task of the current event loop until :meth:`stop`."""
        if self._loop is None:
            self._loop = asyncio.create_task(self.run(), name="mailoauth-scheduler")

    async def stop(self) -> None:
        """End the loop; wait ``stop_grace`` seconds for running jobs, cancel the rest."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        pending = set(self._running.values())
        late: set[asyncio.Task[None]] = set()
        if pending:
            _, late = await asyncio.wait(pending, timeout=self._options.stop_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        log.info("scheduler stopped (%d unfinished job(s) cancelled)", len(late))

    async def run(self) -> None:
        """Plan and start jobs until :meth:`stop`; no job's failure ends it."""
        self._started_at = self._clock()
        while not self._stopping:
            try:
                await self.step()
            except Exception as exc:  # the loop must outlive any bug in one pass
                log.error("scheduler pass failed: %s", _describe(exc))
            await self._sleep()

    async def step(self) -> list[Job]:
        """One pass: re-read the store when due, then start every due job."""
        next_plan = self._next_plan
        if next_plan is None or self._clock() >= next_plan:
            await self.plan()
        jobs = self._planner.take(self._clock(), self._running)
        for job in jobs:
            self._start(job)
        return jobs

    async def plan(self) -> None:
        """Re-read every mailbox: picks up what the CLI added, changed or removed."""
        try:
            snapshot = await asyncio.to_thread(self._work.snapshot)
        except Exception as exc:
            text = _describe(exc)
            if text != self._last_plan_error:
                log.warning(
                    "could not read the mailboxes (%s); keeping the last plan, retrying in %g s",
                    text,
                    self._options.replan_every,
                )
            self._last_plan_error = text
        else:
            now = self._clock()
            self._planner.update(snapshot, now)
            for alert in self._alerts.check(snapshot, now):
                log.log(alert.level, "%s", alert.message)
            names = {entry.name for entry in snapshot.mailboxes}
            for book in (self._fetches, self._refreshes):
                for name in set(book) - names:
                    del book[name]
            self._last_plan_at, self._last_plan_error = now, None
        finally:
            self._next_plan = self._clock() + timedelta(seconds=self._options.replan_every)

    async def _sleep(self) -> None:
        self._wake.clear()
        now = self._clock()
        times = [t for t in (self._planner.next_wake(self._running), self._next_plan) if t]
        delay = self._options.tick
        if times:
            delay = min(delay, max(0.005, (min(times) - now).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    # --- jobs --------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        started = self._clock()
        task = asyncio.create_task(self._run_job(job, started), name=f"mailoauth {job}")
        self._running[job] = task
        task.add_done_callback(lambda done: self._ended(job, done))

    def _ended(self, job: Job, task: asyncio.Task[None]) -> None:
        self._running.pop(job, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: %s", job, _describe(exc))  # _run_job catches all; a bug
        self._wake.set()

    async def _run_job(self, job: Job, started: datetime) -> None:
        timeout = self._timeouts[job.kind]
        limit: asyncio.Timeout | None = None
        slot = self._slots.get(job.kind) or contextlib.nullcontext()
        result: object = None
        error: str | None = None
        refused = False
        began = 0.0
        try:
            async with slot:  # waiting for a slot does not count toward the timeout
                began = time.monotonic()
                limit = asyncio.timeout(timeout)
                async with limit:
                    result = await self._call(job)
        except TimeoutError as exc:
            error = (
                f"did not finish within {timeout:g} s; tried again at its next turn"
                if limit is not None and limit.expired()
                else _describe(exc)
            )
        except AuthorizationNeeded as exc:
            error, refused = str(exc), True
        except Exception as exc:
            error = _describe(exc)
        if error is None and isinstance(result, FetchReport) and result.error:
            error = result.error  # the handler refused a message: offered again next time
        now = self._clock()
        seconds = time.monotonic() - began if began else 0.0
        outcome = self._book(job, now, result, error, seconds)
        self._planner.finished(job, started, now, Outcome(error is None, outcome, refused))
        self._report(job, error, refused)
        if refused:
            self._next_plan = None  # read the new grant state soon, for its alert

    async def _call(self, job: Job) -> object:
        if job.kind is JobKind.FETCH:
            return await self._work.fetch(job.mailbox)
        if job.kind is JobKind.REFRESH:
            seen = self._planner.expires_at(job.mailbox)
            return await self._work.refresh(job.mailbox, seen)
        assert self._drain is not None
        return await self._drain()

    def _book(
        self, job: Job, now: datetime, result: object, error: str | None, seconds: float
    ) -> datetime | None:
        """Count the outcome and keep it for the status; a refresh's new expiry."""
        result_label = "ok" if error is None else "failed"
        name = job.mailbox
        if job.kind is JobKind.FETCH:
            delivered = len(result.delivered) if isinstance(result, FetchReport) else 0
            self._counts[f"fetches_{result_label}"] += 1
            self._counts["messages_fetched"] += delivered
            self._fetches[name] = FetchOutcome(now, delivered, seconds, error)
            if delivered:
                folder = result.folder if isinstance(result, FetchReport) else ""
                log.info("fetched %d message(s) from %s/%s", delivered, name, folder)
            return None
        if job.kind is JobKind.REFRESH:
            expires = result if isinstance(result, datetime) else None
            self._counts[f"refreshes_{result_label}"] += 1
            self._refreshes[name] = RefreshOutcome(now, expires, error)
            return expires
        self._counts[f"drains_{result_label}"] += 1
        if isinstance(result, SendCounts):
            self._counts["sends_ok"] += result.sent
            self._counts["sends_failed"] += result.failed
            if result.sent or result.failed:
                log.info("queue drain: %s", result)
        return None

    def _report(self, job: Job, error: str | None, refused: bool) -> None:
        before = self._failing.pop(job, None)
        if error is None:
            if before is not None:
                log.info("%s works again", job)
            return
        self._failing[job] = error
        # A refused grant gets its own alert (with the fix) at the next planning pass.
        level = logging.DEBUG if refused or error == before else logging.WARNING
        log.log(level, "%s failed: %s", job, error)

    # --- what it did -------------------------------------------------------------------

    def status(self) -> SchedulerStatus:
        """A frozen view of the plan and the last outcomes (call on the event loop)."""
        running: dict[str, list[JobKind]] = {}
        for job in self._running:
            running.setdefault(job.mailbox, []).append(job.kind)
        planner = self._planner
        mailboxes = {
            name: MailboxStatus(
                name=name,
                state=planner.state(name),
                next_poll=planner.next_poll(name),
                next_refresh=planner.next_refresh(name),
                last_fetch=self._fetches.get(name),
                last_refresh=self._refreshes.get(name),
                running=tuple(sorted(running.get(name, ()))),
            )
            for name in planner.names()
        }
        return SchedulerStatus(
            started_at=self._started_at,
            counters=Counters(**self._counts),
            mailboxes=mailboxes,
            last_plan_at=self._last_plan_at,
            last_plan_error=self._last_plan_error,
            running=len(self._running),
        )
