"""The dashboard's rows: what the store and the scheduler know of every mailbox and
provider, as plain values for ``dashboard.html`` (pure: values in, values out).

Sources: the grant in the store (state, token expiry, last refresh, the provider's last
words), the scheduler's status since the service started (last fetch and refresh outcomes,
next poll), and the outbound queue (messages waiting, failed, last sent). Rows hold no
secret: a provider's credentials appear only as whether they are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from mailoauth.models import Provider
from mailoauth.scheduler import FetchOutcome, GrantState, SchedulerStatus, Snapshot
from mailoauth.scheduler.snapshot import MailboxEntry
from mailoauth.store import OutboundSummary

__all__ = [
    "SECRET_WARNING_DAYS",
    "Dashboard",
    "MailboxRow",
    "ProviderRow",
    "build_dashboard",
    "mailbox_row",
    "provider_row",
]

#: A provider's client secret is flagged this many days before it expires.
SECRET_WARNING_DAYS: Final = 30

LABELS: Final = {
    GrantState.CONNECTED: "connected",
    GrantState.NEEDS_AUTHORIZATION: "needs authorization",
    GrantState.NOT_AUTHORIZED: "not authorized",
    GrantState.ERROR: "error",
}


@dataclass(frozen=True)
class MailboxRow:
    name: str
    provider: str
    login: str
    grant: str
    state: GrantState
    label: str
    problem: str | None  # what went wrong and what to do, in words
    token_expires: datetime | None
    last_refresh: datetime | None
    last_fetch: FetchOutcome | None
    next_poll: datetime | None
    last_sent: datetime | None
    waiting: int
    failed: int


@dataclass(frozen=True)
class ProviderRow:
    name: str
    kind: str
    client_id: str
    tenant: str | None
    credential: str  # "set" | "not set": never the value
    secret_expires: date | None
    warning: str | None  # the client secret expires soon or has expired


@dataclass(frozen=True)
class Dashboard:
    mailboxes: tuple[MailboxRow, ...]
    providers: tuple[ProviderRow, ...]
    counts: Mapping[GrantState, int]
    scheduler_running: bool
    plan_error: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"Provider {p.name}: {p.warning}" for p in self.providers if p.warning)


def _problem(entry: MailboxEntry) -> str | None:
    name, grant = entry.name, entry.grant
    said = grant.last_error if grant and grant.last_error else None
    if entry.state is GrantState.NOT_AUTHORIZED:
        if entry.interactive:
            return f"Not authorized yet: authorize it (CLI: mailoauth authorize {name})."
        return "No token yet: the service gets one at its next pass."
    if entry.state is GrantState.NEEDS_AUTHORIZATION:
        fix = (
            "authorize it again"
            if entry.interactive
            else "fix its credentials (password, key or client secret)"
        )
        return f"{said or 'The provider refused the grant'}. To fix: {fix}."
    if entry.state is GrantState.ERROR:
        return f"{said or 'The last token refresh failed'}. The service keeps retrying."
    return None


def mailbox_row(
    entry: MailboxEntry, status: SchedulerStatus | None, queue: OutboundSummary
) -> MailboxRow:
    """One mailbox's row (the dashboard's, and the state on the mailbox's own page)."""
    mailbox, grant = entry.mailbox, entry.grant
    seen = status.mailboxes.get(entry.name) if status else None
    refreshed = grant.refreshed_at if grant else None
    if seen and seen.last_refresh and (refreshed is None or seen.last_refresh.at > refreshed):
        refreshed = seen.last_refresh.at if seen.last_refresh.error is None else refreshed
    return MailboxRow(
        name=entry.name,
        provider=mailbox.provider,
        login=mailbox.login,
        grant=mailbox.grant.value,
        state=entry.state,
        label=LABELS[entry.state],
        problem=_problem(entry),
        token_expires=grant.expires_at if grant else None,
        last_refresh=refreshed,
        last_fetch=seen.last_fetch if seen else None,
        next_poll=seen.next_poll if seen else None,
        last_sent=queue.last_sent_at,
        waiting=queue.waiting,
        failed=queue.failed,
    )


def _secret_warning(expires: date | None, today: date) -> str | None:
    if expires is None:
        return None
    days = (expires - today).days
    if days < 0:
        return f"its client secret expired on {expires}: create a new one at the provider"
    if days <= SECRET_WARNING_DAYS:
        return (
            f"its client secret expires on {expires} (in {days} days): create a new one at "
            "the provider and update the provider here"
        )
    return None


def provider_row(p: Provider, today: date) -> ProviderRow:
    """One provider's row: whether its credential is set (never the value), its expiry."""
    return ProviderRow(
        name=p.name,
        kind=p.kind.value,
        client_id=p.client_id,
        tenant=p.tenant,
        credential="set" if (p.client_secret or p.private_key) else "not set",
        secret_expires=p.client_secret_expires,
        warning=_secret_warning(p.client_secret_expires, today),
    )


def build_dashboard(
    snapshot: Snapshot,
    status: SchedulerStatus | None,
    queue: Mapping[str, OutboundSummary],
    now: datetime,
) -> Dashboard:
    rows = tuple(
        mailbox_row(entry, status, queue.get(entry.name, OutboundSummary()))
        for entry in snapshot.mailboxes
    )
    providers = tuple(provider_row(p, now.date()) for p in snapshot.providers)
    counts = {state: sum(1 for r in rows if r.state is state) for state in GrantState}
    return Dashboard(
        mailboxes=rows,
        providers=providers,
        counts=counts,
        scheduler_running=status is not None,
        plan_error=status.last_plan_error if status else None,
    )
