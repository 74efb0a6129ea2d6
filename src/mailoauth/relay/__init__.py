"""The relay for password-only applications (PBXs, printers, BI servers).

::

    mailoauth.relay
    ├── users    relay users: generated passwords, salted SHA-256 verifiers, allowed From
    ├── limits   wrong passwords counted per source address; lockout
    ├── smtp     the SMTP listener (aiosmtpd); smtp_handler: AUTH PLAIN/LOGIN, sender
    │            policy, the relay user's mode: smtp_queue (QUEUE: DATA → the durable
    │            outbound queue, acknowledged after the commit) or passthrough (PASSTHROUGH:
    │            the transaction relayed live; smtp_upstream: logged-in sessions and the
    │            replies, pool: idle sessions kept, dotdata: the DATA stream)
    ├── imap     the IMAP listener: LOGIN / AUTHENTICATE PLAIN locally, the mailbox's
    │            OAuth2 login upstream, capabilities rewritten, then a splice
    ├── pop3     the POP3 listener: USER/PASS / AUTH PLAIN, the same way
    ├── listener what IMAP and POP3 share: pre-auth loop, timeouts, login checks
    ├── upstream the mailbox's login at its mail server (refresh once on a refusal)
    ├── splice   bytes both ways after login, with back-pressure
    └── service  start_relays: every listener the settings turn on

An application logs in locally with its own login and generated password; the mail goes
upstream with the mailbox's OAuth2 token. docs/relay.md is the operator's view.
"""

from __future__ import annotations

from mailoauth.relay.imap import ImapRelay
from mailoauth.relay.limits import FailureLimiter
from mailoauth.relay.pop3 import Pop3Relay
from mailoauth.relay.smtp import DEFAULT_SIZE_LIMIT, RelayHandler, SmtpRelay
from mailoauth.relay.users import (
    RelayMode,
    RelayProtocol,
    add_user,
    allowed_senders,
    authenticate,
    check_mode,
    check_password,
    make_verifier,
    new_password,
    reset_password,
    set_mode,
)

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "FailureLimiter",
    "ImapRelay",
    "Pop3Relay",
    "RelayHandler",
    "RelayMode",
    "RelayProtocol",
    "SmtpRelay",
    "add_user",
    "allowed_senders",
    "authenticate",
    "check_mode",
    "check_password",
    "make_verifier",
    "new_password",
    "reset_password",
    "set_mode",
]
