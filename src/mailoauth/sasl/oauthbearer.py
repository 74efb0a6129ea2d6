"""SASL OAUTHBEARER, client side - RFC 7628 §3.1 (message), §3.2 (exchange), with the
GS2 header of RFC 5801 §4.

Initial client response, raw (base64 it for the wire)::

    gs2-header = "n," ["a=" saslname] ","          ; saslname: "," -> "=2C", "=" -> "=3D"
    message    = gs2-header %x01 ["host=" H %x01] ["port=" P %x01]
                 "auth=Bearer " token %x01 %x01

RFC 7628 makes the authzid optional; it is sent by default because Dovecot 2.3 refuses
a message without it. On a rejected token the server sends an error challenge (§3.2.2),
JSON such as ``{"status":"invalid_token","scope":"...","openid-configuration":"..."}``
(Dovecot: ``{"status":"invalid_token"}``); the client must answer with a single
``\\x01`` (§3.2.3) and the server then sends its final failure.
"""

from __future__ import annotations

from typing import ClassVar, Final

from mailoauth.errors import LocalProtocolError
from mailoauth.sasl._checks import check_name, check_token
from mailoauth.sasl._token import TokenClient
from mailoauth.secret import Secret

__all__ = ["MECHANISM", "OAuthBearerClient", "escape_saslname", "gs2_header", "initial_response"]

MECHANISM: Final = "OAUTHBEARER"


def escape_saslname(name: bytes) -> bytes:
    """RFC 5801 §4 ``saslname``: ``=`` becomes ``=3D`` and ``,`` becomes ``=2C``."""
    return name.replace(b"=", b"=3D").replace(b",", b"=2C")


def gs2_header(authzid: str = "") -> bytes:
    """``n,a=<authzid>,`` (no channel binding), or ``n,,`` without an authzid."""
    if not authzid:
        return b"n,,"
    return b"n,a=" + escape_saslname(check_name(MECHANISM, "user name", authzid)) + b","


def _check_port(port: int) -> bytes:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise LocalProtocolError(
            f"{MECHANISM} port {port!r} is out of range; use the server's port, 1 to 65535"
        )
    return str(port).encode("ascii")


def initial_response(
    user: str,
    token: Secret,
    *,
    host: str = "",
    port: int | None = None,
    send_authzid: bool = True,
) -> bytes:
    """The §3.1 client response. ``host`` / ``port`` are the server's as the client
    connected to it (optional); ``send_authzid=False`` leaves ``a=`` out (``n,,``).
    Raises LocalProtocolError for control characters in ``user`` or ``host``, a port out
    of range or a token that is not a bearer token."""
    header = b"n,,"
    if send_authzid:
        header = b"n,a=" + escape_saslname(check_name(MECHANISM, "user name", user)) + b","
    pairs = b""
    if host:
        pairs += b"host=" + check_name(MECHANISM, "host", host) + b"\x01"
    if port is not None:
        pairs += b"port=" + _check_port(port) + b"\x01"
    bearer = check_token(MECHANISM, token)
    return header + b"\x01" + pairs + b"auth=Bearer " + bearer + b"\x01\x01"


class OAuthBearerClient(TokenClient):
    """One OAUTHBEARER login (see :mod:`mailoauth.sasl.base` for the state machine).
    The arguments are checked here, so bad input fails before anything is sent."""

    mechanism: ClassVar[str] = MECHANISM
    acknowledgement: ClassVar[bytes] = b"\x01"

    def __init__(
        self,
        user: str,
        token: Secret,
        *,
        host: str = "",
        port: int | None = None,
        send_authzid: bool = True,
    ) -> None:
        initial_response(user, token, host=host, port=port, send_authzid=send_authzid)
        super().__init__(user)
        self._token = token
        self._host = host
        self._port = port
        self._send_authzid = send_authzid

    def _initial_response(self) -> bytes:
        return initial_response(
            self._user,
            self._token,
            host=self._host,
            port=self._port,
            send_authzid=self._send_authzid,
        )
