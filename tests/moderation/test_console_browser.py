"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
log in, moderate a queue of 20 items with the keyboard only, reject with a reason, check that a
``<script>`` contribution stays inert, see the dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.app import create_app
from storage.db import session_factory
from storage.models import AuditEntry, Contribution, Outbox
from storage.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, requires_chromium
from tests.moderation_helpers import PASSWORD, T0, add_account, seed_world

SCRIPT_TEXT = (
    "<script>window.__pwned = 1; document.title = 'pwned';</script>"
    '<img src=x onerror="window.__pwned = 2">**Markdown** [lien](javascript:alert(1)) '
    + "motsanscoupure" * 40
    + " \u0627\u0644\u0645\u0633\u062a\u0634\u0641\u0649 \u202eRTL zero\u200bwidth"
)
SHOTS = SCREENSHOTS

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture
def backend() -> str:
    """The browser tests run on SQLite only: the route tests cover PostgreSQL."""
    return "sqlite"


@pytest.fixture(autouse=True)
def shots_dir() -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
async def server(db_settings: Settings, engine: AsyncEngine) -> AsyncIterator[TestServer]:
    app: web.Application = create_app(db_settings, session_factory(engine))
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


async def test_keyboard_moderation_of_a_queue_of_20(
    server: TestServer, engine: AsyncEngine
) -> None:
    from playwright.async_api import async_playwright

    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    texts = [
        SCRIPT_TEXT if i == 4 else f"Constat numéro {i} : délais trop longs" for i in range(20)
    ]
    world = await seed_world(sessions, per_territory=20, texts=texts)
    await add_account(sessions, "oise@ars.test", "moderator", [world.territories["OISE"]])
    script_ref = "HDF-OISE-000005"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            base = str(server.make_url("/"))

            # --- log in with the keyboard only (email field has autofocus)
            await page.goto(base + "login")
            await page.keyboard.type("oise@ars.test")
            await page.keyboard.press("Tab")
            await page.keyboard.type(PASSWORD)
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert page.url.endswith("/contributions")
            assert await page.locator("tr[data-row]").count() == 20
            await page.screenshot(path=str(SHOTS / "queue.png"), full_page=True)

            # --- help with "?"
            await page.keyboard.press("?")
            assert await page.locator("#raccourcis").is_visible()
            await page.keyboard.press("Escape")
            assert not await page.locator("#raccourcis").is_visible()

            # --- j selects the first row, Enter opens it
            await page.keyboard.press("j")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert "/contributions/HDF-OISE-000001" in page.url

            decided = 0
            while True:
                ref = page.url.split("/contributions/")[1].split("?")[0]
                if ref == script_ref:
                    # the hostile text is shown as text and did not run
                    text = await page.locator(".textblock .text").first.inner_text()
                    assert "<script>window.__pwned = 1;" in text
                    assert await page.evaluate("window.__pwned") is None
                    assert "pwned" not in await page.title()
                    box = await page.locator(".textblock .text").first.bounding_box()
                    assert box is not None and box["width"] <= 1280  # long word wrapped
                    await page.screenshot(path=str(SHOTS / "detail.png"), full_page=True)
                    # reject with a reason, keyboard only: r, pick the reason, Enter
                    await page.keyboard.press("r")
                    assert await page.evaluate("document.activeElement.id") == "reject-reason"
                    await page.keyboard.press("ArrowDown")  # "Hors sujet"
                    await page.keyboard.press("ArrowDown")  # "Propos injurieux ou abusifs"
                    assert await page.eval_on_selector("#reject-reason", "e => e.value") == (
                        "abusive"
                    )
                    async with page.expect_navigation():
                        await page.keyboard.press("Enter")
                else:
                    async with page.expect_navigation():
                        await page.keyboard.press("a")
                decided += 1
                if "/contributions/" not in page.url.split("?")[0] + "/":
                    break
                if page.url.split("?")[0].endswith("/contributions"):
                    break
            assert decided == 20
            assert "File terminée" in await page.locator(".flash").inner_text()

            # --- the dashboard
            await page.goto(base + "dashboard")
            assert await page.locator("svg.chart").count() >= 2
            assert "Thèmes sans aucune contribution" in await page.content()
            await page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
            csp = [p for p in problems if "Content Security Policy" in p]
            assert csp == [], csp
            assert await page.evaluate("window.__pwned") is None
        finally:
            await browser.close()

    async with sessions() as s:
        rows = {
            c.reference: c
            for c in await s.scalars(
                select(Contribution).where(Contribution.territory_id == world.territories["OISE"])
            )
        }
        assert rows[script_ref].status == "rejected"
        assert rows[script_ref].reject_reason == "abusive"
        assert sum(c.status == "approved" for c in rows.values()) == 19
        assert len(list(await s.scalars(select(Outbox)))) == 20
        actions = [a for a in await s.scalars(select(AuditEntry.action))]
        assert actions.count("approve") == 19 and actions.count("reject") == 1


async def test_admin_pages_with_the_hauts_de_france_campaign(
    server: TestServer, engine: AsyncEngine
) -> None:
    """The real campaign file: 7 territories, real theme labels; admin dashboard, audit, staff."""
    from playwright.async_api import async_playwright

    from storage.campaign_file import CAMPAIGNS_DIR, read_campaign_file
    from storage.campaigns_db import load_campaign
    from storage.models import Participant, Territory, Theme

    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    spec = read_campaign_file(CAMPAIGNS_DIR / "hauts-de-france-2022.toml")
    async with sessions() as s:
        loaded = await load_campaign(s, spec)
        territories = list(
            await s.scalars(select(Territory).where(Territory.campaign_id == loaded.campaign_id))
        )
        themes = list(await s.scalars(select(Theme).where(Theme.campaign_id == loaded.campaign_id)))
        p = Participant(key="a" * 64, channel="telegram", lang="fr")
        s.add(p)
        await s.flush()
        statuses = ["pending", "approved", "rejected", "pending", "duplicate"]
        n = 0
        for ti, terr in enumerate(territories[:5]):
            for k in range(ti + 2):
                n += 1
                s.add(
                    Contribution(
                        reference=f"HDF-{terr.code}-{k + 1:06d}",
                        campaign_id=loaded.campaign_id,
                        territory_id=terr.id,
                        theme_id=themes[(ti + k) % 3].id,
                        need=f"Délais de rendez-vous trop longs à {terr.name} ({k})",
                        solution="Ouvrir une maison de santé pluriprofessionnelle",
                        language="fr",
                        channel="telegram",
                        consent_version="v1",
                        participant_id=p.id,
                        draft_id=n,
                        status=statuses[n % 5],
                        profile="proche-aidant",
                        created_at=T0 + timedelta(days=n % 6, hours=n),
                    )
                )
        await s.commit()
    await add_account(sessions, "admin@ars.test", "admin", [])

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            base = str(server.make_url("/"))
            await page.goto(base + "login")
            await page.fill("#email", "admin@ars.test")
            await page.fill("#password", PASSWORD)
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            # keyboard: skip link to the content first (it works), then j/k move the selection
            await page.keyboard.press("Tab")
            assert await page.evaluate(
                "document.activeElement.matches('.fr-skiplinks a[href=\"#contenu\"]')"
            )
            await page.keyboard.press("Enter")
            assert await page.evaluate("document.activeElement.id") == "contenu"
            await page.keyboard.press("j")
            await page.keyboard.press("j")
            await page.keyboard.press("k")
            assert await page.locator("tr.current").count() == 1
            await page.keyboard.press("x")  # select the current row for a bulk action
            assert await page.locator("tr.current input[type=checkbox]").is_checked()
            first_ref = await page.locator("tr[data-row] a.ref").first.inner_text()
            assert await page.evaluate("document.activeElement.textContent") == first_ref
            await page.goto(base + "dashboard")
            content = await page.content()
            for terr in territories:
                assert terr.name in content
            assert "Thèmes sans aucune contribution" in content
            await page.screenshot(path=str(SHOTS / "dashboard-hdf.png"), full_page=True)
            await page.goto(base + "audit")
            assert await page.locator("table.audit tbody tr").count() >= 1
            await page.goto(base + "staff")
            await page.screenshot(path=str(SHOTS / "staff.png"), full_page=True)
            for path in ("exports", "aide", "contributions/" + first_ref):
                await page.goto(base + path)
            assert "Proche aidant" in await page.content()  # the profile's label
            # no page of the console breaks its own Content-Security-Policy
            assert problems == [], problems
        finally:
            await browser.close()
