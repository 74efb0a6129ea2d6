"""Debug transcripts: the protocol conversation of one mailbox, with every secret removed.

A transport records what crossed the wire through one :class:`Transcript` per
connection: ``client(bytes)`` for what we sent, ``server(bytes)`` for what came back,
``note(text)`` for what happened beside the wire (an HTTP request line, a reconnect).
Transcripts are written for people debugging a mailbox (the "email debug" switch of
helpdesk products), and are safe to paste into a support ticket:

* **Structural redaction.** A client line that carries credentials keeps only its verb
  and mechanism: ``AUTH XOAUTH2 [redacted 312 bytes]``, ``a1 AUTHENTICATE OAUTHBEARER
  [redacted …]``, ``a2 LOGIN [redacted …]``, ``PASS [redacted …]``. Inside
  :meth:`Transcript.authenticating` every client line is redacted whole (SASL
  continuations are bare base64 of the token).
* **Known values.** Every value given to :meth:`Transcript.hide` (the access token, a
  relay password) is replaced wherever it appears, in clear or in base64.
* **Bounded.** A line keeps at most :data:`MAX_LINE` characters and one chunk at most
  :data:`MAX_LINES_PER_CHUNK` lines (a message body shows its head, then how many bytes
  followed), so a 20 MB attachment does not become a 20 MB transcript.

No I/O here: the owner of the transcript hands :attr:`Transcript.lines` to the store
(``Store.append_transcript``), which keeps a bounded ring per mailbox; ``mailoauth debug
MAILBOX`` reads it back.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

from mailoauth.models import TranscriptLine
from mailoauth.secret import Secret

__all__ = [
    "MAX_LINE",
    "MAX_LINES_PER_CHUNK",
    "REDACTED",
    "Transcript",
    "TranscriptLine",
]

MAX_LINE: Final = 1000
MAX_LINES_PER_CHUNK: Final = 40
REDACTED: Final = "[redacted]"

CLIENT: Final = "C"
SERVER: Final = "S"
NOTE: Final = "*"

# Client lines whose arguments are credentials, whatever else is going on:
# SMTP "AUTH MECH payload", IMAP "tag AUTHENTICATE MECH payload" / "tag LOGIN user pass",
# POP3 "AUTH MECH payload" / "PASS secret" / "APOP user digest".
_CREDENTIALS: Final = re.compile(
    r"^(?P<keep>(?:\S+ )?(?:AUTH|AUTHENTICATE) \S+|(?:\S+ )?LOGIN|PASS|APOP)(?P<rest>\s.*)?$",
    re.IGNORECASE,
)

_sessions = itertools.count(1)


def _hidden(size: int) -> str:
    return f"[redacted {size} bytes]"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Transcript:
    """The redacted record of one connection (or one HTTPS exchange)."""

    def __init__(
        self,
        protocol: str,
        *,
        enabled: bool = True,
        clock: Callable[[], datetime] = _utcnow,
        session: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.enabled = enabled
        self.session = session or str(next(_sessions))
        self._clock = clock
        self._hidden: list[str] = []
        self._authenticating = False
        self.lines: list[TranscriptLine] = []

    # --- what the transport calls -------------------------------------------------

    def hide(self, value: Secret | str) -> None:
        """Never show ``value`` (nor its base64) in this transcript."""
        text = value.reveal() if isinstance(value, Secret) else value
        if len(text) < 4:
            return  # too short to search for without mangling ordinary text
        for form in (text, base64.b64encode(text.encode()).decode()):
            if form not in self._hidden:
                self._hidden.append(form)

    @contextmanager
    def authenticating(self) -> Iterator[None]:
        """Every client line inside is a credential and is redacted whole."""
        self._authenticating = True
        try:
            yield
        finally:
            self._authenticating = False

    def client(self, data: bytes) -> None:
        self._record(CLIENT, data)

    def server(self, data: bytes) -> None:
        self._record(SERVER, data)

    def note(self, text: str) -> None:
        if self.enabled:
            self._add(NOTE, self._scrub(text))

    # --- redaction ----------------------------------------------------------------

    def _record(self, direction: str, data: bytes) -> None:
        if not self.enabled or not data:
            return
        text = data.decode("utf-8", "replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for line in lines[:MAX_LINES_PER_CHUNK]:
            self._add(direction, self._redact(direction, line.rstrip("\r")))
        if len(lines) > MAX_LINES_PER_CHUNK:
            shown = sum(len(line) + 1 for line in lines[:MAX_LINES_PER_CHUNK])
            self._add(direction, f"[… {len(data) - shown} more bytes]")

    def _redact(self, direction: str, line: str) -> str:
        if direction == CLIENT:
            if self._authenticating:
                return f"{REDACTED[:-1]} {len(line)} bytes]" if line else line
            match = _CREDENTIALS.match(line)
            if match and match.group("rest"):
                return (
                    f"{match.group('keep')} {REDACTED[:-1]} {len(match.group('rest')) - 1} bytes]"
                )
        return self._scrub(line)

    def _scrub(self, text: str) -> str:
        for hidden in self._hidden:
            text = text.replace(hidden, REDACTED)
        if len(text) > MAX_LINE:
            text = f"{text[:MAX_LINE]}[… {len(text) - MAX_LINE} more characters]"
        return text

    def _add(self, direction: str, text: str) -> None:
        self.lines.append(
            TranscriptLine(self._clock(), self.session, self.protocol, direction, text)
        )
