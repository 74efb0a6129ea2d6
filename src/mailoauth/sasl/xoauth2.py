"""SASL XOAUTH2, client side - Google, "XOAUTH2 protocol"
(https://developers.google.com/workspace/gmail/imap/xoauth2-protocol); also what
Microsoft 365 and Dovecot's ``oauth2`` passdb accept.

Initial client response, raw (base64 it for the wire)::

    "user=" {User} "\\x01auth=Bearer " {Access Token} "\\x01\\x01"

On a rejected token the server sends an error challenge, base64 of JSON such as
``{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`` (Dovecot:
``{"status":"401","schemes":"bearer","scope":"mail"}``); the client answers with an empty
response and the server sends its final failure. The user name goes in unescaped, so
one holding ``\\x01`` or any other control character is refused
(:class:`~mailoauth.errors.LocalProtocolError`).
"""

from __future__ import annotations

from typing import ClassVar, Final

from mailoauth.sasl._checks import check_name, check_token
from mailoauth.sasl._token import TokenClient
from mailoauth.secret import Secret

__all__ = ["MECHANISM", "XOAuth2Client", "initial_response"]

MECHANISM: Final = "XOAUTH2"


def initial_response(user: str, token: Secret) -> bytes:
    """``user=U\\x01auth=Bearer T\\x01\\x01``; raises LocalProtocolError for a user name
    with control characters or a token that is not a bearer token."""
    name = check_name(MECHANISM, "user name", user)
    bearer = check_token(MECHANISM, token)
    return b"user=" + name + b"\x01auth=Bearer " + bearer + b"\x01\x01"


class XOAuth2Client(TokenClient):
    """One XOAUTH2 login (see :mod:`mailoauth.sasl.base` for the state machine). The
    arguments are checked here, so a bad user name fails before anything is sent."""

    mechanism: ClassVar[str] = MECHANISM
    acknowledgement: ClassVar[bytes] = b""

    def __init__(self, user: str, token: Secret) -> None:
        initial_response(user, token)
        super().__init__(user)
        self._token = token

    def _initial_response(self) -> bytes:
        return initial_response(self._user, self._token)
