"""TLS contexts are built once per CA file, not per message (~25 ms each)."""

import os

import pytest
import trustme

from mailoauth.errors import ConfigError
from mailoauth.mail.connect import tls_context


def test_the_system_context_is_shared():
    assert tls_context(None) is tls_context(None)


def test_a_replaced_ca_file_gives_a_new_context(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(trustme.CA().cert_pem.bytes())
    first = tls_context(str(ca))
    assert tls_context(str(ca)) is first
    ca.write_bytes(trustme.CA().cert_pem.bytes())
    os.utime(ca, ns=(1, 10**18))  # a different mtime, whatever the clock's resolution
    assert tls_context(str(ca)) is not first


def test_an_unreadable_ca_file_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="ca_file"):
        tls_context(str(tmp_path / "missing.pem"))
