"""SASL PLAIN - RFC 4616 §2: ``[authzid] NUL authcid NUL passwd``, UTF-8, one message.

Client side: :func:`initial_response` and :class:`PlainClient`. Server side (the relay,
where password-only applications log in): :func:`parse_plain`, strict - exactly two
NULs, UTF-8 throughout, a non-empty user name and password, no control characters in
the identities, at most :data:`~mailoauth.sasl._checks.MAX_FIELD` octets per field
(RFC 4616 asks for at least 255). What a client sent wrongly raises
:class:`~mailoauth.errors.RemoteProtocolError`, whose message never quotes the fields.
"""

from __future__ import annotations

from typing import ClassVar, Final

from mailoauth.errors import RemoteProtocolError
from mailoauth.sasl._checks import (
    MAX_FIELD,
    PASSWORD_HINT,
    check_name,
    check_password,
    read_name,
    read_password,
)
from mailoauth.sasl.base import ClientMachine, ClientState
from mailoauth.sasl.events import Credentials, SaslFailure, Send, Step
from mailoauth.secret import Secret

__all__ = ["MECHANISM", "PlainClient", "initial_response", "parse_plain"]

MECHANISM: Final = "PLAIN"


def initial_response(authcid: str, password: Secret, authzid: str = "") -> bytes:
    """``authzid NUL authcid NUL password``; raises LocalProtocolError for what RFC 4616
    (or :func:`parse_plain`) would refuse."""
    zid = check_name(MECHANISM, "authorization identity", authzid) if authzid else b""
    cid = check_name(MECHANISM, "user name", authcid)
    return zid + b"\x00" + cid + b"\x00" + check_password(MECHANISM, password)


def parse_plain(data: bytes) -> Credentials:
    """The credentials in a client's PLAIN message (raw bytes, after base64)."""
    if len(data) > 3 * MAX_FIELD + 2:
        raise RemoteProtocolError(
            f"the client's PLAIN message is {len(data)} bytes long, more than the "
            f"{3 * MAX_FIELD + 2} accepted; ask the user to check the account settings"
        )
    separators = data.count(b"\x00")
    if separators != 2:
        raise RemoteProtocolError(
            f"the client's PLAIN message has {separators} NUL separators where RFC 4616 "
            "requires exactly 2 (authzid NUL user NUL password); the client does not "
            "speak PLAIN as specified"
        )
    zid, cid, password = data.split(b"\x00")
    return Credentials(
        authzid=read_name(MECHANISM, "authorization identity", zid, optional=True),
        authcid=read_name(MECHANISM, "user name", cid),
        password=read_password(MECHANISM, password),
    )


class PlainClient(ClientMachine):
    """One PLAIN login (see :mod:`mailoauth.sasl.base` for the state machine)."""

    mechanism: ClassVar[str] = MECHANISM

    def __init__(self, authcid: str, password: Secret, authzid: str = "") -> None:
        initial_response(authcid, password, authzid)
        super().__init__(authcid)
        self._password = password
        self._authzid = authzid

    def _initial_response(self) -> bytes:
        return initial_response(self._user, self._password, self._authzid)

    def _on_challenge(self, challenge: bytes) -> Step:
        if self._state is ClientState.START and not challenge:
            self._state = ClientState.WAITING
            return Send(self._initial_response())
        where = (
            "before the credentials, where only an empty one may come"
            if self._state is ClientState.START
            else "after the credentials, but PLAIN has a single message"
        )
        raise RemoteProtocolError(
            f"the server sent a {len(challenge)}-byte PLAIN challenge {where}; "
            "it does not speak PLAIN as specified"
        )

    def _hint(self, failure: SaslFailure | None) -> str:
        return PASSWORD_HINT
