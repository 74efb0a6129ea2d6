"""The relay's local credentials: one generated password per application, stored as a hash.

Password-only applications (a PBX, a printer, a BI server) log in to the relay with a
login name of their own (``APP``) and a password that ``mailoauth relay-user add`` makes
with :func:`secrets.token_urlsafe` (24 bytes: 192 bits) and prints once.

Why a salted SHA-256 and not a slow hash (bcrypt, scrypt, Argon2): slow hashes exist to
make guessing a *human-chosen* password from a stolen hash expensive. A random 192-bit
password cannot be guessed from its hash whatever the hash costs — 2^191 tries on average —
so one HMAC-SHA256 keyed with a per-row random salt is as safe, and checking it costs
microseconds, so logins are never the relay's bottleneck (a slow hash would cost ~100 ms
of CPU per login, and give an attacker a cheap way to load the service). The salt keeps
two logins' verifiers different even for equal passwords. The comparison is constant
time (:func:`hmac.compare_digest`), and an unknown login is checked against a dummy
verifier so it takes as long as a known one.

The verifier's text form is ``hmac-sha256$<salt>$<digest>`` (base64url), room for a
later scheme beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.secret import Secret
from mailoauth.store import RelayUser, Store
from mailoauth.validate import check_address

__all__ = [
    "RelayProtocol",
    "add_user",
    "allowed_senders",
    "authenticate",
    "check_password",
    "make_verifier",
    "new_password",
    "reset_password",
]

Clock = Callable[[], datetime]

_SCHEME: Final = "hmac-sha256"
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_PASSWORD_BYTES: Final = 24  # 192 bits of entropy


class RelayProtocol(StrEnum):
    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_password() -> Secret:
    """A fresh random password (32 URL-safe characters, 192 bits)."""
    return Secret(secrets.token_urlsafe(_PASSWORD_BYTES))


def make_verifier(password: Secret, salt: bytes | None = None) -> str:
    """The stored form of ``password``: salted HMAC-SHA256, never the password itself."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hmac.new(salt, password.reveal().encode("utf-8"), hashlib.sha256).digest()
    return f"{_SCHEME}${_b64(salt)}${_b64(digest)}"


_DUMMY: Final = make_verifier(Secret("no such relay user"))


def check_password(verifier: str, password: Secret) -> bool:
    """Whether ``password`` matches ``verifier``; constant time in the password."""
    scheme, _, rest = verifier.partition("$")
    salt_text, _, digest_text = rest.partition("$")
    if scheme != _SCHEME or not digest_text:
        return False
    salt, expected = _unb64(salt_text), _unb64(digest_text)
    got = hmac.new(salt, password.reveal().encode("utf-8"), hashlib.sha256).digest()
    return hmac.compare_digest(got, expected)


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
    )
    store.add_relay_user(user)
    return user, password


def reset_password(store: Store, name: str, *, now: Clock = _utcnow) -> tuple[RelayUser, Secret]:
    """A new password for ``name``; the old one stops working at once."""
    password = new_password()
    user = store.set_relay_verifier(name, make_verifier(password), now=now())
    return user, password
