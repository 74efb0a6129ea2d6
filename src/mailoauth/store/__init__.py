"""Persistence: providers, mailboxes and grants in SQLite or PostgreSQL, secrets encrypted.

Public surface: the :class:`Store` protocol the rest of mailoauth talks to, the
:class:`SqlStore` implementation, :func:`open_store` to get one from
:class:`~mailoauth.config.Settings`, and :func:`rotate_key`. Modules: ``base`` (protocol),
``crypto`` (AES-GCM, key ids), ``keys`` (key source, key file, rotation protocol),
``engine`` (URL, connections, locks, migrations), ``schema``, ``rows`` (model ⇄ row),
``sealed`` (key id bookkeeping), ``sql`` (SqlStore), ``lifecycle`` (open, rotate),
``mailstate`` and ``outbound`` (secret-free rows: mail state, the outbound queue) with
their SqlStore methods in ``sql_state``; ``relay_users`` (the relay's local logins);
``console`` (the console's admins, sessions and audit log); ``api_keys`` (the REST API's
keys); ``verifiers`` (salted HMAC verifiers of generated credentials).
"""

from mailoauth.store.api_keys import ApiKey
from mailoauth.store.base import Change, ChangeReport, Store
from mailoauth.store.console import Admin, AuditEntry, OutboundSummary, WebSession
from mailoauth.store.lifecycle import open_store, rotate_key
from mailoauth.store.outbound import NewMessage, QueuedMessage, QueueStatus
from mailoauth.store.pending import StoredPending
from mailoauth.store.relay_users import RelayUser
from mailoauth.store.sql import SqlStore

__all__ = [
    "Admin",
    "ApiKey",
    "AuditEntry",
    "Change",
    "ChangeReport",
    "NewMessage",
    "OutboundSummary",
    "QueueStatus",
    "QueuedMessage",
    "RelayUser",
    "SqlStore",
    "Store",
    "StoredPending",
    "WebSession",
    "open_store",
    "rotate_key",
]
