"""``mailoauth.protocols.imap``: byte transcripts in, events out; commands out as bytes;
modified UTF-7; the fetch decisions (new UIDs, batches, after-fetch actions)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailoauth.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from mailoauth.protocols.imap import (
    CANCEL,
    Capability,
    CommandWriter,
    Continuation,
    Exists,
    Expunge,
    Fetch,
    Flags,
    ListEntry,
    NeedData,
    Other,
    Raw,
    Response,
    ResponseCode,
    ResponseParser,
    Search,
    Status,
    Tagged,
    decode_mailbox,
    encode_mailbox,
    flag_list,
    sasl_response,
    sequence_set,
    uids_from,
)
from mailoauth.protocols.imap_fetch import AfterFetch, Selected, new_uids, plan_batches

BODY = b'From: a@example.org\r\nSubject: {5}\r\n\r\n(not) "IMAP" * OK\r\n'

# A session as Dovecot sends it, with every kind of response the client reads.
TRANSCRIPT = (
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=XOAUTH2] Dovecot ready.\r\n"
    b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"
    b"A1 OK [CAPABILITY IMAP4rev1 MOVE UIDPLUS] Logged in\r\n"
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Flags permitted.\r\n"
    b"* 3 EXISTS\r\n"
    b"* 0 RECENT\r\n"
    b"* OK [UIDVALIDITY 1712345678] UIDs valid\r\n"
    b"* OK [UIDNEXT 44] Predicted next UID\r\n"
    b"A2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n"
    b"* SEARCH 41 42 43\r\n"
    b"A3 OK Search completed.\r\n"
    b"* 1 FETCH (UID 41 FLAGS (\\Seen $Forwarded) BODY[] {%d}\r\n" % len(BODY) + BODY + b")\r\n"
    b"* 2 FETCH (UID 42 RFC822.SIZE 0 BODY[] {0}\r\n)\r\n"
    b'* 3 FETCH (BODY[] {3+}\r\nabc UID 43 INTERNALDATE "17-Jul-1996 02:44:25 -0700")\r\n'
    b"A4 OK Fetch completed.\r\n"
    b'* LIST (\\HasNoChildren) "." INBOX\r\n'
    b'* LIST (\\HasNoChildren \\Sent) "." "Entw&APw-rfe \\"x\\""\r\n'
    b"* LIST (\\Noselect) NIL {4}\r\nA\r\nB\r\n"
    b"* 2 EXPUNGE\r\n"
    b"A5 NO [TRYCREATE] Mailbox doesn't exist: Archive\r\n"
    b"A6 NO [UNAVAILABLE] Temporary authentication failure.\r\n"
    b"A7 BAD Error in IMAP command: Unknown command.\r\n"
    b"* BYE Logging out\r\n"
)

EVENTS: list[Response] = [
    Status(
        "OK",
        ResponseCode("CAPABILITY", "IMAP4rev1 SASL-IR STARTTLS AUTH=XOAUTH2"),
        "Dovecot ready.",
    ),
    Continuation(b"eyJzdGF0dXMiOiI0MDEifQ=="),
    Tagged("A1", "OK", ResponseCode("CAPABILITY", "IMAP4rev1 MOVE UIDPLUS"), "Logged in"),
    Flags(("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")),
    Status("OK", ResponseCode("PERMANENTFLAGS", "(\\Deleted \\Seen \\*)"), "Flags permitted."),
    Exists(3),
    Other("RECENT", 0, b""),
    Status("OK", ResponseCode("UIDVALIDITY", "1712345678"), "UIDs valid"),
    Status("OK", ResponseCode("UIDNEXT", "44"), "Predicted next UID"),
    Tagged("A2", "OK", ResponseCode("READ-WRITE"), "Select completed (0.001 + 0.000 secs)."),
    Search((41, 42, 43)),
    Tagged("A3", "OK", None, "Search completed."),
    Fetch(1, uid=41, flags=("\\Seen", "$Forwarded"), body=BODY),
    Fetch(2, uid=42, size=0, body=b""),
    Fetch(3, uid=43, body=b"abc"),
    Tagged("A4", "OK", None, "Fetch completed."),
    ListEntry(("\\HasNoChildren",), ".", "INBOX"),
    ListEntry(("\\HasNoChildren", "\\Sent"), ".", 'Entw&APw-rfe "x"'),
    ListEntry(("\\Noselect",), "", "A\r\nB"),
    Expunge(2),
    Tagged("A5", "NO", ResponseCode("TRYCREATE"), "Mailbox doesn't exist: Archive"),
    Tagged("A6", "NO", ResponseCode("UNAVAILABLE"), "Temporary authentication failure."),
    Tagged("A7", "BAD", None, "Error in IMAP command: Unknown command."),
    Status("BYE", None, "Logging out"),
]


def parse(*chunks: bytes) -> list[Response]:
    parser = ResponseParser()
    events: list[Response] = []
    for chunk in chunks:
        parser.feed(chunk)
        events += parser.events()
    assert parser.idle
    return events


def one(data: bytes) -> Response:
    [event] = parse(data)
    return event


# -- the parser ---------------------------------------------------------------------------------
def test_a_whole_session_gives_one_event_per_response():
    assert parse(TRANSCRIPT) == EVENTS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(TRANSCRIPT)), max_size=40))
def test_the_same_events_whatever_the_chunks(cuts: list[int]):
    edges = [0, *sorted(cuts), len(TRANSCRIPT)]
    chunks = [TRANSCRIPT[a:b] for a, b in itertools.pairwise(edges)]
    assert parse(*chunks) == EVENTS


def test_every_single_byte_boundary():
    assert parse(*(TRANSCRIPT[i : i + 1] for i in range(len(TRANSCRIPT)))) == EVENTS


def test_need_data_asks_for_a_line_then_for_exactly_the_literal():
    parser = ResponseParser()
    assert parser.next_event() == NeedData(0)
    parser.feed(b"* 1 FETCH (UID 7 BODY[] {11}\r\nHello")
    assert parser.next_event() == NeedData(6)
    parser.feed(b" world")
    assert parser.next_event() == NeedData(0)  # the rest of the response line
    parser.feed(b")\r\n")
    assert parser.next_event() == Fetch(1, uid=7, body=b"Hello world")
    assert parser.next_event() == NeedData(0)


def test_a_literal_read_in_one_piece_is_handed_over_without_a_copy():
    body = b"x" * 100_000
    parser = ResponseParser()
    parser.feed(b"* 1 FETCH (UID 7 BODY[] {100000}\r\n")
    assert parser.next_event() == NeedData(100_000)
    parser.feed(body)
    parser.feed(b")\r\n")
    event = parser.next_event()
    assert isinstance(event, Fetch)
    assert event.body is body
    assert "100000 bytes" in repr(event)  # the repr does not dump the message


@pytest.mark.parametrize(
    ("common", "reordered"),
    [
        (
            b"* 2 FETCH (UID 42 BODY[] {3}\r\nabc)\r\n",
            b"* 2 FETCH (BODY[] {3}\r\nabc UID 42)\r\n",
        ),
        (b"* 2 FETCH (UID 42 RFC822.SIZE 9)\r\n", b"* 2 FETCH (RFC822.SIZE 9 UID 42)\r\n"),
    ],
)
def test_the_answers_a_fetch_run_reads_most_parse_like_any_other(common: bytes, reordered: bytes):
    assert one(common) == one(reordered)


def test_a_bare_lf_ends_a_line():
    assert parse(b"* 4 EXISTS\n", b"a1 OK done\n") == [Exists(4), Tagged("a1", "OK", None, "done")]


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"+\r\n", Continuation(b"")),
        (b"+ \r\n", Continuation(b"")),
        (b"+ Ready for literal data\r\n", Continuation(b"Ready for literal data")),
        (b"A9 OK\r\n", Tagged("A9", "OK", None, "")),
        (b"a.1 ok [ALERT]\r\n", Tagged("a.1", "OK", ResponseCode("ALERT"), "")),
        (
            b"A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
            Tagged("A1", "NO", ResponseCode("AUTHENTICATIONFAILED"), "Authentication failed."),
        ),
        (b"* PREAUTH welcome\r\n", Status("PREAUTH", None, "welcome")),
        (b"* SEARCH\r\n", Search(())),
        (b"* SEARCH 2 5 (MODSEQ 917162500)\r\n", Search((2, 5))),
        (
            b"* CAPABILITY imap4rev1 auth=plain\r\n",
            Capability(frozenset({"IMAP4REV1", "AUTH=PLAIN"})),
        ),
        (b'* ID ("name" "Dovecot")\r\n', Other("ID", None, b'("name" "Dovecot")')),
        (b"* 5 FETCH (FLAGS (\\Seen))\r\n", Fetch(5, flags=("\\Seen",))),
        (b"* 5 FETCH (UID 9 BODY[] NIL)\r\n", Fetch(5, uid=9)),
        (b'* 5 FETCH (UID 9 BODY[] "short")\r\n', Fetch(5, uid=9, body=b"short")),
        (b"* 5 FETCH (UID 9 BINARY[] ~{2}\r\n\x00\x01)\r\n", Fetch(5, uid=9, body=b"\x00\x01")),
        (
            b"* 5 FETCH (UID 9 BODY[HEADER.FIELDS (SUBJECT)] {4}\r\nS: x MODSEQ (12))\r\n",
            Fetch(5, uid=9),
        ),
        (
            b'* 5 FETCH (UID 9 ENVELOPE ("d" "s" (("n" NIL "a" "b")) NIL NIL NIL NIL NIL NIL '
            b"{3}\r\n<m>))\r\n",
            Fetch(5, uid=9),
        ),
    ],
)
def test_responses(line: bytes, event: Response):
    assert one(line) == event


def test_response_codes_carry_numbers_and_words():
    status = one(b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
    assert isinstance(status, Status)
    assert status.code is not None
    assert status.code.number() == 3857529045
    capability = ResponseCode("CAPABILITY", "IMAP4rev1 MOVE")
    assert capability.words() == ("IMAP4rev1", "MOVE")
    with pytest.raises(RemoteProtocolError, match="UIDVALIDITY"):
        ResponseCode("UIDVALIDITY", "soon").number()


def test_a_tagged_reply_describes_itself_for_messages():
    reply = one(b"A5 NO [TRYCREATE] Mailbox doesn't exist: Archive\r\n")
    assert isinstance(reply, Tagged)
    assert not reply.ok
    assert reply.describe() == "NO [TRYCREATE] Mailbox doesn't exist: Archive"


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 400 Bad Request\r\n",
        b"\r\n",
        b"A1 MAYBE later\r\n",
        b"* 3 EXISTS now\r\n",
        b"* 1 FETCH UID 4\r\n",
        b"* 1 FETCH (UID four)\r\n",
        b"* 1 FETCH (UID 4\r\n",
        b"* 1 FETCH (UID 4 BODY[] {3}\r\nabc\r\n",
        b"* 1 FETCH (FLAGS (\\Seen (nested)))\r\n",
        b"* SEARCH 1 two\r\n",
        b'* LIST \\Noselect "/" x\r\n',
        b"* OK [UIDVALIDITY 3 no end\r\n",
        b"* 1 FETCH (X " + b"(" * 100 + b")" * 100 + b")\r\n",
    ],
)
def test_garbage_is_a_remote_protocol_error(garbage: bytes):
    parser = ResponseParser()
    parser.feed(garbage)
    with pytest.raises(RemoteProtocolError, match="RFC 9051"):
        list(parser.events())
    with pytest.raises(RemoteProtocolError):  # and the parser stays broken
        parser.next_event()


def test_a_line_without_end_is_refused_at_the_limit():
    parser = ResponseParser(max_line=100)
    parser.feed(b"* OK " + b"x" * 200)
    with pytest.raises(RemoteProtocolError, match="more than 100 bytes"):
        parser.next_event()


def test_a_huge_literal_is_refused_before_it_is_read():
    parser = ResponseParser(max_literal=1000)
    parser.feed(b"* 1 FETCH (UID 1 BODY[] {1001}\r\n")
    with pytest.raises(RemoteProtocolError, match="1001 bytes of literal"):
        parser.next_event()


# -- commands -----------------------------------------------------------------------------------
def test_tags_count_up():
    writer = CommandWriter()
    assert writer.command("CAPABILITY").parts == (b"A1 CAPABILITY\r\n",)
    assert writer.command("NOOP").tag == "A2"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("Archive/2024]", b"Archive/2024]"),
        ("My Folder", b'"My Folder"'),
        ("", b'""'),
        ("*", b'"*"'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
    ],
)
def test_strings_go_out_as_atoms_or_quoted(value: str, wire: bytes):
    assert CommandWriter().command("SELECT", value).parts == (b"A1 SELECT " + wire + b"\r\n",)


def test_eight_bit_strings_and_line_breaks_go_out_as_synchronizing_literals():
    command = CommandWriter().command("X", "a\r\nb", 7, "é")
    assert command.parts == (b"A1 X {4}\r\n", b"a\r\nb 7 {2}\r\n", b"\xc3\xa9\r\n")


def test_literal_plus_and_literal_minus_need_no_continuation():
    writer = CommandWriter()
    writer.literal_plus = True
    assert writer.command("X", "é").parts == (b"A1 X {2+}\r\n\xc3\xa9\r\n",)
    writer.literal_plus, writer.literal_minus = False, True
    assert writer.command("X", "é").parts == (b"A2 X {2+}\r\n\xc3\xa9\r\n",)
    assert len(writer.command("X", "é" * 3000).parts) == 2  # LITERAL- ends at 4096 bytes


@pytest.mark.parametrize(
    "call",
    [
        lambda w: w.command("X", "nul\x00here"),
        lambda w: w.command("select", "INBOX"),
        lambda w: w.command("X\r\nY"),
        lambda w: w.command("X", Raw(b"1\r\nA2 DELETE INBOX")),
        lambda w: w.command("X", -1),
        lambda w: w.authenticate("X OAUTH2", None),
        lambda w: sequence_set([]),
        lambda w: sequence_set([0, 1]),
        lambda w: sequence_set([2**32]),
        lambda w: uids_from(0),
        lambda w: flag_list(["\\Seen)"]),
        lambda w: encode_mailbox("Inbox\r\nA2 DELETE INBOX"),
        lambda w: encode_mailbox("tab\there"),
    ],
)
def test_bad_local_input_is_a_local_protocol_error(call):
    with pytest.raises(LocalProtocolError):
        call(CommandWriter())


def test_sequence_sets_are_compact_and_sorted():
    assert sequence_set([10, 9, 1, 2, 3, 7, 3]) == Raw(b"1:3,7,9:10")
    assert sequence_set([5]) == Raw(b"5")
    assert uids_from(42) == Raw(b"42:*")
    assert flag_list(["\\Seen", "$Forwarded"]) == Raw(b"(\\Seen $Forwarded)")


def test_authenticate_with_and_without_an_initial_response():
    writer = CommandWriter()
    assert writer.authenticate("XOAUTH2", b"user=a").parts == (
        b"A1 AUTHENTICATE XOAUTH2 dXNlcj1h\r\n",
    )
    assert writer.authenticate("XOAUTH2", b"").parts == (b"A2 AUTHENTICATE XOAUTH2 =\r\n",)
    assert writer.authenticate("OAUTHBEARER", None).parts == (b"A3 AUTHENTICATE OAUTHBEARER\r\n",)
    assert sasl_response(b"\x01") == b"AQ==\r\n"
    assert sasl_response(b"") == b"\r\n"
    assert CANCEL == b"*\r\n"


# -- modified UTF-7 -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 §5.1.3
        ("Tom & Jerry", "Tom &- Jerry"),
        ("😀", "&2D3eAA-"),
    ],
)
def test_modified_utf7(name: str, wire: str):
    assert encode_mailbox(name) == wire
    assert decode_mailbox(wire) == name


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs"))))
def test_modified_utf7_round_trips_and_is_ascii(name: str):
    wire = encode_mailbox(name)
    assert wire.isascii()
    assert decode_mailbox(wire) == name


@pytest.mark.parametrize("wire", ["Entw&APw", "&A-", "&AP!-", "&2D0-"])
def test_undecodable_names_from_the_server_are_refused(wire: str):
    with pytest.raises(RemoteProtocolError, match="modified UTF-7"):
        decode_mailbox(wire)


# -- fetch decisions ----------------------------------------------------------------------------
def test_new_uids_drop_the_star_quirk_and_repeats():
    assert new_uids([7, 5, 9, 9], last=5) == [7, 9]
    assert new_uids([5], last=5) == []  # "6:*" matched the last message, UID 5


def test_batches_keep_to_count_and_bytes():
    uids = [1, 2, 3, 4, 5]
    sizes = {1: 10, 2: 10, 3: 100, 4: 10, 5: 10}
    assert plan_batches(uids, sizes, max_messages=2, max_bytes=1000) == [[1, 2], [3, 4], [5]]
    assert plan_batches(uids, sizes, max_messages=50, max_bytes=50) == [[1, 2], [3], [4, 5]]
    assert plan_batches(uids, {}, max_messages=3, max_bytes=1) == [[1, 2, 3], [4, 5]]
    assert plan_batches([], {}, max_messages=3, max_bytes=1) == []


def test_after_fetch_actions_parse():
    assert AfterFetch.parse("keep").read_only
    move = AfterFetch.parse("move:Entwürfe")
    assert (move.verb, move.target, move.wire_target) == ("move", "Entwürfe", "Entw&APw-rfe")
    assert not move.read_only
    assert move.describe() == "move it to 'Entwürfe'"
    with pytest.raises(ConfigError, match="after_fetch"):
        AfterFetch.parse("move:")
    with pytest.raises(LocalProtocolError):
        AfterFetch.parse("move:bad\nname")


def test_selected_reads_uidvalidity_uidnext_and_exists():
    selected = Selected.from_responses(EVENTS)
    assert selected == Selected(validity=1712345678, next_uid=44, exists=3)
    assert selected.may_have_new(42)
    assert not selected.may_have_new(43)
    assert not Selected(validity=1, next_uid=None, exists=0).may_have_new(0)
