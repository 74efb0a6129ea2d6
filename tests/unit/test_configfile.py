"""TOML loading: secret references, presets filled in, and one-line errors with paths."""

import shutil
from pathlib import Path

import pytest

from mailoauth.configfile import SecretResolver, load_config_file, parse_config
from mailoauth.errors import ConfigError
from mailoauth.providers import GrantType, Transport
from tests.material import cert_pem, key_pem, rsa_key, service_account_json

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "mailoauth.toml"
EXAMPLE_ENV = {
    "GOOGLE_CLIENT_SECRET": "GOCSPX-google-secret",
    "M365_CLIENT_SECRET": "m365~secret",
    "PBX_PASSWORD": "pbx-password",
    "CORP_CLIENT_SECRET": "corp-secret",
}


def example_dir(tmp_path: Path) -> Path:
    """The documented example with the key files it references, made for real."""
    shutil.copy(EXAMPLE, tmp_path / "mailoauth.toml")
    key = rsa_key()
    (tmp_path / "m365-app.key").write_text(key_pem(key))
    (tmp_path / "m365-app.crt").write_text(cert_pem(key))
    (tmp_path / "service-account.json").write_text(service_account_json(rsa_key(2048, 1)))
    return tmp_path


def load(text: str, env: dict[str, str] | None = None, base: Path | None = None):
    return parse_config(text, resolver=SecretResolver(env or {}, base))


def error_of(text: str, env: dict[str, str] | None = None, base: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(text, env, base)
    message = str(info.value)
    assert "\n" not in message
    return message


GOOGLE = """
[providers.g]
kind = "google"
client_id = "cid"
client_secret = "env:G_SECRET"
"""


def test_the_documented_example_loads_completely(tmp_path):
    config = load_config_file(example_dir(tmp_path) / "mailoauth.toml", env=EXAMPLE_ENV)
    providers = {p.name: p for p in config.providers}
    mailboxes = {m.name: m for m in config.mailboxes}
    assert set(providers) == {"google", "google-sa", "m365", "m365-app", "corp-idp"}
    assert set(mailboxes) == {"support", "scanner", "sales", "pbx", "reports", "alerts", "helpdesk"}
    assert providers["google"].client_secret.reveal() == "GOCSPX-google-secret"
    support = mailboxes["support"]
    assert (support.outgoing.host, support.outgoing.port) == ("smtp.gmail.com", 587)
    assert (support.incoming.host, support.incoming.port) == ("imap.gmail.com", 993)
    assert mailboxes["scanner"].outgoing.port == 465
    assert mailboxes["scanner"].service_account_email == "sa@proj.iam.gserviceaccount.com"
    assert mailboxes["scanner"].subject == "scanner@acme.example"
    assert mailboxes["sales"].incoming.host == "outlook.office365.com"
    assert mailboxes["pbx"].grant is GrantType.PASSWORD
    assert mailboxes["pbx"].password.reveal() == "pbx-password"
    assert providers["m365-app"].certificate.startswith("-----BEGIN CERTIFICATE-----")
    assert mailboxes["alerts"].outgoing.transport is Transport.GRAPH
    assert mailboxes["helpdesk"].incoming.port == 995
    assert mailboxes["helpdesk"].outgoing.alternate_port == 587


def test_env_reference_to_an_unset_variable():
    message = error_of(GOOGLE)
    assert message.startswith("providers.g.client_secret: environment variable G_SECRET")
    assert "export G_SECRET" in message


def test_file_reference_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "secret.txt").write_text("from-file\n")
    config = load(GOOGLE.replace("env:G_SECRET", "file:secret.txt"), base=tmp_path)
    assert config.providers[0].client_secret.reveal() == "from-file"


def test_missing_file_reference(tmp_path):
    message = error_of(GOOGLE.replace("env:G_SECRET", "file:nope.txt"), base=tmp_path)
    assert "providers.g.client_secret" in message
    assert "does not exist" in message


def test_literal_prefix_escapes_a_reference():
    config = load(GOOGLE.replace("env:G_SECRET", "literal:env:G_SECRET"))
    assert config.providers[0].client_secret.reveal() == "env:G_SECRET"


def test_invalid_toml_is_one_line():
    assert "is not valid TOML" in error_of("[providers.g\nkind = 1")


def test_unknown_keys_are_not_ignored():
    message = error_of(GOOGLE.replace("client_secret", "client_secert"), {"G_SECRET": "x"})
    assert message == "providers.g.client_secert: unknown key; did you mean 'client_secret'?"


def test_unknown_top_level_section():
    assert "unknown top-level key" in error_of("[mailbox.x]\nlogin='a'")


def test_nested_key_typo_names_the_full_path():
    text = (
        GOOGLE
        + """
[mailboxes.m]
provider = "g"
login = "me@example.com"
outgoing = { transport = "smtp", prot = 25 }
"""
    )
    message = error_of(text, {"G_SECRET": "x"})
    assert message.startswith("mailboxes.m.outgoing.prot: unknown key; did you mean 'port'?")


def test_mailbox_naming_a_missing_provider():
    message = error_of('[mailboxes.m]\nprovider = "nope"\nlogin = "me@example.com"')
    assert message.startswith("mailboxes.m.provider: provider 'nope' does not exist")


def test_wrong_type_is_named():
    text = GOOGLE + '[mailboxes.m]\nprovider = "g"\nlogin = "a@b.c"\n'
    text += 'incoming = { poll_interval = "often" }\n'
    message = error_of(text, {"G_SECRET": "x"})
    assert message.startswith("mailboxes.m.incoming.poll_interval: 'often' is not a whole number")


def test_port_out_of_range_in_toml():
    text = GOOGLE + '[mailboxes.m]\nprovider = "g"\nlogin = "a@b.c"\n'
    text += "outgoing = { port = 99999 }\n"
    assert "mailboxes.m.outgoing.port: 99999 is out of range" in error_of(text, {"G_SECRET": "x"})


def test_generic_mailbox_without_host_says_so():
    text = """
[providers.x]
kind = "generic"
client_id = "c"
client_auth = "none"
token_url = "https://idp.example/token"
[mailboxes.m]
provider = "x"
login = "a@b.c"
outgoing = { transport = "smtp" }
"""
    assert error_of(text).startswith("mailboxes.m.outgoing.host: is required for smtp")


def test_service_account_json_must_be_a_service_account_key(tmp_path):
    (tmp_path / "sa.json").write_text('{"type": "authorized_user"}')
    text = """
[providers.sa]
kind = "google"
client_id = "1"
client_auth = "none"
[mailboxes.m]
provider = "sa"
grant = "service_account"
login = "a@b.example"
service_account_json = "file:sa.json"
"""
    message = error_of(text, base=tmp_path)
    assert "mailboxes.m.service_account_json: is not a Google service-account key" in message


def test_private_key_that_does_not_parse(tmp_path):
    (tmp_path / "k.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    text = """
[providers.x]
kind = "generic"
client_id = "c"
token_url = "https://idp.example/token"
client_auth = "private_key_jwt"
private_key = "file:k.pem"
"""
    message = error_of(text, base=tmp_path)
    assert message.startswith("providers.x.private_key: is not a usable PEM private key")
    assert "AAAA" not in message


def test_secret_values_never_appear_in_errors():
    text = GOOGLE.replace("env:G_SECRET", "super-secret-value") + 'tenant = "x"\n'
    message = error_of(text)
    assert "super-secret-value" not in message
