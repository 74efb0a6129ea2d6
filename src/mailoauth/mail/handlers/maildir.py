"""Deliver fetched mail into a Maildir (https://cr.yp.to/proto/maildir.html).

Each message becomes one file, written as the specification's "How a message is
delivered" asks:

1. ``tmp/``, ``new/`` and ``cur/`` (and the Maildir itself) are created with mode 0700
   when missing; existing directories keep their modes;
2. the message goes to ``tmp/<unique>`` (created exclusively, mode 0600), is written
   whole and ``fsync``'ed;
3. it is hard-linked to ``new/<unique>`` (renamed, where the filesystem has no hard
   links), ``new/`` itself is ``fsync``'ed so the name survives a crash, and the ``tmp/``
   name is removed.

Step 3 is the only one a reader can see, and it is atomic: ``new/`` never holds a
partial file. When a step fails (disk full, no permission, a file where a directory
should be), what was written is removed again — a file already linked into ``new/`` too,
since its name was not made durable — and :class:`~mailoauth.errors.MailError` names the
path and the fix. The fetcher then leaves the message new at the server.

The blocking work runs in a worker thread (:func:`asyncio.to_thread`); deliveries through
one handler are serialised. The bytes are written exactly as fetched (servers send CRLF
line ends; Dovecot, mutt and notmuch read Maildir files with either ending).

**Unique names** are ``<seconds>.M<usec>P<pid>Q<n>H<tag>.<host>,S=<size>``: the spec's
time, microseconds, process id and delivery counter, the host name (with ``/`` and ``:``
written ``\\057`` and ``\\072``), the ``,S=`` size suffix Courier and Dovecot read to skip
a ``stat``, and ``H<tag>``: 32 hex digits of the message's
:func:`~mailoauth.mail.handlers.key.delivery_key`.

**Re-delivery is idempotent.** Before writing, the handler looks for its tag in ``new/``
and ``cur/`` (a reader renames ``new/X`` to ``cur/X:2,<flags>``, which keeps the tag) and
skips the message when it is there. A listing is cached by the directory's inode and
modification time, so a Maildir of 100,000 messages is not listed once per message; a
listing of a directory changed less than two seconds before is not trusted (as git
treats "racy" index entries), because a change within the same timestamp tick would
leave the stamp as it was. This covers what the no-loss rule produces — the same
(mailbox, folder, uid) offered again after a crash, by the restarted process or this
one — given a truthful filesystem clock. Two processes delivering the same message at
the same moment can still both write it, so readers that must never show a duplicate deduplicate on
``Message-ID``. A message the reader has since deleted may be written again or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Final

from mailoauth.errors import MailError
from mailoauth.mail.fetched import Deliver, FetchedMessage
from mailoauth.mail.handlers.key import delivery_key

__all__ = ["maildir_handler"]

log = logging.getLogger(__name__)

_SUBDIRS: Final = ("tmp", "new", "cur")
_TAG_LENGTH: Final = 32
_TAGGED: Final = re.compile(r"\.M[0-9]+P[0-9]+Q[0-9]+H([0-9a-f]{32})\.")
#: Filesystems without hard links answer ``link`` with one of these; rename instead.
_NO_LINKS: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
_TEMPORARY: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN})

_SETTLED_NS: Final = 2_000_000_000  # coarse filesystems stamp in whole seconds

Stamp = tuple[int, int]  # (inode, mtime in ns) of a directory


@dataclass
class _Listing:
    """The tags found in a directory, and its stamp at that moment."""

    stamp: Stamp
    trusted: bool
    tags: set[str]


def maildir_handler(path: str | os.PathLike[str]) -> Deliver:
    """A handler that writes each message into the Maildir at ``path`` (created when
    missing; a relative path is resolved now, against the current directory)."""
    return _Maildir(os.path.abspath(os.fspath(path)))


def _host() -> str:
    return socket.gethostname().replace("/", r"\057").replace(":", r"\072")


def _stamp(directory: str) -> Stamp:
    st = os.stat(directory)
    return (st.st_ino, st.st_mtime_ns)


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # keep the first error; this one is only logged
        log.warning("could not remove %s: %s", path, exc.strerror)


def _write_file(path: str, data: bytes) -> None:
    """Create ``path`` exclusively (0600), write ``data`` whole and fsync it; on failure
    remove it again (only a file this call created: O_EXCL)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # NFS may report a failed write only here
    except BaseException:
        _remove(path)
        raise


def _publish(tmp_file: str, new_file: str) -> bool:
    """Make ``tmp_file`` visible as ``new_file``; True when ``tmp_file`` is still there."""
    try:
        os.link(tmp_file, new_file)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        os.rename(tmp_file, new_file)  # the name is unique: nothing is replaced
        return False
    return True


class _Maildir:
    """One Maildir. Holds the counter for unique names and the tag listing cache."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._listings: dict[str, _Listing] = {}

    def __repr__(self) -> str:
        return f"<maildir {self.path}>"

    async def __call__(self, message: FetchedMessage) -> None:
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: FetchedMessage) -> None:
        tag = delivery_key(message)[:_TAG_LENGTH]
        with self._lock:
            try:
                self._make_directories()
                new, cur = os.path.join(self.path, "new"), os.path.join(self.path, "cur")
                if self._holds(new, tag) or self._holds(cur, tag):
                    log.debug(
                        "%s/%s uid %s is already in %s; not written again",
                        message.mailbox,
                        message.folder,
                        message.uid,
                        self.path,
                    )
                    return
                self._write(message.data, tag)
            except OSError as exc:
                raise _error(self.path, message, exc) from exc
        log.debug(
            "delivered %s/%s uid %s to %s", message.mailbox, message.folder, message.uid, self.path
        )

    def _make_directories(self) -> None:
        if not os.path.isdir(self.path):
            os.makedirs(self.path, mode=0o700, exist_ok=True)
        for name in _SUBDIRS:
            with contextlib.suppress(FileExistsError):
                os.mkdir(os.path.join(self.path, name), 0o700)

    def _holds(self, directory: str, tag: str) -> bool:
        """Whether a file tagged ``tag`` is in ``directory``: from the cached listing
        while the directory is unchanged, else from a new one."""
        stamp = _stamp(directory)
        listing = self._listings.get(directory)
        if listing is None or not listing.trusted or listing.stamp != stamp:
            found = {m.group(1) for name in os.listdir(directory) if (m := _TAGGED.search(name))}
            # A change within the same timestamp tick as the listing would leave the stamp
            # as it is: trust a listing only of a directory that had been still a while.
            trusted = time.time_ns() - stamp[1] > _SETTLED_NS
            listing = self._listings[directory] = _Listing(stamp, trusted, found)
        return tag in listing.tags

    def _unique_name(self, tag: str, size: int) -> str:
        now = time.time_ns()
        seconds, usec = now // 1_000_000_000, now // 1000 % 1_000_000
        middle = f"M{usec}P{os.getpid()}Q{next(self._counter)}H{tag}"
        return f"{seconds}.{middle}.{_host()},S={size}"

    def _write(self, data: bytes, tag: str) -> None:
        name = self._unique_name(tag, len(data))
        tmp_file = os.path.join(self.path, "tmp", name)
        new = os.path.join(self.path, "new")
        new_file = os.path.join(new, name)
        before = _stamp(new)
        _write_file(tmp_file, data)
        published = keep_tmp = False
        try:
            keep_tmp = _publish(tmp_file, new_file)
            published = True
            _fsync_directory(new)
        except BaseException:
            if published:
                _remove(new_file)  # visible, but its name may not survive a crash
            _remove(tmp_file)
            raise
        if keep_tmp:
            _remove(tmp_file)  # the message is safe in new/; a leftover is only clutter
        listing = self._listings.get(new)
        if listing is not None and listing.stamp == before:
            # Only we add tagged files to new/ (deliveries are serialised); what a reader
            # does meanwhile only removes names, which at worst leaves a tag listed here
            # for a message that moved to cur/ — or that the reader deleted.
            listing.tags.add(tag)
            self._listings[new] = _Listing(_stamp(new), True, listing.tags)


def _error(path: str, message: FetchedMessage, exc: OSError) -> MailError:
    code = exc.errno or 0
    reason = exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename and exc.filename != path else ""
    if code in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space or raise the quota on that filesystem"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = (
            "let the user mailoauth runs as write there (e.g. chown the directory to it), "
            "or point incoming.deliver at a directory it may write"
        )
    elif code in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT, errno.EISDIR):
        fix = "point incoming.deliver at a Maildir, an empty directory or a path not yet taken"
    else:
        fix = "check the directory and its filesystem"
    return MailError(
        f"cannot write message {message.uid} of {message.mailbox}/{message.folder} into the "
        f"Maildir {path}: {reason}{where}; {fix}; the message stays new on the server and is "
        "fetched again next time",
        temporary=code in _TEMPORARY,
    )
