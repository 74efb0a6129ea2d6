"""bench/relay.py keeps working: a ``--quick`` run without email-oauth2-proxy starts its
upstream and a real `mailoauth relay`, and prints every ratio table and the summary.

A smoke run only (cells of 0.1 s): it checks that the benchmark runs end to end and that
every message the relay accepted reached the upstream (the bench exits 1 otherwise), not
how fast anything is."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "relay.py"


def test_a_quick_run_prints_the_ratio_tables():
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-emailproxy"],
        capture_output=True,
        text=True,
        timeout=240,  # ~15 s on an idle 2-core machine; generous for a busy one
        check=False,
    )
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-4000:]
    assert "Traceback" not in run.stderr
    for title in (
        "(a) steady SMTP",
        "(b) one connection per mail",
        "32 simultaneous connects",
        "(c) IMAP",
        "Summary",
    ):
        assert title in out, out
    # Each table has a row per size and client count, with the queue relay's ratio to
    # direct (accepted and delivered) in the rows of (a) and (b).
    rows = [line for line in out.splitlines() if re.match(r"  (2|200) KB x(1|8) ", line)]
    assert len(rows) == 3 * 2 * 2, out
    ratio = r"\d+\.\d +\d+\.\d\dx +\d+\.\d +\d+\.\d\dx +\d+\.\d\d"
    assert all(re.search(ratio, line) for line in rows[:8]), rows
    assert re.search(r"mailoauth queue +failed 0/32", out), out
    assert "email-oauth2-proxy: left out" in out
    upstream = re.search(r"upstream: (\d+) messages, .* (\d+) refused logins", out)
    assert upstream is not None, out
    assert int(upstream.group(1)) > 0
    assert upstream.group(2) == "0"
