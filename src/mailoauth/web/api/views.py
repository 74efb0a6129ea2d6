"""Models → the JSON the API answers with: secrets shown as ``{"set": bool}`` only.

Built on :func:`mailoauth.records.public_view` (which already shows a secret as set / not
set), so an answer can hold no secret by construction; the response models in
:mod:`.schemas` then check each answer's shape on its way out.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from mailoauth.models import Grant, Mailbox, Provider, mailbox_scopes
from mailoauth.records import public_view
from mailoauth.scheduler.snapshot import grant_state
from mailoauth.store import QueuedMessage
from mailoauth.web.api.schemas import secret_fields

__all__ = ["mailbox_view", "provider_view", "queued_view"]


def _with_secret_states(obj: object) -> dict[str, Any]:
    data = public_view(obj)
    for name in secret_fields(type(obj)):
        data[name] = {"set": getattr(obj, name) is not None}
    return data


def provider_view(provider: Provider, base_url: str) -> dict[str, Any]:
    data = _with_secret_states(provider)
    data["effective_redirect_uri"] = provider.effective_redirect_uri(base_url)
    data["endpoints"] = public_view(provider.endpoints())
    return data


def mailbox_view(mailbox: Mailbox, provider: Provider, grant: Grant | None) -> dict[str, Any]:
    data = _with_secret_states(mailbox)
    data["effective_scopes"] = list(mailbox_scopes(mailbox, provider))
    data["status"] = grant_state(grant).value
    return data


def queued_view(entry: QueuedMessage) -> dict[str, Any]:
    """A queue entry without its lease owner (a host and process id, of no use to a client)."""
    data = dataclasses.asdict(entry)
    data.pop("lease_owner", None)
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}
