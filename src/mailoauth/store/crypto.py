"""Authenticated encryption of stored secrets. Pure: bytes in, bytes out, no file I/O.

Why AES-256-GCM (``cryptography``'s ``AESGCM``) and not Fernet: GCM is an AEAD, so besides
secrecy and integrity it authenticates *associated data* that is not encrypted. We pass the
row a blob belongs to (``b"providers:google-main"``) as that data: a blob copied into another
row — someone swapping two mailboxes' refresh tokens in the database — fails to open
instead of silently authenticating as the other mailbox. Fernet has no associated data.

Blob layout (version 1)::

    0x01 | key id (8 bytes) | nonce (12 random bytes) | ciphertext || tag (16 bytes)

The key id is ``HMAC-SHA256(key, "mailoauth key id")[:8]``: a fingerprint that identifies a
key without revealing anything about it (HMAC is a PRF). Carrying it in every blob lets us
tell "this is the wrong key: the data needs key 1f2e…, you configured 9a8b…" apart from
"this blob was damaged", and tells a half-finished key rotation apart from tampering. The
version byte leaves room for another algorithm without guessing.

Nonces are random 96-bit values. NIST SP 800-38D bounds random nonces to 2^32 encryptions
per key; a store writing a token per mailbox per hour stays far below that for decades, and
``mailoauth rotate-key`` resets the count.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from typing import Final, final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mailoauth.errors import SecretKeyError

__all__ = ["BLOB_VERSION", "Cipher", "SecretKey", "blob_key_id"]

BLOB_VERSION: Final = 0x01
KEY_BYTES: Final = 32
KEY_ID_BYTES: Final = 8
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
_HEADER: Final = 1 + KEY_ID_BYTES + NONCE_BYTES
_ENCODED: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_GENERATE_FIX: Final = "generate one with `mailoauth generate-key`"


@final
class SecretKey:
    """A 256-bit key. Its text form is base64url without padding (43 characters)."""

    __slots__ = ("_id", "_raw")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != KEY_BYTES:
            raise ValueError(f"a SecretKey is {KEY_BYTES} bytes")
        self._raw = raw
        self._id = hmac.new(raw, b"mailoauth key id", hashlib.sha256).digest()[:KEY_ID_BYTES]

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def parse(cls, text: str, source: str, *, fix: str = _GENERATE_FIX) -> SecretKey:
        """The key written in ``text``; ``source`` names where it came from for the error.

        Surrounding whitespace and ``=`` padding are tolerated. The error never repeats the
        text: a wrong value may still be a secret (a password pasted in the wrong place).
        """
        candidate = text.strip().rstrip("=")
        if _ENCODED.fullmatch(candidate):
            try:
                return cls(base64.urlsafe_b64decode(candidate + "="))
            except (binascii.Error, ValueError):
                pass
        raise SecretKeyError(
            f"{source} is not a mailoauth key (43 characters of base64url); {fix}"
        ) from None

    def encode(self) -> str:
        """The text form, for MAILOAUTH_SECRET_KEY or the key file. Reveals the key."""
        return base64.urlsafe_b64encode(self._raw).decode().rstrip("=")

    @property
    def key_id(self) -> str:
        """A 16-hex-digit fingerprint: safe to print, log and store."""
        return self._id.hex()

    @property
    def key_id_bytes(self) -> bytes:
        return self._id

    def __repr__(self) -> str:
        return f"SecretKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((SecretKey, self._id))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretKey values are not pickled")

    def _aead(self) -> AESGCM:
        return AESGCM(self._raw)


def blob_key_id(blob: bytes) -> str | None:
    """The id of the key that sealed ``blob``, or None when it is not a version-1 blob."""
    if len(blob) < _HEADER + TAG_BYTES or blob[0] != BLOB_VERSION:
        return None
    return blob[1 : 1 + KEY_ID_BYTES].hex()


@final
class Cipher:
    """Seals and opens blobs with one key, bound to associated data (the owning row)."""

    __slots__ = ("_aead", "_key")

    def __init__(self, key: SecretKey) -> None:
        self._key = key
        self._aead = key._aead()

    @property
    def key(self) -> SecretKey:
        return self._key

    @property
    def key_id(self) -> str:
        return self._key.key_id

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        header = bytes([BLOB_VERSION]) + self._key.key_id_bytes + nonce
        return header + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        where = aad.decode("utf-8", "replace")
        blob_id = blob_key_id(blob)
        if blob_id is None:
            raise SecretKeyError(_damaged(where))
        if blob_id != self.key_id:
            raise SecretKeyError(
                f"the stored secret for {where} was encrypted with key {blob_id}, but the "
                f"current key is {self.key_id}; restore the key file that holds key "
                f"{blob_id} or set MAILOAUTH_SECRET_KEY to that key"
            )
        nonce = blob[1 + KEY_ID_BYTES : _HEADER]
        try:
            return self._aead.decrypt(nonce, blob[_HEADER:], aad)
        except InvalidTag:
            raise SecretKeyError(_damaged(where)) from None

    def __repr__(self) -> str:
        return f"Cipher(key_id={self.key_id!r})"


def _damaged(where: str) -> str:
    return (
        f"the stored secret for {where} is damaged or was tampered with; "
        "set it again (e.g. re-run `mailoauth apply`), or restore the database from a backup"
    )
