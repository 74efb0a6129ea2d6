"""Where the store key comes from, and the key file's life cycle."""

import stat
import threading

import pytest

from mailoauth.errors import SecretKeyError
from mailoauth.secret import Secret
from mailoauth.store.crypto import SecretKey
from mailoauth.store.keys import (
    commit_pending_key,
    key_file_too_open,
    load_key,
    pending_key_path,
    read_key_file,
    resolve_key,
    write_pending_key,
)
from tests.stores import sqlite_settings


def settings_in(tmp_path, secret_key=None):
    home = tmp_path / "home"
    return sqlite_settings(home, secret_key=Secret(secret_key) if secret_key else None)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_a_private_key_file(tmp_path):
    settings = settings_in(tmp_path)
    key = load_key(settings, create=True)
    assert mode(settings.key_file) == 0o600
    assert mode(settings.key_file.parent) == 0o700
    assert settings.key_file.read_text() == key.encode() + "\n"
    assert not key_file_too_open(settings.key_file)
    assert [p.name for p in settings.key_file.parent.iterdir()] == ["secret.key"]  # no temp


def test_later_runs_reuse_the_key_file(tmp_path):
    settings = settings_in(tmp_path)
    first = load_key(settings, create=True)
    assert load_key(settings, create=True) == first
    assert load_key(settings, create=False) == first


def test_environment_key_wins_and_no_file_is_made(tmp_path):
    env_key = SecretKey.generate()
    settings = settings_in(tmp_path, env_key.encode())
    assert load_key(settings, create=True) == env_key
    assert not settings.key_file.exists()


def test_malformed_environment_key_is_a_clear_error(tmp_path):
    settings = settings_in(tmp_path, "my-password-123")
    with pytest.raises(SecretKeyError) as info:
        load_key(settings, create=True)
    assert "MAILOAUTH_SECRET_KEY is not a mailoauth key" in str(info.value)
    assert "mailoauth generate-key" in str(info.value)
    assert "my-password-123" not in str(info.value)


def test_missing_file_without_create_says_how_to_get_a_key(tmp_path):
    settings = settings_in(tmp_path)
    with pytest.raises(SecretKeyError) as info:
        load_key(settings, create=False)
    message = str(info.value)
    assert str(settings.key_file) in message
    assert "MAILOAUTH_SECRET_KEY" in message
    assert "mailoauth generate-key" in message
    assert not settings.key_file.exists()


def test_damaged_key_file_names_the_file_and_says_restore(tmp_path):
    settings = settings_in(tmp_path)
    settings.key_file.parent.mkdir()
    settings.key_file.write_text("not-a-key-but-maybe-a-secret\n")
    with pytest.raises(SecretKeyError) as info:
        load_key(settings, create=True)
    message = str(info.value)
    assert f"the key file {settings.key_file} is not a mailoauth key" in message
    assert "restore it from your backup" in message
    assert "not-a-key-but-maybe-a-secret" not in message


def test_key_file_readable_by_others_is_reported(tmp_path):
    settings = settings_in(tmp_path)
    assert not key_file_too_open(settings.key_file)  # missing: nothing to warn about
    load_key(settings, create=True)
    settings.key_file.chmod(0o644)
    assert key_file_too_open(settings.key_file)
    assert load_key(settings, create=False).key_id  # still usable


def test_a_key_the_data_does_not_need_is_refused_naming_both_ids(tmp_path):
    settings = settings_in(tmp_path)
    key = load_key(settings, create=True)
    needed = SecretKey.generate().key_id
    with pytest.raises(SecretKeyError) as info:
        resolve_key(settings, needed=needed, create=True)
    assert needed in str(info.value)
    assert key.key_id in str(info.value)
    assert read_key_file(settings.key_file) == key  # untouched


def test_missing_key_file_is_not_replaced_when_data_needs_a_key(tmp_path):
    settings = settings_in(tmp_path)
    needed = SecretKey.generate().key_id
    with pytest.raises(SecretKeyError) as info:
        resolve_key(settings, needed=needed, create=True)
    assert f"the key file {settings.key_file} is missing" in str(info.value)
    assert needed in str(info.value)
    assert not settings.key_file.exists()


def test_environment_key_of_the_wrong_id_is_refused(tmp_path):
    settings = settings_in(tmp_path, SecretKey.generate().encode())
    needed = SecretKey.generate().key_id
    with pytest.raises(SecretKeyError, match=f"encrypted with key {needed}, but MAILOAUTH"):
        resolve_key(settings, needed=needed, create=False)


def test_pending_key_the_data_needs_finishes_the_rotation(tmp_path):
    settings = settings_in(tmp_path)
    load_key(settings, create=True)
    new = SecretKey.generate()
    write_pending_key(settings.key_file, new)
    assert mode(pending_key_path(settings.key_file)) == 0o600
    assert resolve_key(settings, needed=new.key_id, create=False) == new
    assert read_key_file(settings.key_file) == new
    assert not pending_key_path(settings.key_file).exists()


def test_stale_pending_key_is_ignored(tmp_path):
    settings = settings_in(tmp_path)
    key = load_key(settings, create=True)
    write_pending_key(settings.key_file, SecretKey.generate())
    assert resolve_key(settings, needed=key.key_id, create=False) == key
    assert read_key_file(settings.key_file) == key


def test_finishing_a_rotation_twice_is_harmless(tmp_path):
    settings = settings_in(tmp_path)
    load_key(settings, create=True)
    new = SecretKey.generate()
    write_pending_key(settings.key_file, new)
    commit_pending_key(settings.key_file, new)
    commit_pending_key(settings.key_file, new)  # e.g. a second process got there first
    assert read_key_file(settings.key_file) == new
    with pytest.raises(SecretKeyError, match="disappeared"):
        commit_pending_key(settings.key_file, SecretKey.generate())


def test_processes_starting_together_agree_on_one_key(tmp_path):
    for attempt in range(10):
        settings = settings_in(tmp_path / str(attempt))
        barrier = threading.Barrier(4)
        keys = []

        def start(settings=settings, barrier=barrier, keys=keys):
            barrier.wait()
            keys.append(load_key(settings, create=True))

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(keys) == 4
        assert len({k.key_id for k in keys}) == 1
        assert read_key_file(settings.key_file) == keys[0]
