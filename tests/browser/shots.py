"""Screenshots of key pages: test artifacts, and the pictures of docs/console.md.

``shot(page, "dashboard")`` writes ``tests/browser/artifacts/dashboard.png`` (gitignored;
kept after the run to look at, or to collect from CI). With
``MAILOAUTH_DOCS_SCREENSHOTS=1`` it also writes ``docs/images/dashboard.png``, so the
docs are refreshed by running the browser tests::

    MAILOAUTH_DOCS_SCREENSHOTS=1 .venv/bin/pytest -q tests/browser

Async tests call ``await async_shot(page, name)``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "browser" / "artifacts"
DOCS_IMAGES = ROOT / "docs" / "images"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def _path(name: str) -> Path:
    if not _NAME.fullmatch(name):
        raise ValueError(f"screenshot name {name!r}: use lower-case letters, digits and '-'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def _publish(path: Path) -> Path:
    if os.environ.get("MAILOAUTH_DOCS_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / path.name)
    return path


def shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Screenshot of a sync-API ``page``; returns the artifact's path."""
    path = _path(name)
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return _publish(path)


async def async_shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Screenshot of an async-API ``page``; returns the artifact's path."""
    path = _path(name)
    await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return _publish(path)
