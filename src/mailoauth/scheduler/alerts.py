"""Expiry and authorization warnings for the log, each said once. Pure: the runner logs them.

* A provider's ``client_secret_expires`` within :data:`SECRET_WARNING` (30 days) or past:
  one warning per provider per day.
* A grant changing state: one line per mailbox per change — a warning when it enters
  ``needs_authorization`` or ``error`` (or an interactive mailbox has never been
  authorized), an info line when it is connected again. The state at start-up counts as a
  change, so a restarted service says once what still needs a human.

Texts quote ``grant.last_error``, which the token service stores free of secrets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from mailoauth.scheduler.snapshot import GrantState, MailboxEntry, Snapshot

__all__ = ["SECRET_WARNING", "Alert", "Alerts"]

SECRET_WARNING: Final = timedelta(days=30)


@dataclass(frozen=True)
class Alert:
    level: int  # logging.WARNING or logging.INFO
    message: str


class Alerts:
    """Remembers what was said, so each alert comes once."""

    def __init__(self) -> None:
        self._states: dict[str, GrantState] = {}
        self._secrets_said: set[tuple[str, date]] = set()

    def check(self, snapshot: Snapshot, now: datetime) -> list[Alert]:
        today = now.date()
        alerts: list[Alert] = []
        for provider in snapshot.providers:
            expires = provider.client_secret_expires
            if expires is None or expires - today > SECRET_WARNING:
                continue
            if (provider.name, today) in self._secrets_said:
                continue
            self._secrets_said.add((provider.name, today))
            alerts.append(Alert(logging.WARNING, _secret_text(provider.name, expires, today)))
        self._secrets_said = {said for said in self._secrets_said if said[1] == today}
        names = set()
        for entry in snapshot.mailboxes:
            names.add(entry.name)
            alerts += self.state_seen(entry)
        self._states = {name: state for name, state in self._states.items() if name in names}
        return alerts

    def state_seen(self, entry: MailboxEntry) -> list[Alert]:
        """An alert if ``entry``'s grant state is not the one last seen."""
        state, before = entry.state, self._states.get(entry.name)
        self._states[entry.name] = state
        if state is before:
            return []
        text = _state_text(entry, before)
        if text is None:
            return []
        level = logging.INFO if state is GrantState.CONNECTED else logging.WARNING
        return [Alert(level, text)]


def _secret_text(provider: str, expires: date, today: date) -> str:
    renew = (
        "create a new client secret at the provider and update the provider here "
        "(`mailoauth apply` or `mailoauth provider add`)"
    )
    if expires < today:
        return (
            f"provider {provider!r}: its client secret expired on {expires}, so its token "
            f"requests fail; {renew}"
        )
    days = (expires - today).days
    return (
        f"provider {provider!r}: its client secret expires on {expires} (in {days} days); {renew}"
    )


def _state_text(entry: MailboxEntry, before: GrantState | None) -> str | None:
    name, grant = entry.name, entry.grant
    said = (grant.last_error if grant else None) or ""
    if entry.state is GrantState.CONNECTED:
        if before in (None, GrantState.NOT_AUTHORIZED):
            return None  # nothing to report: it simply works
        return f"mailbox {name!r} is connected again"
    if entry.state is GrantState.NOT_AUTHORIZED:
        if not entry.interactive:
            return None  # the scheduler gets its first token
        return f"mailbox {name!r} has not been authorized yet; run `mailoauth authorize {name}`"
    if entry.state is GrantState.NEEDS_AUTHORIZATION:
        fix = (
            f"run `mailoauth authorize {name}`"
            if entry.interactive
            else "fix its credentials (password, key, client secret) with `mailoauth apply`; "
            f"`mailoauth test {name}` checks them"
        )
        why = said or "the provider refused the grant"
        return f"mailbox {name!r} needs authorization ({why}); {fix}"
    why = said or "the last token refresh failed"
    return f"mailbox {name!r}: {why}; the service keeps retrying (`mailoauth status`)"
