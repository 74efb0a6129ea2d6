"""`mailoauth admin …` through the real command, and the first-run link `mailoauth serve`
prints: admins made on the command line log in to the console; passwords never echo."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from mailoauth.config import Settings
from mailoauth.store import open_store
from mailoauth.web.app import create_app
from tests.console_client import PASSWORD, client_for, login, token_of
from tests.service import running_service

pytestmark = pytest.mark.integration


def console_app(cli):
    """The console on the data directory the CLI uses."""
    settings = Settings.load({"MAILOAUTH_HOME": str(cli.home)})
    store = open_store(settings)
    return create_app(settings, store, background=False), store


async def test_an_admin_made_on_the_command_line_logs_in(cli):
    out = cli.ok("admin", "create", "ops", "--password-stdin", stdin=PASSWORD + "\n")
    assert "admin ops created" in out
    assert PASSWORD not in out
    listed = json.loads(cli.ok("admin", "list", "--json"))
    assert [a["name"] for a in listed] == ["ops"]
    assert listed[0]["last_login_at"] is None
    assert PASSWORD not in json.dumps(listed)
    app, store = console_app(cli)
    try:
        async with client_for(app) as client:
            assert (await login(client, "ops", "x" + PASSWORD)).status_code == 401
            assert (await login(client, "ops")).status_code == 303
        entry = store.list_audit()[-1]
        assert (entry.action, entry.target, entry.source) == ("admin.create", "ops", "cli")
    finally:
        store.close()


def test_a_short_password_or_no_terminal_fail_cleanly(cli):
    message = cli.fails("admin", "create", "ops", "--password-stdin", stdin="short-pw\n")
    assert message == (
        "password: is 8 characters long; use at least 12: a passphrase of a few words is easiest"
    )
    message = cli.fails("admin", "create", "ops")  # stdin is a pipe, not a terminal
    assert "there is no terminal to ask for it; pipe it in with --password-stdin" in message


async def test_a_reset_password_logs_the_admin_out_everywhere_and_remove_deletes(cli):
    cli.ok("admin", "create", "ops", "--password-stdin", stdin=PASSWORD)
    app, store = console_app(cli)
    try:
        async with client_for(app) as client:
            await login(client, "ops")
            assert (await client.get("/")).status_code == 200
            new = "another long passphrase"
            out = cli.ok("admin", "reset-password", "ops", "--password-stdin", stdin=new)
            assert "1 session(s) ended" in out
            assert (await client.get("/", follow_redirects=False)).status_code == 303
            assert (await login(client, "ops", new)).status_code == 303
        assert "admin ops removed" in cli.ok("admin", "remove", "ops")
        assert store.count_admins() == 0
    finally:
        store.close()


def test_serve_prints_a_setup_link_that_works_once(tmp_path):
    with running_service(tmp_path / "home") as service:
        log = service.log()
        link = re.search(r"open (http://\S+/setup\?token=\S+) within an hour", log).group(1)
        assert " INFO " not in log.split(link)[0].splitlines()[-1]  # not a log record
        with httpx.Client() as browser:
            page = browser.get(link)
            assert page.status_code == 200
            token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
            form = {"csrf_token": token_of(page.text), "token": token, "name": "first"}
            form |= {"password": PASSWORD, "confirm": PASSWORD}
            done = browser.post(service.url("/setup"), data=form)
            assert done.status_code == 303
            assert browser.get(service.url("/")).status_code == 200
            assert browser.get(link).status_code == 410
        assert "first" in service.cli("admin", "list")
