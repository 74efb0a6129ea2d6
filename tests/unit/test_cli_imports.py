"""What the CLI imports at start-up (cli/__init__.py): every run imports every command
module, so the web console and API, the relay and the SMTP client load only inside the
commands that use them. Each check runs in a fresh interpreter: this one has loaded them
all already. bench/cli.py times the start-up; no timing here."""

from __future__ import annotations

import subprocess
import sys

from mailoauth.cli.apikeys import Scope
from mailoauth.web.api.keys import ApiScope

HEAVY = "{'fastapi', 'uvicorn', 'jinja2', 'aiosmtpd', 'aiosmtplib'}"


def fresh(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def test_importing_the_cli_loads_no_web_relay_or_smtp_stack() -> None:
    loaded = fresh(
        "import mailoauth.cli, sys; print(sorted(m for m in sys.modules"
        f" if m.split('.')[0] in {HEAVY} or m.startswith('mailoauth.web')))"
    )
    assert loaded == "[]"


def test_api_key_scope_choices_are_the_api_scopes() -> None:
    assert [s.value for s in Scope] == [s.value for s in ApiScope]


def test_lazy_package_exports_resolve_to_what_they_name() -> None:
    # mailoauth.queue.drain is a submodule and a function: loading the submodule first
    # (through DrainOptions) must still leave the package's `drain` the function.
    checked = fresh(
        "import inspect, mailoauth.mail as mail, mailoauth.queue as queue\n"
        "queue.DrainOptions\n"
        "assert inspect.isfunction(queue.drain), queue.drain\n"
        "from mailoauth.queue import drain\n"
        "assert drain is queue.drain\n"
        "for package in (mail, queue):\n"
        "    for name in package.__all__:\n"
        "        value = getattr(package, name)\n"
        "        assert not inspect.ismodule(value), (package.__name__, name)\n"
        "        assert name in dir(package), (package.__name__, name)\n"
        "print('ok')"
    )
    assert checked == "ok"
