"""Saving a provider or mailbox form: the form's table (:mod:`.fields`) built through the
REST API's bodies (:mod:`mailoauth.web.api.bodies`, which keep an omitted secret and use
the builders of ``mailoauth apply``), written to the store, and the grants the change
invalidates marked (:mod:`.regrant`). Blocking (the store): call from a worker thread.

A refusal raises :class:`~mailoauth.errors.ConfigError` (or pydantic's
``ValidationError`` for a value of the wrong shape); nothing is written then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.models import Mailbox, Provider
from mailoauth.store import Change, Store
from mailoauth.validate import check_name
from mailoauth.web.api.bodies import mailbox_from_body, provider_from_body
from mailoauth.web.api.schemas import MailboxBody, ProviderBody
from mailoauth.web.console.fields import mailbox_raw, provider_raw
from mailoauth.web.console.regrant import invalidate, reasons

__all__ = ["Saved", "changed_fields", "save_mailbox", "save_provider"]


@dataclass(frozen=True)
class Saved:
    """What the save did, and what it did to the mailboxes' grants (notices in words)."""

    change: Change
    changed: tuple[str, ...] = ()  # the names of the fields that changed (never values)
    notices: tuple[str, ...] = ()
    touched: tuple[str, ...] = ()  # mailboxes whose grant changed: drop cached tokens

    @property
    def detail(self) -> str:
        """For the audit log: what changed, by field name only."""
        if self.change is not Change.UPDATED:
            return self.change.value
        return f"changed: {', '.join(self.changed) or 'nothing'}"


def changed_fields(before: object | None, after: object) -> tuple[str, ...]:
    """The dataclass fields whose values differ (secrets compare in constant time)."""
    if before is None:
        return ()
    return tuple(
        f.name
        for f in dataclasses.fields(after)  # type: ignore[arg-type]
        if getattr(before, f.name) != getattr(after, f.name)
    )


def _stored_provider(store: Store, name: str) -> Provider | None:
    try:
        return store.get_provider(name)
    except NotFoundError:
        return None


def _stored_mailbox(store: Store, name: str) -> Mailbox | None:
    try:
        return store.get_mailbox(name)
    except NotFoundError:
        return None


def _check_new(name: str, stored: object | None, kind: str, creating: bool) -> None:
    if creating:
        check_name("name", name)
        if stored is not None:
            raise ConfigError(
                "name", f"a {kind} named {name!r} exists already", "choose another name"
            )
    elif stored is None:
        raise NotFoundError(kind, name, "it was removed meanwhile")


def save_provider(
    store: Store, name: str, form: Mapping[str, str], *, creating: bool, now: datetime
) -> Saved:
    """Create (``creating``) or update provider ``name`` from the form."""
    stored = _stored_provider(store, name)
    _check_new(name, stored, "provider", creating)
    body = ProviderBody.model_validate(provider_raw(form, stored))
    provider = provider_from_body(name, body, stored)
    users = store.list_mailboxes(provider=name) if stored is not None else []
    change = store.put_provider(provider)
    if change is not Change.UPDATED or stored is None:
        return Saved(change)
    changed = changed_fields(stored, provider)
    notices: list[str] = []
    touched: list[str] = []
    for mailbox in users:
        notice = invalidate(store, mailbox, reasons((mailbox, stored), (mailbox, provider)), now)
        if notice is not None:
            notices.append(notice)
            touched.append(mailbox.name)
    return Saved(change, changed, tuple(notices), tuple(touched))


def save_mailbox(
    store: Store, name: str, form: Mapping[str, str], *, creating: bool, now: datetime
) -> Saved:
    """Create (``creating``) or update mailbox ``name`` from the form."""
    stored = _stored_mailbox(store, name)
    _check_new(name, stored, "mailbox", creating)
    body = MailboxBody.model_validate(mailbox_raw(form, stored))
    mailbox = mailbox_from_body(name, body, stored, lambda p: _stored_provider(store, p))
    old_provider = _stored_provider(store, stored.provider) if stored is not None else None
    change = store.put_mailbox(mailbox)
    if change is not Change.UPDATED or stored is None or old_provider is None:
        return Saved(change)
    changed = changed_fields(stored, mailbox)
    new_provider = store.get_provider(mailbox.provider)
    why = reasons((stored, old_provider), (mailbox, new_provider))
    notice = invalidate(store, mailbox, why, now)
    if notice is None:
        return Saved(change, changed)
    return Saved(change, changed, (notice,), (mailbox.name,))
