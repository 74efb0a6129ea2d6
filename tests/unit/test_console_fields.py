"""The console's forms as tables (``web/console/fields.py``) and which saved changes
invalidate a grant (``web/console/regrant.py``): pure, values in and values out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailoauth.configfile import build_mailbox, build_provider
from mailoauth.errors import ConfigError
from mailoauth.models import IncomingSettings, Mailbox, OutgoingSettings
from mailoauth.providers import GrantType
from mailoauth.secret import Secret
from mailoauth.web.api.bodies import literal_secret
from mailoauth.web.console.fields import (
    form_errors,
    mailbox_raw,
    mailbox_values,
    provider_raw,
    provider_values,
)
from mailoauth.web.console.regrant import reasons
from tests import store_samples as s


def desk() -> Mailbox:
    return Mailbox(
        name="desk",
        provider="corp",
        login="desk@example.com",
        addresses=("desk@example.com", "help@example.com"),
        display_name="Help desk",
        outgoing=OutgoingSettings(host="smtp.example.com", alternate_host="smtp2.example.com"),
        incoming=IncomingSettings(
            host="imap.example.com", after_fetch="move:Done", poll_interval=15
        ),
        debug=True,
    )


@pytest.mark.parametrize("provider", s.all_providers(), ids=lambda p: p.name)
def test_a_stored_provider_shown_and_saved_unchanged_is_the_same_provider(provider):
    values = provider_values(provider)
    assert not {"client_secret", "private_key"} & set(values)  # never on the page
    raw = provider_raw(values, provider)
    # The form leaves the secrets out; the API's bodies put the stored ones back.
    raw |= {k: getattr(provider, k).reveal() for k in ("client_secret", "private_key")
            if getattr(provider, k) is not None}  # fmt: skip
    assert build_provider(provider.name, raw, resolver=literal_secret) == provider


def test_a_stored_mailbox_shown_and_saved_unchanged_is_the_same_mailbox():
    mailbox = desk()
    raw = mailbox_raw(mailbox_values(mailbox), mailbox)
    assert raw["debug"] is True  # the form does not show it: it stays
    assert build_mailbox("desk", raw, lambda _: s.generic(), resolver=literal_secret) == mailbox


def test_fields_that_do_not_apply_are_left_out_whatever_the_browser_sent():
    form = {"kind": "google", "client_id": "c", "client_auth": "client_secret_post",
            "token_url": "https://evil.example/t", "tenant": "x", "scopes": "a b"}  # fmt: skip
    assert provider_raw(form, None) == {"kind": "google", "client_id": "c",
                                        "client_auth": "client_secret_post"}  # fmt: skip
    mailbox = mailbox_raw(
        {"provider": "corp", "login": "a@b.example", "grant": "authorization_code",
         "password": "typed", "outgoing.transport": "graph", "outgoing.security": "ssl",
         "outgoing.ehlo_name": "x", "incoming.transport": ""},
        None,
    )  # fmt: skip
    assert "password" not in mailbox
    assert mailbox["outgoing"] == {"transport": "graph"}
    assert "incoming" not in mailbox


def test_numbers_are_checked_before_the_model_sees_them():
    with pytest.raises(ConfigError) as caught:
        mailbox_raw({"outgoing.transport": "smtp", "outgoing.port": "58 7"}, None)
    errors = form_errors(caught.value, "mailboxes.desk.")
    assert errors.fields == {
        "outgoing.port": "'58 7' is not a whole number; write digits only, e.g. 587"
    }


def test_errors_name_the_form_field():
    error = ConfigError("mailboxes.desk.addresses[1]", "'x' is not an email address", "fix it")
    assert form_errors(error, "mailboxes.desk.").fields == {
        "addresses": "'x' is not an email address; fix it"
    }
    key = ConfigError("mailboxes.desk.service_account_key", "is required", "import it")
    assert set(form_errors(key, "mailboxes.desk.").fields) == {"service_account_json"}


def test_what_invalidates_a_grant_and_what_does_not():
    mailbox, provider = desk(), s.generic()
    same = (mailbox, provider)
    assert reasons(same, same) == []
    assert reasons(same, (mailbox, replace(provider, client_secret=Secret("new")))) == []
    assert reasons(same, (replace(mailbox, display_name="x"), provider)) == []
    assert reasons(same, (mailbox, replace(provider, client_id="other"))) == [
        "the provider's client id changed"
    ]
    assert reasons(same, (replace(mailbox, scopes=("mail",)), provider)) == []  # fewer: fine
    assert reasons(same, (replace(mailbox, scopes=("mail", "imap")), provider)) == [
        "it now asks for scope(s) imap"
    ]
    assert reasons(same, (replace(mailbox, login="other@example.com"), provider)) == [
        "its login changed from desk@example.com to other@example.com"
    ]
    password = replace(mailbox, grant=GrantType.CLIENT_CREDENTIALS)
    assert reasons(same, (password, provider)) == ["its grant type changed to client_credentials"]
    moved = replace(mailbox, provider="google-main")
    assert (
        reasons(same, (moved, s.google()))[0] == "it now uses provider google-main instead of corp"
    )
