"""The decisions of an IMAP fetch run that need no I/O: which UIDs are new, how to cut
them into ``UID FETCH`` batches, and what an after-fetch action is.

``UID SEARCH UID n:*`` (RFC 9051 §6.4.4, §6.4.9) matches the folder's last message even
when its UID is below n (``*`` is the highest UID, and ``n:*`` is the same as ``*:n``),
so the answer is filtered to UIDs above the cursor. Batches keep to a message count and
a byte budget from ``RFC822.SIZE``; a message above the budget travels alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from mailoauth.errors import ConfigError
from mailoauth.protocols.imap_events import Exists, Fetch, Response, Search, Status
from mailoauth.protocols.imap_utf7 import encode_mailbox

__all__ = [
    "ACTIONS",
    "AfterFetch",
    "Selected",
    "bodies",
    "new_uids",
    "plan_batches",
    "searched",
    "sizes",
]

ACTIONS: Final = ("keep", "seen", "delete", "move")


def new_uids(found: Iterable[int], last: int) -> list[int]:
    """The UIDs above ``last``, oldest (lowest) first, without repeats."""
    return sorted({uid for uid in found if uid > last})


def plan_batches(
    uids: Sequence[int], sizes: Mapping[int, int], *, max_messages: int, max_bytes: int
) -> list[list[int]]:
    """``uids`` in order, cut into runs of at most ``max_messages`` messages and
    ``max_bytes`` bytes (a size the server did not give counts as 0)."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = max(0, sizes.get(uid, 0))
        if current and (len(current) >= max_messages or total + size > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class AfterFetch:
    """``keep``, ``seen``, ``delete`` or ``move:FOLDER``; ``target`` is FOLDER as given,
    ``wire_target`` in modified UTF-7 (RFC 3501 §5.1.3)."""

    verb: str
    target: str = ""
    wire_target: str = ""

    @classmethod
    def parse(cls, action: str) -> AfterFetch:
        verb, _, target = action.partition(":")
        if verb not in ACTIONS or (verb == "move") != bool(target.strip()):
            raise ConfigError(
                "incoming.after_fetch",
                f"{action!r} is not an action",
                "use keep, seen, delete or move:FOLDER",
            )
        return cls(verb, target, encode_mailbox(target) if target else "")

    @property
    def read_only(self) -> bool:
        """Nothing changes at the server: EXAMINE is enough."""
        return self.verb == "keep"

    def describe(self) -> str:
        """For a message: ``mark it seen``, ``move it to 'Archive'``."""
        if self.verb == "move":
            return f"move it to {self.target!r}"
        return {"keep": "keep it", "seen": "mark it seen"}.get(self.verb, "delete it")


@dataclass(frozen=True)
class Selected:
    """What SELECT / EXAMINE said about the folder (RFC 9051 §6.3.2): ``validity`` is
    None when the server left out UIDVALIDITY, ``next_uid`` when it left out UIDNEXT."""

    validity: int | None
    next_uid: int | None
    exists: int

    @classmethod
    def from_responses(cls, responses: Iterable[Response]) -> Selected:
        validity = next_uid = None
        exists = 0
        for response in responses:
            if isinstance(response, Exists):
                exists = response.count
            elif isinstance(response, Status) and response.code is not None:
                if response.code.name == "UIDVALIDITY":
                    validity = response.code.number()
                elif response.code.name == "UIDNEXT":
                    next_uid = response.code.number()
        return cls(validity, next_uid, exists)

    def may_have_new(self, last: int) -> bool:
        """False when the folder is empty or UIDNEXT shows nothing arrived after ``last``."""
        return self.exists > 0 and (self.next_uid is None or self.next_uid > last + 1)


def searched(responses: Iterable[Response]) -> list[int]:
    """The numbers of every ``* SEARCH`` response."""
    return [n for r in responses if isinstance(r, Search) for n in r.numbers]


def sizes(responses: Iterable[Response]) -> dict[int, int]:
    """UID → RFC822.SIZE from ``* FETCH`` responses that carry both."""
    return {
        r.uid: r.size
        for r in responses
        if isinstance(r, Fetch) and r.uid is not None and r.size is not None
    }


def bodies(responses: Iterable[Response]) -> dict[int, bytes]:
    """UID → the whole message from ``* FETCH`` responses that carry both."""
    return {
        r.uid: r.body
        for r in responses
        if isinstance(r, Fetch) and r.uid is not None and r.body is not None
    }
