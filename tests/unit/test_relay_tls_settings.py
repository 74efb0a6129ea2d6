"""The relay's TLS settings: MAILOAUTH_RELAY_TLS_CERT / _KEY (both or neither),
MAILOAUTH_RELAY_SMTP_TLS (starttls or implicit), the "non-loopback only with TLS" rule of
MAILOAUTH_RELAY_SMTP, and the checks made when the relay starts (readable PEM files, a key
that belongs to the certificate, no passphrase). Certificates are made by trustme here."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from mailoauth.config import RelayTls, Settings
from mailoauth.errors import ConfigError
from mailoauth.relay.tls import server_context

CERT, KEY, MODE = "MAILOAUTH_RELAY_TLS_CERT", "MAILOAUTH_RELAY_TLS_KEY", "MAILOAUTH_RELAY_SMTP_TLS"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "relay.crt", tmp_path / "relay.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


def load(tmp_path: Path, **env: str) -> Settings:
    return Settings.load({"MAILOAUTH_HOME": str(tmp_path), **env})


def problem(tmp_path: Path, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **env)
    return caught.value


def test_no_certificate_means_no_tls_and_loopback_only(tmp_path: Path) -> None:
    assert load(tmp_path).relay_tls is None
    error = problem(tmp_path, MAILOAUTH_RELAY_SMTP="0.0.0.0:2525")
    assert error.field == "relay_smtp"
    assert "0.0.0.0 is not a loopback address" in error.problem
    assert CERT in error.fix
    assert KEY in error.fix


def test_a_certificate_allows_a_network_address_and_starttls_is_the_default(tmp_path: Path) -> None:
    settings = load(
        tmp_path, MAILOAUTH_RELAY_SMTP="0.0.0.0:587", **{CERT: "/etc/r.crt", KEY: "/etc/r.key"}
    )
    assert settings.relay_smtp == ("0.0.0.0", 587)  # noqa: S104 - a setting, not a bind
    assert settings.relay_tls == RelayTls(Path("/etc/r.crt"), Path("/etc/r.key"))
    assert settings.relay_tls.mode == "starttls"


def test_implicit_tls_is_chosen_by_name(tmp_path: Path) -> None:
    settings = load(tmp_path, **{CERT: "/r.crt", KEY: "/r.key", MODE: "Implicit"})
    assert settings.relay_tls is not None
    assert settings.relay_tls.implicit


@pytest.mark.parametrize(
    ("env", "field", "words"),
    [
        ({CERT: "/r.crt"}, KEY, "is not set but MAILOAUTH_RELAY_TLS_CERT is"),
        ({KEY: "/r.key"}, CERT, "is not set but MAILOAUTH_RELAY_TLS_KEY is"),
        ({CERT: "/r.crt", KEY: "/r.key", MODE: "ssl"}, MODE, "'ssl' is not a TLS mode"),
        ({MODE: "starttls"}, MODE, "is starttls but the relay has no certificate"),
    ],
)
def test_incomplete_tls_settings_name_the_variable_to_fix(
    tmp_path: Path, env: dict[str, str], field: str, words: str
) -> None:
    error = problem(tmp_path, **env)
    assert error.field == field
    assert words in error.problem
    assert error.fix


def test_a_matching_pair_gives_a_tls_1_2_server_context(pem: tuple[Path, Path]) -> None:
    context = server_context(RelayTls(*pem))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # clients log in with passwords, not certs


def test_a_key_of_another_certificate_is_refused(
    ca: trustme.CA, pem: tuple[Path, Path], tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other))
    with pytest.raises(ConfigError) as caught:
        server_context(RelayTls(pem[0], other))
    assert caught.value.field == KEY
    assert "is not the private key of the certificate" in caught.value.problem


def test_an_unreadable_file_names_its_variable(pem: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        server_context(RelayTls(pem[0], tmp_path / "missing.key"))
    assert caught.value.field == KEY
    assert "cannot read" in caught.value.problem
    assert "missing.key" in caught.value.problem
    with pytest.raises(ConfigError) as caught:
        server_context(RelayTls(tmp_path / "missing.crt", pem[1]))
    assert caught.value.field == CERT


def test_a_file_that_is_not_pem_is_refused(pem: tuple[Path, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        server_context(RelayTls(junk, pem[1]))
    assert caught.value.field == CERT
    assert "PEM" in caught.value.fix


def test_a_key_with_a_passphrase_is_refused_without_prompting(
    pem: tuple[Path, Path], tmp_path: Path
) -> None:
    key = serialization.load_pem_private_key(pem[1].read_bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret passphrase"),
        )
    )
    with pytest.raises(ConfigError) as caught:
        server_context(RelayTls(pem[0], locked))
    assert caught.value.field == KEY
    assert "passphrase" in caught.value.problem
