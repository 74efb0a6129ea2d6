"""IMAP4, client side, sans-I/O (RFC 9051; RFC 3501 for IMAP4rev1 servers).

What a client needs, in four small modules, re-exported here::

    imap_commands   CommandWriter (tags; atoms, quoted strings, literals {n} / {n+}),
                    Command, Raw, sequence_set, uids_from, flag_list, sasl_response
    imap_parser     ResponseParser: bytes in any chunks → events; NeedData says whether
                    a line or exactly n literal bytes come next
    imap_grammar    one framed response → one event (RFC 9051 §9)
    imap_events     Continuation, Tagged, Status, Capability, Flags, Search, ListEntry,
                    Exists, Expunge, Fetch, Other, ResponseCode, NeedData
    imap_utf7       encode_mailbox / decode_mailbox: modified UTF-7 (RFC 3501 §5.1.3)

A session, as :mod:`mailoauth.mail.imap` drives it::

    S: * OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=XOAUTH2 ...] ready
    C: A1 STARTTLS                       (then TLS, then CAPABILITY again)
    C: A3 AUTHENTICATE XOAUTH2 dXNlcj1...  (SASL-IR, RFC 4959; else wait for "+ ")
    S: A3 OK [CAPABILITY ... MOVE UIDPLUS] Logged in
    C: A4 SELECT INBOX
    S: * OK [UIDVALIDITY 1712345678] UIDs valid
    S: A4 OK [READ-WRITE] Select completed
    C: A5 UID SEARCH UID 42:*
    S: * SEARCH 42 43
    C: A6 UID FETCH 42:43 (UID BODY.PEEK[])
    S: * 1 FETCH (UID 42 BODY[] {2345}
    S: <2345 bytes>)

Errors: :class:`~mailoauth.errors.LocalProtocolError` for what we must not send (a
control character in a folder name, NUL in a string), and
:class:`~mailoauth.errors.RemoteProtocolError` for what the server must not send.
"""

from __future__ import annotations

from mailoauth.protocols.imap_commands import (
    CANCEL,
    Arg,
    Command,
    CommandWriter,
    Raw,
    flag_list,
    sasl_response,
    sequence_set,
    uids_from,
)
from mailoauth.protocols.imap_events import (
    Capability,
    Continuation,
    Event,
    Exists,
    Expunge,
    Fetch,
    Flags,
    ListEntry,
    NeedData,
    Other,
    Response,
    ResponseCode,
    Search,
    Status,
    Tagged,
)
from mailoauth.protocols.imap_parser import MAX_LINE, MAX_LITERAL, ResponseParser
from mailoauth.protocols.imap_utf7 import decode_mailbox, encode_mailbox

__all__ = [
    "CANCEL",
    "MAX_LINE",
    "MAX_LITERAL",
    "Arg",
    "Capability",
    "Command",
    "CommandWriter",
    "Continuation",
    "Event",
    "Exists",
    "Expunge",
    "Fetch",
    "Flags",
    "ListEntry",
    "NeedData",
    "Other",
    "Raw",
    "Response",
    "ResponseCode",
    "ResponseParser",
    "Search",
    "Status",
    "Tagged",
    "decode_mailbox",
    "encode_mailbox",
    "flag_list",
    "sasl_response",
    "sequence_set",
    "uids_from",
]
