"""Lease owners name their process, so a restarted relay takes over a killed one's leases
at once — and never the leases of a process that is alive or elsewhere."""

from __future__ import annotations

import socket
import subprocess
import sys

from mailoauth.queue.owners import default_owner, gone


def owner_of_a_process_that_ended() -> str:
    code = "from mailoauth.queue.owners import default_owner; print(default_owner())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_finished_process_is_gone_a_living_one_is_not():
    assert gone(owner_of_a_process_that_ended())
    assert not gone(default_owner())


def test_owners_elsewhere_or_unknown_are_never_judged_gone():
    host, ns, pid, start, rand = owner_of_a_process_that_ended().split(":")
    assert host == socket.gethostname()
    assert not gone(f"other-host:{ns}:{pid}:{start}:{rand}")
    assert not gone(f"{host}:1:{pid}:{start}:{rand}")  # another PID namespace
    assert not gone(f"{host}:{ns}:{pid}:-:{rand}")  # start time unknown
    assert not gone(f"{host}:{pid}:{rand}")  # an owner written by an older version
    assert not gone("by hand")


def test_a_reused_pid_is_not_the_old_process():
    host, ns, pid, start, rand = default_owner().split(":")
    assert gone(f"{host}:{ns}:{pid}:{int(start) + 1}:{rand}")
