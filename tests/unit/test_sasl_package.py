"""The sasl package's shape: a deliberate public surface, no I/O in any module (the
import-linter contract cannot see the standard library), small modules that cite their
spec, and its errors in the one tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mailoauth.sasl
from mailoauth.errors import (
    LocalProtocolError,
    MailoauthError,
    RemoteProtocolError,
    SaslError,
)

PACKAGE = Path(mailoauth.sasl.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
NO_IO = {
    "socket",
    "ssl",
    "asyncio",
    "selectors",
    "select",
    "time",
    "threading",
    "subprocess",
    "httpx",
    "anyio",
    "logging",
    "os",
    "io",
}


def test_public_api_is_exactly_this():
    assert sorted(mailoauth.sasl.__all__) == [
        "Acknowledge",
        "ClientState",
        "Credentials",
        "LoginClient",
        "LoginServer",
        "LoginServerState",
        "OAuthBearerClient",
        "PlainClient",
        "SaslClient",
        "SaslFailure",
        "Send",
        "Step",
        "XOAuth2Client",
        "decode",
        "encode",
        "parse_plain",
    ]


def test_the_package_has_the_modules_it_draws():
    names = {m.stem for m in MODULES}
    assert {"xoauth2", "oauthbearer", "plain", "login", "base", "events", "b64"} <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_no_module_does_io(module):
    tree = ast.parse(module.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & NO_IO
    assert "open" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_modules_are_small_and_documented(module):
    text = module.read_text()
    assert len(text.splitlines()) < 400
    assert ast.get_docstring(ast.parse(text))


@pytest.mark.parametrize(
    ("name", "cites"),
    [
        ("xoauth2", "XOAUTH2 protocol"),
        ("oauthbearer", "RFC 7628"),
        ("plain", "RFC 4616"),
        ("login", "draft-murchison-sasl-login"),
        ("b64", "RFC 4648"),
    ],
)
def test_each_mechanism_cites_its_spec(name, cites):
    assert cites in (ast.get_docstring(ast.parse((PACKAGE / f"{name}.py").read_text())) or "")


def test_errors_live_in_the_one_tree():
    for cls in (LocalProtocolError, RemoteProtocolError, SaslError):
        assert issubclass(cls, MailoauthError)
        assert cls.__module__ == "mailoauth.errors"
    assert LocalProtocolError("x").exit_code == 2
    assert RemoteProtocolError("x").exit_code == 1
    err = SaslError("refused", mechanism="XOAUTH2", status="401", temporary=True)
    assert (err.exit_code, err.mechanism, err.status, err.temporary) == (1, "XOAUTH2", "401", True)
    assert str(err) == "refused"
