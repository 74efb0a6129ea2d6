"""Debian's Chromium under Playwright, as the browser tests use it.

- The browser is ``/usr/bin/chromium`` from Debian (``./scripts/test`` installs it):
  Playwright's own browser download cannot reach the network here. ``MAILOAUTH_CHROMIUM``
  points at another binary. Missing, the browser tests skip, except under ``CI=true``,
  where they fail: CI installs it, so a missing browser is a broken setup.
- The flags: ``--no-sandbox`` as root (Chromium refuses to run its sandbox as root), no
  GPU, and no background networking (component updates, sync, QUIC probes), whose
  connections this machine's closed network refuses by the dozen. Playwright's ``launch``
  gives every browser a fresh temporary profile (user data dir) and deletes it on close.
- :class:`SyncChromium` holds one Playwright (sync API) and one browser for the sync tests
  of the package. While it is alive the sync API marks its own asyncio loop as running in
  the main thread (``playwright/_impl/_greenlets.py``), and pytest-asyncio cannot start a
  loop for an async test; so ``conftest.py`` stops it before every async test (which uses
  the async API and a browser of its own) and it starts again on the next sync test.
- :class:`PageLog` records what pages print to the console and the errors they throw, for
  every page of a context (popups included); a test fails on any error it did not allow.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CHROMIUM = Path(os.environ.get("MAILOAUTH_CHROMIUM", "/usr/bin/chromium"))

#: The same for every context: screenshots for docs/console.md must not depend on the machine.
CONTEXT_OPTIONS: dict[str, Any] = {
    "viewport": {"width": 1280, "height": 800},
    "device_scale_factor": 1,
    "locale": "en-US",
    "timezone_id": "UTC",
    "color_scheme": "light",
    "reduced_motion": "reduce",
}
ACTION_TIMEOUT_MS = 20_000  # clicks, fills, waits: generous, the CI machine has 2 busy cores
NAVIGATION_TIMEOUT_MS = 30_000
EXPECT_TIMEOUT_MS = 10_000


def require_chromium() -> None:
    """Skip when Chromium is missing, or fail under CI=true, saying how to install it."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    message = (
        f"Debian's chromium is not installed ({CHROMIUM} is missing): ./scripts/test "
        "installs it, or run `apt-get install chromium`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def launch_options() -> dict[str, Any]:
    args = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    if os.geteuid() == 0:
        args.insert(0, "--no-sandbox")
    return {"executable_path": str(CHROMIUM), "headless": True, "args": args}


class SyncChromium:
    """One Playwright (sync API) and one Chromium, started on first use; see the module."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    @property
    def running(self) -> bool:
        return self._playwright is not None

    def browser(self) -> Browser:
        if self._browser is None:
            require_chromium()
            self._playwright = sync_playwright().start()
            try:
                self._browser = self._playwright.chromium.launch(**launch_options())
            except BaseException:
                self.stop()
                raise
        return self._browser

    def stop(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()


def _is_default_favicon(url: str) -> bool:
    return url.partition("?")[0].endswith("/favicon.ico")


@dataclass
class PageLog:
    """Console messages (``"type: text"``) and errors of the pages it watches. ``errors``
    holds console errors and uncaught exceptions; ``allow(pattern)`` accepts the errors a
    test expects (a 4xx answer logs "Failed to load resource: … 400" in Chromium). The
    browser's own request for ``/favicon.ico`` is not the page's doing: its 404 is left out
    (an icon the page links under another name still counts)."""

    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        """Record ``page``'s console and errors (a sync or an async API page)."""
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: uncaught {error}"))

    def _console(self, message: Any) -> None:
        where = message.location.get("url", "")
        self.messages.append(f"{message.type}: {message.text}")
        if message.type == "error" and not _is_default_favicon(where):
            self.errors.append(f"{where}: console error: {message.text}")

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def check(self) -> None:
        if unexpected := self.unexpected():
            pytest.fail("the page logged errors:\n  " + "\n  ".join(unexpected), pytrace=False)
