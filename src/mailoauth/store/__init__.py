"""Persistence: providers, mailboxes and grants in SQLite or PostgreSQL, secrets encrypted.

Public surface: the :class:`Store` protocol the rest of mailoauth talks to, the
:class:`SqlStore` implementation, :func:`open_store` to get one from
:class:`~mailoauth.config.Settings`, and :func:`rotate_key`. Modules: ``base`` (protocol),
``crypto`` (AES-GCM, key ids), ``keys`` (key source, key file, rotation protocol),
``engine`` (URL, connections, locks, migrations), ``schema``, ``rows`` (model ⇄ row),
``sealed`` (key id bookkeeping), ``sql`` (SqlStore), ``lifecycle`` (open, rotate),
``mailstate`` and ``outbound`` (secret-free rows: mail state, the outbound queue) with
their SqlStore methods in ``sql_state``; ``relay_users`` (the relay's local logins).
"""

from mailoauth.store.base import Change, ChangeReport, Store
from mailoauth.store.lifecycle import open_store, rotate_key
from mailoauth.store.outbound import NewMessage, QueuedMessage, QueueStatus
from mailoauth.store.relay_users import RelayUser
from mailoauth.store.sql import SqlStore

__all__ = [
    "Change",
    "ChangeReport",
    "NewMessage",
    "QueueStatus",
    "QueuedMessage",
    "RelayUser",
    "SqlStore",
    "Store",
    "open_store",
    "rotate_key",
]
