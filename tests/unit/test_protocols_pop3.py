"""POP3 client, sans-I/O: the RFC 1939 / 2449 / 5034 examples byte for byte, multi-line
responses with dot-stuffing cut at every byte boundary (hypothesis), pipelining, AUTH
continuations, the listing parsers, what counts as garbage, and a large RETR parsed
without a per-byte loop."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailoauth.errors import LocalProtocolError, RemoteProtocolError
from mailoauth.protocols import pop3
from mailoauth.protocols.pop3 import (
    CAPA,
    QUIT,
    STAT,
    STLS,
    Continuation,
    DropListing,
    Pop3Client,
    Response,
    ScanListing,
    UniqueId,
)

GREETING = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"


def client_after_greeting() -> Pop3Client:
    client = Pop3Client()
    client.receive_data(GREETING)
    assert client.next_event() == Response(
        True, "POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
    )
    return client


def exchange(command: pop3.Command, answer: bytes) -> list[pop3.Event]:
    """Send ``command`` after the greeting, feed ``answer``, collect every event."""
    client = client_after_greeting()
    client.send(command)
    client.receive_data(answer)
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    return events


def stuff(message: bytes) -> bytes:
    """A reference encoder (RFC 1939 §3): double every leading dot, end with CRLF.CRLF."""
    lines = message.split(b"\r\n")[:-1] if message else []
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


# -- commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "wire"),
    [
        (CAPA, b"CAPA\r\n"),
        (STLS, b"STLS\r\n"),
        (STAT, b"STAT\r\n"),
        (QUIT, b"QUIT\r\n"),
        (pop3.list_(), b"LIST\r\n"),
        (pop3.list_(2), b"LIST 2\r\n"),
        (pop3.uidl(), b"UIDL\r\n"),
        (pop3.uidl(2), b"UIDL 2\r\n"),
        (pop3.retr(1), b"RETR 1\r\n"),
        (pop3.dele(1), b"DELE 1\r\n"),
        (pop3.auth("PLAIN", b"test\x00test\x00test"), b"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n"),
        (pop3.auth("GSSAPI"), b"AUTH GSSAPI\r\n"),
        (pop3.auth("EXTERNAL", b""), b"AUTH EXTERNAL =\r\n"),  # RFC 5034 §4: empty is "="
    ],
)
def test_commands_byte_for_byte(command: pop3.Command, wire: bytes):
    assert command.to_bytes() == wire
    assert Pop3Client().send(command) == wire


@pytest.mark.parametrize("argument", ["a\r\nDELE 1", "a\nb", "a\rb", "a\x00b", "two words", ""])
def test_an_argument_that_would_break_the_line_is_refused(argument: str):
    with pytest.raises(LocalProtocolError, match="argument 1 of POP3 AUTH") as refused:
        pop3.Command("AUTH", (argument,))
    assert argument not in str(refused.value) or not argument


@pytest.mark.parametrize("number", [0, -1, True, "1"])
def test_message_numbers_start_at_one(number: object):
    with pytest.raises(LocalProtocolError, match="start at 1"):
        pop3.retr(number)  # type: ignore[arg-type]


def test_an_initial_response_that_does_not_fit_goes_after_the_prompt():
    longest = 255 - len(b"AUTH XOAUTH2 \r\n")  # 240 base64 characters = 180 bytes
    assert pop3.auth_fits("XOAUTH2", b"u" * 180)
    assert len(pop3.auth("XOAUTH2", b"u" * 180).to_bytes()) == 255
    assert longest == 240
    assert not pop3.auth_fits("XOAUTH2", b"u" * 181)
    with pytest.raises(LocalProtocolError, match="259 octets, more than the 255") as refused:
        pop3.auth("XOAUTH2", b"secret-token" * 15 + b"u")
    assert "secret-token" not in str(refused.value)
    assert "c2VjcmV0" not in str(refused.value)  # nor its base64


def test_repr_hides_the_arguments():
    command = pop3.auth("XOAUTH2", b"user=a\x01auth=Bearer secret\x01\x01")
    assert repr(command) == "Command(AUTH, <2 args>)"


# -- single-line responses -------------------------------------------------------------------


def test_the_greeting_is_the_first_response_and_may_arrive_a_byte_at_a_time():
    client = Pop3Client()
    for byte in GREETING[:-1]:
        client.receive_data(bytes([byte]))
        assert client.next_event() is None
    client.receive_data(b"\n")
    event = client.next_event()
    assert isinstance(event, Response)
    assert event.ok
    assert client.next_event() is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"+OK\r\n", Response(True)),
        (b"-ERR\r\n", Response(False)),
        (b"+OK 2 320\r\n", Response(True, "2 320")),
        (
            b"-ERR [IN-USE] Do you have another POP session running?\r\n",
            Response(False, "Do you have another POP session running?", "IN-USE"),
        ),
        (b"-ERR [sys/temp] try later\r\n", Response(False, "try later", "SYS/TEMP")),
        (
            b"-ERR [AUTH] Authentication failed.\r\n",
            Response(False, "Authentication failed.", "AUTH"),
        ),
        (b"-ERR [not a code\r\n", Response(False, "[not a code")),
        (b"-ERR [two words] x\r\n", Response(False, "[two words] x")),
        (b"+ok lower case\n", Response(True, "lower case")),  # bare LF, lower case: tolerated
    ],
)
def test_status_lines_and_response_codes(line: bytes, expected: Response):
    assert exchange(STAT, line) == [expected]


def test_temporary_codes():
    assert Response(False, code="SYS/TEMP").temporary
    assert Response(False, code="UNAVAILABLE").temporary  # Dovecot, IMAP style
    assert Response(False, code="IN-USE").temporary
    assert not Response(False, code="AUTH").temporary
    assert not Response(False, code="SYS/PERM").temporary


def test_describe_is_printable_and_short():
    response = Response(False, "bad\x1b[31m" + "x" * 400, "AUTH")
    text = response.describe()
    assert text.startswith("-ERR [AUTH] bad\\x1b[31m")
    assert len(text) == 301
    assert text.endswith("…")


# -- multi-line responses ----------------------------------------------------------------------


def test_rfc_1939_list_uidl_and_retr():
    client = client_after_greeting()
    for command in (pop3.list_(), pop3.uidl(), pop3.retr(1), pop3.list_(3), QUIT):
        client.send(command)  # pipelined (RFC 2449 §6.6): answered in turn
    client.receive_data(
        b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"
        b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"
        b"+OK 120 octets\r\nSubject: hi\r\n\r\n..hidden\r\n.\r\n"
        b"-ERR no such message, only 2 messages in maildrop\r\n"
        b"+OK dewey POP3 server signing off\r\n"
    )
    listing, uids, message, missing, bye = (client.next_event() for _ in range(5))
    assert client.next_event() is None
    assert isinstance(listing, Response)
    assert listing.body is not None
    assert pop3.parse_list(listing.body) == [ScanListing(1, 120), ScanListing(2, 200)]
    assert isinstance(uids, Response)
    assert uids.body is not None
    assert pop3.parse_uidl(uids.body) == [
        UniqueId(1, "whqtswO00WBw418f9t5JxYwZ"),
        UniqueId(2, "QhdPYR:00WBw1Ph7x7"),
    ]
    assert message == Response(True, "120 octets", body=b"Subject: hi\r\n\r\n.hidden\r\n")
    assert missing == Response(False, "no such message, only 2 messages in maildrop")
    assert bye == Response(True, "dewey POP3 server signing off")


def test_an_empty_body_and_an_err_to_a_multi_line_command():
    assert exchange(pop3.uidl(), b"+OK\r\n.\r\n") == [Response(True, body=b"")]
    assert exchange(pop3.retr(9), b"-ERR no such message\r\n") == [
        Response(False, "no such message")  # -ERR is always one line (RFC 1939 §3)
    ]


def test_a_body_that_is_only_dots():
    body = b".\r\n..\r\n...\r\n"
    assert exchange(pop3.retr(1), b"+OK\r\n" + stuff(body) + b".\r\n") == [
        Response(True, body=body)
    ]


lines = st.lists(
    st.binary(max_size=30)
    .map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    .flatmap(lambda b: st.sampled_from([b, b"." + b, b".." + b, b"."])),
    max_size=12,
)


@given(
    messages=st.lists(lines, min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_any_message_survives_stuffing_and_any_split(messages: list[list[bytes]], cuts: list[int]):
    originals = [b"".join(line + b"\r\n" for line in message) for message in messages]
    wire = b"".join(b"+OK\r\n" + stuff(original) + b".\r\n" for original in originals)
    client = client_after_greeting()
    for number in range(1, len(originals) + 1):
        client.send(pop3.retr(number))
    events = []
    points = sorted({cut % (len(wire) + 1) for cut in cuts} | {0, len(wire)})
    for start, end in itertools.pairwise(points):
        client.receive_data(wire[start:end])
        while (event := client.next_event()) is not None:
            events.append(event)
    assert [event.body for event in events if isinstance(event, Response)] == originals
    assert client.buffered == 0


def test_a_20_mb_retr_is_parsed_without_a_per_byte_loop():
    line = b"." + b"x" * 76 + b"\r\n"  # every line stuffed: the worst case
    body = line * (20 * 1024 * 1024 // len(line))
    wire = b"+OK\r\n" + stuff(body) + b".\r\n"
    client = client_after_greeting()
    client.send(pop3.retr(1))
    started = time.perf_counter()
    for offset in range(0, len(wire), 64 * 1024):
        client.receive_data(wire[offset : offset + 64 * 1024])
        event = client.next_event()
    elapsed = time.perf_counter() - started
    assert event == Response(True, body=body)
    assert elapsed < 1.0  # C-speed passes take ~50 ms; a Python loop per byte, seconds


def test_a_body_over_the_limit_is_refused():
    client = Pop3Client(max_body=1000)
    client.receive_data(GREETING)
    client.next_event()
    client.send(pop3.retr(1))
    client.receive_data(b"+OK\r\n" + b"x" * 2000)
    with pytest.raises(RemoteProtocolError, match="over 1000 bytes"):
        client.next_event()


# -- AUTH ----------------------------------------------------------------------------------------


def test_rfc_5034_continuations():
    client = client_after_greeting()
    client.send(pop3.auth("GSSAPI"))
    client.receive_data(b"+ \r\n")
    assert client.next_event() == Continuation(b"")
    assert client.auth_response(b"\x60\x82") == b"YII=\r\n"
    client.receive_data(b"+ YGgGCSqG\r\n+\r\n")
    assert client.next_event() == Continuation(b"YGgGCSqG")
    assert client.next_event() == Continuation(b"")  # "+" with no space: tolerated
    assert client.auth_response(b"") == b"\r\n"
    client.receive_data(b"+OK Maildrop locked and ready\r\n")
    assert client.next_event() == Response(True, "Maildrop locked and ready")
    with pytest.raises(LocalProtocolError, match="only answer the server's"):
        client.auth_response(b"late")


def test_dovecots_refusal_of_a_token():
    """What Dovecot 2.3 sends for a rejected XOAUTH2 token (tests/peers/dovecot.py)."""
    client = client_after_greeting()
    client.send(pop3.auth("XOAUTH2", b"user=a\x01auth=Bearer t\x01\x01"))
    client.receive_data(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")
    assert client.next_event() == Continuation(b"eyJzdGF0dXMiOiI0MDEifQ==")
    client.receive_data(b"-ERR [AUTH] Authentication failed.\r\n")
    assert client.next_event() == Response(False, "Authentication failed.", "AUTH")


def test_cancelling_auth():
    client = client_after_greeting()
    client.send(pop3.auth("XOAUTH2"))
    client.receive_data(b"+ \r\n")
    client.next_event()
    assert client.auth_response(None) == b"*\r\n"
    client.receive_data(b"-ERR authentication exchange cancelled\r\n")
    assert client.next_event() == Response(False, "authentication exchange cancelled")


def test_a_continuation_outside_auth_is_garbage():
    with pytest.raises(RemoteProtocolError, match=r"neither \+OK nor -ERR"):
        exchange(STAT, b"+ abc\r\n")


# -- garbage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 400 Bad Request\r\n",
        b"* OK IMAP4rev1 ready\r\n",
        b"+OKAY\r\n",
        b"-ERROR\r\n",
        b"\r\n",
    ],
)
def test_what_is_not_pop3_is_refused(answer: bytes):
    with pytest.raises(RemoteProtocolError, match="does not follow RFC 1939"):
        exchange(STAT, answer)


def test_a_line_nobody_asked_for_is_refused():
    with pytest.raises(RemoteProtocolError, match="no command asked for"):
        exchange(STAT, b"+OK 0 0\r\n+OK surprise\r\n")


def test_an_endless_status_line_is_refused_with_a_short_excerpt():
    client = Pop3Client()
    client.receive_data(b"+OK " + b"A" * pop3.MAX_LINE)
    with pytest.raises(RemoteProtocolError, match="longer than") as refused:
        client.next_event()
    assert len(str(refused.value)) < 400


# -- listings -------------------------------------------------------------------------------------


def test_capa_rfc_2449_example_and_dovecot():
    rfc = pop3.parse_capa(
        b"TOP\r\nUSER\r\nSASL CRAM-MD5 KERBEROS_V4\r\nRESP-CODES\r\nLOGIN-DELAY 900\r\n"
        b"PIPELINING\r\nEXPIRE 60\r\nUIDL\r\nIMPLEMENTATION Shlemazle-Plotz-v302\r\n"
    )
    assert rfc.sasl == ("CRAM-MD5", "KERBEROS_V4")
    assert rfc.tags["LOGIN-DELAY"] == ("900",)
    assert "STLS" not in rfc.tags
    dovecot = pop3.parse_capa(b"CAPA\r\nTOP\r\nUIDL\r\nstls\r\nSASL xoauth2 OAUTHBEARER\r\n")
    assert "STLS" in dovecot.tags
    assert dovecot.sasl == ("XOAUTH2", "OAUTHBEARER")
    assert pop3.parse_capa(b"").sasl == ()


def test_the_single_forms_and_stat():
    assert pop3.parse_uidl_line("2 QhdPYR:00WBw1Ph7x7") == UniqueId(2, "QhdPYR:00WBw1Ph7x7")
    assert pop3.parse_list_line("2 200") == ScanListing(2, 200)
    assert pop3.parse_stat("2 320") == DropListing(2, 320)
    assert pop3.parse_stat("0 0 and then some text") == DropListing(0, 0)  # RFC 1939 §5


def test_listings_come_back_in_message_number_order():
    assert pop3.parse_uidl(b"2 b\r\n1 a\r\n") == [UniqueId(1, "a"), UniqueId(2, "b")]


@pytest.mark.parametrize(
    "body",
    [
        b"1\r\n",  # no unique-id
        b"1 a b\r\n",  # a unique-id cannot hold a space
        b"0 a\r\n",  # message numbers start at 1
        b"x a\r\n",
        b"1 a\x7f\r\n",
        b"1 " + b"a" * 513 + b"\r\n",
        b"1 a\r\n1 b\r\n",  # a number twice
        b"1 a\r\n2 a\r\n",  # a unique-id twice: fetching would skip a message
    ],
)
def test_a_bad_uidl_listing_is_refused(body: bytes):
    with pytest.raises(RemoteProtocolError):
        pop3.parse_uidl(body)


@pytest.mark.parametrize("text", ["", "2", "two 320", "2 -320", "123"])
def test_a_bad_drop_listing_is_refused(text: str):
    with pytest.raises(RemoteProtocolError, match=r"drop listing|count"):
        pop3.parse_stat(text)


def test_a_bad_scan_listing_is_refused():
    with pytest.raises(RemoteProtocolError):
        pop3.parse_list(b"1 120\r\n1 200\r\n")
    with pytest.raises(RemoteProtocolError):
        pop3.parse_list_line("0 120")
