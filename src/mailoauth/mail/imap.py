"""Fetch new mail over IMAP with an OAuth2 access token (RFC 9051 / 3501), on
:class:`~mailoauth.mail.stream.MailStream` and the sans-I/O :mod:`mailoauth.protocols.imap`.

A run: the login of :mod:`.imap_session` (greeting, STARTTLS when ``security`` is
starttls, refused if not offered; CAPABILITY; AUTHENTICATE with XOAUTH2 or OAUTHBEARER,
SASL-IR where offered); SELECT the folder (EXAMINE for ``keep``, so
nothing can change there); ``UID SEARCH UID n:*`` for what is newer than the ledger's
cursor; the sizes of what is taken (``RFC822.SIZE``) to cut it into batches of at most
:data:`BATCH_MESSAGES` messages or :data:`BATCH_BYTES`; one ``UID FETCH (UID
BODY.PEEK[])`` per batch (PEEK never sets ``\\Seen``); then, strictly in UID order, per
message: deliver, the after-fetch action, ``ledger.advance`` (the rule of
:mod:`mailoauth.mail.fetched`). LOGOUT at the end; the connection is always closed.

After-fetch actions (``incoming.after_fetch``):

* ``keep``: nothing.
* ``seen``: ``UID STORE uid +FLAGS.SILENT (\\Seen)``.
* ``delete``: ``UID STORE uid +FLAGS.SILENT (\\Deleted)``, then ``UID EXPUNGE uid``
  where the server has UIDPLUS (RFC 4315), which removes exactly that message. Without
  UIDPLUS the only way is plain ``EXPUNGE``, which also removes every other message
  someone marked ``\\Deleted`` in the folder; it is sent once, at the end of the run, so
  the messages of this run stay flagged ``\\Deleted`` until then (and, should the run
  break off, until a later run deletes again: they are not fetched twice meanwhile).
* ``move:FOLDER``: ``UID MOVE`` (RFC 6851) where offered, else ``UID COPY`` plus
  ``delete`` as above. ``NO [TRYCREATE]`` creates the folder and tries once more.

When a handler raises, the run stops: that message and the rest stay new at the server and
are offered again next time. When an action is refused, the message was delivered: the
cursor moves past it (it is not delivered twice) and the run stops with the reason.

A changed UIDVALIDITY voids the cursor: the folder is fetched from the start (noted in
the transcript). Errors name ``host:port`` and what to do; the token is hidden from the
transcript before anything is sent, and never appears in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mailoauth.errors import ConfigError, MailConnectionError, MailError
from mailoauth.mail.fetched import Cursor, Deliver, FetchedMessage, FetchLedger, FetchReport
from mailoauth.mail.imap_session import ImapSession, open_session, temporary
from mailoauth.mail.transcript import Transcript
from mailoauth.models import IncomingSettings
from mailoauth.protocols.imap import (
    Arg,
    ListEntry,
    Raw,
    Tagged,
    decode_mailbox,
    encode_mailbox,
    flag_list,
    sequence_set,
    uids_from,
)
from mailoauth.protocols.imap_commands import MAX_UID
from mailoauth.protocols.imap_fetch import (
    AfterFetch,
    Selected,
    bodies,
    new_uids,
    plan_batches,
    searched,
    sizes,
)
from mailoauth.secret import Secret

__all__ = ["BATCH_BYTES", "BATCH_MESSAGES", "check_imap", "fetch_imap"]

BATCH_MESSAGES: Final = 50
"""At most this many messages per ``UID FETCH`` ..."""
BATCH_BYTES: Final = 8 * 1024 * 1024
"""... and at most this many bytes (by ``RFC822.SIZE``; a bigger message goes alone)."""

# -- fetching ----------------------------------------------------------------------------


class _ActionRefused(MailError):  # noqa: N818 - reads as what happened
    """The server refused an after-fetch action for a message already delivered."""


class _Actions:
    """The after-fetch action, per message (see the module docstring)."""

    def __init__(self, session: ImapSession, action: AfterFetch, folder: str) -> None:
        self.session = session
        self.action = action
        self.folder = folder
        self.expunge_at_end = False

    async def apply(self, uid: int) -> bool:
        """Do the action for ``uid``; False when there is none (keep)."""
        verb = self.action.verb
        if verb == "keep":
            return False
        if verb == "seen":
            await self._must(uid, "UID STORE", sequence_set([uid]), *_add_flag("\\Seen"))
        elif verb == "delete":
            await self._delete(uid)
        else:
            await self._move(uid)
        return True

    async def finish(self) -> Tagged | None:
        """Plain EXPUNGE, once, when ``delete`` had no UIDPLUS."""
        return await self.session.simple("EXPUNGE") if self.expunge_at_end else None

    async def _delete(self, uid: int) -> None:
        await self._must(uid, "UID STORE", sequence_set([uid]), *_add_flag("\\Deleted"))
        if self.session.has("UIDPLUS"):
            await self._must(uid, "UID EXPUNGE", sequence_set([uid]))
        else:
            self.expunge_at_end = True

    async def _move(self, uid: int) -> None:
        verb = "UID MOVE" if self.session.has("MOVE") else "UID COPY"
        target = self.action.wire_target
        reply = await self.session.simple(verb, sequence_set([uid]), target)
        if not reply.ok and reply.code is not None and reply.code.name == "TRYCREATE":
            created = await self.session.simple("CREATE", target)
            if not created.ok and (created.code is None or created.code.name != "ALREADYEXISTS"):
                raise self._refused(uid, created)
            reply = await self.session.simple(verb, sequence_set([uid]), target)
        if not reply.ok:
            raise self._refused(uid, reply)
        if verb == "UID COPY":
            await self._delete(uid)

    async def _must(self, uid: int, verb: str, *args: Arg) -> None:
        reply = await self.session.simple(verb, *args)
        if not reply.ok:
            raise self._refused(uid, reply)

    def _refused(self, uid: int, reply: Tagged) -> _ActionRefused:
        stream = self.session.stream
        return _ActionRefused(
            f"{stream.where} would not {self.action.describe()} (UID {uid} in "
            f"{self.folder!r}: '{reply.describe()}'); the message was delivered and is not "
            "fetched again: check incoming.after_fetch",
            host=stream.host,
            port=stream.port,
            temporary=temporary(reply),
        )


def _add_flag(flag: str) -> tuple[Raw, Raw]:
    return Raw(b"+FLAGS.SILENT"), flag_list([flag])


async def _select(session: ImapSession, folder: str, read_only: bool) -> tuple[int, Selected]:
    verb = "EXAMINE" if read_only else "SELECT"
    reply, untagged = await session.run(session.writer.command(verb, encode_mailbox(folder)))
    if not reply.ok:
        if temporary(reply):
            raise MailConnectionError(
                f"{session.where} cannot open {folder!r} now ('{reply.describe()}'); retry later",
                host=session.stream.host,
                port=session.stream.port,
            )
        raise ConfigError(
            "incoming.folder",
            f"{folder!r} cannot be opened at {session.where} ('{reply.describe()}')",
            "give a folder that exists (the server's folder list has the names), or create it",
        )
    selected = Selected.from_responses(untagged)
    if selected.validity is None:
        raise session.unexpected(f"no UIDVALIDITY for {folder!r} (RFC 9051 §7.1)")
    return selected.validity, selected


async def _last_uid(
    ledger: FetchLedger, folder: str, validity: int, transcript: Transcript, notes: list[str]
) -> int:
    cursor = await ledger.cursor(folder)
    if cursor is None:
        return 0
    position = cursor.position
    if cursor.validity == str(validity) and position.isascii() and position.isdigit():
        return int(position)
    note = (
        f"UIDVALIDITY of {folder!r} is {validity}, the cursor has {cursor.validity!r} "
        f"(position {cursor.position!r}): the UIDs were reassigned, so the folder is "
        "fetched from the start"
    )
    transcript.note(note)
    notes.append(note)
    return 0


async def _new(session: ImapSession, folder: str, last: int) -> list[int]:
    if last >= MAX_UID:
        return []
    command = session.writer.command("UID SEARCH", Raw(b"UID"), uids_from(last + 1))
    reply, untagged = await session.run(command)
    if not reply.ok:
        raise MailError(
            f"{session.where} would not search {folder!r} ('{reply.describe()}'); retry later",
            host=session.stream.host,
            port=session.stream.port,
            temporary=True,
        )
    return new_uids(searched(untagged), last)


async def _batches(session: ImapSession, uids: list[int]) -> list[list[int]]:
    if len(uids) <= 1:
        return [uids] if uids else []
    command = session.writer.command("UID FETCH", sequence_set(uids), Raw(b"(UID RFC822.SIZE)"))
    _, untagged = await session.run(command)
    return plan_batches(uids, sizes(untagged), max_messages=BATCH_MESSAGES, max_bytes=BATCH_BYTES)


@dataclass
class _Run:
    """One fetch run's fixed parts."""

    session: ImapSession
    folder: str
    mailbox: str
    validity: int
    deliver: Deliver
    ledger: FetchLedger
    actions: _Actions
    report: FetchReport

    async def take(self, uids: list[int]) -> None:
        """Download, deliver, act, advance, in UID order; stop at the first trouble."""
        for batch in await _batches(self.session, uids):
            command = self.session.writer.command(
                "UID FETCH", sequence_set(batch), Raw(b"(UID BODY.PEEK[])")
            )
            reply, untagged = await self.session.run(command)
            got = bodies(untagged)
            for uid in batch:
                data = got.pop(uid, None)
                if data is None:
                    self.report.error = (
                        f"{self.session.where} did not send UID {uid} of {self.folder!r} "
                        f"('{reply.describe()}'); it is offered again next time"
                    )
                    return
                if not await self.one(uid, data):
                    return

    async def one(self, uid: int, data: bytes) -> bool:
        message = FetchedMessage(self.mailbox, self.folder, f"{self.validity}.{uid}", data)
        try:
            await self.deliver(message)
        except Exception as exc:  # the handler's refusal: stop, keep the message new
            self.report.error = str(exc) or type(exc).__name__
            self.session.stream.transcript.note(f"the handler did not take UID {uid}; stopping")
            return False
        self.report.delivered.append(message.uid)
        cursor = Cursor(str(self.validity), str(uid))
        try:
            if await self.actions.apply(uid):
                self.report.actions += 1
        except _ActionRefused as exc:
            self.report.error = str(exc)
            await self.ledger.advance(self.folder, cursor)
            return False
        await self.ledger.advance(self.folder, cursor)
        return True


async def fetch_imap(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    *,
    mailbox: str,
    deliver: Deliver,
    ledger: FetchLedger,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    limit: int | None = None,
    transcript: Transcript | None = None,
) -> FetchReport:
    """Deliver the messages of ``settings.folder`` that are newer than the ledger's
    cursor, oldest first, at most ``limit``; see the module docstring for the rules.
    Raises SaslError for a refused login, MailError / RemoteProtocolError for connection
    and protocol trouble, ConfigError for a folder the server cannot open."""
    transcript = transcript or Transcript("imap", enabled=False)
    folder = settings.folder
    action = AfterFetch.parse(settings.after_fetch)
    encode_mailbox(folder)  # a bad name fails before connecting
    session = await open_session(
        settings,
        user,
        token,
        mechanism=mechanism,
        ca_file=ca_file,
        timeout=timeout,
        transcript=transcript,
    )
    report = FetchReport(mailbox, folder)
    try:
        validity, selected = await _select(session, folder, action.read_only)
        last = await _last_uid(ledger, folder, validity, transcript, report.notes)
        new = await _new(session, folder, last) if selected.may_have_new(last) else []
        report.skipped = max(0, selected.exists - len(new))
        actions = _Actions(session, action, folder)
        run = _Run(session, folder, mailbox, validity, deliver, ledger, actions, report)
        await run.take(new if limit is None else new[: max(0, limit)])
        expunged = await actions.finish()
        if expunged is not None and not expunged.ok and report.error is None:
            report.error = f"{session.where} would not EXPUNGE ('{expunged.describe()}')"
        report.remaining = len(new) - len(report.delivered)
        await session.logout()
    finally:
        await session.stream.close()
    return report


async def check_imap(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    *,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    transcript: Transcript | None = None,
) -> list[str]:
    """Log in and return the folder names (``LIST "" "*"``), decoded from modified UTF-7."""
    transcript = transcript or Transcript("imap", enabled=False)
    session = await open_session(
        settings,
        user,
        token,
        mechanism=mechanism,
        ca_file=ca_file,
        timeout=timeout,
        transcript=transcript,
    )
    try:
        reply, untagged = await session.run(session.writer.command("LIST", "", "*"))
        if not reply.ok:
            raise MailError(
                f"{session.where} would not list the folders ('{reply.describe()}'); retry later",
                host=session.stream.host,
                port=session.stream.port,
                temporary=temporary(reply),
            )
        names = [decode_mailbox(r.name) for r in untagged if isinstance(r, ListEntry)]
        await session.logout()
    finally:
        await session.stream.close()
    return names
