"""``mailoauth send | fetch | test | debug``: mail from the shell, through the same
:mod:`mailoauth.mail` functions the service and the library use.

Each command is one short asyncio run with one store, one HTTP client (trusting the
system's CAs plus ``MAILOAUTH_CA_FILE``) and one token service; refreshes still in flight
are drained before the loop ends, so a rotated refresh token is never lost.
"""

from __future__ import annotations

import mimetypes
import sys
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Annotated

import typer

from mailoauth.cli.context import run_mail, settings_of, store_of
from mailoauth.errors import ConfigError, MailError

__all__ = ["register_mail_commands"]


def register_mail_commands(app: typer.Typer) -> None:
    app.command("send")(send_command)
    app.command("fetch")(fetch_command)
    app.command("test")(check_command)
    app.command("debug")(debug_command)


# --- send -------------------------------------------------------------------------


def _message(
    to: list[str],
    cc: list[str],
    bcc: list[str],
    subject: str | None,
    body: str | None,
    file: Path | None,
    attach: list[Path],
) -> EmailMessage:
    if body is not None and file is not None:
        raise ConfigError("--body", "and --file are both given", "use one of them")
    if file is not None:
        try:
            data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        except OSError as exc:
            raise ConfigError("--file", f"{file} cannot be read ({exc.strerror})", "") from None
        message = BytesParser(policy=policy.default).parsebytes(data)
        assert isinstance(message, EmailMessage)
    else:
        message = EmailMessage()
        if body is None:
            if sys.stdin.isatty():
                typer.echo("Type the message, then Ctrl-D:", err=True)
            body = sys.stdin.read()
        message.set_content(body)
    for header, values in (("To", to), ("Cc", cc), ("Bcc", bcc)):
        if values:
            del message[header]
            message[header] = ", ".join(values)
    if subject is not None:
        del message["Subject"]
        message["Subject"] = subject
    for path in attach:
        _attach(message, path)
    if not any(message[h] for h in ("To", "Cc", "Bcc")):
        raise ConfigError("--to", "is missing", "name at least one recipient")
    return message


def _attach(message: EmailMessage, path: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError("--attach", f"{path} cannot be read ({exc.strerror})", "") from None
    kind, _ = mimetypes.guess_type(path.name)
    maintype, _, subtype = (kind or "application/octet-stream").partition("/")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)


def send_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The mailbox to send from.")],
    to: Annotated[list[str], typer.Option("--to", help="Recipient (repeat).")] = [],  # noqa: B006
    cc: Annotated[list[str], typer.Option("--cc", help="Copy (repeat).")] = [],  # noqa: B006
    bcc: Annotated[list[str], typer.Option("--bcc", help="Blind copy (repeat).")] = [],  # noqa: B006
    subject: Annotated[str | None, typer.Option(help="Subject line.")] = None,
    body: Annotated[
        str | None, typer.Option(help="Plain-text body (default: read from stdin).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A whole message (.eml); - for stdin.")
    ] = None,
    attach: Annotated[list[Path], typer.Option("--attach", help="Attach a file (repeat).")] = [],  # noqa: B006
    debug: Annotated[bool, typer.Option("--debug", help="Keep a transcript.")] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue", help="Store it durably first, then try; retried later if it must wait."
        ),
    ] = False,
) -> None:
    """Send a message from a mailbox (From, Message-ID and Date are filled in)."""
    from mailoauth.mail.sending import send

    message = _message(to, cc, bcc, subject, body, file, attach)
    settings = settings_of(ctx)
    if queue:
        _send_queued(ctx, name, message, debug)
        return
    with store_of(ctx) as store:
        sent = run_mail(
            settings,
            store,
            lambda s, tokens, http: send(
                s, tokens, name, message, http=http, ca_file=settings.ca_file, debug=debug
            ),
        )
    count = len(getaddresses([str(v) for h in ("To", "Cc", "Bcc") for v in sent.get_all(h, [])]))
    typer.echo(f"sent {sent['Message-ID']} from {name} to {count} recipient(s)")


def _send_queued(ctx: typer.Context, name: str, message: EmailMessage, debug: bool) -> None:
    """Accept into the queue (durable when this returns), then one delivery run for the
    mailbox. Exit 0 once queued, unless the server refused the message for good."""
    from mailoauth.queue import DrainOptions, QueueStatus, drain, enqueue

    settings = settings_of(ctx)
    with store_of(ctx) as store:
        entry = enqueue(store, name, message)
        typer.echo(
            f"queued {entry.id}: {entry.message_id} from {name} "
            f"to {len(entry.recipients)} recipient(s)"
        )
        options = DrainOptions(debug=debug)
        run_mail(
            settings,
            store,
            lambda s, tokens, http: drain(
                s, tokens, http, ca_file=settings.ca_file, mailbox=name, options=options
            ),
        )
        after = store.get_outbound(entry.id)
    if after.status is QueueStatus.SENT:
        typer.echo(f"sent {entry.id}")
    elif after.status in (QueueStatus.FAILED, QueueStatus.DEAD):
        raise MailError(f"message {entry.id} will not be sent: {after.last_error}")
    else:
        typer.echo(
            f"not sent yet: {after.last_error or 'another run is sending it'}; it stays "
            f"queued and is tried again from {after.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(`mailoauth queue show {entry.id}`)"
        )


# --- fetch ------------------------------------------------------------------------


def fetch_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The mailbox to fetch.")],
    maildir: Annotated[
        Path | None, typer.Option("--maildir", help="Deliver into this Maildir instead.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many messages.", min=1)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Keep a transcript.")] = False,
) -> None:
    """Fetch new mail into the mailbox's deliver target (or --maildir), then do its
    after-fetch action; nothing is fetched twice."""
    from mailoauth.mail.fetching import fetch
    from mailoauth.mail.handlers import maildir_handler

    settings = settings_of(ctx)
    deliver = maildir_handler(maildir.absolute()) if maildir is not None else None
    with store_of(ctx) as store:
        report = run_mail(
            settings,
            store,
            lambda s, tokens, http: fetch(
                s,
                tokens,
                name,
                http=http,
                deliver=deliver,
                limit=limit,
                ca_file=settings.ca_file,
                debug=debug,
            ),
        )
    left = f"; {report.remaining} left" if report.remaining else ""
    typer.echo(f"fetched {len(report.delivered)} message(s) from {name}/{report.folder}{left}")
    if report.error:
        typer.echo(f"error: stopped early: {report.error}", err=True)
        raise typer.Exit(1)


# --- test -------------------------------------------------------------------------


def check_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The mailbox to check.")],
    send_to: Annotated[
        str | None, typer.Option("--send-to", help="Also send a test message there.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Keep a transcript.")] = False,
) -> None:
    """Check the whole chain: token, connect, TLS, AUTH, (test mail), mailbox login."""
    from mailoauth.mail.checking import check

    settings = settings_of(ctx)
    with store_of(ctx) as store:
        mailbox = store.get_mailbox(name)
        steps = run_mail(
            settings,
            store,
            lambda s, tokens, http: check(
                s,
                tokens,
                mailbox,
                http=http,
                send_to=send_to,
                ca_file=settings.ca_file,
                debug=debug,
            ),
        )
    for step in steps:
        typer.echo(f"{'ok  ' if step.ok else 'FAIL'}  {step.name:<16} {step.detail}")
    if not all(step.ok for step in steps):
        raise typer.Exit(1)


# --- debug ------------------------------------------------------------------------


def debug_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The mailbox.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines.", min=1)] = 200,
    on: Annotated[bool, typer.Option("--on", help="Record every operation from now.")] = False,
    off: Annotated[bool, typer.Option("--off", help="Stop recording.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Delete the transcript.")] = False,
) -> None:
    """Show the mailbox's redacted protocol transcript (newest last); --on / --off switch
    recording for every operation, --debug on a command records just that one."""
    if on and off:
        raise ConfigError("--on", "and --off are both given", "use one of them")
    with store_of(ctx) as store:
        mailbox = store.get_mailbox(name)
        if on or off:
            store.put_mailbox(replace(mailbox, debug=on))
            typer.echo(f"debug transcripts {'on' if on else 'off'} for mailbox {name}")
            return
        if clear:
            typer.echo(f"deleted {store.clear_transcript(name)} transcript line(s) of {name}")
            return
        found = store.read_transcript(name, limit=lines)
    if not found:
        hint = "" if mailbox.debug else f" (recording is off: `mailoauth debug {name} --on`)"
        typer.echo(f"no transcript for mailbox {name}{hint}", err=True)
        return
    for line in found:
        typer.echo(line.render())
