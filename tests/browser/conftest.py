"""Fixtures of the browser tests: the service as a process, and Chromium driven by Playwright.

Every test under tests/browser gets the ``browser`` marker (``-m "not browser"`` leaves
them out).

``service``        a running `mailoauth serve` on a free 127.0.0.1 port with a fresh data
                   directory (``tests/service.py``): ``service.base_url``, ``service.url(p)``,
                   ``service.env``, ``service.cli("provider", "add", ...)`` (stdout; fails
                   the test on a non-zero exit), ``service.run(...)`` (the completed
                   process), ``service.log()``. Stopped by PID after the test, and it must
                   exit with status 0.
``start_service``  the same with settings: ``start_service(env={...}, args=[...])``.
``page``           a sync-API Playwright page in a fresh context (1280x800, en-US, UTC);
                   ``context`` and ``browser`` are there too. The browser is shared by the
                   sync tests of this package.
``async_page``     the async-API page for ``async def`` tests, with ``async_context`` and
                   ``async_browser`` (a browser per test).
``page_log``       console messages and errors of every page of the test's context
                   (popups too); the test fails on any error unless ``page_log.allow(re)``.

A sync test::

    def test_dashboard(service, page):
        page.goto(service.url("/"))
        expect(page).to_have_title(re.compile("mailoauth"))
        shot(page, "dashboard")

Don't call ``asyncio.run`` in a sync browser test, and don't give it async fixtures: the
sync Playwright marks its own loop as running (``chromium.py``); write an async test.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser as AsyncBrowser
from playwright.async_api import BrowserContext as AsyncBrowserContext
from playwright.async_api import Page as AsyncPage
from playwright.async_api import async_playwright
from playwright.async_api import expect as async_expect
from playwright.sync_api import Browser, BrowserContext, Page
from playwright.sync_api import expect as sync_expect

from tests.browser.chromium import (
    ACTION_TIMEOUT_MS,
    CONTEXT_OPTIONS,
    EXPECT_TIMEOUT_MS,
    NAVIGATION_TIMEOUT_MS,
    PageLog,
    SyncChromium,
    launch_options,
    require_chromium,
)
from tests.service import Service, running_service

HERE = Path(__file__).parent
_SYNC_CHROMIUM = pytest.StashKey[SyncChromium]()

sync_expect.set_options(timeout=EXPECT_TIMEOUT_MS)
async_expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def _is_async(item: pytest.Item) -> bool:
    return inspect.iscoroutinefunction(getattr(item, "obj", None))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before an async test: stop the sync Playwright, or pytest-asyncio cannot run a loop."""
    chromium = item.session.stash.get(_SYNC_CHROMIUM, None)
    if chromium is not None and chromium.running and _is_async(item):
        chromium.stop()


# --- the service ---------------------------------------------------------------------------


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """``start_service(env=None, args=(), home=None)``: one more running service."""
    numbers = itertools.count(1)
    with ExitStack() as stack:

        def start(
            env: dict[str, str] | None = None, args: tuple[str, ...] = (), home: Path | None = None
        ) -> Service:
            where = home or tmp_path / f"home-{next(numbers)}"
            return stack.enter_context(running_service(where, env=env, args=args))

        yield start


@pytest.fixture
def service(start_service: Callable[..., Service], tmp_path: Path) -> Service:
    return start_service(home=tmp_path / "home")


# --- sync API --------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def _sync_chromium(request: pytest.FixtureRequest) -> Iterator[SyncChromium]:
    chromium = SyncChromium()
    request.session.stash[_SYNC_CHROMIUM] = chromium
    try:
        yield chromium
    finally:
        chromium.stop()
        del request.session.stash[_SYNC_CHROMIUM]


@pytest.fixture
def browser(request: pytest.FixtureRequest, _sync_chromium: SyncChromium) -> Browser:
    if inspect.iscoroutinefunction(request.function):
        pytest.fail("an async test uses async_page / async_browser, not page / browser")
    return _sync_chromium.browser()


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def context(browser: Browser, page_log: PageLog) -> Iterator[BrowserContext]:
    context = browser.new_context(**CONTEXT_OPTIONS)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    context.on("page", page_log.watch)
    yield context
    context.close()


def _services_first(request: pytest.FixtureRequest) -> None:
    """Set up the test's services before its page, so they stop after it is closed: a
    page still polling a stopped service would log connection errors."""
    for name in ("start_service", "service"):
        if name in request.fixturenames:
            request.getfixturevalue(name)


@pytest.fixture
def page(
    request: pytest.FixtureRequest, context: BrowserContext, page_log: PageLog
) -> Iterator[Page]:
    _services_first(request)
    page = context.new_page()
    yield page
    page_log.check()


# --- async API -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def async_browser() -> AsyncIterator[AsyncBrowser]:
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_options())
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def async_context(
    async_browser: AsyncBrowser, page_log: PageLog
) -> AsyncIterator[AsyncBrowserContext]:
    context = await async_browser.new_context(**CONTEXT_OPTIONS)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    context.on("page", page_log.watch)
    yield context
    await context.close()


@pytest_asyncio.fixture
async def async_page(
    request: pytest.FixtureRequest, async_context: AsyncBrowserContext, page_log: PageLog
) -> AsyncIterator[AsyncPage]:
    _services_first(request)
    page = await async_context.new_page()
    yield page
    page_log.check()
