"""CLI start-up benchmark: prints figures, asserts nothing (run: python bench/cli.py [N]).

msmtp and mutt run ``mailoauth token NAME`` (``passwordeval``) for every message, and the
test suite runs hundreds of CLI subprocesses, so what a command imports before it does
anything is paid again and again. Each command runs N times (default 10) as a fresh
process, in rounds (one run of every command per round, so a busy machine slows them all
alike), after one warm-up run each:

* ``python -c pass`` — the floor: the interpreter alone;
* ``mailoauth --help`` and ``mailoauth token --help`` — the command tree, nothing opened;
* ``mailoauth status`` — settings, the store (SQLite in a fresh temp data directory);
* ``mailoauth token NOSUCH`` — the import path of ``token`` up to the store's "not found"
  (exit 2): what ``passwordeval`` pays before any network.

Reading it: absolute times move with the machine's load; compare the **ratio to the
floor**, measured in the same run (1.0 would be a command as cheap as an empty
interpreter). Each cell is the median wall time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

MAILOAUTH = str(Path(sys.executable).with_name("mailoauth"))

#: The integration tests' environment (tests/integration/conftest.py): relays off.
RELAYS_OFF = {
    "MAILOAUTH_RELAY_SMTP": "off",
    "MAILOAUTH_RELAY_IMAP": "off",
    "MAILOAUTH_RELAY_POP3": "off",
}

COMMANDS: dict[str, tuple[list[str], int]] = {
    "python -c pass (floor)": ([sys.executable, "-c", "pass"], 0),
    "mailoauth --help": ([MAILOAUTH, "--help"], 0),
    "mailoauth token --help": ([MAILOAUTH, "token", "--help"], 0),
    "mailoauth status": ([MAILOAUTH, "status"], 0),
    "mailoauth token NOSUCH": ([MAILOAUTH, "token", "nosuch"], 2),
}


def _environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILOAUTH_")}
    return {**env, "MAILOAUTH_HOME": str(home), **RELAYS_OFF}


def _once(argv: Sequence[str], env: dict[str, str], expect: int) -> float:
    start = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - this Python and the mailoauth beside it
        argv, env=env, capture_output=True, check=False, timeout=60
    )
    elapsed = time.perf_counter() - start
    if result.returncode != expect:
        raise SystemExit(
            f"{' '.join(argv)}: exit {result.returncode}, expected {expect}\n"
            f"{result.stderr.decode(errors='replace')}"
        )
    return elapsed


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mailoauth-bench-cli-") as tmp:
        env = _environ(Path(tmp) / "home")
        for argv, expect in COMMANDS.values():  # warm-up: caches, the store's creation
            _once(argv, env, expect)
        times: dict[str, list[float]] = {label: [] for label in COMMANDS}
        for _ in range(rounds):
            for label, (argv, expect) in COMMANDS.items():
                times[label].append(_once(argv, env, expect))
    medians = {label: statistics.median(values) for label, values in times.items()}
    floor = medians["python -c pass (floor)"]
    print(f"CLI start-up, median of {rounds} runs each (wall time; ratio to the floor)")
    width = max(len(label) for label in medians)
    for label, median in medians.items():
        print(f"  {label:<{width}}  {median * 1000:7.0f} ms  {median / floor:5.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
