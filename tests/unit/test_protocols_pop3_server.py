"""The POP3 relay's pre-auth server (``protocols.pop3_server``), as byte transcripts;
hypothesis cuts the client's bytes at every point and the answers must not change."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from mailoauth.protocols.pop3_server import Pop3PreAuth
from mailoauth.sasl import parse_plain
from tests.preauth_run import Run, drive

PASSWORD = "Rztk16REXUV1PZ8Z9kpTXXNmlPTW-smo"


def machine(*, stls: bool = False, secure: bool = False, loopback: bool = True) -> Pop3PreAuth:
    return Pop3PreAuth(parse_plain=parse_plain, stls=stls, secure=secure, clear_login=loopback)


def feed(server: Pop3PreAuth, *chunks: bytes, accept: bool = False) -> Run:
    return drive(
        server, chunks, lambda: server.accepted() if accept else server.refused("AUTH", "Nope")
    )


def test_capa_on_a_loopback_listener():
    run = feed(machine(), b"CAPA\r\n")
    assert run.out == (
        b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
        b"USER\r\nSASL PLAIN\r\n.\r\n"
    )
    assert machine().greeting() == b"+OK mailoauth POP3 relay ready\r\n"


def test_off_loopback_passwords_wait_for_stls():
    server = machine(stls=True, loopback=False)
    run = feed(server, b"CAPA\r\n", b"USER pbx\r\n", b"AUTH PLAIN\r\n")
    assert b"STLS\r\n" in run.out
    assert b"USER\r\n" not in run.out
    refusal = (
        b"-ERR [AUTH] Use STLS first: this relay takes no password in clear text off loopback\r\n"
    )
    assert run.out.endswith(refusal * 2)
    run = feed(server, b"STLS\r\n", b"CAPA\r\n")
    assert run.tls
    assert run.out.startswith(b"+OK Begin TLS negotiation\r\n")
    assert b"USER\r\nSASL PLAIN\r\n" in run.out
    assert b"STLS" not in run.out
    assert feed(server, b"STLS\r\n").out == b"-ERR STLS is not available: TLS is already active\r\n"


def test_stls_with_pipelined_commands_closes():
    run = feed(machine(stls=True), b"STLS\r\nUSER pbx\r\n")
    assert run.closed
    assert not run.tls
    assert run.out == b"-ERR Commands were sent after STLS, before TLS began\r\n"


def test_user_pass_keeps_spaces_in_the_password_and_needs_user_first():
    run = feed(machine(), b"PASS early\r\n", b"user pbx\r\n", b"pass with space \r\n")
    (login,) = run.logins
    assert (login.user, login.password.reveal(), login.mechanism) == (
        "pbx",
        "with space ",
        "USER/PASS",
    )
    assert run.out == b"-ERR Send USER first\r\n+OK\r\n-ERR [AUTH] Nope\r\n"
    again = feed(machine(), b"USER pbx\r\nPASS x\r\nPASS y\r\n")
    assert again.out.endswith(b"-ERR Send USER first\r\n")  # RFC 1939: USER again after a failure


def test_auth_plain_on_the_line_after_the_prompt_cancel_and_listing():
    plain = base64.b64encode(f"\0pbx\0{PASSWORD}".encode())
    run = feed(
        machine(),
        b"AUTH PLAIN " + plain + b"\r\n",
        b"AUTH PLAIN\r\n" + plain + b"\r\n",
        b"AUTH PLAIN\r\n*\r\n",
        b"AUTH\r\n",
        b"AUTH XOAUTH2\r\n",
    )
    assert [(x.user, x.password.reveal()) for x in run.logins] == [("pbx", PASSWORD)] * 2
    assert run.out == (
        b"-ERR [AUTH] Nope\r\n+ \r\n-ERR [AUTH] Nope\r\n+ \r\n-ERR AUTH cancelled\r\n"
        b"+OK\r\nPLAIN\r\n.\r\n-ERR Unsupported authentication mechanism; use PLAIN\r\n"
    )


def test_quit_garbage_and_long_lines():
    assert feed(machine(), b"QUIT\r\n").closed
    run = feed(machine(), b"STAT\r\n", b"\x00\x01\r\n", b"RETR 1\r\n")
    assert run.closed
    assert run.out == (
        b"-ERR STAT is unknown or not valid before login; log in first\r\n"
        b"-ERR Expected a POP3 command (RFC 1939)\r\n"
        b"-ERR RETR is unknown or not valid before login; log in first\r\n"
        b"-ERR Too many invalid commands; closing the connection\r\n"
    )
    long = feed(machine(), b"USER " + b"x" * 9000)
    assert long.closed
    assert long.out.startswith(b"-ERR Line too long (more than 8192 bytes)")


def test_accepted_then_the_pipelined_rest_goes_upstream():
    server = machine()
    run = feed(server, b"USER pbx\r\nPASS pw\r\nSTAT\r\nRETR 1\r\n", accept=True)
    assert run.out == b"+OK\r\n+OK Logged in\r\n"
    assert server.leftover() == b"STAT\r\nRETR 1\r\n"
    assert server.timed_out().startswith(b"-ERR [SYS/PERM] Idle for too long")


SESSION = (
    b"CAPA\r\nUSER pbx\r\nPASS wrong\r\nAUTH PLAIN\r\n"
    + base64.b64encode(b"\0pbx\0right")
    + b"\r\nNOOP\r\n"
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
