"""The API's bodies and views follow the models (no field list to keep in step by hand),
bodies mean what `mailoauth apply` tables mean, secrets are write-only, a send body
becomes the message it describes or a ConfigError naming the field, and every error of
ours maps to a status that is not 500."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mailoauth import errors
from mailoauth.models import IncomingSettings, Mailbox, OutgoingSettings, Provider
from mailoauth.providers import ProviderKind
from mailoauth.secret import Secret
from mailoauth.web.api.bodies import literal_secret, mailbox_from_body, provider_from_body
from mailoauth.web.api.errors import _status
from mailoauth.web.api.messages import SendRequest, build_message
from mailoauth.web.api.schemas import MailboxBody, MailboxView, ProviderBody, ProviderView
from mailoauth.web.api.views import provider_view


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_bodies_and_views_have_exactly_the_models_fields():
    assert set(ProviderBody.model_fields) == _names(Provider) - {"name"}
    assert set(MailboxBody.model_fields) == _names(Mailbox) - {"name"} | {"service_account_json"}
    assert set(ProviderView.model_fields) == _names(Provider) | {
        "effective_redirect_uri",
        "endpoints",
    }
    assert set(MailboxView.model_fields) >= _names(Mailbox)
    outgoing = MailboxBody.model_fields["outgoing"].annotation
    inner = next(a for a in outgoing.__args__ if a is not type(None))  # type: ignore[union-attr]
    assert set(inner.model_fields) == _names(OutgoingSettings)
    incoming = MailboxBody.model_fields["incoming"].annotation
    inner = next(a for a in incoming.__args__ if a is not type(None))  # type: ignore[union-attr]
    assert set(inner.model_fields) == _names(IncomingSettings)


def test_the_schema_marks_secrets_write_only_and_is_strict_like_toml():
    schema = ProviderBody.model_json_schema()
    secret = schema["properties"]["client_secret"]
    assert secret.get("writeOnly") or any(s.get("writeOnly") for s in secret.get("anyOf", []))
    assert schema["additionalProperties"] is False
    with pytest.raises(ValidationError):
        MailboxBody.model_validate({"provider": "p", "login": "a@b.c", "outgoing": {"port": "587"}})
    with pytest.raises(ValidationError):
        ProviderBody.model_validate({"kind": "google", "client_id": 5})


GOOGLE = {"kind": "google", "client_id": "cid", "client_secret": "GOCSPX-abc"}


def test_a_body_builds_what_the_toml_table_builds():
    provider = provider_from_body("g", ProviderBody.model_validate(GOOGLE), None)
    assert provider.kind is ProviderKind.GOOGLE
    assert provider.client_secret == Secret("GOCSPX-abc")
    body = MailboxBody.model_validate(
        {"provider": "g", "login": "a@example.com", "outgoing": {}, "incoming": {}}
    )
    mailbox = mailbox_from_body("m", body, None, lambda name: provider)
    assert mailbox.outgoing is not None
    assert mailbox.outgoing.host == "smtp.gmail.com"
    assert mailbox.incoming is not None
    assert mailbox.incoming.port == 993


def test_secrets_left_out_are_kept_null_removes_them_references_are_refused():
    stored = provider_from_body("g", ProviderBody.model_validate(GOOGLE), None)
    edited = ProviderBody.model_validate({"kind": "google", "client_id": "other"})
    kept = provider_from_body("g", edited, stored)
    assert kept.client_secret == Secret("GOCSPX-abc")
    assert kept.client_id == "other"
    cleared = ProviderBody.model_validate(
        {"kind": "google", "client_id": "cid", "client_secret": None}
    )
    with pytest.raises(errors.ConfigError, match="client_secret: is required"):
        provider_from_body("g", cleared, stored)
    for reference in ("env:HOME", "file:/etc/passwd"):
        body = ProviderBody.model_validate({**GOOGLE, "client_secret": reference})
        with pytest.raises(errors.ConfigError, match="send the value itself"):
            provider_from_body("g", body, None)
    assert literal_secret("x", "literal:env:HOME") == Secret("env:HOME")


def test_views_show_secrets_as_set_only():
    provider = provider_from_body("g", ProviderBody.model_validate(GOOGLE), None)
    view = provider_view(provider, "https://mail.example.com")
    assert view["client_secret"] == {"set": True}
    assert view["private_key"] == {"set": False}
    assert "GOCSPX-abc" not in repr(view)
    ProviderView.model_validate(view)  # the answer fits its documented schema


# --- the send body ----------------------------------------------------------------------


def test_parts_become_one_message_with_the_recipients_given():
    message = build_message(
        SendRequest(to=["Bob <bob@example.org>"], cc=["c@example.org"], subject="Hi",
                    text="plain", html="<b>rich</b>")
    )  # fmt: skip
    assert message["To"] == "Bob <bob@example.org>"
    assert message["Cc"] == "c@example.org"
    assert message.get_content_type() == "multipart/alternative"
    html_only = build_message(SendRequest(bcc=["b@example.org"], html="<i>x</i>"))
    assert html_only.get_content_type() == "text/html"


def test_raw_messages_keep_their_headers_unless_replaced():
    raw = base64.b64encode(b"To: a@example.org\r\nSubject: S\r\nX-Tag: 1\r\n\r\nbody\r\n").decode()
    message = build_message(SendRequest(raw=raw, to=["b@example.org"]))
    assert message["To"] == "b@example.org"
    assert message["X-Tag"] == "1"


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"to": ["bob@example.org"]}, "text"),
        ({"text": "x"}, "to"),
        ({"to": ["not an address"], "text": "x"}, "to[0]"),
        ({"to": ["a@example.org, b@example.org"], "text": "x"}, "to[0]"),
        ({"to": ["a@example.org"], "subject": "a\nBcc: c@example.org", "text": "x"}, "subject"),
        ({"to": ["a@example.org"], "raw": "not base64!"}, "raw"),
        ({"to": ["a@example.org"], "raw": "", "text": "x"}, "raw"),
    ],
)
def test_a_send_body_that_cannot_be_a_message_names_the_field(
    request_fields: dict[str, Any], field: str
):
    with pytest.raises(errors.ConfigError) as refused:
        build_message(SendRequest(**request_fields))
    assert refused.value.field == field


@given(
    to=st.lists(st.text(max_size=40), max_size=3),
    subject=st.one_of(st.none(), st.text(max_size=60)),
    text=st.one_of(st.none(), st.text(max_size=60)),
)
def test_any_send_body_is_a_message_or_a_config_error(
    to: list[str], subject: str | None, text: str | None
):
    with contextlib.suppress(errors.ConfigError):
        build_message(SendRequest(to=to, subject=subject, text=text))


# --- errors → statuses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ConfigError("f", "bad"), 400),
        (errors.NotFoundError("mailbox", "x"), 404),
        (errors.InUseError("used"), 409),
        (errors.AuthorizationNeeded("m", "refused", "authorize it"), 409),
        (errors.ProviderRejected("invalid_grant"), 502),
        (errors.ProviderUnavailable("down", retry_after=3), 503),
        (errors.SaslError("refused"), 502),
        (errors.SaslError("try later", temporary=True), 503),
        (errors.RecipientsRefused("no", refused={"a": "550"}), 502),
        (errors.MailConnectionError("refused", host="h", port=25), 503),
        (errors.MailConnectionError("bad certificate", tls=True), 502),
        (errors.StoreError("db down"), 503),
        (errors.SecretKeyError("wrong key"), 503),
        (errors.RemoteProtocolError("garbage"), 502),
        (errors.LocalProtocolError("control character"), 400),
    ],
)
def test_every_error_of_ours_has_a_status_that_is_not_500(
    error: errors.MailoauthError, status: int
):
    assert _status(error)[0] == status
