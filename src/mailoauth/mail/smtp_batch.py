"""Many messages over one SMTP login (RFC 5321 §3.3: a session may hold any number of
mail transactions): ``send_messages`` for a caller's batch (stops at the first refusal),
``send_each`` for the outbound queue (one outcome per message, the rest still go). Both
reuse :mod:`.smtp`'s session, wire and transfer steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage
from typing import NamedTuple

from mailoauth.errors import ConfigError, MailError, MessageRefused
from mailoauth.mail.smtp import (
    _check_addresses,
    _transfer,
    _Wire,
    _wire,
    _wire_to,
    envelope_of,
    session,
)
from mailoauth.mail.transcript import Transcript
from mailoauth.models import OutgoingSettings
from mailoauth.secret import Secret

__all__ = ["Envelope", "Outcome", "send_each", "send_messages"]


async def send_messages(
    settings: OutgoingSettings,
    user: str,
    token: Secret,
    messages: Sequence[EmailMessage],
    *,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    transcript: Transcript | None = None,
) -> None:
    """Send ``messages`` in order over one connection and one login (RFC 5321 §3.3: a
    session may hold any number of mail transactions), raising as :func:`send_message`
    does. Every message is checked (addresses, SMTPUTF8, ``SIZE``) before the login, so
    one that cannot be sent stops the batch before anything goes. A message the server
    refuses stops the batch there: those before it were sent, it and those after were
    not; the exception carries a note saying how many went."""
    for message in messages:
        envelope_of(message)  # bad input fails before connecting
    if not messages:
        return
    sent = 0
    try:
        async with session(
            settings, token, ca_file=ca_file, timeout=timeout, transcript=transcript
        ) as open_:
            host, port = open_.host, open_.port
            wires = [_wire(open_.smtp, message, host, port) for message in messages]
            await open_.login(mechanism, user, token)
            for wire in wires:
                await _transfer(open_.smtp, wire, host, port)
                sent += 1
    except MailError as exc:
        if sent:
            exc.add_note(f"{sent} of {len(messages)} messages were sent before this one")
        raise


class Envelope(NamedTuple):
    """A message and the envelope it goes with (MAIL FROM, RCPT TO)."""

    message: EmailMessage
    sender: str
    recipients: list[str]


#: ``outcome(index, error)``: message ``index`` was accepted (``error`` None) or refused.
Outcome = Callable[[int, MessageRefused | ConfigError | None], Awaitable[None]]


async def send_each(
    settings: OutgoingSettings,
    user: str,
    token: Secret,
    messages: Sequence[Envelope],
    outcome: Outcome,
    *,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    transcript: Transcript | None = None,
) -> None:
    """Send ``messages`` over one connection and one login, reporting each one's outcome
    as soon as it is known: ``outcome(i, None)`` right after the 250 that ends its DATA
    (RFC 5321 §4.1.1.4: the server took responsibility), or the MessageRefused /
    ConfigError that concerns it alone (sender, recipients, size, addresses) while the
    others still go. Whatever concerns the session (connection, login) is raised and
    holds for every message not reported yet; so does an exception from ``outcome``."""
    todo: list[int] = []
    for index, item in enumerate(messages):
        try:
            _check_addresses(item.sender, item.recipients)
        except ConfigError as exc:
            await outcome(index, exc)  # bad input fails before connecting
        else:
            todo.append(index)
    if not todo:
        return
    wires: list[tuple[int, _Wire]] = []
    async with session(
        settings, token, ca_file=ca_file, timeout=timeout, transcript=transcript
    ) as open_:
        host, port = open_.host, open_.port
        for index in todo:
            message, sender, recipients = messages[index]
            try:
                wires.append((index, _wire_to(open_.smtp, message, sender, recipients, host, port)))
            except MessageRefused as exc:  # SMTPUTF8 or SIZE: before the login
                await outcome(index, exc)
        if not wires:
            return
        await open_.login(mechanism, user, token)
        for index, wire in wires:
            try:
                await _transfer(open_.smtp, wire, host, port)
            except MessageRefused as exc:
                await outcome(index, exc)
            else:
                await outcome(index, None)
