"""Verifiers of generated credentials: what the store keeps instead of the credential.

Relay passwords (:mod:`mailoauth.relay.users`) and REST API keys
(:mod:`mailoauth.web.api.keys`) are made by mailoauth with :mod:`secrets` — 192 random
bits, never chosen by a person — shown once, and stored only as a verifier.

Why a salted HMAC-SHA256 and not a slow hash (bcrypt, scrypt, Argon2): slow hashes exist
to make guessing a *human-chosen* password from a stolen hash expensive. A random 192-bit
credential cannot be guessed from its hash whatever the hash costs — 2^191 tries on
average — so one HMAC-SHA256 keyed with a per-row random salt is as safe, and checking it
costs microseconds: logins and API calls are never slowed down by it (a slow hash would
cost ~100 ms of CPU each, and give an attacker a cheap way to load the service). The salt
keeps two rows' verifiers different even for equal credentials. The comparison is
constant time (:func:`hmac.compare_digest`); callers check an unknown name against
:data:`DUMMY_VERIFIER` so it takes as long as a known one.

The text form is ``hmac-sha256$<salt>$<digest>`` (base64url, no padding), room for a
later scheme beside it. A verifier is not a secret that needs the store's key: without
the credential it lets nobody in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

from mailoauth.secret import Secret

__all__ = ["DUMMY_VERIFIER", "check_verifier", "make_verifier"]

_SCHEME: Final = "hmac-sha256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(salt: bytes, credential: Secret) -> bytes:
    return hmac.new(salt, credential.reveal().encode("utf-8"), hashlib.sha256).digest()


def make_verifier(credential: Secret, salt: bytes | None = None) -> str:
    """The stored form of ``credential``: salted HMAC-SHA256, never the credential."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return f"{_SCHEME}${_b64(salt)}${_b64(_digest(salt, credential))}"


#: Checked when the name is unknown, so that answer takes as long as a wrong credential.
DUMMY_VERIFIER: Final = make_verifier(Secret("no such credential"))


def check_verifier(verifier: str, credential: Secret) -> bool:
    """Whether ``credential`` matches ``verifier``; constant time in the credential. An
    unknown scheme or a damaged verifier never matches."""
    scheme, _, rest = verifier.partition("$")
    salt_text, _, digest_text = rest.partition("$")
    if scheme != _SCHEME or not digest_text:
        return False
    try:
        salt, expected = _unb64(salt_text), _unb64(digest_text)
    except ValueError:  # binascii.Error: not base64
        return False
    return hmac.compare_digest(_digest(salt, credential), expected)
