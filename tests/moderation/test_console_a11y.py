"""Every page of the console passes axe-core (WCAG 2.1 A and AA rules) in the real Chromium,
signed in as an administrator and as a moderator, on a phone (360x740) and a desktop
(1280x900): login (and its error), the queue with items, empty, with the keyboard help open and
with an unknown channel asked for, a pending and a moderated contribution, the edit and reject
forms answering an error, the dashboard, exports, the audit log, the accounts, help, 404 and
403; with the phone's menu open too. No page breaks its own Content-Security-Policy or asks
for a file that is not there. Screenshots: test-artifacts/a11y/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.app import create_app
from moderation.dsfr import DSFR_DIR
from storage.db import session_factory
from storage.models import Contribution, Participant, Staff
from storage.settings import Settings
from tests.browser import (
    DESKTOP,
    PHONE,
    Violation,
    assert_no_violations,
    axe_violations,
    chromium,
    clipped_labels,
    collect_errors,
    format_violations,
    requires_chromium,
    screenshot_path,
)
from tests.moderation.test_console_synthesis import COPIED, DOCTOR, NIGHT
from tests.moderation_helpers import PASSWORD, T0, add_account, seed_world

pytestmark = [pytest.mark.browser, requires_chromium]

PENDING = "HDF-OISE-000001"
APPROVED = "HDF-OISE-000002"
REJECTED = "HDF-OISE-000003"


@pytest.fixture
def backend() -> str:
    """The browser tests run on SQLite only: the route tests cover PostgreSQL."""
    return "sqlite"


@pytest.fixture
async def server(db_settings: Settings, engine: AsyncEngine) -> AsyncIterator[TestServer]:
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    world = await seed_world(sessions)
    admin_id = await add_account(sessions, "admin@ars.test", "admin", [])
    await add_account(sessions, "oise@ars.test", "moderator", [world.territories["OISE"]])
    await add_account(sessions, "somme@ars.test", "moderator", [world.territories["SOMME"]])
    async with sessions() as s:
        # personal data, an invisible character and right-to-left text to highlight
        await s.execute(
            update(Contribution)
            .where(Contribution.reference == PENDING)
            .values(
                need="Appelez-moi au 06 12 34 56 78 ou marie.curie@example.fr \u202einversé "
                "\u0627\u0644\u0645\u0633\u062a\u0634\u0641\u0649",
                levers="Des leviers\u200b cachés",
                channel="web",
            )
        )
        await s.execute(
            update(Contribution)
            .where(Contribution.reference == APPROVED)
            .values(
                status="approved",
                channel="terminal",
                language="en",  # shown with lang="en"
                need="No GP has taken new patients here for two years.",
                moderated_by=admin_id,
                moderated_at=T0 + timedelta(days=1),
                originals={"need": "Texte d'origine avec 06 12 34 56 78"},
                version=2,
            )
        )
        await s.execute(
            update(Contribution)
            .where(Contribution.reference == REJECTED)
            .values(
                status="rejected",
                reject_reason="other",
                reject_note="Hors du périmètre de la consultation",
                moderated_by=admin_id,
                moderated_at=T0 + timedelta(days=1),
                version=2,
            )
        )
        # topics (theme 4 of the Oise) and a coordinated campaign (theme 5), for their pages
        for i, (need, new) in enumerate(
            [(t, False) for t in DOCTOR[:3] + NIGHT[:3]] + [(COPIED, True)] * 5
        ):
            at = T0 + timedelta(days=2, minutes=10 * i)
            who = Participant(
                key=f"{100 + i:064x}",
                channel="telegram",
                created_at=at - timedelta(minutes=5) if new else T0,
            )
            s.add(who)
            await s.flush()
            s.add(
                Contribution(
                    reference=f"HDF-OISE-{100 + i:06d}",
                    campaign_id=world.campaign_id,
                    territory_id=world.territories["OISE"],
                    theme_id=world.themes["5" if new else "4"],
                    need=need,
                    solution="",
                    language="fr",
                    channel="telegram",
                    consent_version="v1",
                    participant_id=who.id,
                    draft_id=1,
                    created_at=at,
                    updated_at=at,
                )
            )
        locked = await s.scalar(select(Staff).where(Staff.email == "somme@ars.test"))
        assert locked is not None
        locked.locked_until = T0 + timedelta(days=36500)
        await s.commit()
    app: web.Application = create_app(db_settings, sessions)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


class Visit:
    """Visits pages of one browser page, checking each with axe; collects every finding."""

    def __init__(self, page: Any, base: str, label: str) -> None:
        self.page = page
        self.base = base
        self.label = label
        self.findings: list[tuple[str, list[Violation]]] = []
        self.errors = collect_errors(page)
        self.checked: list[str] = []
        self.clipped: list[str] = []

    async def check(self, name: str) -> None:
        await self.page.wait_for_load_state("load")
        # the DSFR's script has set up its components (header menu, collapses)
        await self.page.wait_for_function("document.documentElement.hasAttribute('data-fr-js')")
        violations = await axe_violations(self.page)
        if violations:
            self.findings.append((f"{self.label} {name} ({self.page.url})", violations))
        # every button and link reads in full (no label cut down to its icon)
        self.clipped.extend(f"{self.label} {name}: {c}" for c in await clipped_labels(self.page))
        self.checked.append(name)
        await self.page.screenshot(
            path=str(screenshot_path(f"a11y/{self.label}-{name}.png")), full_page=True
        )

    async def goto(self, path: str, name: str, status: int = 200) -> None:
        resp = await self.page.goto(self.base + path)
        assert resp is not None and resp.status == status, (path, resp and resp.status)
        await self.check(name)

    async def submit(self, selector: str, name: str, status: int) -> None:
        async with self.page.expect_navigation() as nav:
            await self.page.click(selector)
        resp = await nav.value
        assert resp is not None and resp.status == status, (name, resp and resp.status)
        await self.check(name)

    def report(self) -> str:
        return "\n\n".join(format_violations(v, where) for where, v in self.findings)


async def _log_in(visit: Visit, email: str) -> None:
    page = visit.page
    await visit.goto("login", "login")
    await page.fill("#email", email)
    await page.fill("#password", "not the password")
    await visit.submit("button[type=submit]", "login-error", 401)
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    assert page.url.endswith("/contributions"), page.url


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("role", ["admin", "moderator"])
async def test_every_console_page_passes_axe(server: TestServer, role: str, viewport: str) -> None:
    email = "admin@ars.test" if role == "admin" else "oise@ars.test"
    async with chromium() as browser:
        page = await browser.new_page(viewport=PHONE if viewport == "phone" else DESKTOP)
        visit = Visit(page, str(server.make_url("/")), f"{role}-{viewport}")
        await _log_in(visit, email)

        await visit.check("queue")
        if viewport == "phone":  # the header's menu, opened
            await page.click("#bouton-menu")
            await page.wait_for_selector("#menu-principal.fr-modal--opened", state="visible")
            await visit.check("queue-menu-open")
            await page.keyboard.press("Escape")
        await page.keyboard.press("?")
        assert await page.locator("#raccourcis").is_visible()
        await visit.check("queue-keyboard-help")
        await page.keyboard.press("Escape")
        await page.keyboard.press("j")
        await page.keyboard.press("x")
        assert await page.locator("tr.current input[type=checkbox]").is_checked()
        await visit.check("queue-row-selected")
        await visit.goto("contributions?status=&channel=web", "queue-web")
        assert await page.locator("tr[data-row]").count() == 1
        await visit.goto("contributions?q=aucun-texte-ne-contient-cela", "queue-empty")
        await visit.goto("contributions?channel=%27%20OR%201%3D1%20--", "queue-unknown-channel")

        await visit.goto(f"contributions/{PENDING}", "detail-pending")
        await page.select_option("#reject-reason", "other")
        await visit.submit("#reject-form button[type=submit]", "reject-form-error", 422)
        await page.fill("#edit-need", "")
        await visit.submit("#edit-form button[type=submit]", "edit-form-error", 422)
        await visit.goto(f"contributions/{APPROVED}", "detail-approved")
        await visit.goto(f"contributions/{REJECTED}?status=rejected", "detail-rejected")

        await visit.goto("dashboard", "dashboard")
        await visit.goto("sujets", "topics")
        assert await page.locator("tr[data-topic]").count() >= 2  # a table of topics checked
        await visit.goto("campagnes", "campaigns")
        assert await page.locator("form.campaign-bulk").count() == 1  # and a campaign's form
        await visit.goto("exports", "exports")
        # a territory out of scope (a stale or forged form): answered in the page, 422
        await page.eval_on_selector("#x-territory option", "o => { o.value = '999999'; }")
        await visit.submit("#contenu button[type=submit]", "exports-error", 422)
        await visit.goto("aide", "help")
        await visit.goto("contributions/HDF-NOPE-000001", "error-404", 404)
        if role == "admin":
            await visit.goto("audit", "audit")
            await visit.goto("staff", "staff")
            await page.fill("#s-email", "nouvelle@ars.test")  # a moderator needs a territory
            await visit.submit("#contenu form[action='/staff'] button", "staff-error", 422)
            await page.fill("#s-email", "nouvelle@ars.test")
            await page.select_option("#s-role", "admin")
            await visit.submit("#contenu form[action='/staff'] button", "staff-new-password", 200)
        else:
            await visit.goto("audit", "error-403", 403)
            await visit.goto("staff", "error-403-staff", 403)

        assert visit.findings == [], visit.report()
        assert visit.clipped == [], visit.clipped
        assert visit.errors == [], visit.errors
        assert len(visit.checked) >= 18


async def test_the_axe_helper_reports_what_it_finds() -> None:
    """The harness is not blind: a faulty page yields violations, reported with their rule id,
    impact, help text and targets."""
    async with chromium() as browser:
        page = await browser.new_page(viewport=PHONE)
        await page.set_content(
            "<!doctype html><html><head><title>t</title></head><body><main>"
            '<input id="nom"><img src="data:,"><p class="pale">pâle</p>'
            "<style>.pale { color: #bbb; }</style></main></body></html>"
        )
        violations = await axe_violations(page)
        ids = {v.id for v in violations}
        assert {"html-has-lang", "label", "image-alt", "color-contrast"} <= ids, ids
        with pytest.raises(AssertionError) as failure:
            assert_no_violations(violations, "a faulty page")
        report = str(failure.value)
        assert "on a faulty page" in report
        assert "label (critical): Form elements must have labels" in report
        assert "#nom" in report


async def test_the_clipped_label_check_sees_an_icon_only_button() -> None:
    """The check is not blind: the DSFR's icon button in a small group without
    ``fr-btns-group--icon-left`` shows its icon only (its label cut off), and is found; with
    the group's modifier, or with a ``title`` (an icon-only button on purpose), it is not."""
    group = (
        '<ul class="fr-btns-group fr-btns-group--inline fr-btns-group--sm{extra}"><li>'
        '<a class="fr-btn fr-btn--tertiary fr-icon-download-line fr-btn--icon-left"{title} '
        'href="#">Télécharger mes données (fichier JSON)</a></li></ul>'
    )
    async with chromium() as browser:
        page = await browser.new_page(viewport=PHONE)
        css = (DSFR_DIR / "dsfr.min.css").read_text(encoding="utf-8")
        icons = (DSFR_DIR / "utility" / "icons" / "icons.min.css").read_text("utf-8")
        for extra, title, cut in (
            ("", "", True),
            (" fr-btns-group--icon-left", "", False),
            ("", ' title="Télécharger mes données"', False),
        ):
            await page.set_content(
                f"<!doctype html><html lang=fr><head><title>t</title><style>{css}{icons}"
                f"</style></head><body><main>{group.format(extra=extra, title=title)}</main>"
                "</body></html>"
            )
            clipped = await clipped_labels(page)
            assert (clipped != []) is cut, (extra, title, clipped)
            if cut:
                assert clipped[0].startswith("Télécharger mes données")


async def test_without_javascript_a_phone_still_reaches_every_page(server: TestServer) -> None:
    """The DSFR's header menu needs JavaScript on small screens: a <noscript> menu stands in."""
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, java_script_enabled=False)
        page = await context.new_page()
        base = str(server.make_url("/"))
        await page.goto(base + "login")
        await page.fill("#email", "admin@ars.test")
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        nav = page.locator("nav.nojs-nav")
        assert await nav.is_visible()
        assert not await page.locator("#navigation-principale").is_visible()
        assert not await page.locator("#bouton-menu").is_visible()  # it could not open
        names = [t.strip() for t in await nav.locator("a").all_inner_texts()]
        assert names == [
            "File de modération",
            "Tableau de bord",
            "Exports",
            "Journal d'audit",
            "Comptes",
            "Aide",
        ]
        async with page.expect_navigation():
            await nav.get_by_text("Journal d'audit").click()
        assert page.url.endswith("/audit")
        await page.screenshot(path=str(screenshot_path("a11y/admin-phone-no-javascript.png")))
        async with page.expect_navigation():
            await nav.get_by_role("button", name="Se déconnecter").click()
        assert "/login" in page.url
        await context.close()
    # on a desktop the header shows its own menu, even without JavaScript: no second one
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP, java_script_enabled=False)
        await page.goto(base + "login")
        await page.fill("#email", "admin@ars.test")
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        assert not await page.locator("nav.nojs-nav").is_visible()
        assert await page.locator("#navigation-principale").is_visible()
