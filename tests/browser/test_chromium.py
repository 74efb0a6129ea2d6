"""The browser test machinery itself, on the real service and on a page of our own: the
service answers Chromium with a page that logs no error, and a popup opened by
``window.open`` is seen, driven and closed, from a sync and from an async test."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Page as AsyncPage
from playwright.async_api import expect as async_expect
from playwright.sync_api import Page, expect

from tests.browser.chromium import PageLog
from tests.browser.shots import ARTIFACTS, async_shot, shot
from tests.browser.static_site import POPUP_SITE, serving
from tests.service import Service


@pytest.fixture
def popup_site() -> Iterator[str]:
    with serving(POPUP_SITE) as base_url:
        yield base_url


def test_the_service_answers_chromium_without_a_console_error(
    service: Service, page: Page, page_log: PageLog
) -> None:
    response = page.goto(service.url("/healthz"))
    assert response is not None
    assert response.status == 200
    health = response.json()
    assert health["status"] == "ok"
    # The page's own scripts reach the API on the same origin.
    assert page.evaluate("() => fetch('/healthz').then((r) => r.json())") == health

    response = page.goto(service.url("/"))
    assert response is not None
    assert response.ok, response.status
    expect(page).to_have_title(re.compile("mailoauth", re.IGNORECASE))
    # The dashboard's heading, or the login form in front of it.
    expect(page.locator("h1, input[type=password]").first).to_be_visible()
    path = shot(page, "service-start")
    assert path.stat().st_size > 1000
    assert path.parent == ARTIFACTS
    assert not page_log.unexpected()


def test_a_popup_opened_by_window_open_is_driven_and_reports_back(
    page: Page, popup_site: str
) -> None:
    page.goto(popup_site)
    with page.expect_popup() as popup_info:
        page.get_by_role("button", name="Authorize").click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url.endswith("/consent?state=s1")
    expect(popup).to_have_title("Consent")
    assert popup.opener() == page
    with popup.expect_event("close"):
        popup.get_by_role("button", name="Approve").click()
    assert popup.is_closed()
    expect(page.locator("#state")).to_have_text("connected")


async def test_the_async_api_drives_the_same_popup(async_page: AsyncPage, popup_site: str) -> None:
    await async_page.goto(popup_site)
    async with async_page.expect_popup() as popup_info:
        await async_page.get_by_role("button", name="Authorize").click()
    popup = await popup_info.value
    await popup.wait_for_load_state()
    await async_expect(popup).to_have_title("Consent")
    await async_shot(popup, "popup-consent")
    async with popup.expect_event("close"):
        await popup.get_by_role("button", name="Approve").click()
    await async_expect(async_page.locator("#state")).to_have_text("connected")


def test_an_error_in_the_page_fails_the_test_unless_allowed(
    page: Page, page_log: PageLog, popup_site: str
) -> None:
    page.goto(popup_site)
    page.evaluate(
        "() => { console.error('boom'); setTimeout(() => { throw new Error('bang'); }); }"
    )
    expect(page.locator("#state")).to_have_text("needs authorization")
    page.wait_for_function("() => true")  # let the thrown error reach Playwright
    page.wait_for_timeout(100)
    assert any("console error: boom" in e for e in page_log.errors)
    assert any("uncaught" in e and "bang" in e for e in page_log.errors)
    with pytest.raises(pytest.fail.Exception, match="boom"):
        page_log.check()
    page_log.allow(r"boom|bang")
    page_log.check()  # and the fixture's own check after the test passes too
