"""PLAIN (RFC 4616) both ways and LOGIN (draft-murchison-sasl-login) both ways, as byte
transcripts; strict server-side parsing that never quotes a password; and the base64
helpers every transport uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailoauth.errors import LocalProtocolError, RemoteProtocolError, SaslError
from mailoauth.sasl import (
    ClientState,
    Credentials,
    LoginClient,
    LoginServer,
    LoginServerState,
    PlainClient,
    Send,
    decode,
    encode,
    parse_plain,
)
from mailoauth.sasl.b64 import MAX_ENCODED
from mailoauth.sasl.plain import initial_response
from mailoauth.secret import MASK, Secret

PASSWORD = "tanstaaftanstaaf"

# RFC 4616 §4: the two example messages (ACAP literals {21} and {20+}).
RFC_TIM = b"\x00tim\x00tanstaaftanstaaf"
RFC_URSEL = b"Ursel\x00Kurt\x00xipj3plmq"


# --- PLAIN, client side ------------------------------------------------------------------


def test_rfc_4616_examples_byte_for_byte():
    assert initial_response("tim", Secret(PASSWORD)) == RFC_TIM
    assert len(RFC_TIM) == 21
    assert initial_response("Kurt", Secret("xipj3plmq"), authzid="Ursel") == RFC_URSEL
    assert len(RFC_URSEL) == 20
    assert encode(RFC_TIM) == b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm"


def test_plain_client_transcript():
    c = PlainClient("tim", Secret(PASSWORD))
    assert c.start() == RFC_TIM
    c.finish(True, "a002 OK Authenticated")
    assert c.state is ClientState.SUCCEEDED


def test_plain_client_answers_the_empty_challenge_when_there_is_no_initial_response():
    c = PlainClient("tim", Secret(PASSWORD))
    assert c.receive(b"") == Send(RFC_TIM)


def test_plain_client_refuses_any_further_challenge():
    c = PlainClient("tim", Secret(PASSWORD))
    c.start()
    with pytest.raises(RemoteProtocolError, match="PLAIN has a single message"):
        c.receive(b"more?")
    c = PlainClient("tim", Secret(PASSWORD))
    with pytest.raises(RemoteProtocolError, match="before the credentials"):
        c.receive(b"hello")


def test_plain_refusal_says_to_check_the_password_or_use_oauth():
    c = PlainClient("Kurt", Secret("xipj3plmq"), authzid="Ursel")
    c.start()
    with pytest.raises(SaslError) as info:
        c.finish(False, 'a002 NO "Not authorized to requested authorization identity"')
    assert "PLAIN login as 'Kurt' was refused" in str(info.value)
    assert "use XOAUTH2 or OAUTHBEARER" in str(info.value)
    assert "xipj3plmq" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "pw"), "user name is empty"),
        (("a\x00b", "pw"), "control character"),
        (("tim", ""), "password is empty"),
        (("tim", "a\x00b"), "password contains a NUL"),
        (("tim", "p" * 1025), "password is 1025 bytes long"),
        (("tim", "pw", "z\x00"), "authorization identity .* control character"),
    ],
)
def test_plain_refuses_what_it_cannot_frame(args, match):
    authcid, password, *authzid = args
    with pytest.raises(LocalProtocolError, match=match) as info:
        PlainClient(authcid, Secret(password), *authzid)
    if password:
        assert password not in str(info.value)


# --- PLAIN, server side -----------------------------------------------------------------


def test_parse_plain_reads_the_rfc_examples():
    assert parse_plain(RFC_TIM) == Credentials("", "tim", Secret(PASSWORD))
    authzid, authcid, password = parse_plain(RFC_URSEL)
    assert (authzid, authcid, password.reveal()) == ("Ursel", "Kurt", "xipj3plmq")


def test_parse_plain_keeps_spaces_and_unicode():
    creds = parse_plain("\x00jürgen@example.com\x00pass word €".encode())
    assert creds.authcid == "jürgen@example.com"
    assert creds.password.reveal() == "pass word €"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "0 NUL separators"),
        (b"timsecret", "0 NUL separators"),
        (b"tim\x00secret", "1 NUL separators"),
        (b"\x00tim\x00sec\x00ret", "3 NUL separators"),
        (b"\x00\x00secret", "empty PLAIN user name"),
        (b"\x00tim\x00", "empty PLAIN password"),
        (b"\x00t\xffim\x00secret", "user name is not UTF-8"),
        (b"\xc3\x00tim\x00secret", "authorization identity is not UTF-8"),
        (b"\x00tim\x00s\xe9cret", "password is not UTF-8"),
        (b"\x00t\x01im\x00secret", "user name contains a control character"),
        (b"a\nb\x00tim\x00secret", "authorization identity contains a control character"),
        (b"\x00" + b"u" * 1025 + b"\x00secret", "user name is 1025 bytes long"),
        (b"\x00tim\x00" + b"s" * 1025, "password is 1025 bytes long"),
        (b"\x00tim\x00" + b"s" * 4000, "message is 4005 bytes long, more than the 3074"),
    ],
)
def test_parse_plain_is_strict(data, match):
    with pytest.raises(RemoteProtocolError, match=match) as info:
        parse_plain(data)
    assert b"secret" not in str(info.value).encode()
    assert "secret" not in str(info.value)
    assert "the client" in str(info.value)


def test_parse_plain_accepts_the_limits():
    creds = parse_plain(b"z" * 1024 + b"\x00" + b"u" * 1024 + b"\x00" + b"p" * 1024)
    assert len(creds.password.reveal()) == 1024


def test_credentials_show_no_password():
    creds = parse_plain(RFC_TIM)
    assert PASSWORD not in repr(creds)
    assert PASSWORD not in str(creds)
    assert MASK in repr(creds)


names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
passwords = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)


@given(names, passwords, st.one_of(st.just(""), names))
def test_plain_round_trips(authcid, password, authzid):
    data = initial_response(authcid, Secret(password), authzid)
    assert parse_plain(data) == Credentials(authzid, authcid, Secret(password))


@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20))
def test_plain_encodes_only_what_parses_back(authcid, password, authzid):
    try:
        data = initial_response(authcid, Secret(password), authzid)
    except LocalProtocolError:
        return
    assert parse_plain(data) == Credentials(authzid, authcid, Secret(password))


@given(st.binary(max_size=80))
def test_parse_plain_is_total(data):
    try:
        creds = parse_plain(data)
    except RemoteProtocolError:
        return
    assert data == b"\x00".join(
        part.encode() for part in (creds.authzid, creds.authcid, creds.password.reveal())
    )


# --- LOGIN, server side (the relay) ------------------------------------------------------


def test_login_server_transcript():
    # S: 334 VXNlcm5hbWU6 / C: dGlt / S: 334 UGFzc3dvcmQ6 / C: dGFu... / S: 235
    server = LoginServer()
    assert server.state is LoginServerState.NEW
    prompt = server.start()
    assert encode(prompt.data) == b"VXNlcm5hbWU6"
    assert server.state is LoginServerState.USERNAME
    prompt = server.receive(decode(b"dGlt\r\n", peer="client"))
    assert isinstance(prompt, Send)
    assert encode(prompt.data) == b"UGFzc3dvcmQ6"
    assert server.state is LoginServerState.PASSWORD
    creds = server.receive(decode(b"dGFuc3RhYWZ0YW5zdGFhZg==", peer="client"))
    assert creds == Credentials("", "tim", Secret(PASSWORD))
    assert server.state is LoginServerState.DONE
    assert PASSWORD not in repr(server)


def test_login_server_takes_the_user_name_as_initial_response():
    # C: AUTH LOGIN dGlt / S: 334 UGFzc3dvcmQ6
    server = LoginServer(initial_response=b"tim")
    assert server.start() == Send(b"Password:")
    assert server.receive(PASSWORD.encode()) == Credentials("", "tim", Secret(PASSWORD))


@pytest.mark.parametrize(
    ("responses", "match"),
    [
        ([b""], "empty LOGIN user name"),
        ([b"t\x00im"], "user name contains a control character"),
        ([b"t\xffim"], "user name is not UTF-8"),
        ([b"tim", b""], "empty LOGIN password"),
        ([b"tim", b"sec\x00ret"], "password contains a NUL"),
        ([b"tim", b"s\xe9cret"], "password is not UTF-8"),
        ([b"tim", b"s" * 1025], "password is 1025 bytes long"),
    ],
)
def test_login_server_is_strict(responses, match):
    server = LoginServer()
    server.start()
    *ok, bad = responses
    for response in ok:
        server.receive(response)
    with pytest.raises(RemoteProtocolError, match=match) as info:
        server.receive(bad)
    assert "secret" not in str(info.value)
    assert server.state is LoginServerState.FAILED
    with pytest.raises(LocalProtocolError, match="while the client sent something"):
        server.receive(b"again")


def test_login_server_refuses_a_bad_initial_response():
    with pytest.raises(RemoteProtocolError, match="empty LOGIN user name"):
        LoginServer(initial_response=b"").start()


def test_login_server_calls_in_order():
    server = LoginServer()
    with pytest.raises(LocalProtocolError, match="call start"):
        server.receive(b"tim")
    server.start()
    with pytest.raises(LocalProtocolError, match="only once"):
        server.start()
    server.receive(b"tim")
    server.receive(b"pw")
    with pytest.raises(LocalProtocolError, match="while credentials returned"):
        server.receive(b"more")


# --- LOGIN, client side -------------------------------------------------------------------


def test_login_client_transcript():
    c = LoginClient("tim", Secret(PASSWORD))
    assert encode(c.receive(decode(b"VXNlcm5hbWU6")).data) == b"dGlt"
    assert encode(c.receive(decode(b"UGFzc3dvcmQ6")).data) == b"dGFuc3RhYWZ0YW5zdGFhZg=="
    c.finish(True, "235 2.7.0 Authentication successful")
    assert c.state is ClientState.SUCCEEDED


def test_login_client_ignores_what_the_prompts_say():
    c = LoginClient("tim", Secret(PASSWORD))
    assert c.receive(b"User Name") == Send(b"tim")
    assert c.receive(b"") == Send(PASSWORD.encode())


def test_login_client_has_no_initial_response():
    with pytest.raises(LocalProtocolError, match="LOGIN has no initial response"):
        LoginClient("tim", Secret(PASSWORD)).start()


def test_login_client_refuses_a_third_prompt_and_early_success():
    c = LoginClient("tim", Secret(PASSWORD))
    c.receive(b"Username:")
    c.receive(b"Password:")
    with pytest.raises(RemoteProtocolError, match="third LOGIN prompt"):
        c.receive(b"Again:")
    c = LoginClient("tim", Secret(PASSWORD))
    c.receive(b"Username:")
    with pytest.raises(RemoteProtocolError, match="before it received the credentials"):
        c.finish(True)


def test_login_client_refusal_and_secrets():
    c = LoginClient("tim", Secret(PASSWORD))
    c.receive(b"Username:")
    step = c.receive(b"Password:")
    with pytest.raises(SaslError, match="check the user name and password") as info:
        c.finish(False, "535 5.7.8 Authentication credentials invalid")
    for shown in (repr(c), repr(step), str(info.value)):
        assert PASSWORD not in shown


@pytest.mark.parametrize(("user", "password"), [("t\x01im", "pw"), ("tim", ""), ("", "pw")])
def test_login_client_checks_its_input(user, password):
    with pytest.raises(LocalProtocolError):
        LoginClient(user, Secret(password))


@given(names, passwords)
def test_login_client_and_server_agree(user, password):
    client, server = LoginClient(user, Secret(password)), LoginServer()
    result: Send | Credentials = server.start()
    while isinstance(result, Send):
        result = server.receive(decode(encode(client.receive(result.data).data), peer="client"))
    assert result == Credentials("", user, Secret(password))


# --- base64 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [b"not base64!", b"dGlt=", b"dGlt====", b"dB==", b"dGl", b"dG lt", b"=dGlt", b"dGlt\x00"],
)
def test_decode_refuses_what_is_not_base64(text):
    with pytest.raises(
        RemoteProtocolError, match="the server sent SASL data that is not valid base64"
    ):
        decode(text)


def test_decode_tolerates_surrounding_whitespace_and_empty_input():
    assert decode(b"  dGlt\r\n") == b"tim"
    assert decode(b"") == b""
    assert decode(b"\r\n") == b""


def test_decode_is_bounded():
    with pytest.raises(RemoteProtocolError, match="the client sent 65540 characters"):
        decode(b"AAAA" * (MAX_ENCODED // 4 + 1), peer="client")


@given(st.binary(max_size=200))
def test_encode_decode_round_trip(data):
    assert decode(encode(data)) == data
    assert b"\n" not in encode(data)
