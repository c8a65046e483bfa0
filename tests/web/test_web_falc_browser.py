"""« Français facile » in a real Chromium: the language switch of the page works with and
without JavaScript, the whole page (lang, title, heading, menu) follows, and axe-core finds
no WCAG violation on it."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from dialogs.messages import t
from storage.settings import Settings
from tests.browser import assert_accessible, requires_chromium
from tests.web.test_web_browser import js_ids, serve, tab

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio(loop_scope="module")]


@js_ids
async def test_the_language_switch_turns_the_whole_page_into_easy_french(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    async with serve(sqlite_settings) as chat, tab(browser, js=js, axe=True) as c:
        await c.open(chat.url)
        switch = c.page.locator('#langues button[value="lang:falc"]')
        await expect(switch).to_have_text("Français facile")
        async with c.page.expect_navigation():
            await switch.click()  # a plain form: the page again, with or without the script
        page = c.page
        assert await page.locator("html").get_attribute("lang") == "fr-x-falc"
        assert t("falc", "web.title") in await page.title()
        await expect(page.locator("h1")).to_have_text(t("falc", "web.heading"))
        await expect(page.locator('#menu button[value="mine"]')).to_have_text("Mes avis")
        await expect(page.locator('#langues button[aria-current="true"]')).to_have_text(
            "Français facile"
        )
        assert await c.said(t("falc", "consent.prompt").split("\n")[0])
        await assert_accessible(page, f"falc-consent-{'js' if js else 'nojs'}")
        await c.press("consent:yes")
        assert await c.state() == "territory"
        assert await c.said(t("falc", "territory.prompt").split("\n")[0])
        assert c.errors == []
