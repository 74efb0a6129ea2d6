"""Transcripts keep the conversation and lose every credential: structural redaction of
AUTH / AUTHENTICATE / LOGIN / PASS lines, whole lines while authenticating, known values
in clear and in base64 anywhere, and bounded sizes."""

import base64
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mailoauth.mail.transcript import MAX_LINE, MAX_LINES_PER_CHUNK, Transcript
from mailoauth.sasl import XOAuth2Client
from mailoauth.secret import Secret

TOKEN = "ya29.a0AfB_byC-very-secret-access-token"
CLOCK = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make(**kw) -> Transcript:
    transcript = Transcript("imap", clock=lambda: CLOCK, **kw)
    transcript.hide(Secret(TOKEN))
    return transcript


def texts(transcript: Transcript) -> list[str]:
    return [line.text for line in transcript.lines]


def test_sasl_initial_responses_keep_only_verb_and_mechanism():
    payload = base64.b64encode(XOAuth2Client("a@x", Secret(TOKEN)).start()).decode()
    t = Transcript("smtp")  # not even told the token: structure alone hides it
    t.client(f"AUTH XOAUTH2 {payload}\r\n".encode())
    t.client(f"a1 AUTHENTICATE OAUTHBEARER {payload}\r\n".encode())
    t.client(b"a2 LOGIN alice hunter2\r\n")
    t.client(b"PASS hunter2\r\n")
    t.client(b"a3 SELECT INBOX\r\n")
    assert texts(t) == [
        f"AUTH XOAUTH2 [redacted {len(payload)} bytes]",
        f"a1 AUTHENTICATE OAUTHBEARER [redacted {len(payload)} bytes]",
        "a2 LOGIN [redacted 13 bytes]",
        "PASS [redacted 7 bytes]",
        "a3 SELECT INBOX",
    ]


def test_continuations_while_authenticating_are_redacted_whole():
    t = make()
    t.client(b"a1 AUTHENTICATE XOAUTH2\r\n")
    t.server(b"+ \r\n")
    with t.authenticating():
        t.client(b"dXNlcj1hQHgBYXV0aD1CZWFyZXIgc2VjcmV0AQE=\r\n")
    t.server(b"a1 OK done\r\n")
    assert texts(t) == [
        "a1 AUTHENTICATE XOAUTH2",
        "+ ",
        "[redacted 40 bytes]",
        "a1 OK done",
    ]
    assert [line.direction for line in t.lines] == ["C", "S", "C", "S"]


def test_known_values_vanish_in_clear_and_base64_in_both_directions_and_notes():
    t = make()
    encoded = base64.b64encode(TOKEN.encode()).decode()
    t.server(f"* BYE your token {TOKEN} is odd\r\n".encode())
    t.client(f"X-Debug: {encoded}\r\n".encode())
    t.note(f"POST https://graph/me/sendMail with {TOKEN}")
    joined = "\n".join(texts(t))
    assert TOKEN not in joined
    assert encoded not in joined
    assert joined.count("[redacted]") == 3


def test_disabled_transcripts_record_nothing():
    t = make(enabled=False)
    t.client(b"a1 NOOP\r\n")
    t.note("x")
    assert t.lines == []


def test_big_chunks_are_cut_short_and_long_lines_capped():
    t = make()
    body = b"".join(b"line %d\r\n" % i for i in range(1000))
    t.server(body)
    assert len(t.lines) == MAX_LINES_PER_CHUNK + 1
    assert t.lines[-1].text.startswith("[… ")
    assert "more bytes]" in t.lines[-1].text
    t.server(b"x" * (MAX_LINE * 3) + b"\r\n")
    assert len(t.lines[-1].text) < MAX_LINE + 40


def test_render_reads_like_a_log():
    t = make(session="7")
    t.client(b"a1 NOOP\r\n")
    assert t.lines[0].render() == "2026-11-23 12:00:00.000 imap #7 C: a1 NOOP"


@given(prefix=st.text(max_size=30), suffix=st.text(max_size=30))
def test_the_token_never_survives_wherever_it_sits(prefix, suffix):
    t = make()
    for line in (
        f"{prefix}{TOKEN}{suffix}",
        f"{prefix}{base64.b64encode(TOKEN.encode()).decode()}",
    ):
        t.server(line.encode())
        t.client(line.encode())
        t.note(line)
    assert all(TOKEN not in text for text in texts(t))
