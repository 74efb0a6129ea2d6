"""SASL mechanisms for mail servers, sans-I/O: bytes in, steps out (the h11 way).

No sockets, no asyncio, no clock: a transport (``mail/`` for SMTP, IMAP and POP3, the
relay's listeners) moves the bytes, base64-ing them with :mod:`.b64`, and feeds what the
peer said back in. Every edge case is therefore a byte-level unit test.

::

    mailoauth.sasl
    ├── xoauth2      XOAuth2Client, initial_response     Google "XOAUTH2 protocol"
    ├── oauthbearer  OAuthBearerClient, initial_response RFC 7628 (+ RFC 5801 GS2 header)
    ├── plain        PlainClient, initial_response,      RFC 4616
    │                parse_plain (server side)
    ├── login        LoginClient, LoginServer            draft-murchison-sasl-login-00
    ├── base         ClientState, SaslClient, the shared client state machine (RFC 4422)
    ├── events       Send, Acknowledge (= Step), SaslFailure, Credentials
    └── b64          encode, decode                      RFC 4648, strict

A client's life: ``start()`` (or ``receive(b"")`` when the server asks first) gives the
initial response; each server challenge goes to ``receive()``, which returns the
:data:`Step` to send; the server's final reply goes to ``finish()``, which raises
:class:`~mailoauth.errors.SaslError` for a refusal. A token rejected by XOAUTH2 /
OAUTHBEARER arrives as an error challenge: ``receive`` parses it into a
:class:`SaslFailure` and returns :class:`Acknowledge` with the bytes that let the server
finish (``b""`` / ``b"\\x01"``).

Errors come from the one tree in :mod:`mailoauth.errors`: ``LocalProtocolError`` for
what we must not send (a ``\\x01`` in a user name), ``RemoteProtocolError`` for what the
peer must not send, ``SaslError`` for a refused login. Secrets travel as
:class:`~mailoauth.secret.Secret`; the bytes a client produces contain them, nothing
else here (``repr``, ``str``, exception messages) does.
"""

from __future__ import annotations

from mailoauth.sasl.b64 import decode, encode
from mailoauth.sasl.base import ClientState, SaslClient
from mailoauth.sasl.events import Acknowledge, Credentials, SaslFailure, Send, Step
from mailoauth.sasl.login import LoginClient, LoginServer, LoginServerState
from mailoauth.sasl.oauthbearer import OAuthBearerClient
from mailoauth.sasl.plain import PlainClient, parse_plain
from mailoauth.sasl.xoauth2 import XOAuth2Client

__all__ = [
    "Acknowledge",
    "ClientState",
    "Credentials",
    "LoginClient",
    "LoginServer",
    "LoginServerState",
    "OAuthBearerClient",
    "PlainClient",
    "SaslClient",
    "SaslFailure",
    "Send",
    "Step",
    "XOAuth2Client",
    "decode",
    "encode",
    "parse_plain",
]
