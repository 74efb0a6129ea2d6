"""The IMAP relay's pre-auth server (``protocols.imap_server``), as byte transcripts: what
a client sends, what the relay answers, what it asks its caller to do (check a login,
start TLS, close). Hypothesis cuts the client's bytes at every point: the answers must
not change."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailoauth.protocols.imap_server import ImapPreAuth, post_login_capabilities
from mailoauth.protocols.preauth import Login, NeedData
from mailoauth.sasl import parse_plain
from tests.preauth_run import Run, drive

PASSWORD = "Rztk16REXUV1PZ8Z9kpTXXNmlPTW-smo"


def machine(*, starttls: bool = False, secure: bool = False, loopback: bool = True) -> ImapPreAuth:
    return ImapPreAuth(
        parse_plain=parse_plain, starttls=starttls, secure=secure, clear_login=loopback
    )


def feed(server: ImapPreAuth, *chunks: bytes, accept: bool = False) -> Run:
    """Feed ``chunks`` one by one, carrying out every action; each login is refused
    (or accepted with ``accept``)."""

    def answer() -> bytes:
        if accept:
            return server.accepted(["IMAP4REV1", "IDLE", "AUTH=XOAUTH2"])
        return server.refused("AUTHENTICATIONFAILED", "Authentication failed")

    return drive(server, chunks, answer)


def test_the_greeting_says_what_a_loopback_listener_offers():
    assert machine().greeting() == (
        b"* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN] mailoauth IMAP relay ready\r\n"
    )


def test_off_loopback_before_tls_login_is_disabled_until_starttls():
    server = machine(starttls=True, loopback=False)
    assert server.capabilities() == (
        "IMAP4rev1",
        "LITERAL+",
        "SASL-IR",
        "ID",
        "STARTTLS",
        "LOGINDISABLED",
    )
    run = feed(server, f"a1 LOGIN pbx {PASSWORD}\r\n".encode(), b"a2 AUTHENTICATE PLAIN\r\n")
    assert run.out == (
        b"a1 NO [PRIVACYREQUIRED] Use STARTTLS first: this relay takes no password in clear "
        b"text off loopback\r\n"
        b"a2 NO [PRIVACYREQUIRED] Use STARTTLS first: this relay takes no password in clear "
        b"text off loopback\r\n"
    )
    assert run.logins == []
    run = feed(server, b"a3 STARTTLS\r\n", b"a4 CAPABILITY\r\n")
    assert run.tls
    assert run.out == (
        b"a3 OK Begin TLS negotiation now\r\n"
        b"* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN\r\na4 OK CAPABILITY completed\r\n"
    )
    assert feed(server, b"a5 STARTTLS\r\n").out == b"a5 BAD TLS is already active\r\n"


def test_implicit_tls_offers_no_starttls():
    server = machine(starttls=True, secure=True, loopback=False)
    assert "STARTTLS" not in server.capabilities()
    assert "AUTH=PLAIN" in server.capabilities()


def test_starttls_without_a_certificate_is_bad():
    assert feed(machine(), b"t STARTTLS\r\n").out == (
        b"t BAD STARTTLS is not available: the relay has no certificate\r\n"
    )


def test_a_command_pipelined_after_starttls_closes_the_connection():
    run = feed(machine(starttls=True), b"t STARTTLS\r\nu LOGIN a b\r\n")
    assert run.closed
    assert not run.tls
    assert run.out.startswith(b"t BAD Commands were sent after STARTTLS, before TLS began\r\n")


def test_capability_noop_id_and_logout():
    run = feed(
        machine(),
        b"1 CAPABILITY\r\n2 noop\r\n3 ID NIL\r\n"
        b'4 ID ("name" "Thunderbird" "version" "115")\r\n5 LOGOUT\r\n',
    )
    assert run.out == (
        b"* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN\r\n1 OK CAPABILITY completed\r\n"
        b"2 OK NOOP completed\r\n"
        b"* ID NIL\r\n3 OK ID completed\r\n"
        b"* ID NIL\r\n4 OK ID completed\r\n"
        b"* BYE Logging out\r\n5 OK LOGOUT completed\r\n"
    )
    assert run.closed


@pytest.mark.parametrize(
    ("wire", "user", "password"),
    [
        (b"a LOGIN pbx secret\r\n", "pbx", "secret"),
        (b'a LOGIN "pbx" "sec ret \\"q\\" \\\\"\r\n', "pbx", 'sec ret "q" \\'),
        (b"a LOGIN {3}\r\npbx {6}\r\nsecret\r\n", "pbx", "secret"),
        (b"a LOGIN {3+}\r\npbx {8+}\r\nse\r\ncret\r\n", "pbx", "se\r\ncret"),
        (b"a login pbx {10}\r\np\xc3\xa4ssw\xc3\xb6rd\r\n", "pbx", "pässwörd"),
    ],
)
def test_login_takes_atoms_quoted_strings_and_literals(wire: bytes, user: str, password: str):
    run = feed(machine(), wire)
    (login,) = run.logins
    assert (login.tag, login.user, login.password.reveal()) == ("a", user, password)
    assert login.mechanism == "LOGIN"
    assert run.out.count(b"+ Ready for literal data\r\n") == wire.count(b"}\r\n") - wire.count(
        b"+}\r\n"
    )
    assert run.out.endswith(b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
    assert password not in repr(login)


def test_authenticate_plain_with_initial_response_continuation_and_cancel():
    plain = base64.b64encode(f"\0pbx\0{PASSWORD}".encode())
    run = feed(
        machine(),
        b"a AUTHENTICATE PLAIN " + plain + b"\r\n",
        b"b AUTHENTICATE plain\r\n",
        plain + b"\r\n",
        b"c AUTHENTICATE PLAIN\r\n",
        b"*\r\n",
        b"d AUTHENTICATE XOAUTH2 abc\r\n",
    )
    assert [(x.tag, x.user, x.password.reveal()) for x in run.logins] == [
        ("a", "pbx", PASSWORD),
        ("b", "pbx", PASSWORD),
    ]
    assert run.out == (
        b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
        b"+ \r\n"
        b"b NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
        b"+ \r\n"
        b"c BAD Authentication cancelled\r\n"
        b"d NO Unsupported authentication mechanism; use PLAIN\r\n"
    )


def test_a_plain_response_for_another_identity_is_passed_on_for_the_caller_to_refuse():
    plain = base64.b64encode(f"boss\0pbx\0{PASSWORD}".encode())
    (login,) = feed(machine(), b"a AUTHENTICATE PLAIN " + plain + b"\r\n").logins
    assert (login.authzid, login.user) == ("boss", "pbx")


def test_bad_base64_is_bad_and_three_bad_commands_in_a_row_close():
    run = feed(machine(), b"a AUTHENTICATE PLAIN %%%\r\n", b"\xff\xfe\r\n", b"b SELECT INBOX\r\n")
    assert run.out == (
        b"a BAD the PLAIN response is not valid base64\r\n"
        b"* BAD Expected a tag and a command\r\n"
        b"b BAD SELECT is unknown or not valid before login; log in first\r\n"
        b"* BYE Too many invalid commands; closing the connection\r\n"
    )
    assert run.closed
    assert feed(machine(), b"\r\n\r\n1 NOOP\r\n\r\n\r\n").closed is False  # reset by NOOP


def test_a_line_over_8_kib_is_refused_and_closed_even_before_its_end():
    for wire in (b"a LOGIN " + b"x" * 9000 + b"\r\n", b"a LOGIN " + b"x" * 9000):
        run = feed(machine(), wire)
        assert run.closed
        assert run.out == (
            b"* BAD Command line too long (more than 8192 bytes) before login\r\n"
            b"* BYE Closing the connection\r\n"
        )


def test_a_literal_over_1_kib_is_refused_synchronizing_or_not():
    server = machine()
    run = feed(server, b"a LOGIN {5000}\r\n", b"b NOOP\r\n")
    assert run.out == (
        b"a BAD [TOOBIG] A literal of 5000 bytes is refused before login (at most 1024)\r\n"
        b"b OK NOOP completed\r\n"
    )
    run = feed(machine(), b"a LOGIN {5000+}\r\n" + b"x" * 100)
    assert run.closed
    assert run.out.startswith(b"a BAD [TOOBIG]")


def test_commands_with_many_literals_are_bounded_as_a_whole():
    wire = b"a ID (" + b"{1000+}\r\n" + b"x" * 1000 + b" {1000+}\r\n" + b"y" * 1000
    run = feed(machine(), wire * 5)
    assert run.closed
    assert b"Command line too long" in run.out


def test_accepted_gives_the_servers_capabilities_and_the_pipelined_rest():
    server = machine()
    run = feed(server, b"a LOGIN pbx pw\r\nb SELECT INBOX\r\n", accept=True)
    assert run.out == b"a OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"
    assert server.logged_in
    assert server.leftover() == b"b SELECT INBOX\r\n"
    assert isinstance(server.next_action(), NeedData)


def test_refusal_text_cannot_break_the_line():
    server = machine()
    server.receive_data(b"a LOGIN pbx pw\r\n")
    assert isinstance(server.next_action(), Login)
    assert server.refused("UNAVAILABLE", "down\r\n* OK injected") == (
        b"a NO [UNAVAILABLE] down * OK injected\r\n"
    )


def test_timed_out_says_bye():
    assert machine().timed_out() == b"* BYE Autologout; idle for too long before logging in\r\n"


def test_post_login_capabilities_hide_how_mailoauth_logged_in():
    assert post_login_capabilities(
        ["IMAP4REV1", "SASL-IR", "AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "IDLE", "STARTTLS",
         "LOGINDISABLED", "IMAP4REV2", "MOVE"]
    ) == ("IMAP4rev1", "IMAP4rev2", "IDLE", "MOVE")  # fmt: skip


SESSION = (
    b"1 CAPABILITY\r\n"
    b'2 ID ("name" {3}\r\nmua)\r\n'
    b"3 LOGIN {3}\r\npbx {5+}\r\nwrong\r\n"
    b"4 AUTHENTICATE PLAIN\r\n" + base64.b64encode(b"\0pbx\0right") + b"\r\n"
    b"5 NOOP\r\n"
)


@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=12))
def test_any_split_of_the_clients_bytes_gives_the_same_conversation(cuts: list[int]):
    whole = feed(machine(), SESSION)
    points = sorted(set(cuts))
    chunks = [SESSION[a:b] for a, b in zip([0, *points], [*points, len(SESSION)], strict=True)]
    split = feed(machine(), *chunks)
    assert split.out == whole.out
    assert [(x.user, x.password.reveal()) for x in split.logins] == [
        ("pbx", "wrong"),
        ("pbx", "right"),
    ]
