"""What fetching and debugging remember in the store: IMAP cursors, seen ids, the
transcript ring — per mailbox and folder, gone with the mailbox."""

from datetime import UTC, datetime, timedelta

import pytest

from mailoauth.errors import NotFoundError
from mailoauth.models import TranscriptLine
from tests import store_samples as s
from tests.stores import open_sqlite


@pytest.fixture
def store(tmp_path):
    home = tmp_path / "home"
    store = open_sqlite(home)
    store.put_provider(s.microsoft())
    store.put_mailbox(s.smtp_imap())
    yield store
    store.close()


NAME = "sales"  # tests/store_samples.smtp_imap


def lines(n: int, start: int = 0) -> list[TranscriptLine]:
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    return [
        TranscriptLine(at + timedelta(seconds=i), "1", "imap", "C", f"a{i} NOOP")
        for i in range(start, start + n)
    ]


def test_cursor_per_folder_replaced_in_place(store):
    assert store.get_fetch_cursor(NAME, "INBOX") is None
    store.put_fetch_cursor(NAME, "INBOX", "1700000000", "41")
    store.put_fetch_cursor(NAME, "INBOX", "1700000000", "42")
    store.put_fetch_cursor(NAME, "Archive", "9", "3")
    assert store.get_fetch_cursor(NAME, "INBOX") == ("1700000000", "42")
    assert store.get_fetch_cursor(NAME, "Archive") == ("9", "3")


def test_seen_ids_are_added_once_and_trimmed_to_what_the_server_still_has(store):
    for item in ("u1", "u2", "u3", "u2"):
        store.add_fetch_seen(NAME, "INBOX", item)
    store.add_fetch_seen(NAME, "Other", "u1")
    assert store.fetch_seen(NAME, "INBOX") == {"u1", "u2", "u3"}
    assert store.keep_fetch_seen(NAME, "INBOX", {"u2", "u9"}) == 2
    assert store.fetch_seen(NAME, "INBOX") == {"u2"}
    assert store.fetch_seen(NAME, "Other") == {"u1"}  # other folders untouched


def test_many_seen_ids_trim_in_chunks(store):
    for i in range(1200):
        store.add_fetch_seen(NAME, "INBOX", f"id{i}")
    assert store.keep_fetch_seen(NAME, "INBOX", {"id7"}) == 1199
    assert store.fetch_seen(NAME, "INBOX") == {"id7"}


def test_transcript_is_a_bounded_ring_read_oldest_first(store):
    store.append_transcript(NAME, lines(8), keep=5)
    store.append_transcript(NAME, lines(3, start=8), keep=5)
    kept = store.read_transcript(NAME)
    assert [line.text for line in kept] == [f"a{i} NOOP" for i in range(6, 11)]
    assert kept[0].at.tzinfo is not None
    assert [line.text for line in store.read_transcript(NAME, limit=2)] == ["a9 NOOP", "a10 NOOP"]
    assert store.clear_transcript(NAME) == 5
    assert store.read_transcript(NAME) == []


def test_mail_state_goes_with_the_mailbox(store):
    store.put_fetch_cursor(NAME, "INBOX", "1", "2")
    store.add_fetch_seen(NAME, "INBOX", "u1")
    store.append_transcript(NAME, lines(2))
    store.delete_mailbox(NAME)
    store.put_mailbox(s.smtp_imap())  # same name, new mailbox: starts from nothing
    assert store.get_fetch_cursor(NAME, "INBOX") is None
    assert store.fetch_seen(NAME, "INBOX") == set()
    assert store.read_transcript(NAME) == []


def test_unknown_mailbox_is_named(store):
    with pytest.raises(NotFoundError, match="nobody"):
        store.put_fetch_cursor("nobody", "INBOX", "1", "1")
