"""Stopping a peer the tests started, by its PID: a polite signal, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def send(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    *,
    first: signal.Signals = signal.SIGTERM,
    pid: int | None = None,
    timeout: float = 10.0,
) -> None:
    """Send ``first`` to ``pid`` (default: the process itself), wait ``timeout`` seconds,
    then SIGKILL both. ``pid`` is for servers started through a wrapper (``runuser``)."""
    target = process.pid if pid is None else pid
    send(target, first)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(target, signal.SIGKILL)
        process.kill()
        process.wait(timeout=timeout)
