"""A real browser for tests: Debian's Chromium driven by Playwright, and axe-core in it.

Independent of any one application (the console's and the web chat's tests both use it)::

    from tests.browser import DESKTOP, PHONE, assert_accessible, chromium, requires_chromium

    pytestmark = [pytest.mark.browser, requires_chromium]

    async def test_page() -> None:
        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE)
            errors = collect_errors(page)        # console errors, CSP refusals, exceptions
            await page.goto(url)
            await assert_accessible(page, "home, phone")
            assert errors == []

``axe_violations(page)`` runs axe-core (the ``axe-playwright-python`` package's copy) with the
WCAG 2.0 / 2.1 level A and AA rules only; ``assert_no_violations`` fails with, for each
violation, its rule id, impact, help text and the CSS targets of the offending nodes.
Screenshots go to ``SCREENSHOTS`` (``test-artifacts/`` at the top of the repository, ignored
by git; ``CNR_SCREENSHOT_DIR`` overrides).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, no sandbox (containers), and no traffic of the browser's own to the internet.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
#: The axe-core tags of the WCAG 2.0 and 2.1 success criteria of levels A and AA (RGAA 4.1
#: rests on WCAG 2.1 AA).
WCAG21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
SCREENSHOTS = Path(
    os.environ.get("CNR_SCREENSHOT_DIR", Path(__file__).parents[1] / "test-artifacts")
)

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM} (install Debian's chromium package; .ci/run does)",
)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium (closed on exit)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def collect_errors(page: Page) -> list[str]:
    """A list that fills, from now on, with the page's console errors (CSP refusals among
    them), uncaught exceptions, and sub-resources (styles, scripts, fonts, images) that fail
    or answer an error. Documents may answer 4xx on purpose (a 404 page): not counted."""
    errors: list[str] = []

    def console(msg: Any) -> None:
        # "Failed to load resource" is also said of a document's own 4xx: see response()
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def response(resp: Any) -> None:
        if resp.status >= 400 and resp.request.resource_type != "document":
            errors.append(f"HTTP {resp.status}: {resp.url}")

    def failed(request: Any) -> None:
        # a navigation cancels the requests still in flight: not a failure of the page
        if "ERR_ABORTED" not in (request.failure or ""):
            errors.append(f"request failed: {request.url} ({request.failure})")

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(f"exception: {exc}"))
    page.on("response", response)
    page.on("requestfailed", failed)
    return errors


def screenshot_path(name: str) -> Path:
    """Where to write the screenshot ``name`` (the folder is created)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name


@dataclass(frozen=True)
class Violation:
    """One axe-core rule broken on a page, with the nodes that break it."""

    id: str
    impact: str | None
    help: str
    help_url: str
    #: Each node's CSS target (a list of selectors, one per frame) and its HTML.
    nodes: tuple[tuple[str, str], ...]

    @classmethod
    def from_axe(cls, raw: dict[str, Any]) -> Violation:
        return cls(
            id=str(raw["id"]),
            impact=raw.get("impact"),
            help=str(raw.get("help", "")),
            help_url=str(raw.get("helpUrl", "")),
            nodes=tuple(
                (" >> ".join(str(t) for t in node.get("target", [])), str(node.get("html", "")))
                for node in raw.get("nodes", [])
            ),
        )

    def __str__(self) -> str:
        lines = [f"{self.id} ({self.impact or '?'}): {self.help} <{self.help_url}>"]
        for target, html in self.nodes:
            snippet = " ".join(html.split())
            lines.append(f"    {target}    {snippet[:160]}")
        return "\n".join(lines)


async def axe_violations(
    page: Page, *, tags: Sequence[str] = WCAG21_AA, context: str | None = None
) -> list[Violation]:
    """The axe-core violations of the page as it is now (rules of ``tags`` only)."""
    from axe_playwright_python.async_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    results = await Axe().run(page, context=context, options=options)
    return [Violation.from_axe(v) for v in results.response["violations"]]


_CLIPPED_JS = """() => {
  const found = [];
  for (const el of document.querySelectorAll("a, button, summary, label, [role=button]")) {
    if (!el.getClientRects().length || el.hasAttribute("title")) continue;
    const text = (el.innerText || "").trim();
    if (!text) continue;
    const style = getComputedStyle(el);
    if (style.overflowX === "visible" && style.overflowY === "visible") continue;
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1) {
      found.push(text.slice(0, 60) + "    " + el.outerHTML.replace(/\\s+/g, " ").slice(0, 160));
    }
  }
  return found;
}"""


async def clipped_labels(page: Page) -> list[str]:
    """The buttons and links of the page whose visible label is cut off (the DSFR shows an
    icon-only button when an icon button sits in a group without ``fr-btns-group--icon-left``:
    a download arrow nobody can read). An icon-only control on purpose carries a ``title``."""
    return list(await page.evaluate(_CLIPPED_JS))


def format_violations(violations: Sequence[Violation], where: str = "") -> str:
    head = f"{len(violations)} accessibility violation(s)" + (f" on {where}" if where else "")
    return "\n".join([head + ":", *(str(v) for v in violations)])


def assert_no_violations(violations: Sequence[Violation], where: str = "") -> None:
    """Fail, printing every violation (rule, impact, help, targets), if there is any."""
    if violations:
        report = format_violations(violations, where)
        print(report)
        raise AssertionError(report)


async def assert_accessible(page: Page, where: str = "") -> None:
    """Run axe-core on the page and fail on any WCAG 2.1 A/AA violation."""
    assert_no_violations(await axe_violations(page), where or page.url)
