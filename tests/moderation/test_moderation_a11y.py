"""Accessibility basics (RGAA): every field labelled, skip link, lang, contrast >= 4.5:1 (the
whole pages are checked with axe-core in Chromium by tests/moderation/test_console_a11y.py);
and login answers that do the same work whether or not the account exists."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from moderation import security
from storage.settings import Settings
from tests.moderation_helpers import Console, World, new_console

CSS = Path(__file__).parents[2] / "moderation" / "static" / "console.css"


class _Fields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.labels: set[str] = set()
        self.fields: list[dict[str, str | None]] = []
        self.html_lang: str | None = None
        self.skip = False
        self.in_skiplinks = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "div" and a.get("class") == "fr-skiplinks":
            self.in_skiplinks = True
        if tag == "header":
            self.in_skiplinks = False
        if tag == "a" and self.in_skiplinks and a.get("href") == "#contenu":
            self.skip = True
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.fields.append(a)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_every_field_has_a_label_on_every_page(
    admin: Console, world: World, db_settings: Settings, engine: AsyncEngine
) -> None:
    login = await new_console(db_settings, engine)
    try:
        pages = {"/login": await (await login.client.get("/login")).text()}
    finally:
        await login.client.close()
    for path in (
        "/contributions",
        "/contributions/HDF-OISE-000001",
        "/dashboard",
        "/exports",
        "/audit",
        "/staff",
        "/aide",
    ):
        resp = await admin.client.get(path)
        assert resp.status == 200, path
        pages[path] = await resp.text()
    for path, html in pages.items():
        p = _Fields()
        p.feed(html)
        assert p.html_lang == "fr", path
        assert p.skip, f"no skip link on {path}"
        assert 'id="contenu"' in html
        for field in p.fields:
            labelled = field.get("id") in p.labels or field.get("aria-label")
            assert labelled, (path, field)


def _luminance(hex_color: str) -> float:
    h = hex_color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_contrast_of_every_css_colour_pair() -> None:
    css = CSS.read_text()
    pairs: list[tuple[str, str, str]] = []
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        fg = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", body)
        bg = re.search(r"background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})", body)
        if fg and bg:
            pairs.append((selector.strip(), fg.group(1), bg.group(1)))
    assert len(pairs) >= 8  # the rules that set both colours
    # text on the page and on the tinted backgrounds, links, buttons
    # (the DSFR's own colours: text-default-grey, blue France, mention grey)
    pairs += [
        ("body", "#3a3a3a", "#ffffff"),
        ("links", "#000091", "#ffffff"),
        ("links on the filters and the information box", "#000091", "#f6f6f6"),
        ("muted", "#666666", "#ffffff"),
        ("approve button", "#f5f5fe", "#000091"),
        ("reject button (secondary)", "#000091", "#ffffff"),
        ("text of a citizen", "#161616", "#f5f5fe"),
        ("row selected", "#161616", "#feecc2"),
        ("theme without contribution", "#ce0500", "#ffe9e9"),
    ]
    for name, fg, bg in pairs:
        assert contrast(fg, bg) >= 4.5, (name, fg, bg, round(contrast(fg, bg), 2))
    # focus is visible
    assert ":focus-visible { outline: 3px solid" in css


async def test_unknown_user_costs_one_password_check_too(
    monkeypatch: pytest.MonkeyPatch,
    db_settings: Settings,
    engine: AsyncEngine,
    staff_ids: dict[str, int],
) -> None:
    """No timing measurement: count the argon2 verifications each answer performs."""
    calls: list[str] = []
    real = security._hasher

    class Counting:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_)
            return real.verify(hash_, password)

    monkeypatch.setattr(security, "_hasher", Counting())
    con = await new_console(db_settings, engine)
    try:
        for email in ("nobody@ars.test", "oise@ars.test"):
            calls.clear()
            assert await con.login(email, "wrong password here") == 401
            assert len(calls) == 1, email
        calls.clear()
        assert await con.login("x" * 300, "y" * 5000) == 401  # over-long: still one check
        assert len(calls) == 1
    finally:
        await con.client.close()
