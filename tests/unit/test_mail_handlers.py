"""Delivery handlers: the Maildir writer on a real filesystem, the webhook's request and
signature (against a reference computation of the documented scheme), ``handler_for``."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import os
import re
import stat
import time
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from mailoauth.errors import ConfigError, MailError
from mailoauth.mail.fetched import FetchedMessage
from mailoauth.mail.handlers import delivery_key, handler_for, maildir_handler, webhook_handler
from mailoauth.mail.handlers import maildir as maildir_module
from mailoauth.mail.handlers.webhook import header_value
from mailoauth.secret import Secret

RAW = b"From: a@example.org\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nbody\r\n"
NAME = re.compile(r"(\d+)\.M\d+P(\d+)Q\d+H([0-9a-f]{32})\.[^/:]+,S=(\d+)")


def fetched(uid: str = "7.1", data: bytes = RAW, **fields: str) -> FetchedMessage:
    return FetchedMessage(
        mailbox=fields.get("mailbox", "sales"),
        folder=fields.get("folder", "INBOX"),
        uid=uid,
        data=data,
    )


def files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


# --- Maildir ---------------------------------------------------------------------------


async def test_a_message_lands_in_new_with_its_exact_bytes(tmp_path):
    box = tmp_path / "Maildir"
    await maildir_handler(box)(fetched())
    [written] = files(box / "new")
    assert written.read_bytes() == RAW
    assert files(box / "tmp") == []
    assert files(box / "cur") == []
    match = NAME.fullmatch(written.name)
    assert match, written.name
    assert abs(int(match[1]) - time.time()) < 60
    assert int(match[2]) == os.getpid()
    assert match[3] == delivery_key(fetched())[:32]
    assert int(match[4]) == len(RAW)


async def test_new_directories_are_0700_and_files_0600(tmp_path):
    box = tmp_path / "a" / "Maildir"
    await maildir_handler(str(box))(fetched())
    for directory in (box, box / "tmp", box / "new", box / "cur"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    [written] = files(box / "new")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


async def test_an_existing_maildir_keeps_its_modes_and_messages(tmp_path):
    box = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (box / sub).mkdir(parents=True)
        (box / sub).chmod(0o750)
    (box / "cur" / "1.other.host:2,S").write_bytes(b"old mail")
    await maildir_handler(box)(fetched())
    assert stat.S_IMODE((box / "new").stat().st_mode) == 0o750
    assert len(files(box / "new")) == 1
    assert (box / "cur" / "1.other.host:2,S").read_bytes() == b"old mail"


async def test_delivering_the_same_message_again_writes_nothing(tmp_path):
    box = tmp_path / "Maildir"
    deliver = maildir_handler(box)
    await deliver(fetched())
    await deliver(fetched())
    assert len(files(box / "new")) == 1
    # A reader took it (new/ → cur/ with flags); a restarted process offers it again.
    [written] = files(box / "new")
    written.rename(box / "cur" / f"{written.name}:2,S")
    await maildir_handler(box)(fetched())
    await deliver(fetched())
    assert files(box / "new") == []
    assert len(files(box / "cur")) == 1


async def test_other_uids_folders_and_mailboxes_are_other_messages(tmp_path):
    box = tmp_path / "Maildir"
    deliver = maildir_handler(box)
    for message in (
        fetched("7.1"),
        fetched("7.2"),
        fetched("7.1", folder="Archive"),
        fetched("7.1", mailbox="support"),
    ):
        await deliver(message)
    assert len(files(box / "new")) == 4


async def test_a_change_in_a_settled_cur_directory_is_noticed(tmp_path):
    box = tmp_path / "Maildir"
    deliver = maildir_handler(box)
    await deliver(fetched("1"))
    long_ago = time.time() - 3600
    os.utime(box / "cur", (long_ago, long_ago))
    await deliver(fetched("2"))  # lists cur/ while it has been still: cached from now on
    second = next(p for p in files(box / "new") if delivery_key(fetched("2"))[:32] in p.name)
    second.rename(box / "cur" / f"{second.name}:2,S")
    await deliver(fetched("2"))
    assert len(files(box / "new")) == 1
    assert len(files(box / "cur")) == 1


async def test_a_move_within_the_same_timestamp_tick_is_not_missed(tmp_path):
    """On a filesystem with coarse timestamps a reader's move can leave cur/'s mtime as
    it was: a listing of a directory that changed just before is not trusted."""
    box = tmp_path / "Maildir"
    deliver = maildir_handler(box)
    await deliver(fetched())
    tick = (box / "cur").stat().st_mtime_ns
    [written] = files(box / "new")
    written.rename(box / "cur" / f"{written.name}:2,S")
    os.utime(box / "cur", ns=(tick, tick))  # the same tick, as a coarse clock would say
    await deliver(fetched())
    assert files(box / "new") == []
    assert len(files(box / "cur")) == 1


async def test_a_big_settled_maildir_is_listed_once_per_run(tmp_path, monkeypatch):
    box = tmp_path / "Maildir"
    deliver = maildir_handler(box)
    await deliver(fetched("0"))
    long_ago = time.time() - 3600
    os.utime(box / "cur", (long_ago, long_ago))
    listed: list[str] = []
    real_listdir = os.listdir

    def counting_listdir(path):
        listed.append(os.path.basename(path))
        return real_listdir(path)

    monkeypatch.setattr(maildir_module.os, "listdir", counting_listdir)
    for uid in range(1, 6):
        await deliver(fetched(str(uid)))
    assert listed.count("cur") == 1
    assert len(files(box / "new")) == 6


async def test_concurrent_deliveries_get_unique_names(tmp_path):
    box = tmp_path / "Maildir"
    deliver = maildir_handler(box)
    await asyncio.gather(*(deliver(fetched(str(n), RAW + bytes([n]))) for n in range(20)))
    contents = {p.read_bytes() for p in files(box / "new")}
    assert contents == {RAW + bytes([n]) for n in range(20)}


async def test_a_file_in_the_way_is_refused_with_the_path_and_fix(tmp_path):
    blocker = tmp_path / "Maildir"
    blocker.write_text("not a directory")
    with pytest.raises(MailError) as caught:
        await maildir_handler(blocker)(fetched())
    message = str(caught.value)
    assert str(blocker) in message
    assert "incoming.deliver" in message
    assert "stays new on the server" in message
    assert not caught.value.temporary


async def test_a_permission_refusal_names_the_path_and_the_fix(tmp_path, monkeypatch):
    """EACCES from the file system (simulated: CI runs as root, which may write anywhere)."""
    box = tmp_path / "Maildir"
    real_open = os.open

    def refusing_open(path, flags, mode=0o777, **kwargs):
        if "/tmp/" in os.fspath(path).removeprefix(str(tmp_path)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(maildir_module.os, "open", refusing_open)
    with pytest.raises(MailError) as caught:
        await maildir_handler(box)(fetched())
    message = str(caught.value)
    assert f"Maildir {box}: Permission denied ({box}/tmp/" in message
    assert "chown" in message
    assert not caught.value.temporary
    assert files(box / "new") == []


async def test_a_full_disk_leaves_no_file_and_is_temporary(tmp_path, monkeypatch):
    box = tmp_path / "Maildir"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(maildir_module.os, "fsync", full)
    with pytest.raises(MailError, match=r"No space left.*free disk space") as caught:
        await maildir_handler(box)(fetched())
    assert caught.value.temporary
    assert files(box / "new") == []
    assert files(box / "tmp") == []


async def test_a_failed_directory_sync_takes_the_file_back_out_of_new(tmp_path, monkeypatch):
    box = tmp_path / "Maildir"

    def broken(directory):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(maildir_module, "_fsync_directory", broken)
    with pytest.raises(MailError, match="Input/output error") as caught:
        await maildir_handler(box)(fetched())
    assert caught.value.temporary
    assert files(box / "new") == []
    assert files(box / "tmp") == []
    monkeypatch.undo()
    await maildir_handler(box)(fetched())  # not mistaken for already delivered
    assert len(files(box / "new")) == 1


async def test_without_hard_links_the_file_is_renamed_into_new(tmp_path, monkeypatch):
    box = tmp_path / "Maildir"

    def no_links(src, dst):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(maildir_module.os, "link", no_links)
    await maildir_handler(box)(fetched())
    [written] = files(box / "new")
    assert written.read_bytes() == RAW
    assert files(box / "tmp") == []


# --- Webhook request and signature ------------------------------------------------------


def reference_signature(key: str, headers: httpx.Headers, body: bytes) -> str:
    """The documented scheme, computed independently of the handler."""
    signed = (
        f"{headers['X-Mailoauth-Timestamp']}\n{headers['X-Mailoauth-Mailbox']}\n"
        f"{headers['X-Mailoauth-Folder']}\n{headers['X-Mailoauth-Uid']}\n"
    ).encode() + body
    return "sha256=" + hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


def recording_client(seen: list[httpx.Request], status: int = 202) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_the_request_carries_the_message_and_a_verifiable_signature():
    seen: list[httpx.Request] = []
    message = fetched("42.7", folder="Entwürfe/2024 %done", mailbox="sales")
    async with recording_client(seen) as http:
        deliver = webhook_handler(
            "https://hooks.example/in", http=http, signing_key=Secret("whsec-test")
        )
        await deliver(message)
    [request] = seen
    headers = request.headers
    assert request.method == "POST"
    assert request.content == RAW
    assert headers["Content-Type"] == "message/rfc822"
    assert headers["X-Mailoauth-Folder"] == "Entw%C3%BCrfe/2024%20%25done"
    assert unquote(headers["X-Mailoauth-Folder"]) == "Entwürfe/2024 %done"
    assert headers["X-Mailoauth-Uid"] == "42.7"
    assert headers["Idempotency-Key"] == delivery_key(message)
    assert abs(int(headers["X-Mailoauth-Timestamp"]) - time.time()) < 60
    assert headers["X-Mailoauth-Signature"] == reference_signature(
        "whsec-test", headers, request.content
    )
    # The metadata is signed: a receiver notices a swapped folder.
    swapped = httpx.Headers({**headers, "X-Mailoauth-Folder": "INBOX"})
    assert headers["X-Mailoauth-Signature"] != reference_signature(
        "whsec-test", swapped, request.content
    )


async def test_without_a_key_there_is_no_signature_and_the_key_is_stable():
    seen: list[httpx.Request] = []
    async with recording_client(seen) as http:
        deliver = webhook_handler("https://hooks.example/in", http=http)
        await deliver(fetched())
        await deliver(fetched())
    assert "X-Mailoauth-Signature" not in seen[0].headers
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]


def test_delivery_keys_do_not_collide_across_field_boundaries():
    assert delivery_key(fetched("c", mailbox="a.b", folder="x")) != delivery_key(
        fetched("c", mailbox="a", folder="b.x")
    )
    assert re.fullmatch(r"[0-9a-f]{64}", delivery_key(fetched()))


def test_header_values_are_visible_ascii():
    assert header_value("INBOX") == "INBOX"
    assert header_value("a/b.c-d_e~f+g") == "a/b.c-d_e~f+g"
    assert header_value("Sent Items") == "Sent%20Items"
    assert header_value("x\r\ny") == "x%0D%0Ay"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example/in", "clear text"),
        ("ftp://hooks.example/in", "not an http"),
        ("https://hooks.example/in#frag", "fragment"),
    ],
)
async def test_webhook_urls_are_checked(url, problem):
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError, match=problem):
            webhook_handler(url, http=http)


async def test_attempts_and_timeout_are_checked():
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError, match="attempts"):
            webhook_handler("https://h.example/", http=http, attempts=0)
        with pytest.raises(ConfigError, match="timeout"):
            webhook_handler("https://h.example/", http=http, timeout=0)


# --- handler_for ------------------------------------------------------------------------


async def test_handler_for_builds_a_maildir_writer(tmp_path):
    async with httpx.AsyncClient() as http:
        deliver = handler_for(f"maildir:{tmp_path}/box", http=http)
    await deliver(fetched())
    assert len(files(tmp_path / "box" / "new")) == 1


async def test_handler_for_builds_a_webhook_and_hides_secrets_in_its_repr():
    seen: list[httpx.Request] = []
    async with recording_client(seen) as http:
        deliver = handler_for(
            "webhook:https://u:pw@hooks.example/in?token=s3cr3t",
            http=http,
            signing_key=Secret("k"),
        )
        await deliver(fetched())
    assert str(seen[0].url) == "https://u:pw@hooks.example/in?token=s3cr3t"
    assert "X-Mailoauth-Signature" in seen[0].headers
    assert repr(deliver) == "<webhook https://hooks.example/in>"


@pytest.mark.parametrize(
    "target",
    [
        "maildir:relative/box",
        "webhook:http://hooks.example/in",
        "mbox:/var/mail/x",
        "/var/mail/x",
        "",
    ],
)
async def test_handler_for_refuses_bad_targets_naming_the_setting(target):
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError) as caught:
            handler_for(target, http=http)
    assert caught.value.field == "incoming.deliver"


async def test_an_empty_signing_key_is_refused():
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError, match="signing_key: is empty"):
            webhook_handler("https://h.example/", http=http, signing_key=Secret(""))
