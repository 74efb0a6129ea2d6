"""``prepare_message``: the headers send() completes, and the sender rule."""

from email.message import EmailMessage

import pytest

from mailoauth.errors import ConfigError
from mailoauth.mail import prepare_message
from mailoauth.models import Mailbox, OutgoingSettings


def mailbox(**kw) -> Mailbox:
    base = {
        "name": "desk",
        "provider": "p",
        "login": "desk@example.com",
        "addresses": ("desk@example.com", "billing@example.com"),
        "display_name": "Help Desk",
        "reply_to": "replies@example.com",
        "outgoing": OutgoingSettings(host="smtp.example.com"),
    }
    return Mailbox(**{**base, **kw})


def message(**headers: str) -> EmailMessage:
    m = EmailMessage()
    m["To"] = "customer@example.org"
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    m.set_content("hi")
    return m


def test_missing_headers_are_filled_on_a_copy():
    original = message()
    got = prepare_message(mailbox(), original)
    assert got["From"] == "Help Desk <desk@example.com>"
    assert got["Reply-To"] == "replies@example.com"
    assert got["Message-ID"].endswith("@example.com>")
    assert got["Date"]
    assert original["From"] is None


def test_an_alias_of_the_mailbox_may_be_the_sender_and_is_kept():
    got = prepare_message(mailbox(), message(From="Billing <BILLING@example.com>"))
    assert got["From"] == "Billing <BILLING@example.com>"


@pytest.mark.parametrize("header", ["From", "Sender"])
def test_a_foreign_sender_is_refused_before_anything_is_sent(header):
    with pytest.raises(ConfigError) as refused:
        prepare_message(mailbox(), message(**{header: "ceo@example.com"}))
    assert refused.value.field == f"message.{header}"
    assert "ceo@example.com" in str(refused.value)
    assert "billing@example.com" in str(refused.value)


def test_no_address_and_no_from_is_a_config_error():
    with pytest.raises(ConfigError, match="addresses"):
        prepare_message(mailbox(login="desk", addresses=()), message())
