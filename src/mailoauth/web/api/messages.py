"""The body of ``POST /api/v1/mailboxes/{name}/send`` and the message it makes.

Either parts (``text`` and/or ``html``: one part, or ``multipart/alternative`` with both)
or a whole RFC 5322 message in ``raw`` (base64), never both. ``to`` / ``cc`` / ``bcc`` /
``subject`` set those headers, replacing a raw message's own, as ``mailoauth send --file``
does. From, Message-ID and Date are filled in from the mailbox
(:func:`~mailoauth.mail.sending.prepare_message`); a From or Sender that is not one of
the mailbox's addresses is refused.

Anything about the message that cannot go out — a bad address, a line break in the
subject, undecodable ``raw``, a header the email package cannot write — is a
:class:`~mailoauth.errors.ConfigError` (400) naming the field, found before the message
is queued or sent.
"""

from __future__ import annotations

import binascii
import email.errors
import email.policy
from base64 import b64decode
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, getaddresses
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from mailoauth.errors import ConfigError
from mailoauth.mail.sending import prepare_message
from mailoauth.mail.smtp import envelope_of
from mailoauth.models import Mailbox
from mailoauth.validate import check_address, has_control

__all__ = ["MAX_MESSAGE_BYTES", "SendRequest", "build_message", "ready_to_send"]

#: The largest message accepted, as the relay's SIZE (and the big providers' ~35 MB).
MAX_MESSAGE_BYTES: Final = 35 * 1024 * 1024

Recipient = Annotated[
    StrictStr,
    Field(
        max_length=998,
        description="An address, optionally with a name: 'bob@example.com' or "
        "'Bob <bob@example.com>'.",
    ),
]


class SendRequest(BaseModel):
    """A message to send: parts or ``raw``, and its recipients."""

    model_config = ConfigDict(extra="forbid")

    to: list[Recipient] = Field(default_factory=list)
    cc: list[Recipient] = Field(default_factory=list)
    bcc: list[Recipient] = Field(default_factory=list)
    subject: StrictStr | None = None
    text: StrictStr | None = Field(None, description="The plain-text body.")
    html: StrictStr | None = Field(None, description="The HTML body.")
    raw: StrictStr | None = Field(
        None, description="A whole RFC 5322 message, base64; instead of text and html."
    )
    debug: StrictBool = Field(
        False, description="?sync=true only: keep a redacted transcript of this send."
    )


_FAULTS: Final = (ValueError, TypeError, LookupError, email.errors.MessageError)


def _recipients(field: str, values: list[str]) -> str:
    shown = []
    for i, value in enumerate(values):
        parsed = getaddresses([value])
        if len(parsed) != 1 or has_control(value):
            raise ConfigError(f"{field}[{i}]", f"{value!r} is not one address", "give one per item")
        name, address = parsed[0]
        check_address(f"{field}[{i}]", address)
        shown.append(formataddr((name, address)))
    return ", ".join(shown)


def _from_raw(text: str) -> EmailMessage:
    try:
        data = b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("raw", "is not base64", "encode the whole message with base64") from None
    if len(data) > MAX_MESSAGE_BYTES:
        raise ConfigError(
            "raw", f"is {len(data)} bytes, over {MAX_MESSAGE_BYTES}", "send a smaller message"
        )
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)  # the default policy's message class
    return message


def build_message(request: SendRequest) -> EmailMessage:
    """The message ``request`` describes (headers From, Message-ID, Date still open)."""
    if request.raw is not None:
        if request.text is not None or request.html is not None:
            raise ConfigError("raw", "is given with text or html", "send either raw or parts")
        message = _from_raw(request.raw)
    else:
        if request.text is None and request.html is None:
            raise ConfigError("text", "is missing", "give text, html, or a whole message in raw")
        message = EmailMessage()
        try:
            if request.text is not None:
                message.set_content(request.text)
            if request.html is not None:
                if request.text is None:
                    message.set_content(request.html, subtype="html")
                else:
                    message.add_alternative(request.html, subtype="html")
        except _FAULTS as exc:
            raise ConfigError("text", f"cannot be put in a message ({exc})", "fix it") from None
    for header, values in (("To", request.to), ("Cc", request.cc), ("Bcc", request.bcc)):
        if values:
            del message[header]
            message[header] = _recipients(header.lower(), values)
    if request.subject is not None:
        if has_control(request.subject):
            raise ConfigError(
                "subject", "contains line breaks or control characters", "remove them"
            )
        del message["Subject"]
        message["Subject"] = request.subject
    if not any(message[h] for h in ("To", "Cc", "Bcc")):
        raise ConfigError("to", "is missing", "name at least one recipient in to, cc or bcc")
    return message


def ready_to_send(mailbox: Mailbox, message: EmailMessage) -> EmailMessage:
    """``message`` with its headers completed for ``mailbox``, proven to serialise and to
    have an envelope — or a ConfigError saying what is wrong with it."""
    try:
        prepared = prepare_message(mailbox, message)
        size = len(prepared.as_bytes(policy=email.policy.SMTPUTF8))
        envelope_of(prepared)
    except ConfigError:
        raise
    except _FAULTS as exc:
        raise ConfigError(
            "message", f"cannot be sent as given ({exc})", "check its headers and addresses"
        ) from None
    if size > MAX_MESSAGE_BYTES:
        raise ConfigError("message", f"is {size} bytes, over {MAX_MESSAGE_BYTES}", "send less")
    return prepared
