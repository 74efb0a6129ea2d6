"""``mailoauth queue list | show | retry | purge | run``: the outbound queue from the shell.

The queue holds what ``mailoauth send --queue`` and the SMTP relay accepted; the
service's scheduler drains it, ``queue run`` does one run by hand. ``show`` prints the
headers, never the body unless asked: a queued message is someone's mail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from mailoauth.cli.context import run_mail, settings_of, store_of
from mailoauth.cli.render import print_json, print_rows, print_table
from mailoauth.errors import ConfigError
from mailoauth.queue import DEFAULT_SCHEDULE, QueuedMessage, QueueStatus

__all__ = ["queue_app", "register_queue_commands"]

queue_app = typer.Typer(
    help="The outbound queue: messages accepted for delivery, their status and retries.",
    no_args_is_help=True,
)


def register_queue_commands(app: typer.Typer) -> None:
    app.add_typer(queue_app, name="queue")


def when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


def _next(entry: QueuedMessage, show: Callable[[datetime | None], str] = when) -> str:
    """The time that matters for the entry's status."""
    match entry.status:
        case QueueStatus.QUEUED:
            return f"next {show(entry.next_attempt_at)}"
        case QueueStatus.SENDING:
            return f"leased until {show(entry.next_attempt_at)}"
        case QueueStatus.SENT:
            return f"sent {show(entry.sent_at)}"
        case _:
            return f"last try {show(entry.last_attempt_at)}"


def _brief(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%m-%d %H:%M}"


def _short(text: str | None, width: int = 80) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _public(entry: QueuedMessage) -> dict[str, Any]:
    fields = dataclasses.asdict(entry)
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}


@queue_app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        list[QueueStatus], typer.Option("--status", help="Only this status (repeat).")
    ] = [],  # noqa: B006
    mailbox: Annotated[str | None, typer.Option(help="Only this mailbox's messages.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The queued messages, newest first: status, attempts, next attempt, last error."""
    with store_of(ctx) as store:
        entries = store.list_outbound(statuses=status, mailbox=mailbox, limit=limit)
    if as_json:
        print_json([_public(entry) for entry in entries])
        return
    if not entries:
        typer.echo("no queued message" + (" matches" if status or mailbox else ""))
        return
    columns = ["id", "mailbox", "status", "tries", "when (UTC)", "to", "subject", "last error"]
    rows = [
        [
            str(e.id),
            e.mailbox,
            e.status.value,
            str(e.attempts),
            _next(e, _brief),
            _short(", ".join(e.recipients), 40),
            _short(e.subject, 40),
            "" if e.status is QueueStatus.SENT else _short(e.last_error),
        ]
        for e in entries
    ]
    print_table("Outbound queue", columns, rows)


@queue_app.command("show")
def show_command(
    ctx: typer.Context,
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The message's queue id.")],
    body: Annotated[bool, typer.Option("--body", help="Also print the body.")] = False,
) -> None:
    """One message: envelope, status, attempts, last error and its headers."""
    with store_of(ctx) as store:
        entry = store.get_outbound(entry_id)
        data = store.outbound_data(entry_id)
    rows = [
        ("id", str(entry.id)),
        ("mailbox", entry.mailbox),
        ("status", f"{entry.status.value} ({_next(entry)})"),
        ("message-id", entry.message_id),
        ("from", entry.sender),
        ("to", ", ".join(entry.recipients)),
        ("size", f"{entry.size} bytes"),
        ("created", when(entry.created_at)),
        ("attempts", f"{entry.attempts} (last {when(entry.last_attempt_at)})"),
        ("last error", entry.last_error or "-"),
    ]
    if entry.status is QueueStatus.SENDING:
        rows.append(("lease", f"{entry.lease_owner} until {when(entry.next_attempt_at)}"))
    print_rows(rows)
    head, _, rest = data.partition(b"\r\n\r\n")
    typer.echo("")
    typer.echo(head.decode("utf-8", "replace").replace("\r\n", "\n"))
    if body:
        typer.echo("")
        typer.echo(rest.decode("utf-8", "replace").replace("\r\n", "\n"))


@queue_app.command("retry")
def retry_command(
    ctx: typer.Context,
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The message's queue id.")],
) -> None:
    """Queue a failed, dead or waiting message again, due now, with a fresh retry window."""
    with store_of(ctx) as store:
        entry = store.retry_outbound(entry_id, now=datetime.now(UTC))
    typer.echo(
        f"message {entry.id} is queued again and due now; `mailoauth queue run` sends it "
        "(so does the service)"
    )


@queue_app.command("purge")
def purge_command(
    ctx: typer.Context,
    entry_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="The message's queue id.")
    ] = None,
    sent_older_than: Annotated[
        float | None,
        typer.Option("--sent-older-than", metavar="DAYS", help="Sent messages this old.", min=0),
    ] = None,
    mailbox: Annotated[
        str | None, typer.Option(help="Every message of this mailbox, sent or not.")
    ] = None,
) -> None:
    """Delete one message, the sent ones older than DAYS, or all of a mailbox's."""
    given = [x for x in (entry_id, sent_older_than, mailbox) if x is not None]
    if len(given) != 1:
        raise ConfigError(
            "purge", "needs exactly one of ID, --sent-older-than or --mailbox", "give one"
        )
    with store_of(ctx) as store:
        if entry_id is not None:
            entry = store.purge_outbound(entry_id)
            typer.echo(f"deleted message {entry.id} ({entry.status.value}) of {entry.mailbox}")
            return
        before = None
        if sent_older_than is not None:
            before = datetime.now(UTC) - timedelta(days=sent_older_than)
        count = store.purge_outbound_where(sent_before=before, mailbox=mailbox)
    typer.echo(f"deleted {count} message(s)")


@queue_app.command("run")
def run_command(
    ctx: typer.Context,
    mailbox: Annotated[str | None, typer.Option(help="Only this mailbox's messages.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many.", min=1)] = None,
    max_age: Annotated[
        float,
        typer.Option("--max-age", metavar="DAYS", help="Give up (dead) after this long.", min=0),
    ] = DEFAULT_SCHEDULE.max_age / timedelta(days=1),
    debug: Annotated[bool, typer.Option("--debug", help="Keep transcripts.")] = False,
) -> None:
    """Deliver what is due now, once, and say what happened."""
    from mailoauth.queue import DrainOptions, drain  # the mail clients: only for a run

    settings = settings_of(ctx)
    schedule = dataclasses.replace(DEFAULT_SCHEDULE, max_age=timedelta(days=max_age))
    options = DrainOptions(schedule=schedule, debug=debug)
    with store_of(ctx) as store:
        report = run_mail(
            settings,
            store,
            lambda s, tokens, http: drain(
                s,
                tokens,
                http,
                ca_file=settings.ca_file,
                limit=limit,
                mailbox=mailbox,
                options=options,
            ),
        )
    typer.echo(str(report))
    for problem in report.problems:
        typer.echo(f"  {problem}")
