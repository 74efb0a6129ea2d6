"""Run the real `mailoauth` entry point (the installed console script) in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAILOAUTH = str(Path(sys.executable).with_name("mailoauth"))


@dataclass
class Cli:
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILOAUTH_")}
        return {**env, "MAILOAUTH_HOME": str(self.home), **self.env, **(extra or {})}

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MAILOAUTH, *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.environ(env),
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, **kw: object) -> str:
        result = self.run(*args, **kw)  # type: ignore[arg-type]
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    def fails(self, *args: str, code: int = 2, **kw: object) -> str:
        """Run a command that must fail cleanly: the exit code, one line, no traceback."""
        result = self.run(*args, **kw)  # type: ignore[arg-type]
        assert result.returncode == code, f"{args}: {result.returncode} {result.stderr}"
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        return lines[0].removeprefix("error: ")
