"""Where `mailoauth serve` may listen and which base URL it runs with (cli/serve_policy.py):
a network address only with TLS or behind an https reverse proxy, https when TLS is on,
and a default base URL that is the listen address, so the printed redirect URI works."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailoauth.cli.serve_policy import listen_url, served_settings
from mailoauth.config import ServiceTls, Settings
from mailoauth.errors import ConfigError

PEM = {"MAILOAUTH_TLS_CERT": "/etc/mailoauth/console.crt", "MAILOAUTH_TLS_KEY": "/k.pem"}


def served(tmp_path: Path, **env: str) -> Settings:
    return served_settings(Settings.load({"MAILOAUTH_HOME": str(tmp_path), **env}))


def refused(tmp_path: Path, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        served(tmp_path, **env)
    return caught.value


def test_the_default_is_plain_http_on_loopback_with_a_matching_redirect_uri(
    tmp_path: Path,
) -> None:
    settings = served(tmp_path)
    assert settings.tls is None
    assert settings.base_url == "http://127.0.0.1:8025"
    moved = served(tmp_path, MAILOAUTH_LISTEN="127.0.0.1:9000")
    assert moved.base_url == "http://127.0.0.1:9000"  # not the default port's URL
    assert served(tmp_path, MAILOAUTH_LISTEN="[::1]:9000").base_url == "http://[::1]:9000"


def test_tls_files_come_from_the_environment_or_the_options(tmp_path: Path) -> None:
    settings = served(tmp_path, **PEM)
    assert settings.tls == ServiceTls(Path("/etc/mailoauth/console.crt"), Path("/k.pem"))
    assert settings.base_url == "https://127.0.0.1:8025"
    assert listen_url(settings) == "https://127.0.0.1:8025"
    loaded = Settings.load({"MAILOAUTH_HOME": str(tmp_path), **PEM})
    assert loaded.override(tls_key="/other.pem").tls == ServiceTls(
        Path("/etc/mailoauth/console.crt"), Path("/other.pem")
    )


@pytest.mark.parametrize(
    ("env", "field", "words"),
    [
        ({"MAILOAUTH_TLS_CERT": "/c.pem"}, "tls_key", "is not set but tls_cert is"),
        ({"MAILOAUTH_TLS_KEY": "/k.pem"}, "tls_cert", "is not set but tls_key is"),
    ],
)
def test_a_certificate_without_its_key_is_refused(
    tmp_path: Path, env: dict[str, str], field: str, words: str
) -> None:
    error = refused(tmp_path, **env)
    assert error.field == field
    assert words in error.problem


def test_a_network_address_without_tls_is_refused_with_the_ways_out(tmp_path: Path) -> None:
    error = refused(tmp_path, MAILOAUTH_LISTEN="192.0.2.10:8025")
    assert error.field == "--listen"
    assert error.problem.startswith("192.0.2.10 is not a loopback address")
    assert "clear text" in error.problem
    assert "--tls-cert" in error.fix
    assert "--base-url https://" in error.fix
    assert "127.0.0.1" in error.fix


def test_a_network_address_with_tls_serves_https_at_that_address(tmp_path: Path) -> None:
    settings = served(tmp_path, MAILOAUTH_LISTEN="192.0.2.10:8443", **PEM)
    assert settings.base_url == "https://192.0.2.10:8443"


def test_an_https_base_url_declares_a_reverse_proxy_that_terminates_tls(tmp_path: Path) -> None:
    settings = served(
        tmp_path, MAILOAUTH_LISTEN="0.0.0.0:8025", MAILOAUTH_BASE_URL="https://mail.example.com/"
    )
    assert settings.tls is None
    assert settings.base_url == "https://mail.example.com"


def test_every_address_with_tls_needs_the_name_browsers_use(tmp_path: Path) -> None:
    error = refused(tmp_path, MAILOAUTH_LISTEN="0.0.0.0:8443", **PEM)
    assert error.field == "base_url"
    assert "0.0.0.0" in error.problem  # noqa: S104 - a message, not a bind
    assert "--base-url https://" in error.fix
    named = served(
        tmp_path,
        MAILOAUTH_LISTEN="[::]:8443",
        MAILOAUTH_BASE_URL="https://mail.example.com:8443",
        **PEM,
    )
    assert named.base_url == "https://mail.example.com:8443"


def test_tls_with_an_http_base_url_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, MAILOAUTH_BASE_URL="http://localhost:8025", **PEM)
    assert error.field == "base_url"
    assert "serves https" in error.problem
    assert "https://" in error.fix


def test_a_non_loopback_redirect_uri_must_be_https(tmp_path: Path) -> None:
    error = refused(tmp_path, MAILOAUTH_BASE_URL="http://mail.example.com")
    assert error.field == "base_url"
    assert "neither https nor a loopback http URL" in error.problem
