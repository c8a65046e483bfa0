"""The web chat's two plain pages, over real HTTP on a real SQLite file: the accessibility
statement (``/accessibilite``, RGAA: « Accessibilité : non conforme ») and the personal-data
notice (``/donnees-personnelles``, the very text of the chat's "privacy" command), in the
visitor's language (their conversation's, else the browser's), linked from the footer of every
page; read-only (no cookie, nothing stored), and hostile requests get a clear answer."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar
from sqlalchemy import func, select
from yarl import URL

from bot.web.app import COOKIE, csp
from dialogs.messages import html_lang, t
from storage.models import Base
from storage.settings import Settings
from tests.telegram_helpers import open_campaign_file
from tests.web_helpers import WebChat, WebCitizen, running_web

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ACCESSIBILITY = "accessibilite"
PRIVACY = "donnees-personnelles"
PAGES = (ACCESSIBILITY, PRIVACY)
#: A browser's Accept-Language for each interface language (FALC: the tag the pages declare).
BROWSER = {"fr": "fr-FR,fr;q=0.9,en;q=0.5", "en": "en-GB,en;q=0.9", "falc": "fr-x-falc,fr;q=0.8"}
CONTACT = "dpo@ars-exemple.fr"
RECOURSE_FORM = "https://formulaire.defenseurdesdroits.fr/"
RECOURSE_ADDRESS = "Défenseur des droits, Libre réponse 71120, 75342 Paris CEDEX 07"
TITLES = {ACCESSIBILITY: "a11y.title", PRIVACY: "web.privacy"}


def text_of(body: str) -> str:
    """A page's text as read: tags out, entities decoded, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def main_of(body: str) -> str:
    found = re.search(r"<main\b.*?</main>", body, re.S)
    assert found, body[:500]
    return found.group(0)


def footer_links(body: str) -> dict[str, str]:
    """The footer's bottom list: link text -> href."""
    found = re.search(r'<ul class="fr-footer__bottom-list">(.*?)</ul>', body, re.S)
    assert found, "no fr-footer__bottom-list"
    return {
        text_of(label): href
        for href, label in re.findall(r'<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', found.group(1))
    }


async def rows(chat: WebChat) -> dict[str, int]:
    """Rows of every table of the web chat's database."""
    counts: dict[str, int] = {}
    async with chat.channel.service.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(
                await conn.scalar(select(func.count()).select_from(table)) or 0
            )
    return counts


def with_contact(settings: Settings, contact: str = CONTACT) -> str:
    """A copy of the open campaign file whose controller gives a contact."""
    path = Path(open_campaign_file(settings.secret_file.parent))
    text = re.sub(r'(?m)^dpo_contact = ""$', f'dpo_contact = "{contact}"', path.read_text())
    assert contact in text
    copy = path.with_name("hdf-contact.toml")
    copy.write_text(text, encoding="utf-8")
    return str(copy)


@asynccontextmanager
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        yield session


async def get(
    session: ClientSession, chat: WebChat, path: str, *, method: str = "GET", **kwargs: Any
) -> tuple[ClientResponse, str]:
    async with session.request(method, chat.url + path, **kwargs) as r:
        return r, await r.text()


def assert_plain_page(r: ClientResponse, chat: WebChat) -> None:
    """No cookie, the chat's policy, and never cached for another language."""
    assert "Set-Cookie" not in r.headers
    assert r.headers["Content-Security-Policy"] == csp(chat.settings)
    assert r.headers["Cache-Control"] == "no-store"
    vary = {v.strip().lower() for v in r.headers.get("Vary", "").split(",")}
    assert {"cookie", "accept-language"} <= vary


# --- in the visitor's language -----------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
@pytest.mark.parametrize("page", PAGES)
async def test_each_page_in_the_browsers_language(
    sqlite_settings: Settings, page: str, lang: str
) -> None:
    async with running_web(sqlite_settings) as chat, http() as session:
        before = await rows(chat)
        r, body = await get(session, chat, page, headers={"Accept-Language": BROWSER[lang]})
        assert r.status == 200 and r.content_type == "text/html"
        assert_plain_page(r, chat)
        assert f'<html lang="{html_lang(lang)}">' in body
        title = t(lang, TITLES[page])
        assert re.search(rf"<h1[^>]*>\s*{re.escape(title)}\s*</h1>", html.unescape(body)), body
        assert title in html.unescape(body.split("</title>")[0])
        main = main_of(body)
        assert 'href="/"' in main and t(lang, "web.back_home") in text_of(main)
        assert "<script" not in main and "style=" not in body  # the same CSP, nothing inline
        assert footer_links(body) == {
            t(lang, "web.accessibility"): "/" + ACCESSIBILITY,
            t(lang, "web.privacy"): "/" + PRIVACY,
        }
        assert len(session.cookie_jar) == 0
        assert await rows(chat) == before


@pytest.mark.parametrize("lang", ["en", "falc"])
async def test_a_conversations_language_wins_over_the_browsers(
    sqlite_settings: Settings, lang: str
) -> None:
    """A citizen who switched the chat to English (or easy French) reads both pages in it,
    whatever their browser says, as the chat page itself does."""
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        await c.press(f"lang:{lang}")
        before = await rows(chat)
        for page in PAGES:
            r, body = await get(c.session, chat, page, headers={"Accept-Language": BROWSER["fr"]})
            assert r.status == 200 and f'<html lang="{html_lang(lang)}">' in body, page
            assert t(lang, TITLES[page]) in text_of(main_of(body))
            assert_plain_page(r, chat)
        # and a French conversation keeps French pages in an English browser
        async with WebCitizen(chat) as french:
            await french.open()
            await french.press("consent:yes")
            r, body = await get(
                french.session, chat, PRIVACY, headers={"Accept-Language": BROWSER["en"]}
            )
            assert '<html lang="fr">' in body
        assert (await rows(chat))["participants"] == before["participants"] + 1


# --- what they say -----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
async def test_the_accessibility_statement(sqlite_settings: Settings, lang: str) -> None:
    async with running_web(sqlite_settings) as chat, http() as session:
        _r, body = await get(
            session, chat, ACCESSIBILITY, headers={"Accept-Language": BROWSER[lang]}
        )
        main = main_of(body)
        said = text_of(main)
        for msg_id in ("a11y.status", "a11y.tested", "a11y.recourse", "a11y.recourse_post"):
            for line in t(lang, msg_id).split("\n"):
                assert line.strip() in said, (msg_id, line)
        if lang != "falc":
            assert "non conforme" in said or "not compliant" in said
            assert "axe-core" in said and "WCAG 2.1" in said
        assert f'href="{RECOURSE_FORM}"' in main and RECOURSE_ADDRESS in said
        assert "Défenseur des droits" in said
        # no contact in the shipped campaign: the agency named in the privacy notice
        assert "mailto:" not in main
        assert "l'Agence régionale de santé Hauts-de-France" in said
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", said), "no date of the day"


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
async def test_the_statement_gives_the_privacy_notices_contact_when_there_is_one(
    sqlite_settings: Settings, lang: str
) -> None:
    async with (
        running_web(sqlite_settings, default_campaign_file=with_contact(sqlite_settings)) as chat,
        http() as session,
    ):
        _r, body = await get(
            session, chat, ACCESSIBILITY, headers={"Accept-Language": BROWSER[lang]}
        )
        main = main_of(body)
        assert f'href="mailto:{CONTACT}"' in main and CONTACT in text_of(main)


@pytest.mark.parametrize(
    ("contact", "link"),
    [
        ("https://www.ars.example.fr/contact-dpo", "https://www.ars.example.fr/contact-dpo"),
        ("javascript:alert(1)", None),
        ("dpo@ars.example.fr?cc=x@evil.example", None),
        ("par courrier à l'agence", None),
    ],
    ids=["web-page", "script", "mail-with-extras", "words"],
)
async def test_a_contact_web_page_is_a_link_and_anything_else_only_text(
    sqlite_settings: Settings, contact: str, link: str | None
) -> None:
    campaign_file = with_contact(sqlite_settings, contact)
    async with (
        running_web(sqlite_settings, default_campaign_file=campaign_file) as chat,
        http() as session,
    ):
        _r, body = await get(session, chat, ACCESSIBILITY)
        main = main_of(body)
        assert contact in text_of(main)
        if link is None:
            assert not re.search(r'<a [^>]*href="(mailto|javascript|par)', main), main
        else:
            assert f'href="{link}"' in main


@pytest.mark.parametrize("contact", ["", CONTACT], ids=["no-contact", "contact"])
@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
async def test_the_privacy_page_is_the_notice_the_chat_gives(
    sqlite_settings: Settings, lang: str, contact: str
) -> None:
    extra = {"default_campaign_file": with_contact(sqlite_settings)} if contact else {}
    async with (
        running_web(sqlite_settings, **extra) as chat,
        WebCitizen(chat, lang=BROWSER[lang]) as c,
        http() as session,
    ):
        await c.open()
        if lang == "falc":
            await c.press("lang:falc")
        await c.command("privacy")  # the chat's own notice
        notice = next(r for r in c.replies if r.startswith(t(lang, "privacy.notice")[:20]))
        r, body = await get(session, chat, PRIVACY, headers={"Accept-Language": BROWSER[lang]})
        assert r.status == 200
        said = text_of(main_of(body))
        for line in notice.split("\n"):
            assert " ".join(line.split()) in said, line
        assert "l'Agence régionale de santé Hauts-de-France" in said
        assert (CONTACT in said) == bool(contact)
        assert "{" not in said  # every placeholder filled
        assert str(chat.settings.draft_ttl.days) in said


# --- read-only, HEAD, hostile requests -----------------------------------------------------------


async def test_head_answers_without_a_body_or_a_cookie(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, http() as session:
        for page in PAGES:
            r, body = await get(session, chat, page, method="HEAD")
            assert r.status == 200 and body == "" and "Set-Cookie" not in r.headers


@pytest.mark.parametrize("page", PAGES)
async def test_hostile_requests_get_the_page_or_a_clear_answer(
    sqlite_settings: Settings, page: str
) -> None:
    queries = [
        "?",
        "?x",
        "?lang=../../../etc/passwd",
        "?%00=%00",
        "?%ff%fe%fd",
        "?" + "&".join(f"a{i}=b" for i in range(500)),
        "?r=" + "x" * 4000,
        "?territoire=<script>alert(1)</script>",
    ]
    languages = [
        "",
        "*",
        ";;;,,,q=",
        "zz-ZZ;q=abc, ;q=1.5",
        "fr-x-falc-x-falc",
        "ü" * 50,
        "en;" + "q=0.1," * 1300,  # just under the header size limit
    ]
    cookies = ["", "x", "a" * 43, "!" * 43, "a" * 4000, "%00%ff", '"quoted"']
    async with running_web(sqlite_settings, web_rate_per_address=10_000) as chat:
        before = await rows(chat)
        async with http() as session:
            for query in queries:
                r, body = await get(session, chat, page + query)
                assert r.status == 200, query
                assert "<script>alert" not in body
        for language in languages:
            async with http() as session:
                r, _ = await get(session, chat, page, headers={"Accept-Language": language})
                assert r.status == 200, language
        for value in cookies:
            async with http() as session:
                r, body = await get(session, chat, page, headers={"Cookie": f"{COOKIE}={value}"})
                assert r.status == 200, value
                assert "Set-Cookie" not in r.headers
                assert '<html lang="fr">' in body
        assert await rows(chat) == before


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_refused_with_a_page(
    sqlite_settings: Settings, method: str
) -> None:
    async with running_web(sqlite_settings) as chat, http() as session:
        before = await rows(chat)
        for page in PAGES:
            r, body = await get(session, chat, page, method=method, data={"x": "y"})
            assert r.status == 405, page
            assert t("fr", "web.bad_form") in html.unescape(body)
            assert "fr-footer__bottom-list" in body
        assert await rows(chat) == before


@pytest.mark.parametrize(
    "path",
    [
        "accessibilite/../",
        "accessibilite/..",
        "accessibilite%00",
        "accessibilite/",
        "accessibilite.html",
        "accessibilite/x",
        "donnees-personnelles%2F..%2F",
        "donnees-personnelles/../donnees-personnelles/..",
        "donnees-personnelles%20",
        "Accessibilite",
    ],
)
async def test_odd_paths_get_a_clear_not_found(sqlite_settings: Settings, path: str) -> None:
    async with running_web(sqlite_settings) as chat, http() as session:
        before = await rows(chat)
        url = URL(chat.url + path, encoded=True)  # sent as written, not tidied by the client
        async with session.get(url) as r:
            body = await r.text()
            assert r.status == 404, (path, r.status)
            assert t("fr", "web.not_found") in html.unescape(body)
            assert "Set-Cookie" not in r.headers
        assert await rows(chat) == before


# --- the footer of every page ------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
async def test_every_page_links_to_both_in_its_footer(sqlite_settings: Settings, lang: str) -> None:
    """The chat page, both pages and the error pages (404, 405)."""
    expected = {
        t(lang, "web.accessibility"): "/" + ACCESSIBILITY,
        t(lang, "web.privacy"): "/" + PRIVACY,
    }
    headers = {"Accept-Language": BROWSER[lang]}
    async with running_web(sqlite_settings) as chat, http() as session:
        for path, status in (
            ("", 200),
            (ACCESSIBILITY, 200),
            (PRIVACY, 200),
            ("nulle-part", 404),
            ("message", 405),
        ):
            r, body = await get(session, chat, path, headers=headers)
            assert r.status == status, path
            assert footer_links(body) == expected, path
            assert f'<html lang="{html_lang(lang)}">' in body, path
    assert t("fr", "web.accessibility") == "Accessibilité : non conforme"
    assert t("fr", "web.privacy") == "Données personnelles"
