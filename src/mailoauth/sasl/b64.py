"""Base64 for SASL messages, as every mail protocol carries them (RFC 4648 §4).

SASL mechanisms here produce and take *raw* bytes; the protocol profile (SMTP ``AUTH``,
RFC 4954 §4; IMAP ``AUTHENTICATE``, RFC 9051 §6.2.2; POP3 ``AUTH``, RFC 5034 §4) wraps
them in base64 on the wire. These two helpers are that wrapping, kept strict: what a peer
sends is validated (alphabet, padding, size) before anything looks inside it.

The module is named ``b64`` rather than ``base64`` so it never shadows the standard
library inside this package.
"""

from __future__ import annotations

import binascii
from typing import Final

from mailoauth.errors import RemoteProtocolError

__all__ = ["MAX_ENCODED", "decode", "encode"]

MAX_ENCODED: Final = 64 * 1024
"""Longest base64 text :func:`decode` accepts: far above any token (a few KiB), far
below what could hurt memory."""


def encode(data: bytes) -> bytes:
    """``data`` as one line of base64 with padding and no newline (empty for ``b""``)."""
    return binascii.b2a_base64(data, newline=False)


def decode(data: bytes, *, peer: str = "server", limit: int = MAX_ENCODED) -> bytes:
    """The raw bytes a peer sent as base64.

    Surrounding ASCII whitespace (a trailing CR LF) is ignored; anything else outside the
    base64 alphabet, wrong or extra padding, non-zero trailing bits (RFC 4648 §3.5) or
    more than ``limit`` characters raises
    :class:`~mailoauth.errors.RemoteProtocolError`. ``peer`` names the sender in that
    message (``"server"`` for a client, ``"client"`` for the relay).
    """
    text = data.strip(b" \t\r\n")
    if len(text) > limit:
        raise RemoteProtocolError(
            f"the {peer} sent {len(text)} characters of SASL data, more than the {limit} "
            "accepted; it is not a SASL exchange this side understands, so give up on it"
        )
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        reason = str(exc)
    else:
        if encode(data) == text:
            return data
        reason = "padding or trailing bits that a canonical encoder never writes"
    raise RemoteProtocolError(
        f"the {peer} sent SASL data that is not valid base64 ({reason}); "
        "it does not follow the protocol, so give up on this login"
    )
