"""The relay for password-only applications (PBXs, printers, BI servers).

::

    mailoauth.relay
    ├── users    relay users: generated passwords, salted SHA-256 verifiers, allowed From
    ├── limits   wrong passwords counted per source address; lockout
    └── smtp     the SMTP listener in QUEUE mode: AUTH PLAIN/LOGIN, sender policy,
                 DATA → the durable outbound queue, acknowledged after the commit

An application logs in locally with its own login and generated password; the mail goes
upstream with the mailbox's OAuth2 token. docs/relay.md is the operator's view.
"""

from __future__ import annotations

from mailoauth.relay.limits import FailureLimiter
from mailoauth.relay.smtp import DEFAULT_SIZE_LIMIT, RelayHandler, SmtpRelay
from mailoauth.relay.users import (
    RelayProtocol,
    add_user,
    allowed_senders,
    authenticate,
    check_password,
    make_verifier,
    new_password,
    reset_password,
)

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "FailureLimiter",
    "RelayHandler",
    "RelayProtocol",
    "SmtpRelay",
    "add_user",
    "allowed_senders",
    "authenticate",
    "check_password",
    "make_verifier",
    "new_password",
    "reset_password",
]
