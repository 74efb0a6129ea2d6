"""PASSTHROUGH mode's rules as byte transcripts, without sockets: the client is answered
at once where the upstream has no news for it, the upstream's own replies reach the client
in order, a message goes up only after the upstream's ``354`` and the sender policy, a
session lost before the client heard from it is replaced once, else the client hears
``451 4.4.1``, and a bare line feed cannot smuggle a second end of data upstream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mailoauth.relay.passthrough_machine import (
    HIGH_WATER,
    MAX_LINE,
    PassthroughMachine,
    Policy,
    unavailable,
)
from mailoauth.relay.smtp_handler import sender_headers

ALLOWED = "scan@corp.example"
MAILBOX = "scanner@corp.example"
LIMIT = 4 * HIGH_WATER
PIPELINING = frozenset({"pipelining", "size", "8bitmime"})
MAIL = b"MAIL FROM:<scan@corp.example>\r\n"
RCPT = b"RCPT TO:<friend@else.example>\r\n"
MESSAGE = b"From: scan@corp.example\r\nSubject: hi\r\n\r\nhello\r\n..a stuffed line\r\n.\r\n"
ACCEPTED = b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
QUEUED = b"250 2.0.0 Ok: queued as 42\r\n"
LOCAL_354 = b"354 End data with <CR><LF>.<CR><LF>\r\n"


def _sender(address: str) -> str | None:
    return None if address == ALLOWED else f"553 5.7.1 {address} is not a sender of {MAILBOX}"


def _headers(section: bytes) -> str | None:
    refused = [address for address in sender_headers(section) if address != ALLOWED]
    return f"553 5.7.1 From {refused[0]} is not allowed" if refused else None


@dataclass(frozen=True)
class Out:
    """What one event made the machine do."""

    client: bytes = b""
    upstream: bytes = b""
    need: bool = False
    dropped: bool = False


class Pair:
    """A machine between a client and an upstream, both played by the test. Every event
    returns what it made the machine do and clears it, as passthrough_link's flush does;
    ``heard``, ``went_up`` and ``outcomes`` keep the whole story."""

    def __init__(self, extensions: frozenset[str] = PIPELINING, *, connected: bool = True) -> None:
        policy = Policy(
            mailbox=MAILBOX,
            user="scanner",
            limit=LIMIT,
            sender=_sender,
            headers=_headers,
            ehlo=b"250-relay\r\n250 AUTH PLAIN\r\n",
            helo=b"250 relay\r\n",
        )
        self.machine = PassthroughMachine(policy, connected=connected, extensions=extensions)
        self.heard = bytearray()
        self.went_up = bytearray()
        self.outcomes: list[str] = []

    def client(self, data: bytes) -> Out:
        return self._after(self.machine.client_data, data)

    def upstream(self, data: bytes) -> Out:
        return self._after(self.machine.upstream_data, data)

    def lost(self, reason: str = "connection reset", *, replay: bool = True) -> Out:
        self.machine.upstream_lost(reason, replay=replay)
        return self._after()

    def opened(self, extensions: frozenset[str] = PIPELINING) -> Out:
        return self._after(self.machine.upstream_opened, extensions)

    def failed(self, reply: str) -> Out:
        return self._after(self.machine.upstream_failed, reply)

    def gone(self) -> Out:
        return self._after(self.machine.client_gone)

    def _after(self, event: Callable[..., None] | None = None, *args: object) -> Out:
        if event is not None:
            event(*args)
        machine = self.machine
        out = Out(
            b"".join(machine.to_client),
            b"".join(machine.to_upstream),
            machine.need_upstream,
            machine.drop_upstream,
        )
        machine.to_client.clear()
        machine.to_upstream.clear()
        machine.need_upstream = machine.drop_upstream = False
        self.outcomes += machine.outcomes
        machine.outcomes.clear()
        machine.notes.clear()
        self.heard += out.client
        self.went_up += out.upstream
        return out


def recipient_accepted(pair: Pair) -> None:
    """MAIL and RCPT of a pipelining upstream, both accepted."""
    pair.client(MAIL)
    pair.client(RCPT)
    assert pair.upstream(ACCEPTED).client == b"250 2.1.5 OK\r\n"


def in_data(pair: Pair, *, go: bool = True) -> None:
    """The client is sending its message (after the upstream's 354 when ``go``)."""
    recipient_accepted(pair)
    assert pair.client(b"DATA\r\n") == Out(LOCAL_354, b"DATA\r\n")
    if go:
        assert pair.upstream(b"354 Go ahead\r\n") == Out()


def lost_reply(reason: str) -> bytes:
    return unavailable(MAILBOX, reason).encode() + b"\r\n"


def test_a_transaction_through_a_pipelining_upstream_costs_the_client_no_extra_round_trip():
    pair = Pair()
    assert pair.client(b"MAIL FROM:<scan@corp.example> SIZE=300\r\n") == Out(b"250 2.1.0 OK\r\n")
    sent = b"MAIL FROM:<scan@corp.example> SIZE=300\r\n" + RCPT
    assert pair.client(RCPT) == Out(upstream=sent)
    assert pair.machine.waiting_for == "reply"
    assert pair.upstream(b"250 2.1.0 OK\r\n250 2.1.5 Recipient ok\r\n") == Out(
        b"250 2.1.5 Recipient ok\r\n"
    )
    assert pair.client(b"DATA\r\n") == Out(LOCAL_354, b"DATA\r\n")
    assert pair.client(MESSAGE) == Out()  # held until the upstream is ready for it
    assert pair.upstream(b"354 Go ahead\r\n") == Out(upstream=MESSAGE)
    assert pair.machine.waiting_for == "end"
    assert pair.upstream(QUEUED) == Out(QUEUED)
    assert pair.outcomes == ["relayed"]
    assert pair.machine.reusable
    assert pair.machine.waiting_for is None


def test_an_upstream_without_pipelining_gets_one_command_at_a_time():
    pair = Pair(frozenset())
    assert pair.client(b"MAIL FROM:<scan@corp.example> SIZE=300\r\n") == Out(b"250 2.1.0 OK\r\n")
    assert pair.client(RCPT) == Out(upstream=MAIL)  # SIZE is not offered: left out
    assert pair.upstream(b"250 2.1.0 OK\r\n") == Out(upstream=RCPT)
    assert pair.upstream(b"250 2.1.5 OK\r\n") == Out(b"250 2.1.5 OK\r\n")


def test_an_upstream_refusing_the_sender_is_heard_at_rcpt_and_data_finds_no_recipient():
    pair = Pair()
    pair.client(MAIL)
    pair.client(RCPT)
    refusal = b"552 5.2.3 Daily sending quota exceeded\r\n"
    assert pair.upstream(refusal + b"503 5.5.1 Need MAIL first\r\n") == Out(refusal)
    assert pair.client(b"DATA\r\n") == Out(b"554 5.5.1 Error: no valid recipients\r\n")
    assert pair.outcomes == ["rejected"]


@pytest.mark.parametrize(
    ("command", "reply", "outcomes"),
    [
        (f"MAIL FROM:<{ALLOWED}> SIZE={LIMIT + 1}", b"552 5.3.4 Message size exceeds", []),
        (f"MAIL FROM:<{ALLOWED}> SMTPUTF8", b"555 5.5.4 MAIL FROM parameters", []),
        ("MAIL FROM:<boss@corp.example>", b"553 5.7.1 boss@corp.example is not", ["rejected"]),
    ],
    ids=["too-large", "unknown-parameter", "sender-not-allowed"],
)
def test_a_sender_the_relay_cannot_take_is_refused_without_asking_the_upstream(
    command: str, reply: bytes, outcomes: list[str]
):
    pair = Pair()
    out = pair.client(command.encode() + b"\r\n")
    assert out.client.startswith(reply)
    assert (out.upstream, out.need) == (b"", False)
    assert pair.outcomes == outcomes
    assert pair.client(MAIL) == Out(b"250 2.1.0 OK\r\n")  # the client may try again


def test_a_from_header_not_allowed_is_refused_and_nothing_of_the_message_goes_up():
    pair = Pair()
    in_data(pair, go=False)
    assert pair.client(b"From: boss@corp.example\r\n\r\nhello") == Out(dropped=True)
    refusal = b"553 5.7.1 From boss@corp.example is not allowed\r\n"
    assert pair.client(b"\r\n.\r\n") == Out(refusal)
    assert pair.went_up == MAIL + RCPT + b"DATA\r\n"
    assert pair.outcomes == ["rejected"]
    assert pair.client(MAIL) == Out(need=True)  # the next message gets a new session
    assert pair.opened() == Out(b"250 2.1.0 OK\r\n")


def test_a_session_lost_before_the_client_heard_from_it_is_replaced_without_a_word():
    pair = Pair()
    pair.client(MAIL)
    pair.client(RCPT)
    assert pair.lost() == Out(need=True)
    assert pair.opened() == Out(upstream=MAIL + RCPT)
    assert pair.upstream(b"250 2.1.0 OK\r\n250 2.1.5 New session\r\n") == Out(
        b"250 2.1.5 New session\r\n"
    )
    assert pair.outcomes == []


@pytest.mark.parametrize("replaced", [True, False], ids=["lost-twice", "timed-out"])
def test_a_session_lost_again_or_timed_out_is_451_to_the_client(replaced: bool):
    pair = Pair()
    pair.client(MAIL)
    pair.client(RCPT)
    if replaced:
        pair.lost()
        pair.opened()
    reason = "connection reset" if replaced else "no answer within 30 s"
    out = pair.lost(reason, replay=replaced)  # replay=False: the link's reply timer
    assert out == Out(lost_reply(reason))
    assert out.client.startswith(b"451 4.4.1 Upstream for scanner@corp.example unavailable")
    assert pair.outcomes == ["failed"]


def test_a_session_lost_while_the_client_sends_its_message_is_451_at_its_end():
    pair = Pair()
    in_data(pair)
    pair.client(b"From: scan@corp.example\r\n")
    assert pair.lost() == Out()
    assert pair.client(b"\r\nhello\r\n.\r\n") == Out(lost_reply("connection reset"))
    assert pair.outcomes == ["failed"]


def test_a_session_lost_while_the_end_of_data_reply_is_due_is_451_at_once():
    pair = Pair()
    in_data(pair)
    pair.client(MESSAGE)
    assert pair.machine.waiting_for == "end"
    assert pair.lost() == Out(lost_reply("connection reset"))
    assert pair.outcomes == ["failed"]


def test_a_command_pipelined_after_the_final_dot_is_answered_after_the_message():
    pair = Pair()
    in_data(pair)
    assert pair.client(MESSAGE + b"QUIT\r\n") == Out(upstream=MESSAGE)
    assert not pair.machine.closed
    assert pair.upstream(QUEUED) == Out(QUEUED + b"221 2.0.0 Bye\r\n")
    assert pair.machine.closed
    assert pair.machine.reusable


@pytest.mark.parametrize("piece", [MAX_LINE + 100, 1000], ids=["whole", "in-pieces"])
def test_a_command_line_too_long_is_refused_and_the_next_one_works(piece: int):
    pair = Pair()
    line = b"NOOP " + b"x" * MAX_LINE + b"\r\n"
    heard = b"".join(pair.client(line[i : i + piece]).client for i in range(0, len(line), piece))
    assert heard == b"500 Command line too long\r\n"
    assert pair.client(b"NOOP\r\n") == Out(b"250 OK\r\n")


def test_a_client_sending_nonsense_is_disconnected_at_the_fifth_unknown_command():
    pair = Pair()
    assert pair.client(b"\r\n") == Out(b"500 Error: bad syntax\r\n")
    for _ in range(4):
        assert pair.client(b"xyzzy\r\n") == Out(b'500 Error: command "XYZZY" not recognized\r\n')
    assert not pair.machine.closed
    assert pair.client(b"xyzzy\r\n").client.startswith(b"502 5.5.1 Too many unrecognized")
    assert pair.machine.closed
    assert pair.client(b"NOOP\r\n") == Out()


def test_quit_inside_a_transaction_resets_it_upstream_before_the_session_is_reused():
    pair = Pair()
    recipient_accepted(pair)
    assert pair.client(b"QUIT\r\n") == Out(b"221 2.0.0 Bye\r\n", b"RSET\r\n")
    assert pair.machine.closed
    assert not pair.machine.reusable
    assert pair.upstream(b"250 2.0.0 Flushed\r\n") == Out()
    assert pair.machine.reusable


@pytest.mark.parametrize(
    "part", [b"From: scan@corp.example\r\nSubj", MESSAGE], ids=["half-sent", "before-354"]
)
def test_a_client_gone_mid_message_drops_the_session_so_no_partial_message_is_sent(part: bytes):
    pair = Pair()
    in_data(pair, go=False)
    pair.client(part)
    assert pair.gone() == Out(dropped=True)
    assert pair.went_up == MAIL + RCPT + b"DATA\r\n"
    assert pair.machine.closed
    assert not pair.machine.reusable


def test_bare_line_feeds_cannot_smuggle_a_second_message_upstream():
    pair = Pair()
    in_data(pair)
    smuggled = b"hello\n.\nMAIL FROM:<x@y>\nRCPT TO:<z@w>\nDATA\nsecond\r\n.\r\n"
    pair.client(b"From: scan@corp.example\r\n\r\n" + smuggled)
    message = pair.went_up.partition(b"DATA\r\n")[2]
    assert message.count(b"\r\n.\r\n") == 1
    assert message.endswith(b"\r\n.\r\n")
    assert message.count(b"\n") == message.count(b"\r\n")  # no bare LF
    assert b"\r\n..\r\nMAIL FROM:<x@y>\r\n" in message  # the "." line stuffed, not an end
    assert pair.upstream(QUEUED) == Out(QUEUED)


def test_the_client_is_paused_while_a_large_message_waits_for_the_upstreams_354():
    pair = Pair()
    in_data(pair, go=False)
    pair.client(b"From: scan@corp.example\r\n\r\n")
    assert pair.machine.wants_client_data
    pair.client(b"x" * HIGH_WATER + b"\r\n")
    assert not pair.machine.wants_client_data
    assert len(pair.upstream(b"354 Go ahead\r\n").upstream) > HIGH_WATER
    assert pair.machine.wants_client_data


def test_a_large_message_refused_at_data_is_read_to_its_end_and_refused():
    pair = Pair()
    in_data(pair, go=False)
    pair.upstream(b"554 5.7.0 Not now\r\n")
    pair.client(b"From: scan@corp.example\r\n\r\n" + b"x" * HIGH_WATER + b"\r\n")
    assert pair.machine.wants_client_data
    assert pair.client(b".\r\n") == Out(b"554 5.7.0 Not now\r\n", b"RSET\r\n")


def test_a_sender_refusal_from_a_lost_session_is_forgotten_when_the_transaction_is_replayed():
    pair = Pair()
    pair.client(MAIL)
    pair.client(RCPT)
    pair.upstream(b"451 4.3.0 Try again\r\n")
    pair.lost()
    pair.opened()
    assert pair.upstream(ACCEPTED) == Out(b"250 2.1.5 OK\r\n")
    assert pair.outcomes == []


TRANSACTION = [
    (True, b"EHLO scanner\r\n"),
    (True, b"MAIL FROM:<scan@corp.example> BODY=8BITMIME\r\n"),
    (True, RCPT),
    (False, b"250 2.1.0 OK\r\n250-2.1.5 Recipient\r\n250 2.1.5 OK\r\n"),
    (True, b"DATA\r\n"),
    (False, b"354 Go ahead\r\n"),
    (True, MESSAGE + b"QUIT\r\n"),
    (False, QUEUED),
]


def play(script: list[tuple[bool, bytes]], *, size: int) -> tuple[bytes, bytes]:
    """What the client heard and what went up, every chunk fed ``size`` bytes at a time."""
    pair = Pair()
    for from_client, data in script:
        feed = pair.client if from_client else pair.upstream
        for start in range(0, len(data), size):
            feed(data[start : start + size])
    return bytes(pair.heard), bytes(pair.went_up)


def test_both_sides_split_at_every_byte_get_the_same_transcript_as_whole_chunks():
    heard, went_up = play(TRANSACTION, size=1 << 20)
    assert heard == (
        b"250-relay\r\n250 AUTH PLAIN\r\n250 2.1.0 OK\r\n250-2.1.5 Recipient\r\n"
        b"250 2.1.5 OK\r\n" + LOCAL_354 + QUEUED + b"221 2.0.0 Bye\r\n"
    )
    assert went_up == b"MAIL FROM:<scan@corp.example> BODY=8BITMIME\r\n" + RCPT + (
        b"DATA\r\n" + MESSAGE
    )
    assert play(TRANSACTION, size=1) == (heard, went_up)
