"""The citizen web chat in a real browser: Debian's Chromium driven by Playwright, the real app
on a real SQLite file (``tests.web_helpers.running_web``), one browser for the module.

* Whole contributions with JavaScript (``chat.js``: one page load for the whole conversation,
  replies appended, the focus on the first new reply, a solved proof-of-work sent with
  "Envoyer") and without (``java_script_enabled=False``: plain forms, POST, 303, GET), each
  stored once, channel "web".
* The menu and the review: back, edit at review, cancel (confirmed), "Mes contributions",
  "Effacer mes données" (confirmed: no participant nor contribution left), another language
  (the whole page, not only the replies); resuming after a restart of the server; two tabs
  of one citizen; a double click, and two quick clicks, on "Envoyer".
* The proof-of-work: with one first contribution an hour allowed without a proof per address,
  two citizens with JavaScript get through (their proofs), one without JavaScript too, and
  the next without JavaScript is held back ("réessayer dans N minutes", draft kept).
* Every page and state passes axe-core (WCAG 2.1 A/AA, ``tests.browser``) on a phone (360x740)
  and a desktop (1280x900), with and without JavaScript, error pages (404, 413, 429) and the
  footer's accessibility statement and personal-data page (French and easy French) included,
  and none is wider than the phone; no console error, no CSP violation, no missing file.
  axe-core needs the page's JavaScript engine (its timers do not run in a context with
  ``java_script_enabled=False``), so the pages "without JavaScript" are checked in a
  context where the page's own scripts are withheld (answered empty): the same
  server-rendered HTML, forms posted by the browser.
  Screenshots of every state on the phone: ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from playwright.async_api import Browser, Locator, Page, Route, ViewportSize, expect
from playwright.async_api import Error as PlaywrightError
from sqlalchemy import select

from dialogs.messages import t
from storage.models import Contribution, Outbox, Participant
from storage.settings import Settings
from tests.browser import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    Violation,
    axe_violations,
    clipped_labels,
    collect_errors,
    format_violations,
    requires_chromium,
)
from tests.telegram_helpers import LEVERS_FR, NEED_FR, SOLUTION_FR
from tests.web_helpers import WebChat, count, running_web

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio(loop_scope="module")]

SHOTS = SCREENSHOTS / "web"
REFERENCE = re.compile(r"HDF-OISE-\d{6}")
SCRIPT = re.compile(r"\.js(\?|$)")
CUSTOM_THEME = "Santé des aidants familiaux"
OTHER_NEED = "Les urgences de l'hôpital ferment la nuit, il faut aller à 50 km pour être soigné."
STALE = "Ce texte vient d'un onglet resté en arrière sur l'étape du constat."


def serve(settings: Settings, **extra: Any) -> AbstractAsyncContextManager[WebChat]:
    """The web chat on ``settings``' SQLite file, with an easy proof-of-work (still solved by
    the widget and checked by the server, in ~1,000 hashes instead of ~25,000)."""
    return running_web(settings, **{"altcha_max_number": 1_000, **extra})


# --- a citizen in a browser tab ----------------------------------------------------------------


@dataclass
class Tab:
    """One tab of the web chat. ``js``: the chat script runs (answers in place); otherwise
    every button posts its form and the browser follows the redirect."""

    page: Page
    js: bool
    errors: list[str] = field(default_factory=list)

    @property
    def bubbles(self) -> Locator:
        return self.page.locator("#fil li.chat__msg--bot")

    async def open(self, url: str) -> None:
        await self.page.goto(url)

    async def submit(self, button: Locator) -> None:
        if self.js:
            # chat.js marks the forms busy as the button is clicked, and not busy once the
            # answer is shown (or the problem said)
            await button.click()
            await self.page.locator("#reponse[aria-busy=false]").wait_for(state="attached")
        else:
            async with self.page.expect_navigation(wait_until="domcontentloaded"):
                await button.click()

    def button(self, value: str) -> Locator:
        return self.page.locator(f'#reponse button[name=choice][value="{value}"]')

    async def press(self, value: str) -> None:
        await self.submit(self.button(value))

    async def write(self, text: str) -> None:
        await self.page.locator("#texte").fill(text)
        await self.submit(self.page.locator("#reponse button[name=send]"))

    async def command(self, name: str) -> None:
        await self.submit(self.page.locator(f'#menu button[value="{name}"]'))

    async def state(self) -> str:
        return await self.page.locator("#reponse input[name=state]").input_value()

    async def said(self, text: str) -> bool:
        return any(text in reply for reply in await self.bubbles.all_inner_texts())

    async def reference(self) -> str:
        found: list[str] = REFERENCE.findall(" ".join(await self.bubbles.all_inner_texts()))
        assert found, await self.bubbles.all_inner_texts()
        return found[-1]


async def withhold_scripts(route: Route) -> None:
    await route.fulfill(status=200, content_type="text/javascript", body="")


@asynccontextmanager
async def tab(
    browser: Browser, *, js: bool, axe: bool = False, viewport: dict[str, int] = PHONE
) -> AsyncIterator[Tab]:
    """A new citizen (a new browser context: its own cookie) with one tab. ``axe`` with
    ``js=False``: the JavaScript engine on, for axe-core, but the page's scripts withheld."""
    context = await browser.new_context(
        viewport=size(viewport), locale="fr-FR", java_script_enabled=js or axe
    )
    if axe and not js:
        await context.route(SCRIPT, withhold_scripts)
    try:
        page = await context.new_page()
        yield Tab(page, js, collect_errors(page))
    finally:
        await context.close()


async def new_tab(of: Tab) -> Tab:
    """Another tab of the same citizen (same context, same cookie)."""
    page = await of.page.context.new_page()
    return Tab(page, of.js, collect_errors(page))


async def up_to_review(c: Tab) -> None:
    await c.press("consent:yes")
    await c.press("t:OISE")
    await c.press("th:1")
    await c.write(NEED_FR)
    await c.write(SOLUTION_FR)
    await c.write(LEVERS_FR)
    await c.press("p:-")
    assert await c.state() == "review"


async def contribute(c: Tab, url: str) -> str:
    """A whole contribution; returns its reference."""
    await c.open(url)
    await up_to_review(c)
    await c.press("send")
    assert await c.state() == "done", await c.bubbles.all_inner_texts()
    return await c.reference()


def size(viewport: dict[str, int]) -> ViewportSize:
    return ViewportSize(width=viewport["width"], height=viewport["height"])


js_ids = pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])


# --- whole contributions -----------------------------------------------------------------------


async def test_a_whole_contribution_with_javascript_in_one_page_load(
    browser: Browser, sqlite_settings: Settings
) -> None:
    async with serve(sqlite_settings) as chat, tab(browser, js=True) as c:
        loads: list[str] = []
        c.page.on("load", lambda p: loads.append(p.url))
        await c.open(chat.url)
        await c.page.evaluate("window.notReloaded = true")
        assert await c.state() == "new"
        steps: list[tuple[Callable[[], Awaitable[None]], str]] = [
            (lambda: c.press("consent:yes"), "territory"),
            (lambda: c.press("t:OISE"), "theme"),
            (lambda: c.press("th:1"), "need"),
            (lambda: c.write(NEED_FR), "solution"),
            (lambda: c.write(SOLUTION_FR), "levers"),
            (lambda: c.write(LEVERS_FR), "profile"),
            (lambda: c.press("p:-"), "review"),
        ]
        for step, state in steps:
            before = await c.bubbles.count()
            await step()
            assert await c.state() == state
            # the replies are appended (the earlier ones stay), and the first new one has the
            # focus: a screen reader reads it next
            assert await c.bubbles.count() > before
            await expect(c.bubbles.nth(before)).to_be_focused()
        # the review of a first contribution carries the proof-of-work widget, in the form
        await expect(c.page.locator("#reponse altcha-widget .altcha")).to_be_visible()
        before = await c.bubbles.count()
        async with c.page.expect_request(
            lambda r: r.method == "POST" and r.url.endswith("/message")
        ) as sent:
            await c.press("send")
        form = parse_qs((await sent.value).post_data or "")
        assert form["choice"] == ["send"] and form["altcha"][0], form  # a solved proof
        await expect(c.bubbles.nth(before)).to_be_focused()
        reference = await c.reference()
        assert await c.said(t("fr", "submitted", reference=reference)[:60])
        # what the citizen said is in the thread too, and it is the same page all along
        mine = await c.page.locator("#fil li.chat__msg--me").all_inner_texts()
        assert len(mine) == 8 and NEED_FR in mine[3] and SOLUTION_FR in mine[4]
        assert await c.page.evaluate("window.notReloaded") is True
        assert loads == [chat.url]
        async with chat.channel.service.sessions() as s:
            row = (await s.scalars(select(Contribution))).one()
        assert (row.reference, row.channel, row.need) == (reference, "web", NEED_FR)
        assert c.errors == []


async def test_a_whole_contribution_without_javascript_posts_and_redirects(
    browser: Browser, sqlite_settings: Settings
) -> None:
    async with serve(sqlite_settings) as chat, tab(browser, js=False) as c:
        posts: list[int] = []
        c.page.on(
            "response",
            lambda r: posts.append(r.status) if r.request.method == "POST" else None,
        )
        await c.open(chat.url)
        assert await c.state() == "new"
        steps: list[tuple[Callable[[], Awaitable[None]], str]] = [
            (lambda: c.press("consent:yes"), "territory"),
            (lambda: c.press("t:OISE"), "theme"),
            (lambda: c.press("th:1"), "need"),
            (lambda: c.write(NEED_FR), "solution"),
            (lambda: c.write(SOLUTION_FR), "levers"),
            (lambda: c.write(LEVERS_FR), "profile"),
            (lambda: c.press("p:-"), "review"),
        ]
        for step, state in steps:
            await step()
            assert "/?r=" in c.page.url and await c.state() == state
        # without JavaScript the widget is an unknown, empty element: nothing to solve
        assert await c.page.locator("#reponse altcha-widget").count() == 1
        assert await c.page.locator("#reponse altcha-widget *").count() == 0
        await c.press("send")
        reference = await c.reference()
        assert await c.said(t("fr", "submitted", reference=reference)[:60])
        assert posts == [303] * 8  # POST, redirect, GET: every time
        async with chat.channel.service.sessions() as s:
            row = (await s.scalars(select(Contribution))).one()
        assert (row.reference, row.channel, row.solution) == (reference, "web", SOLUTION_FR)
        assert c.errors == []


# --- back, edit, cancel, my contributions, delete my data --------------------------------------


@js_ids
async def test_back_edit_at_review_and_cancel(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    async with serve(sqlite_settings) as chat, tab(browser, js=js) as c:
        await c.open(chat.url)
        for choice in ("consent:yes", "t:OISE", "th:1"):
            await c.press(choice)
        await c.write(OTHER_NEED)
        assert await c.state() == "solution"
        await c.command("back")  # "Revenir à l'étape précédente"
        assert await c.state() == "need" and await c.said(t("fr", "need.prompt")[:40])
        await c.write(NEED_FR)
        await c.write(SOLUTION_FR)
        await c.press("skip")
        await c.press("p:-")
        assert await c.state() == "review"
        summary = (await c.bubbles.all_inner_texts())[-1]
        assert NEED_FR in summary and OTHER_NEED not in summary
        await c.press("edit:need")  # "Modifier le constat"
        assert await c.state() == "need"
        await c.write(OTHER_NEED)
        assert await c.state() == "review"  # back to the review, not on to the solution
        summary = (await c.bubbles.all_inner_texts())[-1]
        assert OTHER_NEED in summary and SOLUTION_FR in summary
        await c.press("discard")  # "Abandonner", then confirmed
        assert await c.state() == "confirm_cancel"
        await c.press("cancel:no")
        assert await c.state() == "review"
        await c.press("discard")
        await c.press("cancel:yes")
        assert await c.state() == "done" and await c.said(t("fr", "cancel.done"))
        assert await count(chat, Contribution) == 0
        await c.command("mine")
        assert await c.said(t("fr", "mine.none"))
        assert c.errors == []


@js_ids
async def test_rewriting_an_answer_with_personal_data_gives_the_text_back_in_the_box(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    """« Je la réécris » after the personal-data warning: the question again, with the text
    typed in the box, to take the details out rather than type it all again."""
    typed = "Plus de médecin au village depuis 2021, appelez-moi au 06 12 34 56 78 svp."
    async with serve(sqlite_settings) as chat, tab(browser, js=js) as c:
        await c.open(chat.url)
        for choice in ("consent:yes", "t:OISE", "th:1"):
            await c.press(choice)
        await c.write(typed)
        assert await c.state() == "need" and await c.button("aside:rewrite").count() == 1
        await c.press("aside:rewrite")
        assert await c.state() == "need" and await c.said(t("fr", "need.prompt")[:40])
        assert await c.page.locator("#texte").input_value() == typed
        await c.write(NEED_FR)
        assert await c.state() == "solution"
        assert await c.page.locator("#texte").input_value() == "", "given back once"
        assert c.errors == []


@js_ids
async def test_changing_the_language_changes_the_whole_page(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    """The title, the headings, the menu and the labels too, not only the replies: with
    JavaScript the page is loaded again (it would otherwise be French under lang="en")."""
    mode = "js" if js else "nojs"
    async with serve(sqlite_settings) as chat, tab(browser, js=js, axe=True) as c:
        await c.open(chat.url)
        await c.press("consent:yes")
        await c.command("language")  # "Changer de langue"
        async with c.page.expect_navigation():
            await c.button("lang:en").click()
        page = c.page
        assert await page.locator("html").get_attribute("lang") == "en"
        assert t("en", "web.title") in await page.title()
        await expect(page.locator("h1")).to_have_text(t("en", "web.heading"))
        await expect(page.locator('#menu button[value="help"]')).to_have_text(t("en", "menu.help"))
        assert await c.state() == "territory"
        assert await c.said(t("en", "territory.prompt")[:20])
        audit = Audit(c, f"{mode}-en")
        await audit.check("territory")
        await c.press("t:OISE")
        assert await c.state() == "theme" and await c.said(t("en", "theme.prompt")[:20])
        assert c.errors == []
        audit.assert_clean()


# --- resuming, two tabs, a double click --------------------------------------------------------


async def test_resumes_at_the_same_step_after_the_server_restarts(
    browser: Browser, sqlite_settings: Settings
) -> None:
    async with tab(browser, js=True) as c:
        async with serve(sqlite_settings) as chat:
            await c.open(chat.url)
            for choice in ("consent:yes", "t:OISE", "th:3"):
                await c.press(choice)
            await c.write(NEED_FR)
            assert await c.state() == "solution"
            first = chat.url
        # stopped; a new server on the same database file; the same browser (its cookie)
        async with serve(sqlite_settings) as chat:
            assert chat.url != first  # another port: nothing kept in the old process
            await c.open(chat.url)
            assert await c.state() == "solution"
            assert await c.said(t("fr", "solution.prompt"))
            await c.write(SOLUTION_FR)
            assert await c.state() == "levers"
        assert c.errors == []


@js_ids
async def test_two_tabs_of_one_citizen_do_not_corrupt_the_conversation(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    # (without chat.js: JavaScript on for axe-core, the page's scripts withheld)
    async with serve(sqlite_settings) as chat, tab(browser, js=js, axe=True) as one:
        await one.open(chat.url)
        for choice in ("consent:yes", "t:OISE", "th:1"):
            await one.press(choice)
        two = await new_tab(one)
        await two.open(chat.url)
        assert await two.state() == "need"
        await one.write(NEED_FR)
        assert await one.state() == "solution"
        # the second tab still shows the need step: its text is not taken as the solution,
        # it is given back in the text box, with the step as it now is
        await two.write(STALE)
        assert await two.said(t("fr", "channel.stale_text")[:40])
        assert await two.state() == "solution"
        assert await two.page.locator("#texte").input_value() == STALE
        audit = Audit(two, f"{'js' if js else 'nojs'}-tabs")
        await audit.check("stale-text")
        # sent again, knowingly, from the right step: now it is the solution
        await two.submit(two.page.locator("#reponse button[name=send]"))
        assert await two.state() == "levers"
        await two.press("skip")
        await two.press("p:-")
        summary = (await two.bubbles.all_inner_texts())[-1]
        assert f"Constat : {NEED_FR}" in summary and f"Solution : {STALE}" in summary
        await one.open(chat.url)
        assert await one.state() == "review"
        assert one.errors == [] and two.errors == []
        audit.assert_clean()


async def test_a_double_click_on_send_with_javascript_sends_once(
    browser: Browser, sqlite_settings: Settings
) -> None:
    async with serve(sqlite_settings) as chat, tab(browser, js=True) as c:
        await c.open(chat.url)
        await up_to_review(c)
        posts: list[str] = []
        c.page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        await c.button("send").dblclick()
        await c.page.locator("#reponse[aria-busy=false]").wait_for(state="attached")
        assert await c.state() == "done"
        # the chat script is busy from the first click (while the proof is solved too): the
        # second click does nothing
        assert posts == [chat.url + "message"]
        assert await c.page.locator("#probleme").inner_text() == ""
        assert await count(chat, Contribution) == 1
        assert c.errors == []


async def test_two_quick_clicks_on_send_without_javascript_store_one_contribution(
    browser: Browser, sqlite_settings: Settings
) -> None:
    """The first click's form reaches the server, its answer is slow (held here until the
    second click is sent); the second click sends the same form again: applied once, and it
    is answered with the thank-you of the first. (A double click proper is one submission:
    Chromium cancels the first before sending it.)"""
    async with serve(sqlite_settings) as chat, tab(browser, js=False) as c:
        await c.open(chat.url)
        await up_to_review(c)
        applied = asyncio.Event()
        second = asyncio.Event()
        statuses: list[int] = []

        async def slow_first_answer(route: Route) -> None:
            if statuses:  # the second click: straight to the server
                second.set()
                await route.continue_()
                return
            response = await route.fetch(max_redirects=0)  # the server applies it...
            statuses.append(response.status)
            applied.set()
            await second.wait()  # ... and the answer comes after the second click
            with contextlib.suppress(PlaywrightError):  # that navigation was cancelled
                await route.fulfill(response=response)

        await c.page.route("**/message", slow_first_answer)
        # the mouse, as a citizen: the page is still the review while the first is answered
        send = c.button("send")
        await send.scroll_into_view_if_needed()
        box = await send.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await c.page.mouse.click(x, y)
        await applied.wait()
        assert statuses == [303] and await count(chat, Contribution) == 1
        async with c.page.expect_response(
            lambda r: r.request.method == "GET" and "/?r=" in r.url
        ) as answer:
            await c.page.mouse.click(x, y)
        shown = (await answer.value).url
        await c.page.wait_for_url(lambda url: url.startswith(shown))
        assert second.is_set() and await c.state() == "done"
        reference = await c.reference()
        assert await count(chat, Contribution) == 1
        async with chat.channel.service.sessions() as s:
            assert (await s.scalars(select(Contribution.reference))).one() == reference
        assert c.errors == []


# --- the proof-of-work -------------------------------------------------------------------------


async def test_first_contributions_with_javascript_carry_a_proof_of_work(
    browser: Browser, sqlite_settings: Settings
) -> None:
    """One first contribution an hour without a proof from an address (all of these come
    from 127.0.0.1): two citizens with JavaScript get through, their proofs solved by the
    widget; one without JavaScript uses up the hour's allowance; the next is held back."""
    async with serve(sqlite_settings, web_rate_unverified_per_address=1) as chat:
        references = []
        for js in (True, True, False):
            async with tab(browser, js=js) as c:
                references.append(await contribute(c, chat.url))
                assert c.errors == []
        # the next without JavaScript is held back (running_web's limits' clock stands still:
        # no hour ends in between)
        async with tab(browser, js=False) as late:
            await late.open(chat.url)
            await up_to_review(late)
            async with late.page.expect_navigation() as sent:
                await late.button("send").click()
            assert (await sent.value).status == 429
            text = await late.page.locator("main [role=alert]").inner_text()
            assert re.search(r"réessayer dans \d+ minutes", text), text
            assert "brouillon" in text
            # the draft is kept: the review again, nothing sent
            await late.open(chat.url)
            assert await late.state() == "review"
            assert late.errors == []
        assert len(set(references)) == 3 and await count(chat, Contribution) == 3


# --- accessibility, screenshots ----------------------------------------------------------------


class Audit:
    """axe-core on a tab at both sizes, the width on the phone, and a screenshot on the
    phone; collects axe's findings."""

    def __init__(self, c: Tab, mode: str) -> None:
        self.c = c
        self.mode = mode
        self.findings: list[tuple[str, list[Violation]]] = []
        self.checked: list[str] = []
        SHOTS.mkdir(parents=True, exist_ok=True)
        for old in SHOTS.glob(f"{mode}-[0-9][0-9]-*.png"):  # those of an earlier run
            old.unlink()

    async def check(self, name: str) -> None:
        page = self.c.page
        await page.wait_for_load_state("load")
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(size(viewport))
            violations = await axe_violations(page)
            if violations:
                self.findings.append((f"{self.mode} {name} ({label})", violations))
            # every button and link reads in full (no label cut down to its icon)
            clipped = await clipped_labels(page)
            assert clipped == [], f"{self.mode} {name} ({label}): labels cut off: {clipped}"
        # reflow (WCAG 1.4.10): nothing wider than the phone, no scrolling sideways
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{self.mode} {name}: {width} px wide on a phone"
        number = len(self.checked) + 1
        await page.screenshot(path=SHOTS / f"{self.mode}-{number:02d}-{name}.png", full_page=True)
        self.checked.append(name)

    def assert_not_committed(self) -> None:
        """The screenshots' folder is ignored by git (when it is in this checkout)."""
        root = Path(__file__).parents[2]
        if not SHOTS.is_relative_to(root) or not (root / ".git").exists():
            return
        probe = (SHOTS / "probe.png").relative_to(root)
        done = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=root, check=False)
        assert done.returncode == 0, f"{probe.parent} is not ignored by git (.gitignore)"

    def assert_clean(self) -> None:
        report = "\n\n".join(format_violations(v, where) for where, v in self.findings)
        assert not self.findings, report


@js_ids
async def test_every_state_is_accessible_my_contributions_and_delete_my_data(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    mode = "js" if js else "nojs"
    async with serve(sqlite_settings) as chat, tab(browser, js=js, axe=True) as c:
        audit = Audit(c, mode)

        async def at(state: str, name: str | None = None) -> None:
            assert await c.state() == state
            await audit.check(name or state)

        await c.open(chat.url)
        await at("new", "welcome")
        await c.press("consent:yes")
        await at("territory")
        # a commune or a theme's name: a box of two lines; a need or a solution: six
        await expect(c.page.locator("#texte")).to_have_attribute("rows", "2")
        await c.press("t:OISE")
        await at("theme")
        await c.press("th:5")
        await at("custom_theme")
        await expect(c.page.locator("#texte")).to_have_attribute("rows", "2")
        await c.write(CUSTOM_THEME)
        await at("need")
        await expect(c.page.locator("#texte")).to_have_attribute("rows", "6")
        await c.write(NEED_FR)
        await at("solution")
        await c.write(SOLUTION_FR)
        await at("levers")
        # a poster's link opened mid-draft: its territory offered (taken: tests/web/test_web_chat)
        await c.open(chat.url + "?territoire=littoral-nord")
        await expect(c.page.locator("#affiche")).to_contain_text("Littoral Nord")
        await at("levers", "poster-offer")
        await c.write(LEVERS_FR)
        await at("profile")
        await c.press("p:-")
        if js:
            await expect(c.page.locator("#reponse altcha-widget .altcha")).to_be_visible()
        await at("review")
        # the review's main action stands out: "Envoyer" is its one filled button
        primary = c.page.locator("#reponse button[name=choice]:not(.fr-btn--secondary)")
        await expect(primary).to_have_count(1)
        await expect(primary).to_have_attribute("value", "send")
        await c.press("discard")
        await at("confirm_cancel")
        await c.press("cancel:no")
        await c.press("send")
        await at("done", "thank-you")
        reference = await c.reference()
        # moderation news, shown at the next visit
        async with chat.channel.service.sessions() as s, s.begin():
            s.add(
                Outbox(
                    participant_id=(await s.scalars(select(Participant.id))).one(),
                    dedupe_key=f"approved:{reference}",
                    kind="approved",
                    params={"reference": reference},
                    created_at=datetime.now(UTC),
                )
            )
        await c.open(chat.url)
        notice = t("fr", "notify.approved", reference=reference)
        await expect(c.page.locator("main .fr-alert--info")).to_contain_text(notice)
        await at("done", "notice")
        await c.command("mine")  # "Mes contributions"
        assert await c.said(reference) and await c.said(t("fr", "status.pending"))
        await at("done", "mine")
        await c.command("delete")  # "Effacer mes données", then confirmed
        assert await c.said(t("fr", "delete.confirm")[:30])
        await at("confirm_delete")
        await c.press("delete:yes")
        assert await c.said(t("fr", "delete.done"))
        assert await count(chat, Participant) == 0
        assert await count(chat, Contribution) == 0
        assert await c.state() == "new"
        assert c.errors == []
        audit.assert_not_committed()
        audit.assert_clean()


@js_ids
async def test_error_pages_are_accessible(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    """404, 413 (a text over the body limit) and 429 (too many messages a minute): pages
    without JavaScript, the problem said in the chat with it."""
    mode = "js" if js else "nojs"
    async with (
        serve(sqlite_settings, web_rate_per_participant=1) as chat,
        tab(browser, js=js, axe=True) as c,
    ):
        audit = Audit(c, f"{mode}-error")
        statuses: list[int] = []
        c.page.on(
            "response",
            lambda r: statuses.append(r.status) if r.url.endswith("/message") else None,
        )
        problem = c.page.locator("main [role=alert]")
        await c.open(chat.url)
        await c.press("consent:yes")  # the one message of this minute
        assert await c.state() == "territory"
        huge = "x" * (chat.settings.web_max_body_bytes + 1024)
        await c.write(huge)
        assert statuses[-1] == 413
        limit = chat.settings.text_max_chars
        await expect(problem).to_have_text(t("fr", "web.too_large", max=limit))
        if js:
            await expect(problem).to_be_focused()
            assert await c.page.locator("#texte").input_value() == huge  # nothing lost
        await audit.check("413")
        if not js:
            await c.open(chat.url)
        await c.page.locator("#texte").fill("")
        await c.press("t:OISE")  # the second message of this minute
        assert statuses[-1] == 429
        await expect(problem).to_contain_text("secondes")
        await audit.check("429")
        response = await c.page.goto(chat.url + "nulle-part")
        assert response is not None and response.status == 404
        await expect(problem).to_have_text(t("fr", "web.not_found"))
        await audit.check("404")
        expected = {f"HTTP {code}: {chat.url}message" for code in (413, 429)} if js else set()
        assert set(c.errors) == expected
        audit.assert_clean()


@js_ids
async def test_the_footer_leads_to_the_accessibility_statement_and_personal_data(
    browser: Browser, sqlite_settings: Settings, js: bool
) -> None:
    """What every public site of the State shows (RGAA), in every page's footer: « Accessibilité
    : non conforme » and « Données personnelles », two plain pages held to the chat's checks
    (axe-core, labels, width, console), in French and in easy French, reached from the chat
    and from an error page, and back to the conversation."""
    mode = "js" if js else "nojs"
    async with serve(sqlite_settings) as chat, tab(browser, js=js, axe=True) as c:
        audit = Audit(c, f"{mode}-pages")
        page = c.page
        footer = page.locator("footer .fr-footer__bottom-list")

        async def follow(lang: str, label: str, path: str, title: str) -> None:
            async with page.expect_navigation():
                await footer.get_by_role("link", name=t(lang, label), exact=True).click()
            assert page.url == chat.url + path
            await expect(page.locator("h1")).to_have_text(title)
            await expect(footer.locator('[aria-current="page"]')).to_have_text(t(lang, label))

        await c.open(chat.url)
        await follow("fr", "web.accessibility", "accessibilite", t("fr", "a11y.title"))
        main = page.locator("main")
        await expect(main).to_contain_text("non conforme")
        await expect(
            main.locator('a[href="https://formulaire.defenseurdesdroits.fr/"]')
        ).to_have_count(1)
        await audit.check("accessibility")
        async with page.expect_navigation():
            await main.get_by_role("link", name=t("fr", "web.back_home")).click()
        assert page.url == chat.url and await c.state() == "new"
        await follow("fr", "web.privacy", "donnees-personnelles", t("fr", "web.privacy"))
        await expect(main).to_contain_text("l'Agence régionale de santé Hauts-de-France")
        await audit.check("privacy")
        # in easy French: the conversation's language, chosen on the chat page
        await c.open(chat.url)
        async with page.expect_navigation():
            await page.locator('#langues button[value="lang:falc"]').click()
        await follow("falc", "web.accessibility", "accessibilite", t("falc", "a11y.title"))
        assert await page.locator("html").get_attribute("lang") == "fr-x-falc"
        await audit.check("accessibility-falc")
        await follow("falc", "web.privacy", "donnees-personnelles", t("falc", "web.privacy"))
        await audit.check("privacy-falc")
        # an error page's footer too (the error said in the browser's language, French; the
        # page it leads to in the conversation's)
        response = await page.goto(chat.url + "nulle-part")
        assert response is not None and response.status == 404
        async with page.expect_navigation():
            await footer.get_by_role("link", name=t("fr", "web.privacy"), exact=True).click()
        assert page.url == chat.url + "donnees-personnelles"
        await expect(page.locator("h1")).to_have_text(t("falc", "web.privacy"))
        assert c.errors == []
        audit.assert_clean()


@pytest.mark.parametrize(
    ("status", "headers", "said"),
    [
        (429, {"Retry-After": "7"}, lambda settings: t("fr", "web.too_many", seconds=7)),
        (413, {}, lambda settings: t("fr", "web.too_large", max=settings.text_max_chars)),
        (503, {}, lambda settings: t("fr", "web.unavailable")),
        (502, {}, lambda settings: t("fr", "web.unavailable")),
    ],
    ids=["429", "413", "503", "502"],
)
async def test_the_reverse_proxys_own_error_pages_are_said_as_the_chat_says_them(
    browser: Browser,
    sqlite_settings: Settings,
    status: int,
    headers: dict[str, str],
    said: Callable[[Settings], str],
) -> None:
    """Behind nginx, a flood, a body too large or no worker gets nginx's HTML page, not the
    chat's JSON: the chat script says what it means (not "connection interrupted"), and the
    text stays in the box."""

    async def proxy_page(route: Route) -> None:
        await route.fulfill(
            status=status, content_type="text/html", body="<h1>nginx</h1>", headers=headers
        )

    async with serve(sqlite_settings) as chat, tab(browser, js=True) as c:
        await c.open(chat.url)
        await c.press("consent:yes")
        await c.press("t:OISE")
        await c.press("th:1")
        await c.page.route("**/message", proxy_page)
        await c.write(NEED_FR)
        problem = c.page.locator("main [role=alert]")
        await expect(problem).to_have_text(said(chat.settings))
        assert await c.page.locator("#texte").input_value() == NEED_FR
        assert await c.state() == "need"
