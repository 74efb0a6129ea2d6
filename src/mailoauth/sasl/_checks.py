"""Checks on what goes *into* a SASL message, shared by every mechanism here.

A login name or token that carries a framing byte would change the message's meaning:
XOAUTH2 and OAUTHBEARER (RFC 7628 §3.1) separate fields with ``\\x01``, PLAIN (RFC 4616
§2) with NUL. So names are refused with :class:`~mailoauth.errors.LocalProtocolError`
when they hold any control character (C0, DEL, C1), tokens when they hold anything but
printable ASCII without spaces, before a byte is produced. Messages never quote a
secret, and quote names only through :func:`printable`.

The ``read_*`` functions are the same rules applied to what a *client* sent a server
(the relay), raising :class:`~mailoauth.errors.RemoteProtocolError` and quoting nothing.
"""

from __future__ import annotations

import re
from typing import Final

from mailoauth.errors import LocalProtocolError, RemoteProtocolError
from mailoauth.secret import Secret

__all__ = [
    "MAX_FIELD",
    "PASSWORD_HINT",
    "check_name",
    "check_password",
    "check_token",
    "printable",
    "quoted",
    "read_name",
    "read_password",
]

MAX_FIELD: Final = 1024
"""Longest login name or password, in UTF-8 octets (RFC 4616 §2 asks servers to accept
at least 255)."""

PASSWORD_HINT: Final = (
    "check the user name and password; providers that require OAuth2 refuse passwords, "
    "use XOAUTH2 or OAUTHBEARER with them"
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BEARER = re.compile(r"[\x21-\x7e]+")


def printable(text: str, limit: int = 200) -> str:
    """``text`` made safe for a one-line message: control and other unprintable
    characters escaped, cut to ``limit`` characters with a marker."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit + 1])
    return out if len(out) <= limit else out[:limit] + "…"


def quoted(text: str, limit: int = 200) -> str:
    """``text`` through :func:`printable`, in single quotes, for a message."""
    return f"'{printable(text, limit)}'"


def _encode(mechanism: str, field: str, value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(
            f"{mechanism} {field} is not valid Unicode text (it holds a lone surrogate); "
            "pass the text as read from the configuration, not raw bytes"
        ) from None


def check_name(mechanism: str, field: str, value: str) -> bytes:
    """A login name or authorization identity as UTF-8; non-empty, no control characters,
    at most :data:`MAX_FIELD` octets."""
    if not value:
        raise LocalProtocolError(
            f"{mechanism} {field} is empty; set the login name the mail server expects, "
            "e.g. user@example.com"
        )
    bad = _CONTROL.search(value)
    if bad:
        raise LocalProtocolError(
            f"{mechanism} {field} {quoted(value)} contains the control character "
            f"{bad.group()!r}, which would corrupt the SASL message; "
            "use the plain login name, e.g. user@example.com"
        )
    data = _encode(mechanism, field, value)
    if len(data) > MAX_FIELD:
        raise LocalProtocolError(
            f"{mechanism} {field} is {len(data)} bytes long, more than the {MAX_FIELD} "
            "allowed; use the plain login name, e.g. user@example.com"
        )
    return data


def check_password(mechanism: str, password: Secret) -> bytes:
    """A password as UTF-8: non-empty, no NUL, at most :data:`MAX_FIELD` octets. Other
    characters are the user's business (RFC 4616 allows them)."""
    value = password.reveal()
    if not value:
        raise LocalProtocolError(f"{mechanism} password is empty; set the account's password")
    if "\x00" in value:
        raise LocalProtocolError(
            f"{mechanism} password contains a NUL character, which no mail server can "
            "receive; check where the password came from"
        )
    data = _encode(mechanism, "password", value)
    if len(data) > MAX_FIELD:
        raise LocalProtocolError(
            f"{mechanism} password is {len(data)} bytes long, more than the {MAX_FIELD} "
            "allowed; check where the password came from"
        )
    return data


def check_token(mechanism: str, token: Secret) -> bytes:
    """A bearer token as ASCII: non-empty, printable, no spaces (RFC 6750 §2.1 allows
    less; this is the part that keeps the SASL framing intact)."""
    value = token.reveal()
    if not value:
        raise LocalProtocolError(
            f"{mechanism} access token is empty; fetch a token before logging in"
        )
    if not _BEARER.fullmatch(value):
        raise LocalProtocolError(
            f"{mechanism} access token contains a character a bearer token cannot hold "
            "(only printable ASCII without spaces); check where the token came from"
        )
    return value.encode("ascii")


def _decode(mechanism: str, field: str, data: bytes) -> str:
    if len(data) > MAX_FIELD:
        raise RemoteProtocolError(
            f"the client's {mechanism} {field} is {len(data)} bytes long, more than the "
            f"{MAX_FIELD} accepted; ask the user to check the account settings"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(
            f"the client's {mechanism} {field} is not UTF-8 text; "
            "set the client to send UTF-8 (or use an ASCII value)"
        ) from None


def read_name(mechanism: str, field: str, data: bytes, *, optional: bool = False) -> str:
    """A login name a client sent: UTF-8, no control characters, not empty unless
    ``optional``, at most :data:`MAX_FIELD` octets."""
    name = _decode(mechanism, field, data)
    if not name and not optional:
        raise RemoteProtocolError(
            f"the client sent an empty {mechanism} {field}; "
            "set the user name in the client's account settings"
        )
    if _CONTROL.search(name):
        raise RemoteProtocolError(
            f"the client's {mechanism} {field} contains a control character; "
            "set a plain user name in the client's account settings"
        )
    return name


def read_password(mechanism: str, data: bytes) -> Secret:
    """A password a client sent: UTF-8, not empty, no NUL, at most :data:`MAX_FIELD`
    octets."""
    password = _decode(mechanism, "password", data)
    if not password:
        raise RemoteProtocolError(
            f"the client sent an empty {mechanism} password; "
            "set the password in the client's account settings"
        )
    if "\x00" in password:
        raise RemoteProtocolError(
            f"the client's {mechanism} password contains a NUL character; "
            "set the password again in the client's account settings"
        )
    return Secret(password)
