"""The delivery key: one stable name per fetched message, whatever the handler.

Re-delivery happens: the no-loss rule of :mod:`mailoauth.mail.fetched` delivers a message
once more when mailoauth stops between a handler's success and the ledger's record. Both
handlers name a message by the same key so that a re-delivery can be recognised: the
Maildir writer puts its first 32 hex digits into the file name, the webhook sends it
whole as ``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
from typing import Final

from mailoauth.mail.fetched import FetchedMessage

__all__ = ["delivery_key"]

_DOMAIN: Final = b"mailoauth delivery key v1\0"


def delivery_key(message: FetchedMessage) -> str:
    """SHA-256 (hex, 64 digits) of the message's mailbox, folder and uid.

    Each part is length-prefixed, so no two different triples share a key (``"a.b", "c"``
    and ``"a", "b.c"`` differ). The bytes of the message are not part of it: the same
    uid fetched twice is the same message, even if a server re-encoded it.
    """
    digest = hashlib.sha256(_DOMAIN)
    for part in (message.mailbox, message.folder, message.uid):
        raw = part.encode("utf-8", "surrogatepass")
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()
