"""The configuration model: frozen, typed values that are valid by construction.

``Provider`` is an app registration at an identity provider, ``Mailbox`` one mail account
used through a provider, ``Grant`` the token set a mailbox holds and its status. Building
one validates it: every bad value raises :class:`~mailoauth.errors.ConfigError` with the
field's name and the fix. Checks that need two objects (a mailbox and its provider) live in
:func:`check_mailbox_with_provider`.

Secrets are :class:`~mailoauth.secret.Secret` fields; :mod:`mailoauth.records` splits a
model into its public part and its secrets so the store can encrypt the latter.
"""

from mailoauth.models.checks import check_mailbox_with_provider, mailbox_scopes
from mailoauth.models.grant import Grant, GrantStatus
from mailoauth.models.mailbox import IncomingSettings, Mailbox, OutgoingSettings, SaslMechanism
from mailoauth.models.provider import Provider
from mailoauth.models.transcript import TranscriptLine

__all__ = [
    "Grant",
    "GrantStatus",
    "IncomingSettings",
    "Mailbox",
    "OutgoingSettings",
    "Provider",
    "SaslMechanism",
    "TranscriptLine",
    "check_mailbox_with_provider",
    "mailbox_scopes",
]
