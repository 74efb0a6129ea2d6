"""XOAUTH2 client: Google's published transcript byte for byte, the error challenge and
its acknowledgement (Google's and Dovecot's JSON), the state machine's every edge, user
names that would break the framing, and no token in any repr or message."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailoauth.errors import LocalProtocolError, RemoteProtocolError, SaslError
from mailoauth.sasl import (
    Acknowledge,
    ClientState,
    SaslFailure,
    Send,
    XOAuth2Client,
    decode,
    encode,
)
from mailoauth.sasl.events import MAX_CHALLENGE
from mailoauth.sasl.xoauth2 import initial_response
from mailoauth.secret import Secret

# Google, "XOAUTH2 protocol", Initial client response / Error response: verbatim.
GOOGLE_USER = "someuser@example.com"
GOOGLE_TOKEN = Secret("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
GOOGLE_RAW = (
    b"user=someuser@example.com\x01"
    b"auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
)
GOOGLE_B64 = (
    b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
    b"YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
)
GOOGLE_ERROR_B64 = (
    b"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9t"
    b"YWlsLmdvb2dsZS5jb20vIn0K"
)
# Dovecot 2.3, src/auth/mech-oauth2.c: the fixed JSON of a rejected XOAUTH2 token.
DOVECOT_ERROR = b'{"status":"401","schemes":"bearer","scope":"mail"}'

TOKEN = Secret("ya29.SECRET-token_value")


def client(user: str = "user@example.com", token: Secret = TOKEN) -> XOAuth2Client:
    return XOAuth2Client(user, token)


# --- the initial response -------------------------------------------------------------


def test_googles_example_byte_for_byte():
    raw = initial_response(GOOGLE_USER, GOOGLE_TOKEN)
    assert raw == GOOGLE_RAW
    assert encode(raw) == GOOGLE_B64
    assert decode(GOOGLE_B64) == GOOGLE_RAW


def test_start_gives_the_initial_response_and_waits():
    c = XOAuth2Client(GOOGLE_USER, GOOGLE_TOKEN)
    assert c.state is ClientState.START
    assert c.start() == GOOGLE_RAW
    assert c.state is ClientState.WAITING


def test_without_an_initial_response_the_empty_challenge_gets_it():
    # IMAP without SASL-IR: "+ " then the client sends the message.
    c = XOAuth2Client(GOOGLE_USER, GOOGLE_TOKEN)
    assert c.receive(b"") == Send(GOOGLE_RAW)
    assert c.state is ClientState.WAITING


def test_success_ends_the_exchange():
    c = client()
    c.start()
    c.finish(True, "235 2.7.0 Accepted")
    assert c.state is ClientState.SUCCEEDED
    assert c.failure is None


# --- the error challenge -----------------------------------------------------------


def test_googles_error_challenge_is_acknowledged_with_an_empty_response():
    c = XOAuth2Client(GOOGLE_USER, GOOGLE_TOKEN)
    c.start()
    step = c.receive(decode(GOOGLE_ERROR_B64))
    assert isinstance(step, Acknowledge)
    assert step.data == b""
    assert encode(step.data) == b""  # the transport sends an empty line
    assert step.failure == c.failure
    assert step.failure.mechanism == "XOAUTH2"
    assert step.failure.status == "401"
    assert step.failure.schemes == "bearer mac"
    assert step.failure.scope == "https://mail.google.com/"
    assert c.state is ClientState.REJECTED


def test_the_final_failure_raises_with_the_challenges_details():
    c = XOAuth2Client(GOOGLE_USER, GOOGLE_TOKEN)
    c.start()
    c.receive(decode(GOOGLE_ERROR_B64))
    with pytest.raises(SaslError) as info:
        c.finish(False, "535-5.7.8 Username and Password not accepted.")
    err = info.value
    assert err.mechanism == "XOAUTH2"
    assert err.status == "401"
    assert err.scope == "https://mail.google.com/"
    assert err.server_message == "535-5.7.8 Username and Password not accepted."
    assert not err.temporary
    assert err.exit_code == 1
    text = str(err)
    assert "'someuser@example.com'" in text
    assert "status 401" in text
    assert "re-authorize the mailbox" in text
    assert "\n" not in text
    assert c.state is ClientState.FAILED


def test_dovecots_error_challenge():
    c = client()
    c.start()
    step = c.receive(DOVECOT_ERROR)
    assert step == Acknowledge(
        b"",
        SaslFailure(
            "XOAUTH2", status="401", schemes="bearer", scope="mail", raw=DOVECOT_ERROR.decode()
        ),
    )
    with pytest.raises(SaslError, match=r"status 401.*NO \[AUTHENTICATIONFAILED\]"):
        c.finish(False, "NO [AUTHENTICATIONFAILED] Authentication failed.")


def test_a_refusal_without_a_challenge_still_says_what_to_do():
    # Microsoft 365 answers a bad token with a bare 535.
    c = client()
    c.start()
    with pytest.raises(SaslError) as info:
        c.finish(False, "535 5.7.3 Authentication unsuccessful")
    assert info.value.status == ""
    assert "refresh the token" in str(info.value)


def test_a_temporary_failure_says_retry():
    # Dovecot, introspection unreachable: NO [UNAVAILABLE] and no challenge.
    c = client()
    c.start()
    with pytest.raises(SaslError) as info:
        c.finish(False, "NO [UNAVAILABLE] Temporary authentication failure.", temporary=True)
    assert info.value.temporary
    assert "retry later" in str(info.value)


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        ("insufficient_scope", r"lacks the scope the server needs \(https://mail\.google\.com/\)"),
        ("400", "could not read the login"),
        ("weird", "was not accepted"),
    ],
)
def test_the_hint_follows_the_status(status, hint):
    c = client()
    c.start()
    c.receive(json.dumps({"status": status, "scope": "https://mail.google.com/"}).encode())
    with pytest.raises(SaslError, match=hint):
        c.finish(False)


# --- the state machine refuses what the protocol does not allow ---------------------


def test_a_second_challenge_after_the_acknowledgement_is_the_servers_error():
    c = client()
    c.start()
    c.receive(DOVECOT_ERROR)
    with pytest.raises(RemoteProtocolError, match="another XOAUTH2 challenge"):
        c.receive(DOVECOT_ERROR)
    assert c.state is ClientState.FAILED


def test_success_after_the_error_challenge_is_the_servers_error():
    c = client()
    c.start()
    c.receive(DOVECOT_ERROR)
    with pytest.raises(RemoteProtocolError, match="success after rejecting"):
        c.finish(True)
    assert c.state is ClientState.FAILED


def test_success_before_the_token_was_sent_is_the_servers_error():
    with pytest.raises(RemoteProtocolError, match="before it received the credentials"):
        client().finish(True)


def test_a_non_empty_challenge_before_the_initial_response_is_refused():
    c = client()
    with pytest.raises(RemoteProtocolError, match="before the initial response"):
        c.receive(b"hello")
    assert c.state is ClientState.FAILED


def test_an_empty_challenge_after_the_token_is_refused():
    c = client()
    c.start()
    with pytest.raises(RemoteProtocolError, match="empty XOAUTH2 challenge after the token"):
        c.receive(b"")


def test_start_comes_once():
    c = client()
    c.start()
    with pytest.raises(LocalProtocolError, match="only once"):
        c.start()


def test_a_finished_client_refuses_everything():
    c = client()
    c.start()
    c.finish(True)
    for call in (c.start, lambda: c.receive(b""), lambda: c.finish(False)):
        with pytest.raises(LocalProtocolError, match="after the exchange ended"):
            call()
    assert c.state is ClientState.SUCCEEDED


# --- what the server may send: parsed defensively --------------------------------------


@pytest.mark.parametrize(
    "challenge",
    [
        b"not json",
        b"[1, 2]",
        b'"401"',
        b"{}",
        b'{"status": true, "scope": null, "schemes": ["bearer"]}',
        b"\xff\xfe\x00garbage",
        b"[" * 5000,
        b'{"status": ' + b"9" * 5000 + b"}",
        b'{"status":"' + b"x" * (MAX_CHALLENGE + 1) + b'"}',
    ],
)
def test_any_error_challenge_becomes_a_failure(challenge):
    c = client()
    c.start()
    step = c.receive(challenge)
    assert isinstance(step, Acknowledge)
    assert step.failure.status == step.failure.scope == step.failure.schemes == ""
    assert len(step.failure.raw) <= 513
    with pytest.raises(SaslError):
        c.finish(False)


def test_fields_are_kept_short_and_printable():
    challenge = json.dumps(
        {"status": 401, "scope": "s" * 1000, "schemes": "bearer\r\n\x1b[31m"}
    ).encode()
    failure = SaslFailure.from_challenge("XOAUTH2", challenge)
    assert failure.status == "401"
    assert len(failure.scope) == 257
    assert failure.schemes == "bearer\\r\\n\\x1b[31m"
    assert failure.raw.isprintable()
    assert len(failure.raw) == 513


@given(st.binary(max_size=2 * MAX_CHALLENGE))
def test_from_challenge_is_total(challenge):
    failure = SaslFailure.from_challenge("XOAUTH2", challenge)
    for value in (failure.status, failure.scope, failure.schemes, failure.raw):
        assert value.isprintable()
        assert len(value) <= 513


@given(st.lists(st.binary(max_size=300), max_size=5), st.booleans(), st.booleans())
def test_arbitrary_challenges_never_crash_the_client(challenges, initial, success):
    c = client()
    if initial:
        c.start()
    for challenge in challenges:
        try:
            step = c.receive(challenge)
        except (RemoteProtocolError, LocalProtocolError):
            assert c.state is ClientState.FAILED
            continue
        assert isinstance(step, Send | Acknowledge)
    try:
        c.finish(success)
    except (SaslError, RemoteProtocolError, LocalProtocolError):
        assert c.state is ClientState.FAILED
    else:
        assert c.state is ClientState.SUCCEEDED


# --- what we send: user names and tokens that would break the framing ----------------


@pytest.mark.parametrize(
    ("user", "shown"),
    [
        ("a\x01b@example.com", "'\\x01'"),
        ("user@example.com\x00", "'\\x00'"),
        ("user@example.com\r\n", "'\\r'"),
        ("us\x7fer", "'\\x7f'"),
        ("us\x85er", "'\\x85'"),
    ],
)
def test_control_characters_in_the_user_name_are_refused(user, shown):
    with pytest.raises(LocalProtocolError, match="contains the control character") as info:
        XOAuth2Client(user, TOKEN)
    assert shown in str(info.value)
    assert "would corrupt the SASL message" in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("user", "match"),
    [
        ("", "user name is empty"),
        ("\udc80user", "lone surrogate"),
        ("u" * 1025, "more than the 1024 allowed"),
    ],
)
def test_other_unusable_user_names_are_refused(user, match):
    with pytest.raises(LocalProtocolError, match=match):
        initial_response(user, TOKEN)


def test_a_non_ascii_user_name_is_sent_as_utf8():
    assert initial_response("jürgen@example.com", Secret("t")).startswith(
        "user=jürgen@example.com\x01".encode()
    )


@pytest.mark.parametrize("token", ["", "has space", "tab\there", "x\x01y", "tök€n", "a\nb"])
def test_tokens_that_are_not_bearer_tokens_are_refused_without_showing_them(token):
    with pytest.raises(LocalProtocolError, match="access token") as info:
        XOAuth2Client("user@example.com", Secret(token))
    if token:
        assert token not in str(info.value)


def acceptable(name: str) -> bool:
    """The documented rule: non-empty, no control character (C0, DEL, C1), no lone
    surrogate, at most 1024 UTF-8 bytes."""
    return (
        bool(name)
        and not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
        and len(name.encode()) <= 1024
    )


@given(st.text(max_size=60))
def test_any_user_name_either_frames_cleanly_or_is_refused(user):
    if not acceptable(user):
        with pytest.raises(LocalProtocolError, match=r"^XOAUTH2 user name"):
            initial_response(user, Secret("tok"))
        return
    raw = initial_response(user, Secret("tok"))
    assert raw.split(b"\x01") == [b"user=" + user.encode(), b"auth=Bearer tok", b"", b""]


# --- secrets -------------------------------------------------------------------------


def test_no_repr_str_or_error_contains_the_token():
    secret = TOKEN.reveal()
    c = client()
    first = c.start()
    assert secret.encode() in first  # the message must carry it ...
    c2 = client()
    step = c2.receive(b"")
    c.receive(DOVECOT_ERROR)
    with pytest.raises(SaslError) as info:
        c.finish(False, "535 5.7.8 no")
    # ... and nothing else may
    for shown in (
        repr(c),
        str(c),
        repr(c2),
        repr(step),
        str(step),
        repr(c.failure),
        str(info.value),
    ):
        assert secret not in shown
    assert repr(step) == f"Send(<{len(first)} bytes>)"
