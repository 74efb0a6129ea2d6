"""AES-GCM sealing of stored secrets: what a user sees when keys or blobs go wrong."""

import base64
import re

import pytest

from mailoauth.errors import SecretKeyError
from mailoauth.store.crypto import Cipher, SecretKey, blob_key_id

AAD = b"providers:google-main"


def test_round_trip():
    cipher = Cipher(SecretKey.generate())
    blob = cipher.seal(b"client secret", AAD)
    assert cipher.open(blob, AAD) == b"client secret"
    assert b"client secret" not in blob


def test_blob_layout_is_version_key_id_nonce_ciphertext():
    key = SecretKey.generate()
    blob = Cipher(key).seal(b"x", AAD)
    assert blob[0] == 0x01
    assert blob[1:9].hex() == key.key_id == blob_key_id(blob)
    assert len(blob) == 1 + 8 + 12 + 1 + 16


def test_each_seal_uses_a_fresh_nonce():
    cipher = Cipher(SecretKey.generate())
    assert cipher.seal(b"same", AAD) != cipher.seal(b"same", AAD)


def test_wrong_key_names_both_key_ids():
    right, wrong = SecretKey.generate(), SecretKey.generate()
    blob = Cipher(right).seal(b"token", AAD)
    with pytest.raises(SecretKeyError) as info:
        Cipher(wrong).open(blob, AAD)
    message = str(info.value)
    assert right.key_id in message
    assert wrong.key_id in message
    assert "MAILOAUTH_SECRET_KEY" in message


@pytest.mark.parametrize("position", [0, 9, 15, 21, 22, -1])  # version, nonce, body, tag
def test_a_changed_byte_is_refused(position):
    key = SecretKey.generate()
    blob = bytearray(Cipher(key).seal(b"refresh token", AAD))
    blob[position] ^= 0x01
    with pytest.raises(SecretKeyError, match="damaged or was tampered with"):
        Cipher(key).open(bytes(blob), AAD)


def test_a_changed_key_id_byte_is_refused():
    key = SecretKey.generate()
    blob = bytearray(Cipher(key).seal(b"refresh token", AAD))
    blob[3] ^= 0x01
    with pytest.raises(SecretKeyError):
        Cipher(key).open(bytes(blob), AAD)


@pytest.mark.parametrize("length", [0, 1, 21, 36])
def test_truncated_blob_is_refused(length):
    cipher = Cipher(SecretKey.generate())
    blob = cipher.seal(b"secret", AAD)[:length]
    with pytest.raises(SecretKeyError, match="providers:google-main is damaged"):
        cipher.open(blob, AAD)


def test_blob_moved_to_another_row_is_refused():
    cipher = Cipher(SecretKey.generate())
    blob = cipher.seal(b"alice's refresh token", b"grants:alice")
    with pytest.raises(SecretKeyError, match="grants:bob is damaged or was tampered with"):
        cipher.open(blob, b"grants:bob")


def test_key_text_round_trip_tolerates_whitespace_and_padding():
    key = SecretKey.generate()
    text = key.encode()
    assert len(text) == 43
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", text)
    assert SecretKey.parse(text, "X") == key
    assert SecretKey.parse(f"  {text}=\n", "X") == key


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hunter2-correct-horse-battery",
        "A" * 42,
        "A" * 44,
        "A" * 42 + "!",
        base64.b64encode(bytes([0xFB]) * 32).decode(),  # standard alphabet: "+" and "/"
        "ä" * 43,
    ],
)
def test_parse_errors_name_the_source_and_never_echo_the_value(bad):
    with pytest.raises(SecretKeyError) as info:
        SecretKey.parse(bad, "MAILOAUTH_SECRET_KEY")
    message = str(info.value)
    assert message.startswith("MAILOAUTH_SECRET_KEY is not a mailoauth key")
    assert "mailoauth generate-key" in message
    if bad:
        assert bad.strip() not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_key_id_is_stable_short_and_reveals_nothing():
    key = SecretKey.generate()
    again = SecretKey.parse(key.encode(), "X")
    assert key.key_id == again.key_id
    assert re.fullmatch(r"[0-9a-f]{16}", key.key_id)
    assert key.key_id != SecretKey.generate().key_id
    raw = base64.urlsafe_b64decode(key.encode() + "=")
    assert key.key_id not in raw.hex()
    assert key.key_id not in key.encode()


def test_repr_shows_the_id_not_the_key():
    key = SecretKey.generate()
    raw_hex = base64.urlsafe_b64decode(key.encode() + "=").hex()
    for text in (repr(key), str(key), repr(Cipher(key))):
        assert key.key_id in text
        assert key.encode() not in text
        assert raw_hex not in text
