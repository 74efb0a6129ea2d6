"""The relay's local credentials: one generated password per application, stored as a hash.

Password-only applications (a PBX, a printer, a BI server) log in to the relay with a
login name of their own (``APP``) and a password that ``mailoauth relay-user add`` makes
with :func:`secrets.token_urlsafe` (24 bytes: 192 bits) and prints once.

The store keeps a salted HMAC-SHA256 verifier of the password, compared in constant
time; an unknown login is checked against a dummy verifier so it takes as long as a known
one. Why a fast hash is right for generated credentials: :mod:`mailoauth.store.verifiers`
(shared with the REST API's keys).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.models import Mailbox
from mailoauth.providers import Transport
from mailoauth.secret import Secret
from mailoauth.store import RelayUser, Store
from mailoauth.store.relay_users import RelayMode
from mailoauth.store.verifiers import DUMMY_VERIFIER, check_verifier, make_verifier
from mailoauth.validate import check_address

__all__ = [
    "RelayMode",
    "RelayProtocol",
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

Clock = Callable[[], datetime]

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_PASSWORD_BYTES: Final = 24  # 192 bits of entropy


class RelayProtocol(StrEnum):
    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_password() -> Secret:
    """A fresh random password (32 URL-safe characters, 192 bits), starting with a letter
    or digit: command-line clients read a leading ``-`` as an option (swaks does)."""
    while True:
        password = secrets.token_urlsafe(_PASSWORD_BYTES)
        if password[0].isalnum():
            return Secret(password)


_DUMMY: Final = DUMMY_VERIFIER
#: Whether a password matches a stored verifier (constant time); see ``store.verifiers``.
check_password = check_verifier


def authenticate(
    store: Store, name: str, password: Secret, protocol: RelayProtocol
) -> RelayUser | None:
    """The relay user ``name`` if ``password`` is theirs and ``protocol`` is allowed to
    them, else None (the caller answers "invalid credentials" either way, so a client
    learns nothing about which logins exist). Synchronous: async callers use a thread."""
    try:
        user = store.get_relay_user(name)
    except NotFoundError:
        check_password(_DUMMY, password)  # the same work as for a known login
        return None
    if not check_password(user.verifier, password):
        return None
    return user if protocol.value in user.protocols else None


def allowed_senders(store: Store, user: RelayUser) -> tuple[str, ...]:
    """The From addresses ``user`` may use: its allow-list, else its mailbox's addresses."""
    if user.allow_from:
        return user.allow_from
    return store.get_mailbox(user.mailbox).addresses


def add_user(
    store: Store,
    name: str,
    mailbox: str,
    *,
    allow_from: Sequence[str] = (),
    protocols: Sequence[RelayProtocol] = (RelayProtocol.SMTP,),
    mode: RelayMode = RelayMode.QUEUE,
    now: Clock = _utcnow,
) -> tuple[RelayUser, Secret]:
    """Create relay user ``name`` for ``mailbox``; returns it and its password — the only
    time the password exists outside the application that is given it."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            "relay-user",
            f"{name!r} is not a usable login name",
            "use 1-64 letters, digits and . _ @ + -, starting with a letter or digit",
        )
    box = store.get_mailbox(mailbox)
    own = {a.lower() for a in box.addresses}
    for i, address in enumerate(allow_from):
        check_address(f"allow_from[{i}]", address)
        if address.lower() not in own:
            raise ConfigError(
                "--allow-from",
                f"{address} is not one of mailbox {mailbox!r}'s addresses "
                f"({', '.join(box.addresses) or 'none'}), so mail from it could not be sent",
                "add it to the mailbox's addresses first, or leave --allow-from out",
            )
    if not protocols:
        raise ConfigError("--protocols", "is empty", "name at least one of smtp, imap, pop3")
    check_mode(box, mode)
    password = new_password()
    at = now()
    user = RelayUser(
        name=name,
        mailbox=mailbox,
        verifier=make_verifier(password),
        allow_from=tuple(allow_from),
        protocols=tuple(dict.fromkeys(p.value for p in protocols)),
        created_at=at,
        password_set_at=at,
        mode=mode,
    )
    store.add_relay_user(user)
    return user, password


def reset_password(store: Store, name: str, *, now: Clock = _utcnow) -> tuple[RelayUser, Secret]:
    """A new password for ``name``; the old one stops working at once."""
    password = new_password()
    user = store.set_relay_verifier(name, make_verifier(password), now=now())
    return user, password


def check_mode(mailbox: Mailbox, mode: RelayMode) -> None:
    """ConfigError unless ``mailbox`` can serve a login in ``mode``.

    Passthrough relays the SMTP transaction itself (the upstream's replies to MAIL, each
    RCPT and DATA; the message bytes as the application sent them), so it needs an SMTP
    outgoing transport. Graph's ``sendMail`` and the Gmail API take a whole message over
    HTTPS: no per-recipient answers, the envelope folded into headers, and Graph's
    ``202`` is itself "accepted for later delivery" — the queue mode already does that,
    with retries."""
    if mode is not RelayMode.PASSTHROUGH:
        return
    outgoing = mailbox.outgoing
    if outgoing is None or outgoing.transport is not Transport.SMTP:
        how = "cannot send" if outgoing is None else f"sends over {outgoing.transport.value}"
        raise ConfigError(
            "--mode",
            f"passthrough relays SMTP live, and mailbox {mailbox.name!r} {how}",
            "use --mode queue (the queue delivers over every transport), or give the "
            "mailbox an SMTP outgoing transport",
        )


def set_mode(store: Store, name: str, mode: RelayMode) -> RelayUser:
    """Switch ``name`` to ``mode``; the application's next login uses it (connections
    already logged in keep theirs)."""
    user = store.get_relay_user(name)
    check_mode(store.get_mailbox(user.mailbox), mode)
    return store.set_relay_mode(name, mode)
