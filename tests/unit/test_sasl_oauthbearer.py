"""OAUTHBEARER client: RFC 7628's examples byte for byte, the RFC 5801 authzid escaping,
the error challenge answered with a single \\x01 (RFC 7628 §3.2.3; Dovecot's JSON), and
input that would break the framing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailoauth.errors import LocalProtocolError, RemoteProtocolError, SaslError
from mailoauth.sasl import Acknowledge, ClientState, OAuthBearerClient, Send, decode, encode
from mailoauth.sasl.oauthbearer import escape_saslname, gs2_header, initial_response
from mailoauth.secret import Secret
from tests.unit.test_sasl_xoauth2 import acceptable

# RFC 7628 §4.1, the IMAP success example: the initial client response, verbatim.
RFC_TOKEN = Secret("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
RFC_RAW = (
    b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
    b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
)
RFC_B64 = (
    b"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
    b"IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)
# RFC 7628 §4.3, the failure example: the server's error challenge, and the client's answer.
RFC_ERROR_B64 = (
    b"eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZp"
    b"Z3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0="
)
# Dovecot 2.3, src/auth/mech-oauth2.c: the fixed JSON of a rejected OAUTHBEARER token.
DOVECOT_ERROR = b'{"status":"invalid_token"}'

TOKEN = Secret("eyJhbGciOiJSUzI1NiJ9.SECRET.sig")


def rfc_client() -> OAuthBearerClient:
    return OAuthBearerClient("user@example.com", RFC_TOKEN, host="server.example.com", port=143)


# --- the initial response -------------------------------------------------------------


def test_rfc_7628_example_byte_for_byte():
    raw = initial_response("user@example.com", RFC_TOKEN, host="server.example.com", port=143)
    assert raw == RFC_RAW
    assert encode(raw) == RFC_B64
    assert rfc_client().start() == RFC_RAW


def test_host_and_port_are_optional():
    assert initial_response("user@example.com", Secret("t")) == (
        b"n,a=user@example.com,\x01auth=Bearer t\x01\x01"
    )
    assert (
        initial_response("u@x", Secret("t"), port=587)
        == b"n,a=u@x,\x01port=587\x01auth=Bearer t\x01\x01"
    )
    assert (
        initial_response("u@x", Secret("t"), host="h")
        == b"n,a=u@x,\x01host=h\x01auth=Bearer t\x01\x01"
    )


def test_the_authzid_can_be_left_out():
    # RFC 7628 allows it; Dovecot 2.3 does not, hence the default.
    assert (
        initial_response("u@x", Secret("t"), send_authzid=False) == b"n,,\x01auth=Bearer t\x01\x01"
    )
    assert initial_response("", Secret("t"), send_authzid=False) == b"n,,\x01auth=Bearer t\x01\x01"
    assert gs2_header() == b"n,,"


@pytest.mark.parametrize(
    ("authzid", "escaped"),
    [
        ("user@example.com", b"user@example.com"),
        ("a,b=c@example.com", b"a=2Cb=3Dc@example.com"),
        ("=2C", b"=3D2C"),
        (",,==", b"=2C=2C=3D=3D"),
    ],
)
def test_comma_and_equals_in_the_authzid_are_escaped(authzid, escaped):
    assert gs2_header(authzid) == b"n,a=" + escaped + b","
    raw = initial_response(authzid, Secret("t"))
    assert raw.startswith(b"n,a=" + escaped + b",\x01")


def unescape(saslname: bytes) -> bytes:
    """RFC 5801 §4 the way Dovecot reads it (oauth2_unescape_username): a bare ',' or any
    '=' not followed by 2C / 3D is an error."""
    out = bytearray()
    i = 0
    while i < len(saslname):
        if saslname[i : i + 1] == b",":
            raise ValueError("bare comma")
        if saslname[i : i + 1] == b"=":
            code = saslname[i + 1 : i + 3]
            out += {b"2C": b",", b"3D": b"="}[code]
            i += 3
        else:
            out += saslname[i : i + 1]
            i += 1
    return bytes(out)


@given(st.text(min_size=1, max_size=40).filter(lambda s: s.isprintable()))
def test_escaping_round_trips_as_a_server_reads_it(authzid):
    raw = initial_response(authzid, Secret("t"))
    header = raw.split(b"\x01", 1)[0]
    assert header.startswith(b"n,a=")
    assert header.endswith(b",")
    assert unescape(header[4:-1]) == authzid.encode()
    assert escape_saslname(authzid.encode()).count(b",") == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"user": "a\x01b"}, "user name 'a\\\\x01b' contains the control character"),
        ({"user": ""}, "user name is empty"),
        ({"host": "imap.example.com\x01port=1"}, "host .* contains the control character"),
        ({"port": 0}, "port 0 is out of range"),
        ({"port": 70000}, "port 70000 is out of range"),
        ({"port": True}, "port True is out of range"),
        ({"token": Secret("two words")}, "access token contains a character"),
        ({"token": Secret("")}, "access token is empty"),
    ],
)
def test_input_that_would_break_the_message_is_refused(kwargs, match):
    args = {"user": "u@example.com", "token": TOKEN} | kwargs
    user, token = args.pop("user"), args.pop("token")
    with pytest.raises(LocalProtocolError, match=match):
        OAuthBearerClient(user, token, **args)
    with pytest.raises(LocalProtocolError, match=match):
        initial_response(user, token, **args)


# --- the exchange ----------------------------------------------------------------------


def test_success():
    c = rfc_client()
    c.start()
    c.finish(True, "t1 OK SASL authentication succeeded")
    assert c.state is ClientState.SUCCEEDED


def test_without_an_initial_response_the_empty_challenge_gets_it():
    c = rfc_client()
    assert c.receive(b"") == Send(RFC_RAW)


def test_rfc_7628_failure_example():
    c = rfc_client()
    c.start()
    step = c.receive(decode(RFC_ERROR_B64))
    assert isinstance(step, Acknowledge)
    assert step.data == b"\x01"
    assert encode(step.data) == b"AQ=="  # what the RFC's client sends
    failure = step.failure
    assert failure.mechanism == "OAUTHBEARER"
    assert failure.status == "invalid_token"
    assert failure.scope == "example_scope"
    assert failure.openid_configuration == "https://example.com/.well-known/openid-configuration"
    assert c.state is ClientState.REJECTED
    with pytest.raises(SaslError) as info:
        c.finish(False, "t2 NO SASL authentication failed")
    err = info.value
    assert (err.mechanism, err.status, err.scope) == (
        "OAUTHBEARER",
        "invalid_token",
        "example_scope",
    )
    assert "openid-configuration https://example.com/.well-known/openid-configuration" in str(err)
    assert "t2 NO SASL authentication failed" in str(err)


def test_dovecots_error_challenge():
    c = OAuthBearerClient("user@example.com", TOKEN)
    c.start()
    step = c.receive(DOVECOT_ERROR)
    assert isinstance(step, Acknowledge)
    assert step.data == b"\x01"
    assert step.failure.status == "invalid_token"
    with pytest.raises(SaslError, match=r"status invalid_token.*-ERR \[AUTH\]"):
        c.finish(False, "-ERR [AUTH] Authentication failed.")


def test_insufficient_scope_names_the_scope():
    c = OAuthBearerClient("user@example.com", TOKEN)
    c.start()
    c.receive(
        b'{"status":"insufficient_scope","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"}'
    )
    with pytest.raises(SaslError, match=r"lacks the scope the server needs \(https://outlook"):
        c.finish(False)


def test_after_the_acknowledgement_only_the_failure_may_come():
    c = OAuthBearerClient("user@example.com", TOKEN)
    c.start()
    c.receive(DOVECOT_ERROR)
    with pytest.raises(RemoteProtocolError, match="another OAUTHBEARER challenge"):
        c.receive(DOVECOT_ERROR)


@given(st.lists(st.binary(max_size=200), max_size=4), st.booleans())
def test_arbitrary_challenges_never_crash_the_client(challenges, initial):
    c = OAuthBearerClient("user@example.com", TOKEN, host="h", port=993)
    if initial:
        c.start()
    for challenge in challenges:
        try:
            step = c.receive(challenge)
        except (RemoteProtocolError, LocalProtocolError):
            assert c.state is ClientState.FAILED
        else:
            assert step.data in (RFC_RAW, b"\x01") or step.data.startswith(b"n,a=user@example.com,")
    with pytest.raises((SaslError, LocalProtocolError)):
        c.finish(False)


@given(st.text(max_size=40))
def test_any_user_name_either_frames_cleanly_or_is_refused(user):
    if not acceptable(user):
        with pytest.raises(LocalProtocolError, match=r"^OAUTHBEARER user name"):
            initial_response(user, Secret("tok"))
        return
    raw = initial_response(user, Secret("tok"))
    assert raw.count(b"\x01") == 3
    assert raw.endswith(b"\x01auth=Bearer tok\x01\x01")


def test_no_repr_str_or_error_contains_the_token():
    secret = TOKEN.reveal()
    c = OAuthBearerClient("user@example.com", TOKEN, host="imap.example.com", port=993)
    assert secret.encode() in c.start()
    step = c.receive(DOVECOT_ERROR)
    with pytest.raises(SaslError) as info:
        c.finish(False, "NO")
    for shown in (repr(c), str(c), repr(step), repr(c.failure), str(info.value)):
        assert secret not in shown
