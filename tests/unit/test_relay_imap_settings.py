"""MAILOAUTH_RELAY_IMAP / _POP3 and their TLS modes (MAILOAUTH_RELAY_IMAP_TLS, _POP3_TLS):
defaults, ``off``, loopback only without a certificate, each mode on its own; and
MAILOAUTH_RELAY_LOGIN_CACHE."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailoauth.config import RelayTls, Settings
from mailoauth.errors import ConfigError

CERT = {"MAILOAUTH_RELAY_TLS_CERT": "/etc/r.crt", "MAILOAUTH_RELAY_TLS_KEY": "/etc/r.key"}


def load(tmp_path: Path, **env: str) -> Settings:
    return Settings.load({"MAILOAUTH_HOME": str(tmp_path), **env})


def problem(tmp_path: Path, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **env)
    return caught.value


def test_defaults_are_loopback_ports_without_tls(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.relay_imap == ("127.0.0.1", 1143)
    assert settings.relay_pop3 == ("127.0.0.1", 1110)
    assert settings.relay_imap_tls is None
    assert settings.relay_pop3_tls is None


def test_off_turns_a_listener_off(tmp_path: Path) -> None:
    settings = load(tmp_path, MAILOAUTH_RELAY_IMAP="off", MAILOAUTH_RELAY_POP3="")
    assert settings.relay_imap is None
    assert settings.relay_pop3 is None


def test_a_network_address_needs_the_certificate(tmp_path: Path) -> None:
    error = problem(tmp_path, MAILOAUTH_RELAY_POP3="0.0.0.0:995")
    assert error.field == "relay_pop3"
    assert "0.0.0.0 is not a loopback address" in str(error)
    settings = load(tmp_path, MAILOAUTH_RELAY_POP3="0.0.0.0:995", **CERT)
    assert settings.relay_pop3 == ("0.0.0.0", 995)  # noqa: S104 - parsed, not bound


def test_each_protocol_has_its_own_tls_mode(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        MAILOAUTH_RELAY_IMAP="[::]:993",
        MAILOAUTH_RELAY_IMAP_TLS="implicit",
        MAILOAUTH_RELAY_SMTP_TLS="starttls",
        **CERT,
    )
    assert settings.relay_imap == ("::", 993)
    assert settings.relay_imap_tls == RelayTls(Path("/etc/r.crt"), Path("/etc/r.key"), True)
    assert settings.relay_pop3_tls is not None
    assert settings.relay_pop3_tls.mode == "starttls"
    assert settings.relay_tls is not None
    assert settings.relay_tls.mode == "starttls"


@pytest.mark.parametrize("variable", ["MAILOAUTH_RELAY_IMAP_TLS", "MAILOAUTH_RELAY_POP3_TLS"])
def test_a_mode_is_checked_and_needs_the_certificate(tmp_path: Path, variable: str) -> None:
    error = problem(tmp_path, **{variable: "implicit"})
    assert error.field == variable
    assert str(error) == (
        f"{variable}: is implicit but the relay has no certificate; set "
        f"MAILOAUTH_RELAY_TLS_CERT and MAILOAUTH_RELAY_TLS_KEY, or unset {variable}"
    )
    assert problem(tmp_path, **{variable: "ssl"}, **CERT).field == variable


def test_the_login_cache_is_seconds_from_0_to_300(tmp_path: Path) -> None:
    assert load(tmp_path).relay_login_cache == 5.0
    assert load(tmp_path, MAILOAUTH_RELAY_LOGIN_CACHE="0").relay_login_cache == 0.0
    assert load(tmp_path, MAILOAUTH_RELAY_LOGIN_CACHE="2.5").relay_login_cache == 2.5
    for bad in ("-1", "301", "nan", "soon"):
        refused = problem(tmp_path, MAILOAUTH_RELAY_LOGIN_CACHE=bad)
        assert refused.field == "relay_login_cache"
        assert "use 0 to 300" in str(refused)
