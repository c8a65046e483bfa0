"""The web chat is open to the internet: every field, button, command, size and request a
stranger can send gets a clear answer and breaks nothing; floods are slowed; a script skipping
the proof-of-work gains nothing; a database outage loses nothing; nothing leaks in the logs."""

from __future__ import annotations

import html
import logging

import pytest
from aiohttp import ClientSession, CookieJar, FormData

from bot.web.app import COOKIE, POW, csp
from dialogs.messages import t
from storage.models import Contribution, Participant
from storage.settings import Settings
from tests.outage import sqlite_locked
from tests.pow_helpers import solved
from tests.telegram.test_telegram import HOSTILE
from tests.telegram_helpers import LEVERS_FR, NEED_FR, SOLUTION_FR
from tests.web_helpers import WebCitizen, contribute, count, running_web

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def up_to_review(c: WebCitizen) -> None:
    await c.open()
    for step in ("consent:yes", "t:OISE", "th:1"):
        await c.press(step)
    await c.write(NEED_FR)
    await c.write(SOLUTION_FR)
    await c.write(LEVERS_FR)
    await c.press("p:-")
    assert c.state == "review", c.replies


# --- hostile texts, buttons and commands ------------------------------------------------------


@pytest.mark.parametrize("script", [False, True], ids=["forms", "chat-script"])
async def test_hostile_text_at_every_step_never_breaks(
    sqlite_settings: Settings, script: bool
) -> None:
    """The texts the Telegram tests throw, at the welcome, the territory and the need (more
    than a citizen's per-minute limit: raised here)."""
    async with (
        running_web(sqlite_settings, web_rate_per_participant=100) as chat,
        WebCitizen(chat, script=script) as c,
    ):
        await c.open()
        for text in HOSTILE:
            assert await c.write(text) == 200, text
            assert c.replies and not c.page.problem
        await c.open()
        await c.press("consent:yes")
        for text in HOSTILE:
            assert await c.write(text) == 200, text
            assert c.state in ("territory", "theme")
        await c.open()
        if c.state == "territory":
            await c.press("t:OISE")
        await c.press("th:2")
        for text in HOSTILE:
            assert await c.write(text) == 200, text
            assert c.replies
        assert chat.channel.processor.stats.failed == 0


async def test_hostile_text_is_shown_inert_in_the_review(sqlite_settings: Settings) -> None:
    payload = '<script>window.x=1</script><img src=x onerror="alert(1)"> besoin de médecin'
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        for step in ("consent:yes", "t:OISE", "th:1"):
            await c.press(step)
        await c.write(payload)
        await c.write(SOLUTION_FR)
        await c.press("skip")
        async with c.session.post(
            chat.url + "message", data={**c.form.fields, "choice": "p:-"}
        ) as r:
            html = await r.text()
        assert "<script>window.x" not in html and "&lt;script&gt;window.x=1" in html
        assert "<img src=x onerror" not in html


@pytest.mark.parametrize(
    "choice",
    ["", "garbage", "t:NOWHERE", "x" * 5000, "v1:\x00", "consent:yes\x00", "😀", "../../etc"],
)
async def test_unknown_buttons_are_answered_with_the_current_step(
    sqlite_settings: Settings, choice: str
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        await c.press("consent:yes")
        assert await c.post({**c.form.fields, "choice": choice}) == 200
        assert c.state == "territory" and "t:OISE" in c.buttons()


@pytest.mark.parametrize(
    "command",
    ["", "drop table", "x" * 500, "start\x00", "/help", "help@bot", "mine; rm -rf /", "ǝlɐɔs"],
)
async def test_unknown_commands_are_answered_clearly(
    sqlite_settings: Settings, command: str
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        await c.press("consent:yes")
        assert await c.post({**c.menu.fields, "command": command}) == 200
        assert c.replies and c.state == "territory"


@pytest.mark.parametrize("field", ["v", "state"])
@pytest.mark.parametrize("value", ["", "-1", "99999999999999999999", "abc", "\x00", "x" * 5000])
async def test_broken_hidden_fields_break_nothing(
    sqlite_settings: Settings, field: str, value: str
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        await c.press("consent:yes")
        await c.press("t:OISE")
        await c.press("th:1")
        assert await c.post({**c.form.fields, field: value, "text": NEED_FR}) == 200
        assert c.state in ("need", "solution") and not c.page.problem


# --- sizes ------------------------------------------------------------------------------------


async def test_a_text_over_the_limit_is_refused_and_kept(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        for step in ("consent:yes", "t:OISE", "th:1"):
            await c.press(step)
        long_text = ("Il manque des médecins dans nos villages. " * 80)[:3001]
        assert await c.write(long_text) == 200
        assert c.state == "need" and c.said(t("fr", "text.too_long", count=3001, max=3000)[:30])
        assert c.form.textarea == long_text  # given back, nothing lost
        assert await c.write(long_text[:3000]) == 200
        assert c.state == "solution"


@pytest.mark.parametrize("script", [False, True], ids=["forms", "chat-script"])
async def test_a_body_over_the_size_limit_gets_a_clear_answer(
    sqlite_settings: Settings, script: bool
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat, script=script) as c:
        await c.open()
        status = await c.post({**c.form.fields, "text": "é" * 40_000})  # ~240 kB encoded
        assert status == 413
        assert t("fr", "web.too_large", max=3000)[:40] in (
            c.page.problem if not script else c.json["problem"]
        )
        assert await count(chat, Participant) == 0


# --- forms that are not ours ------------------------------------------------------------------


async def test_forms_without_an_id_or_with_a_forged_one_are_refused(
    sqlite_settings: Settings,
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        fields = dict(c.form.fields)
        for mid in (None, "", "short", "x" * 49, "bad id with spaces", "é" * 10, "a/b/c/d/e/f"):
            data = {k: v for k, v in fields.items() if k != "mid"}
            if mid is not None:
                data["mid"] = mid
            assert await c.post({**data, "choice": "consent:yes"}) == 400, mid
            assert c.page.problem == t("fr", "web.bad_form")
        assert await count(chat, Participant) == 0


async def test_a_file_sent_where_none_is_asked_for_is_refused(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        form = FormData()
        for name, value in c.form.fields.items():
            form.add_field(name, value)
        form.add_field("text", b"\x89PNG\r\n\x1a\n" + b"0" * 1000, filename="photo.png")
        async with c.session.post(chat.url + "message", data=form) as r:
            assert r.status == 400 and t("fr", "web.bad_form") in html.unescape(await r.text())


async def test_without_the_cookie_a_message_is_explained_not_lost(
    sqlite_settings: Settings,
) -> None:
    async with running_web(sqlite_settings) as chat:
        async with WebCitizen(chat) as c:
            await c.open()
            fields = dict(c.form.fields)
        for cookies in ({}, {COOKIE: "forged"}, {COOKIE: "x" * 5000}, {COOKIE: "é" * 43}):
            async with (
                ClientSession(cookies=cookies) as http,
                http.post(chat.url + "message", data={**fields, "choice": "consent:yes"}) as r,
            ):
                assert r.status == 400
                assert t("fr", "web.no_cookie") in html.unescape(await r.text())
        async with ClientSession(cookies={COOKIE: "forged"}) as http, http.get(chat.url) as r:
            assert r.status == 200 and COOKIE in r.cookies  # a new, valid token
            assert r.cookies[COOKIE].value != "forged"


async def test_a_post_from_another_site_is_refused(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
            async with c.session.post(
                chat.url + "message",
                data={**c.form.fields, "choice": "consent:yes"},
                headers={"Origin": origin},
            ) as r:
                assert r.status == 403, origin
        assert await count(chat, Participant) == 0
        origin = chat.url.rstrip("/")
        async with c.session.post(
            chat.url + "message",
            data={**c.form.fields, "choice": "consent:yes"},
            headers={"Origin": origin},
        ) as r:
            assert r.status == 200


async def test_unknown_pages_and_methods_get_a_page_in_french(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, ClientSession() as http:
        async with http.get(chat.url + "nulle-part") as r:
            assert r.status == 404 and t("fr", "web.not_found") in html.unescape(await r.text())
        async with http.get(chat.url + "message") as r:
            assert r.status == 405 and t("fr", "web.bad_form") in html.unescape(await r.text())
        async with http.get(chat.url + "static/../../storage/settings.py") as r:
            assert r.status in (403, 404)
        async with http.get(chat.url + "healthz") as r:
            assert r.status == 200 and await r.text() == "ok"


async def test_another_citizens_answer_is_never_shown(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat:
        async with WebCitizen(chat) as alice:
            await up_to_review(alice)
            assert alice.last is not None
            shown = str(alice.last.url).split("r=")[1].split("#")[0]
        async with WebCitizen(chat) as mallory:
            await mallory.open(f"?r={shown}")
            assert not mallory.said(NEED_FR[:30]) and mallory.state == "new"
            for garbage in ("", "x", "../..", "%00", "y" * 500):
                await mallory.open(f"?r={garbage}")
                assert mallory.status == 200 and mallory.state == "new"


# --- headers and cookie ------------------------------------------------------------------------


async def test_security_headers_and_the_cookie(sqlite_settings: Settings) -> None:
    async with (
        running_web(sqlite_settings) as chat,
        ClientSession() as http,
        http.get(chat.url) as r,
    ):
        h = r.headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "script-src 'self';" in h["Content-Security-Policy"]
        assert "unsafe-inline" not in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin"  # "no-referrer" nulls forms' Origin
        assert h["Cache-Control"] == "no-store"
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    async with (
        running_web(
            sqlite_settings,
            web_secure_cookies=True,
            web_frame_ancestors="https://www.ars.example.fr x;script-src:* https://b.example",
        ) as chat,
        ClientSession() as http,
        http.get(chat.url) as r,
    ):
        assert "Secure" in r.headers["Set-Cookie"]
        policy = r.headers["Content-Security-Policy"]
        assert policy.endswith("frame-ancestors https://www.ars.example.fr https://b.example")
        assert "script-src:*" not in policy


def test_frame_ancestors_come_from_settings_only_as_origins() -> None:
    settings = Settings(web_frame_ancestors="'self'; https://a.example http://b.example:8080 *")
    assert csp(settings).endswith("frame-ancestors https://a.example http://b.example:8080")
    assert csp(Settings(web_frame_ancestors="; script-src *")).endswith("frame-ancestors 'none'")


# --- floods ------------------------------------------------------------------------------------


async def test_a_flood_from_one_address_is_slowed_while_others_are_served(
    sqlite_settings: Settings,
) -> None:
    async with running_web(sqlite_settings, web_rate_per_address=8) as chat:
        flood = WebCitizen(chat, address="198.51.100.1")
        other = WebCitizen(chat, address="198.51.100.2")
        await flood.open()
        await other.open()
        menu = dict(flood.menu.fields)
        statuses = [await flood.post({**menu, "command": "help"}) for _ in range(12)]
        assert statuses[:8] == [200] * 8 and set(statuses[8:]) == {429}
        assert flood.last is not None and int(flood.last.headers["Retry-After"]) >= 1
        assert flood.page.problem.startswith(t("fr", "web.too_many", seconds=1)[:30])
        # another citizen (another address) is served normally meanwhile
        await other.press("consent:yes")
        assert other.status == 200 and other.state == "territory"
        await flood.close()
        await other.close()


async def test_one_citizen_sending_too_fast_is_slowed(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings, web_rate_per_participant=5) as chat:
        async with WebCitizen(chat, script=True) as c:
            await c.open()
            statuses = [await c.command("help") for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        assert c.json["status"] == "problem" and "secondes" in c.json["problem"]


async def test_first_contributions_without_a_proof_are_held_back(
    sqlite_settings: Settings,
) -> None:
    """A scripted run of first contributions that skips the proof-of-work: the stricter
    no-JavaScript limit holds it back (a person without JavaScript still gets through)."""
    async with running_web(
        sqlite_settings, web_rate_unverified_per_address=3, altcha_max_number=1000
    ) as chat:
        sent = 0
        held = None
        for _ in range(5):
            c = WebCitizen(chat, address="192.0.2.10")
            await up_to_review(c)
            await c.press("send")
            if c.said("HDF-OISE-"):
                sent += 1
            else:
                held = c
                assert c.status == 429
                minutes = c.page.problem.split(" minutes")[0].rsplit(" ", 1)[1]
                assert 1 <= int(minutes) <= 60
                assert c.page.problem == t("fr", "web.held_back", minutes=int(minutes))
        assert sent == 3 and held is not None
        assert await count(chat, Contribution) == 3
        # the draft of the one held back is kept; with a solved proof it goes through
        await held.open()
        assert held.state == "review"
        await held.press("send", altcha=solved(chat.app[POW]))
        assert held.said("HDF-OISE-")
        # a citizen who has contributed already needs no proof for the next one
        await held.press("new")
        await held.press("th:2")
        await held.write(NEED_FR)
        await held.write(SOLUTION_FR)
        await held.press("skip")
        await held.press("p:-")
        await held.press("send")
        assert held.said("HDF-OISE-")
        assert await count(chat, Contribution) == 5
        await held.close()


async def test_solved_proofs_pass_and_a_replayed_one_does_not(sqlite_settings: Settings) -> None:
    async with running_web(
        sqlite_settings, web_rate_unverified_per_address=1, altcha_max_number=1000
    ) as chat:
        proof = solved(chat.app[POW])
        first = WebCitizen(chat, address="192.0.2.20")
        await up_to_review(first)
        await first.press("send", altcha=proof)
        assert first.said("HDF-OISE-")
        # the same proof again, by a second and a third script: no proof, so the hourly
        # no-proof limit (1) lets one through and holds the next back
        outcomes = []
        for _ in range(2):
            c = WebCitizen(chat, address="192.0.2.20")
            await up_to_review(c)
            await c.press("send", altcha=proof)
            outcomes.append(c.status)
            await c.close()
        assert outcomes == [200, 429]
        await first.close()


async def test_the_challenge_endpoint_gives_fresh_signed_challenges(
    sqlite_settings: Settings,
) -> None:
    limited = running_web(sqlite_settings, web_rate_per_address=3)
    async with limited as chat, ClientSession() as http:
        seen = []
        for _ in range(3):
            async with http.get(chat.url + "altcha/challenge") as r:
                assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                body = await r.json()
            assert body["parameters"]["algorithm"] == "SHA-256" and len(body["signature"]) == 64
            seen.append(body["parameters"]["nonce"])
        assert len(set(seen)) == 3
        async with http.get(chat.url + "altcha/challenge") as r:
            assert r.status == 429  # counted against the address like any request


# --- outages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [False, True], ids=["forms", "chat-script"])
async def test_a_database_outage_loses_nothing(sqlite_settings: Settings, script: bool) -> None:
    settings = sqlite_settings.model_copy(update={"sqlite_busy_timeout_ms": 50})
    async with running_web(settings) as chat, WebCitizen(chat, script=script) as c:
        await c.open()
        for step in ("consent:yes", "t:OISE", "th:1"):
            await c.press(step)
        need_form = dict(c.form.fields)
        async with sqlite_locked(chat.settings):
            status = await c.post({**need_form, "text": NEED_FR, "send": "1"})
            assert status == 503
            problem = c.page.problem if not script else c.json["problem"]
            assert problem == t("fr", "web.unavailable")
            if not script:
                assert NEED_FR in html.unescape(c.body)  # kept for the citizen
        # the same message again once the database is back: applied, once
        assert await c.post({**need_form, "text": NEED_FR, "send": "1"}) == 200
        assert c.state == "solution"
        await c.post({**need_form, "text": NEED_FR, "send": "1"})
        assert c.state == "solution"
        assert chat.channel.processor.stats.failed == 0


# --- privacy -------------------------------------------------------------------------------------


async def test_nothing_of_a_citizen_in_the_logs(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """As ``cnrbot -v web`` logs (everything of ours at DEBUG)."""
    from bot.logs import configure_logging

    configure_logging(verbose=True)
    canary = "Canari9137 un besoin de santé très particulier à notre village"
    with caplog.at_level(logging.DEBUG):
        async with (
            running_web(sqlite_settings) as chat,
            WebCitizen(chat, address="192.0.2.99") as c,
        ):
            await contribute(c)
            await c.press("new")
            await c.press("th:1")
            await c.write(canary)
            menu = dict(c.menu.fields)
            statuses = [await c.post({**menu, "command": "help"}) for _ in range(30)]
            assert 429 in statuses  # slowed: logged without who
            token = next(iter(c.session.cookie_jar)).value
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (canary[:20], token, "192.0.2.99", NEED_FR[:30]):
        assert secret not in logged


async def test_a_new_cookie_for_each_new_browser(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat:
        tokens = set()
        for _ in range(3):
            async with (
                ClientSession(cookie_jar=CookieJar(unsafe=True)) as http,
                http.get(chat.url) as r,
            ):
                tokens.add(r.cookies[COOKIE].value)
        assert len(tokens) == 3 and all(len(token) == 43 for token in tokens)


# --- several workers on one PostgreSQL ---------------------------------------------------------


@pytest.mark.postgres
async def test_two_workers_serve_one_citizen_and_share_the_limits(pg_settings: Settings) -> None:
    """Stateless workers: a citizen's requests alternate between two workers (two processes'
    worth of app, engine and limiter) and the conversation goes on; an address's limit holds
    across both (counted in the database)."""
    async with (
        running_web(pg_settings, web_rate_per_address=20) as one,
        running_web(pg_settings, web_rate_per_address=20) as two,
    ):
        c = WebCitizen(one, address="198.51.100.50")
        await c.open()
        steps = [
            lambda: c.press("consent:yes"),
            lambda: c.press("t:OISE"),
            lambda: c.press("th:1"),
            lambda: c.write(NEED_FR),
            lambda: c.write(SOLUTION_FR),
            lambda: c.press("skip"),
            lambda: c.press("p:-"),
            lambda: c.press("send"),
        ]
        for n, step in enumerate(steps):
            c.chat = (one, two)[n % 2]
            assert await step() == 200
        assert c.said("HDF-OISE-000001")
        assert await count(one, Contribution) == 1
        # 8 requests counted so far for this address; 12 more pass, wherever they land
        menu = dict(c.menu.fields)
        statuses = []
        for n in range(16):
            c.chat = (one, two)[n % 2]
            statuses.append(await c.post({**menu, "command": "help"}))
        assert statuses.count(200) == 12 and statuses[12:] == [429] * 4
        await c.close()
