"""The From / Sender addresses the relay's sender policy checks in passthrough mode: a
header value in an everyday shape is read by a regex, anything else by the email
package's :func:`~email.utils.getaddresses`; both must find the same addresses, or the
policy could be slipped past with a header the fast path reads differently."""

from __future__ import annotations

from email.utils import getaddresses

from hypothesis import given, settings
from hypothesis import strategies as st

from mailoauth.relay.smtp_handler import sender_headers

_PIECES = st.sampled_from(
    ["a", "b.c", "@", "example.com", "x-y", " ", "\t", "<", ">", '"', ",", ";", ":", "(", ")",
     "\\", ".", "J.", "Scanner", "evil@example.org", "ok@corp.example", "é"]
)  # fmt: skip
values = st.lists(_PIECES, max_size=12).map("".join)


def slow(headers: bytes) -> list[str]:
    """The reference: every value through getaddresses."""
    found = []
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"from", b"sender"):
            parsed = getaddresses([value.decode("utf-8", "replace")])
            found += [address for _, address in parsed if address]
    return found


@settings(max_examples=500, deadline=None)
@given(values=st.lists(values, min_size=1, max_size=3))
def test_the_fast_path_finds_what_getaddresses_finds(values: list[str]) -> None:
    headers = b"".join(f"From: {value}\r\n".encode() for value in values) + b"Subject: x\r\n"
    assert sender_headers(headers) == slow(headers)


def test_everyday_shapes_and_tricky_ones():
    headers = (
        b"From: Scanner <scan@corp.example>\r\n"
        b'Sender: "Boss, The" <boss@corp.example>\r\n'
        b"From: plain@corp.example\r\n"
        b"From: ok@corp.example, evil@example.org\r\n"  # two mailboxes: both are checked
        b"From: Someone <evil@example.org> (ok@corp.example)\r\n"
        b"To: not@checked.example\r\n"
    )
    assert sender_headers(headers) == [
        "scan@corp.example",
        "boss@corp.example",
        "plain@corp.example",
        "ok@corp.example",
        "evil@example.org",
        "evil@example.org",
    ]
