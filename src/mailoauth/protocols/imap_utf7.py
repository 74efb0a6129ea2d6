"""Mailbox names in modified UTF-7 (RFC 3501 §5.1.3, kept by RFC 9051 §5.1 for clients
that do not enable UTF8=ACCEPT).

Printable US-ASCII (0x20-0x7E) stands for itself, except ``&``, written ``&-``. Any other
run of characters is UTF-16BE in base64 with ``,`` for ``/`` and no padding, between
``&`` and ``-``: ``Entwürfe`` is ``Entw&APw-rfe``, ``日本語`` is ``&ZeVnLIqe-``.

A name given to us with a control character (CR, LF, NUL, ...) is refused with
:class:`~mailoauth.errors.LocalProtocolError`: no real folder has one, and CR LF would end
the command line. A name from the server that cannot be decoded raises
:class:`~mailoauth.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

from mailoauth.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["decode_mailbox", "encode_mailbox"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SHIFTED: Final = re.compile(r"&([A-Za-z0-9+,]*)-")


def _b64(data: bytes) -> str:
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return text.rstrip("=").replace("/", ",")


def encode_mailbox(name: str) -> str:
    """``name`` as IMAP puts it on the wire (ASCII only)."""
    found = _CONTROL.search(name)
    if found:
        raise LocalProtocolError(
            f"the folder name {name[:100]!r} contains the control character "
            f"{found.group()!r}, which no IMAP folder name may hold; fix the folder name"
        )
    if name.isascii() and "&" not in name:
        return name
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if " " <= char <= "~":
            if run:
                out.append(f"&{_b64(_utf16(''.join(run), name))}-")
                run.clear()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        out.append(f"&{_b64(_utf16(''.join(run), name))}-")
    return "".join(out)


def _utf16(text: str, name: str) -> bytes:
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError:
        raise LocalProtocolError(
            f"the folder name {name[:100]!r} is not valid Unicode (a lone surrogate); "
            "fix the folder name"
        ) from None


def decode_mailbox(wire: str) -> str:
    """The folder name a server sent, as text."""
    if "&" not in wire:
        return wire
    out: list[str] = []
    pos = 0
    while (amp := wire.find("&", pos)) >= 0:
        out.append(wire[pos:amp])
        match = _SHIFTED.match(wire, amp)
        if match is None:
            raise _undecodable(wire, "an '&' without a closing '-'")
        shifted = match.group(1)
        out.append(_unshift(shifted, wire) if shifted else "&")
        pos = match.end()
    out.append(wire[pos:])
    return "".join(out)


def _unshift(shifted: str, wire: str) -> str:
    if len(shifted) % 4 == 1:
        raise _undecodable(wire, "a base64 run of impossible length")
    padded = shifted.replace(",", "/") + "=" * (-len(shifted) % 4)
    try:
        raw = binascii.a2b_base64(padded, strict_mode=True)
        return raw.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _undecodable(wire, str(exc)) from None


def _undecodable(wire: str, why: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"the server sent the folder name {wire[:100]!r}, which is not modified UTF-7 "
        f"({why}, RFC 3501 §5.1.3); rename the folder or report it to the server's operator"
    )
