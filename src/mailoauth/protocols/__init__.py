"""Mail protocols, sans-I/O (the h11 way): bytes in, events out; events in, bytes out.

No sockets, no asyncio, no clock. The clients in :mod:`mailoauth.mail` (and the relay's
listeners) move the bytes; every edge case here is a byte-level unit test.

::

    mailoauth.protocols
    ├── imap   RFC 9051 / 3501 client side: commands (tags, quoting, literals) and the
    │          response parser (untagged, tagged, continuations, literals); split into
    │          imap_commands, imap_parser, imap_grammar, imap_events, imap_utf7 (mailbox
    │          names, RFC 3501 §5.1.3) and imap_fetch (new UIDs, batches, after-fetch)
    └── pop3   RFC 1939 / 2449 / 5034 client side: +OK/-ERR, multi-line with dot-stuffing,
               CAPA, UIDL, AUTH continuations
"""
