"""The Dovecot peer (``tests/peers/dovecot.py``) does what later tests rely on: it accepts
tokens of the test authorization server over XOAUTH2 and OAUTHBEARER, refuses bad ones the
way DESIGN.md describes, and carries a submitted message into the recipient's INBOX.

Only independent clients are used here — Python's imaplib, poplib and smtplib, with the
SASL messages built by hand — so the peer is proved without any code of ours.
"""

from __future__ import annotations

import base64
import email
import imaplib
import json
import poplib
import smtplib
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from mailoauth.sasl import OAuthBearerClient, SaslClient, XOAuth2Client
from mailoauth.secret import Secret
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, Dovecot

pytestmark = pytest.mark.integration

GARBAGE = "not-a-token-the-server-ever-issued"

TokenFor = Callable[[str], str]


class Sasl:
    """An imaplib/smtplib authobject driving one of mailoauth's sans-IO SASL clients, so
    the real Dovecot checks ``mailoauth.sasl``'s bytes; records the server's challenges."""

    def __init__(self, client: SaslClient) -> None:
        self.client = client
        self.challenges: list[bytes] = []
        self._started = False

    def __call__(self, challenge: bytes | None = None) -> bytes:
        if not self._started:
            self._started = True
            return self.client.start()
        self.challenges.append(challenge or b"")
        return self.client.receive(challenge or b"").data

    def smtp(self, challenge: bytes | None = None) -> str:
        return self(challenge).decode()


def sasl(mechanism: str, user: str, token: str, port: int, *, authzid: bool = True) -> Sasl:
    if mechanism == "XOAUTH2":
        return Sasl(XOAuth2Client(user, Secret(token)))
    client = OAuthBearerClient(
        user, Secret(token), host="127.0.0.1", port=port, send_authzid=authzid
    )
    return Sasl(client)


# -- IMAP ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_imap_accepts_a_valid_token(dovecot: Dovecot, token_for: TokenFor, mechanism: str):
    port = dovecot.ports.imap
    with imaplib.IMAP4(dovecot.host, port, timeout=10) as imap:
        assert f"AUTH={mechanism}" in imap.capabilities
        auth = sasl(mechanism, ALICE, token_for(ALICE), port)
        typ, _ = imap.authenticate(mechanism, auth)
        assert typ == "OK"
        assert auth.challenges == []
        assert imap.select("INBOX") == ("OK", [b"0"])


@pytest.mark.parametrize(
    ("mechanism", "status"), [("XOAUTH2", "401"), ("OAUTHBEARER", "invalid_token")]
)
@pytest.mark.parametrize("which", ["garbage", "revoked", "other user's"])
def test_imap_refuses_a_bad_token_after_a_json_challenge(
    dovecot: Dovecot,
    auth_server: AuthServer,
    token_for: TokenFor,
    mechanism: str,
    status: str,
    which: str,
):
    port = dovecot.ports.imap
    token = {"garbage": GARBAGE, "revoked": token_for(ALICE), "other user's": token_for(BOB)}
    if which == "revoked":
        auth_server.revoke_user(ALICE)
    auth = sasl(mechanism, ALICE, token[which], port)
    refused = pytest.raises(imaplib.IMAP4.error, match=r"^\[AUTHENTICATIONFAILED\]")
    with imaplib.IMAP4(dovecot.host, port, timeout=10) as imap, refused:
        imap.authenticate(mechanism, auth)
    assert len(auth.challenges) == 1
    assert json.loads(auth.challenges[0])["status"] == status
    assert auth.client.failure is not None
    assert auth.client.failure.status == status  # parsed by mailoauth.sasl
    log = dovecot.log_text()
    assert "oauth2 failed" in log
    assert token[which] not in log
    assert dovecot.client_secret not in log


def test_oauthbearer_without_authzid_is_refused_without_a_challenge(
    dovecot: Dovecot, token_for: TokenFor
):
    """Dovecot 2.3 needs ``a=`` although RFC 7628 makes it optional."""
    port = dovecot.ports.imap
    token = token_for(ALICE)
    auth = sasl("OAUTHBEARER", ALICE, token, port, authzid=False)
    refused = pytest.raises(imaplib.IMAP4.error, match=r"^\[AUTHENTICATIONFAILED\]")
    with imaplib.IMAP4(dovecot.host, port, timeout=10) as imap, refused:
        imap.authenticate("OAUTHBEARER", auth)
    assert auth.challenges == []


def test_an_unreachable_authorization_server_is_a_temporary_failure_without_a_challenge(
    dovecot: Dovecot, auth_server: AuthServer, token_for: TokenFor
):
    token = token_for(ALICE)
    auth_server.stop()  # the next test's auth_server fixture starts it again
    imap_auth = sasl("XOAUTH2", ALICE, token, 0)
    temporary = pytest.raises(imaplib.IMAP4.error, match=r"^\[UNAVAILABLE\]")
    with imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=10) as imap, temporary:
        imap.authenticate("XOAUTH2", imap_auth)
    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=10)
    try:
        with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"):
            pop3_auth(pop, ALICE, token)
    finally:
        pop.quit()
    smtp_auth = sasl("XOAUTH2", ALICE, token, 0)
    with (
        smtplib.SMTP(dovecot.host, dovecot.ports.submission, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError) as smtp_refused,
    ):
        smtp.auth("XOAUTH2", smtp_auth.smtp, initial_response_ok=True)
    assert (smtp_refused.value.smtp_code, smtp_refused.value.smtp_error[:5]) == (454, b"4.7.0")
    assert imap_auth.challenges == smtp_auth.challenges == []
    assert "Connection refused" in dovecot.log_text()


def test_imap_starttls_and_imaps(dovecot: Dovecot, token_for: TokenFor):
    token = token_for(ALICE)
    with imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=10) as imap:
        imap.starttls(dovecot.ssl_context())
        assert imap.authenticate("XOAUTH2", sasl("XOAUTH2", ALICE, token, 0))[0] == "OK"
    with imaplib.IMAP4_SSL(
        dovecot.host, dovecot.ports.imaps, ssl_context=dovecot.ssl_context(), timeout=10
    ) as imaps:
        auth = sasl("OAUTHBEARER", ALICE, token, dovecot.ports.imaps)
        assert imaps.authenticate("OAUTHBEARER", auth)[0] == "OK"


# -- POP3 ------------------------------------------------------------------------------------
def pop3_auth(pop: poplib.POP3, user: str, token: str) -> bytes:
    """``AUTH XOAUTH2`` with an initial response; answers a challenge with an empty line."""
    initial = base64.b64encode(XOAuth2Client(user, Secret(token)).start()).decode()
    reply = pop._shortcmd(f"AUTH XOAUTH2 {initial}")
    if reply.startswith(b"+ "):  # the JSON error challenge
        pop._putcmd("")
        return pop._getresp()
    return reply


def test_pop3_xoauth2(dovecot: Dovecot, token_for: TokenFor):
    message = b"Subject: hello\r\nMessage-ID: <pop3@example.org>\r\n\r\nover LMTP\r\n"
    dovecot.deliver(ALICE, message)
    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=10)
    try:
        with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
            pop3_auth(pop, ALICE, GARBAGE)
        assert pop3_auth(pop, ALICE, token_for(ALICE)).startswith(b"+OK")
        assert pop.stat()[0] == 1
        assert b"over LMTP" in b"\r\n".join(pop.retr(1)[1])
    finally:
        pop.quit()


def test_pop3s(dovecot: Dovecot, token_for: TokenFor):
    pop = poplib.POP3_SSL(
        dovecot.host, dovecot.ports.pop3s, context=dovecot.ssl_context(), timeout=10
    )
    try:
        assert pop3_auth(pop, ALICE, token_for(ALICE)).startswith(b"+OK")
        assert pop.stat() == (0, 0)
    finally:
        pop.quit()


# -- submission → relay hop → LMTP → IMAP ------------------------------------------------------
def test_submission_round_trip_to_the_recipients_inbox(dovecot: Dovecot, token_for: TokenFor):
    message = EmailMessage()
    message["From"] = ALICE
    message["To"] = BOB
    message["Subject"] = "round trip"
    message["Message-ID"] = "<round-trip@example.com>"
    message.set_content("sent over submission, fetched over IMAP\n")

    with smtplib.SMTP(dovecot.host, dovecot.ports.submission, timeout=10) as smtp:
        smtp.starttls(context=dovecot.ssl_context())
        smtp.ehlo()
        assert "XOAUTH2" in smtp.esmtp_features["auth"].split()
        bad = sasl("XOAUTH2", ALICE, GARBAGE, 0)
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.auth("XOAUTH2", bad.smtp, initial_response_ok=True)
        assert refused.value.smtp_code == 535
        assert json.loads(bad.challenges[0])["status"] == "401"
        good = sasl("XOAUTH2", ALICE, token_for(ALICE), 0)
        assert smtp.auth("XOAUTH2", good.smtp, initial_response_ok=True)[0] == 235
        assert smtp.send_message(message) == {}

    with imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=10) as imap:
        imap.authenticate("XOAUTH2", sasl("XOAUTH2", BOB, token_for(BOB), 0))
        assert imap.select("INBOX") == ("OK", [b"1"])
        typ, data = imap.fetch("1", "(RFC822)")
        assert typ == "OK"
        fetched = email.message_from_bytes(data[0][1])
    assert fetched["Message-ID"] == "<round-trip@example.com>"
    assert fetched["Subject"] == "round trip"
    assert "fetched over IMAP" in fetched.get_payload()
    inbox = dovecot.mail_dir(BOB)  # SELECT moved the message from new/ to cur/
    assert [len(list((inbox / sub).iterdir())) for sub in ("new", "cur")] == [0, 1]
