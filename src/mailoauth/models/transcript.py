"""``TranscriptLine``: one redacted line of a mailbox's debug transcript (a value the
store keeps in a bounded ring; :mod:`mailoauth.mail.transcript` makes them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["TranscriptLine"]


@dataclass(frozen=True)
class TranscriptLine:
    """When, which connection, which protocol, who said it (``C`` we, ``S`` the server,
    ``*`` a note), and the already redacted text."""

    at: datetime
    session: str
    protocol: str
    direction: str
    text: str

    def render(self) -> str:
        stamp = f"{self.at:%Y-%m-%d %H:%M:%S.%f}"[:-3]
        return f"{stamp} {self.protocol} #{self.session} {self.direction}: {self.text}"
