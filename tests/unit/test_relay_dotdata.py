"""A passthrough message's DATA, as the relay reads and forwards it: the client's bytes go
upstream unchanged when every line ends with CRLF; otherwise they arrive exactly as the
store-and-forward path (aiosmtpd's unstuffing, then aiosmtplib's line endings and
stuffing) would deliver them, so no ``LF . LF`` trick can end the data early upstream
(SMTP smuggling). The header section is known before anything goes up."""

from __future__ import annotations

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailoauth.relay.dotdata import END, DataEnd, DataPieces, restuff, unstuff


def received(stream: bytes) -> bytes:
    """What an SMTP server takes from a DATA stream (RFC 5321 section 4.5.2): CRLF
    lines, the first "." of a line starting with one removed (aiosmtpd's reading)."""
    assert stream.endswith(b".\r\n")
    lines = stream[: -len(b".\r\n")].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def library_path(stream: bytes) -> bytes:
    """The oracle: what aiosmtpd's reading and then aiosmtplib (line endings made CRLF,
    lines starting with a dot stuffed) send upstream."""
    content = received(stream)
    if not content:
        return b".\r\n"
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(content)) + b".\r\n"


def pieces_of(stream: bytes, limit: int) -> list[tuple[bytes, bool]]:
    """What :class:`DataEnd` makes of ``stream`` arriving ``limit`` bytes at a time,
    followed by a command (which must stay in the buffer)."""
    ends, buffer, got = DataEnd(), bytearray(), []
    wire = stream + b"QUIT\r\n"
    for start in range(0, len(wire), limit):
        buffer += wire[start : start + limit]
        while not (got and got[-1][1]):
            piece, last = ends.cut(buffer)
            if not piece:
                break
            got.append((piece, last))
    assert got, "no piece"
    assert got[-1][1], "the end of the data was not found"
    assert bytes(buffer) == b"QUIT\r\n"
    return got


def forward(stream: bytes, limit: int = 16) -> tuple[bytes, DataPieces]:
    data = DataPieces(limit=10**9)
    out = b"".join(data.feed(piece, last=last) for piece, last in pieces_of(stream, limit))
    return out, data


def headers_of(wire: bytes) -> bytes:
    content = unstuff(wire[: -len(b".\r\n")])
    if content.startswith(b"\r\n"):
        return b""
    end = content.find(b"\r\n\r\n")
    return content if end == -1 else content[: end + 2]


# Streams a client could send: anything without END inside, then END.
_ALPHABET = st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b": ", b"From", b"\r\n."])
streams = (
    st.lists(_ALPHABET, max_size=40)
    .map(b"".join)
    .filter(lambda body: END not in b"\r\n" + body + b"\r\n" and not body.endswith(b"\r"))
    .map(lambda body: body + END if body else b".\r\n")
)


@settings(max_examples=300, deadline=None)
@given(stream=streams, limit=st.integers(min_value=1, max_value=40))
@example(stream=b".\r\r\n\r\n.\r\n", limit=1)  # a stuffed "." cut off from its bare CR
def test_every_stream_goes_up_as_the_store_and_forward_path_would_send_it(
    stream: bytes, limit: int
):
    out, data = forward(stream, limit)
    assert received(out) == received(library_path(stream))  # what the upstream stores
    if not data.rewritten:
        assert out == stream  # the client's own bytes
    assert out.endswith(b".\r\n")
    assert b"\r\n.\r\n" not in out[:-5]  # exactly one end of data ...
    pairs = out.count(b"\r\n")
    assert out.count(b"\n") == pairs == out.count(b"\r")  # ... and no bare CR or LF
    assert data.headers == headers_of(out)
    assert data.rewritten == (
        b"\n" in stream.replace(b"\r\n", b"") or b"\r" in stream.replace(b"\r\n", b"")
    )


def test_clean_content_is_forwarded_byte_for_byte_dots_and_all():
    stream = b"From: a@example.com\r\nSubject: x\r\n\r\n..\r\n...two\r\nend\r\n.\r\n"
    out, data = forward(stream)
    assert out == stream
    assert not data.rewritten
    assert data.headers == b"From: a@example.com\r\nSubject: x\r\n"


def test_a_bare_lf_dot_line_cannot_end_the_data_upstream():
    # a relay forwarding this raw would let a lenient upstream end the data at "\n.\n"
    # and run the next line as a command, outside the relay's sender policy
    stream = b"From: a@example.com\r\n\r\nhi\n.\nMAIL FROM:<ceo@example.com>\r\n.\r\n"
    out, data = forward(stream)
    assert data.rewritten
    assert out == b"From: a@example.com\r\n\r\nhi\r\n..\r\nMAIL FROM:<ceo@example.com>\r\n.\r\n"


def test_a_stuffing_dot_before_a_bare_lf_is_taken_off_not_kept():
    # ".\n" at a CRLF line start: the client stuffed an empty line ending in a bare LF;
    # left as ".\r\n" it would become an end of data
    out, _ = forward(b"x\r\n.\nQUIT\r\n.\r\n")
    assert out == b"x\r\n\r\nQUIT\r\n.\r\n"


def test_an_empty_message_and_one_without_a_body():
    assert forward(b".\r\n")[0] == b".\r\n"
    out, data = forward(b"Subject: only headers\r\n.\r\n")
    assert out == b"Subject: only headers\r\n.\r\n"
    assert data.headers == b"Subject: only headers\r\n"
    out, data = forward(b"\r\nno headers at all\r\n.\r\n")
    assert data.headers == b""


def test_nothing_is_released_before_the_header_section_is_complete():
    data = DataPieces(limit=10**6)
    assert data.feed(b"From: a@example.com\r\n") == b""
    assert data.headers is None
    assert data.feed(b"To: b@example.com\r\n\r\nbody") == (
        b"From: a@example.com\r\nTo: b@example.com\r\n\r\nbody"
    )
    assert data.headers == b"From: a@example.com\r\nTo: b@example.com\r\n"
    assert data.feed(b" more\r\n.\r\n", last=True) == b" more\r\n.\r\n"


def test_a_stuffed_header_line_is_unstuffed_for_the_policy_check():
    _, data = forward(b"X-A: 1\r\n..From: a@example.com\r\n\r\nbody\r\n.\r\n")
    assert data.headers == b"X-A: 1\r\n.From: a@example.com\r\n"


def test_past_the_limit_nothing_more_is_released():
    data = DataPieces(limit=10)
    assert data.feed(b"Subject: x\r\n\r\n") == b""
    assert data.too_large
    assert data.feed(b"y\r\n.\r\n", last=True) == b""


@pytest.mark.parametrize(
    ("content", "wire"),
    [
        (b".x\n.y\r\n", b"..x\r\n..y\r\n"),
        (b"a\rb\r\n", b"a\r\nb\r\n"),
        (b"", b""),
    ],
)
def test_restuff_makes_crlf_lines_and_stuffs_them(content: bytes, wire: bytes):
    assert restuff(content) == wire
    assert unstuff(wire) == wire.replace(b"\r\n..", b"\r\n.").removeprefix(b".")


def test_restuff_mid_line_does_not_stuff_the_first_byte():
    assert restuff(b".continued\r\n.next\r\n", at_line_start=False) == (b".continued\r\n..next\r\n")
