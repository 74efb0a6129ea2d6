"""Alembic migrations of the store's schema (applied by ``open_store``; no alembic.ini).

``env.py`` runs on the connection and inside the transaction :mod:`mailoauth.store.engine`
hands it, so the upgrade is serialised (SQLite write lock, PostgreSQL advisory lock) and
atomic. Revisions live in ``versions/`` and never import the application's schema module.
"""

#: The newest revision in ``versions/``; a test checks it against alembic's own view.
HEAD_REVISION = "0008"
