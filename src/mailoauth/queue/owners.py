"""Lease owners of delivery runs, and recognising the ones whose process is gone.

A run leases the messages it delivers (``drain``). When its process is killed (``kill -9``,
OOM, power loss of a container) the lease stays until it runs out — ten minutes by
default — and the messages wait that long. A restarted relay or service on the same
machine can do better: an owner names its process exactly, and a process that no longer
exists will never settle its lease, so :func:`gone` lets the next run take the messages
over at once.

The owner is ``HOST:NS:PID:START:RANDOM``:

* ``HOST`` (:func:`socket.gethostname`) and ``NS`` (the inode of ``/proc/self/ns/pid``):
  a PID means something only in its own PID namespace, and containers sharing the host's
  name (host networking) have different ones. An owner from another host or namespace is
  never judged gone: its lease runs out as before.
* ``PID`` and ``START`` (the process's start time in clock ticks since boot, field 22 of
  ``/proc/PID/stat``): a PID reused by a newer process does not look alive.

Where ``/proc`` is missing (not Linux), owners carry ``-`` for NS and START and are never
judged gone. Judging wrongly "alive" only costs waiting for the lease; judging wrongly
"gone" would send a message twice (same Message-ID), which the rules above prevent.
"""

from __future__ import annotations

import os
import socket
import uuid
from functools import cache
from pathlib import Path

__all__ = ["default_owner", "gone"]

_UNKNOWN = "-"


@cache
def _namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return _UNKNOWN


def _start_time(pid: int) -> str | None:
    """The process's start time, or None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _UNKNOWN
    # The command name (field 2) is in parentheses and may contain spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 overall: starttime


def default_owner() -> str:
    """A lease owner unique to this run, naming its process (see the module docstring)."""
    pid = os.getpid()
    namespace = _namespace()
    start = _start_time(pid) if namespace != _UNKNOWN else None
    return f"{socket.gethostname()}:{namespace}:{pid}:{start or _UNKNOWN}:{uuid.uuid4().hex[:8]}"


def gone(owner: str) -> bool:
    """Whether ``owner``'s process certainly no longer exists (same host and namespace,
    and no process with that PID and start time)."""
    parts = owner.rsplit(":", 4)
    if len(parts) != 5:
        return False  # an owner from an older version, or written by hand
    host, namespace, pid, start, _ = parts
    if host != socket.gethostname() or namespace in (_UNKNOWN, "") or start == _UNKNOWN:
        return False
    if namespace != _namespace() or not pid.isdigit():
        return False
    return _start_time(int(pid)) != start
