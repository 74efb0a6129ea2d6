"""The scheduler's plan: which job is due when. Pure: times come in as arguments, nothing
sleeps, nothing is read; :mod:`.runner` does the I/O.

Polling (a mailbox with ``incoming`` and ``incoming.deliver``)::

    first poll        discovery + stagger            stagger = hash(name) · first_poll_spread
    later polls       offset + k · interval          offset  = hash(name) · interval, counted
                                                     from the Unix epoch (UTC)
    after a poll      the first slot at least half an interval after it started, and not
                      before it finished (a slow poll is never started twice or caught up)

The offset is stable across restarts and nodes and spreads mailboxes evenly over the
interval, so they are not all polled on the minute. A mailbox whose ``incoming`` settings
change is treated as new (polled again soon).

Refresh-ahead (every mailbox that can refresh on its own)::

    due at            expires_at - min(margin, lifetime / 2)     lifetime = expires_at -
                                                                 refreshed_at
    no grant yet      now, for password / client-credentials / service-account mailboxes
    after a failure   not before now + min(retry_base · 2^(failures-1), retry_max)

The half-lifetime rule keeps tokens shorter than the margin from being refreshed in a
loop. Interactive mailboxes (authorization code, device code) without a grant are left
alone: only a human can authorize them.

Blocked: a grant in ``needs_authorization`` is neither refreshed nor polled — retrying a
refused password could lock the account. It is tried again when its mailbox or provider
changes in the store (a new password or client secret) or when the grant does
(re-authorized, or a send through the token service succeeded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from mailoauth.models import IncomingSettings, Mailbox, Provider
from mailoauth.scheduler.snapshot import GrantState, MailboxEntry, Snapshot

__all__ = [
    "Job",
    "JobKind",
    "Outcome",
    "Planner",
    "SchedulerOptions",
    "first_poll_at",
    "next_slot",
    "poll_offset",
    "refresh_due_at",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SOON: Final = _EPOCH  # "as soon as possible": earlier than any now


@dataclass(frozen=True)
class SchedulerOptions:
    """How the scheduler paces itself (seconds unless a timedelta)."""

    refresh_margin: timedelta = timedelta(minutes=10)
    first_poll_spread: float = 2.0
    replan_every: float = 30.0
    drain_every: float = 15.0
    max_fetches: int = 8
    max_refreshes: int = 8
    fetch_timeout: float = 300.0
    refresh_timeout: float = 120.0
    drain_timeout: float = 300.0
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(minutes=15)
    stop_grace: float = 10.0
    tick: float = 1.0  # the longest the loop sleeps between two looks at the plan


class JobKind(StrEnum):
    REFRESH = "refresh"
    FETCH = "fetch"
    DRAIN = "drain"


@dataclass(frozen=True)
class Job:
    kind: JobKind
    mailbox: str = ""  # "" for the queue drain

    def __str__(self) -> str:
        return f"{self.kind.value} {self.mailbox}".rstrip()


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as far as the plan cares."""

    ok: bool
    expires_at: datetime | None = None  # a refresh: the new token's expiry
    needs_authorization: bool = False


# --- timing ------------------------------------------------------------------------------


def _fraction(name: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def poll_offset(name: str, interval: timedelta) -> timedelta:
    """Where in each interval ``name`` is polled: stable, uniformly spread."""
    return timedelta(microseconds=int(_fraction(name, "poll") * (interval // timedelta(0, 0, 1))))


def next_slot(after: datetime, name: str, interval: timedelta) -> datetime:
    """The first of ``name``'s poll slots (epoch + offset + k·interval) at or after ``after``."""
    offset = poll_offset(name, interval)
    steps = -((offset - (after - _EPOCH)) // interval)  # ceiling division, exact
    return _EPOCH + offset + steps * interval


def first_poll_at(name: str, now: datetime, spread: float) -> datetime:
    return now + timedelta(seconds=_fraction(name, "first") * spread)


def refresh_due_at(
    expires_at: datetime, obtained_at: datetime | None, margin: timedelta
) -> datetime:
    """When to refresh a token ahead of its expiry (half its lifetime if that is less)."""
    ahead = margin
    if obtained_at is not None and obtained_at < expires_at:
        ahead = min(margin, (expires_at - obtained_at) / 2)
    return expires_at - ahead


# --- the plan ----------------------------------------------------------------------------


def _pollable(incoming: IncomingSettings | None) -> bool:
    return incoming is not None and incoming.deliver is not None


@dataclass
class _Track:
    """What the plan knows of one mailbox (from the store, then from job outcomes)."""

    entry: MailboxEntry
    state: GrantState
    expires_at: datetime | None
    obtained_at: datetime | None
    can_refresh: bool
    next_poll: datetime | None = None  # None: not polled, or a poll is running
    refresh_not_before: datetime | None = None
    refresh_failures: int = 0
    blocked_on: tuple[Mailbox, Provider | None] | None = None

    @property
    def blocked(self) -> bool:
        entry = self.entry
        if entry.interactive and self.state is GrantState.NOT_AUTHORIZED:
            return True
        return self.state is GrantState.NEEDS_AUTHORIZATION and self.blocked_on == entry.config

    def read(self, entry: MailboxEntry) -> None:
        """Take the grant as the store has it now."""
        self.entry = entry
        grant = entry.grant
        self.state = entry.state
        self.expires_at = grant.expires_at if grant else None
        self.obtained_at = grant.refreshed_at if grant else None
        # Interactive grants refresh with their refresh token only.
        self.can_refresh = not entry.interactive or (
            grant is not None and grant.refresh_token is not None
        )
        if self.state is not GrantState.NEEDS_AUTHORIZATION:
            self.blocked_on = None
        elif self.blocked_on is None:
            self.blocked_on = entry.config  # seen refused: wait for a change


class Planner:
    """Jobs per mailbox over time; the runner reports starts and ends back."""

    def __init__(self, options: SchedulerOptions, *, drain: bool = False) -> None:
        self._options = options
        self._tracks: dict[str, _Track] = {}
        self._next_drain: datetime | None = _SOON if drain else None
        self._drain = drain

    # --- what the store says ---------------------------------------------------------

    def update(self, snapshot: Snapshot, now: datetime) -> None:
        """Adopt a fresh read of the store: new, changed and removed mailboxes."""
        seen: set[str] = set()
        for entry in snapshot.mailboxes:
            name = entry.name
            seen.add(name)
            track = self._tracks.get(name)
            if track is None:
                track = _Track(entry, entry.state, None, None, False)
                self._tracks[name] = track
                self._schedule_first_poll(track, now)
            else:
                if entry.mailbox.incoming != track.entry.mailbox.incoming:
                    self._schedule_first_poll(track, now)
                if entry.config != track.entry.config:
                    track.refresh_failures, track.refresh_not_before = 0, None
            track.read(entry)
        for name in set(self._tracks) - seen:
            del self._tracks[name]

    def _schedule_first_poll(self, track: _Track, now: datetime) -> None:
        name = track.entry.name
        pollable = _pollable(track.entry.mailbox.incoming)
        spread = self._options.first_poll_spread
        track.next_poll = first_poll_at(name, now, spread) if pollable else None

    # --- what to start -----------------------------------------------------------------

    def take(self, now: datetime, running: Collection[Job]) -> list[Job]:
        """The jobs due at ``now`` that are not running; marked as started."""
        jobs: list[Job] = []
        drain = Job(JobKind.DRAIN)
        if self._next_drain is not None and self._next_drain <= now and drain not in running:
            self._next_drain = None  # set again when it ends
            jobs.append(drain)
        for name in sorted(self._tracks):
            track = self._tracks[name]
            refresh, fetch = Job(JobKind.REFRESH, name), Job(JobKind.FETCH, name)
            due = self._refresh_due(track)
            if due is not None and due <= now and refresh not in running:
                jobs.append(refresh)
            poll = self._poll_due(track)
            if poll is not None and poll <= now and fetch not in running:
                track.next_poll = None  # set again when it ends
                jobs.append(fetch)
        return jobs

    def next_wake(self, running: Collection[Job]) -> datetime | None:
        """The earliest time a job not running now becomes due."""
        times: list[datetime] = []
        if self._next_drain is not None and Job(JobKind.DRAIN) not in running:
            times.append(self._next_drain)
        for name, track in self._tracks.items():
            due = self._refresh_due(track)
            if due is not None and Job(JobKind.REFRESH, name) not in running:
                times.append(due)
            poll = self._poll_due(track)
            if poll is not None and Job(JobKind.FETCH, name) not in running:
                times.append(poll)
        return min(times, default=None)

    def _refresh_due(self, track: _Track) -> datetime | None:
        if track.blocked or not track.can_refresh:
            return None
        if track.expires_at is None:
            if track.state is not GrantState.NOT_AUTHORIZED:
                return None  # connected without a known expiry: nothing to go by
            due = _SOON  # a non-interactive mailbox without a token: get one
        else:
            due = refresh_due_at(track.expires_at, track.obtained_at, self._options.refresh_margin)
        not_before = track.refresh_not_before
        return due if not_before is None else max(due, not_before)

    def _poll_due(self, track: _Track) -> datetime | None:
        return None if track.blocked else track.next_poll

    # --- what happened -----------------------------------------------------------------

    def finished(self, job: Job, started: datetime, now: datetime, outcome: Outcome) -> None:
        """Record how ``job`` (started at ``started``) ended at ``now``."""
        if job.kind is JobKind.DRAIN:
            if self._drain:
                self._next_drain = now + timedelta(seconds=self._options.drain_every)
            return
        track = self._tracks.get(job.mailbox)
        if track is None:
            return  # removed from the store meanwhile
        if outcome.needs_authorization:
            track.state = GrantState.NEEDS_AUTHORIZATION
            track.blocked_on = track.entry.config
        if job.kind is JobKind.FETCH:
            incoming = track.entry.mailbox.incoming
            if _pollable(incoming) and track.next_poll is None:
                assert incoming is not None
                interval = timedelta(minutes=incoming.poll_interval)
                after = max(started + interval / 2, now)
                track.next_poll = next_slot(after, job.mailbox, interval)
            return
        if outcome.ok:
            track.state = GrantState.CONNECTED
            track.expires_at, track.obtained_at = outcome.expires_at, now
            track.refresh_failures, track.refresh_not_before = 0, None
            track.blocked_on = None
            return
        track.refresh_failures += 1
        backoff = self._options.retry_base * 2 ** (track.refresh_failures - 1)
        track.refresh_not_before = now + min(backoff, self._options.retry_max)

    # --- for the status page ---------------------------------------------------------

    def names(self) -> Iterable[str]:
        return sorted(self._tracks)

    def next_poll(self, name: str) -> datetime | None:
        track = self._tracks.get(name)
        return None if track is None else self._poll_due(track)

    def next_refresh(self, name: str) -> datetime | None:
        track = self._tracks.get(name)
        due = None if track is None else self._refresh_due(track)
        return None if due is None or due == _SOON else due

    def state(self, name: str) -> GrantState | None:
        track = self._tracks.get(name)
        return None if track is None else track.state

    def expires_at(self, name: str) -> datetime | None:
        """The expiry of the token the plan knows of (to notice another's refresh)."""
        track = self._tracks.get(name)
        return None if track is None else track.expires_at
