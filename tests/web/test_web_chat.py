"""The citizen web chat over real HTTP, on a real SQLite file and a real PostgreSQL: whole
contributions without and with JavaScript, resumption, double and resubmitted messages, two
tabs, the menu (my contributions, delete my data), notices, posters' links, and the identity
(cookie, no address nor user agent stored)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from html import unescape

import pytest
from sqlalchemy import func, select, text

from dialogs.messages import t
from storage.models import Contribution, InboundMessage, Outbox, Participant
from storage.settings import Settings
from tests.telegram_helpers import LEVERS_FR, NEED_FR, SOLUTION_FR
from tests.web_helpers import WebChat, WebCitizen, contribute, count, running_web

AGENT = "CanaryBrowser/9.9 (canary-user-agent)"
ADDRESS = "203.0.113.77"


async def all_text(chat: WebChat) -> str:
    """Every value of every row of every table, as text (to look for what must not be there)."""
    from storage.models import Base

    parts: list[str] = []
    async with chat.channel.service.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in await conn.execute(select(table)):
                parts.extend(repr(v) for v in row)
    return "\n".join(parts)


# --- a whole contribution --------------------------------------------------------------------


async def test_whole_contribution_without_javascript(db_settings: Settings) -> None:
    async with running_web(db_settings) as chat, WebCitizen(chat, address=ADDRESS) as c:
        c.headers["User-Agent"] = AGENT
        await c.open()
        assert c.status == 200
        assert c.said(t("fr", "consent.prompt")[:40])
        assert set(c.buttons()) >= {"consent:yes", "consent:no", "consent:read"}
        # nothing is stored about a visitor who has not answered
        assert await count(chat, Participant) == 0
        await c.press("consent:yes")
        assert c.last is not None and c.last.history[0].status == 303  # POST, redirect, GET
        assert str(c.last.url).split("?")[1].startswith("r=")
        assert c.state == "territory" and "t:OISE" in c.buttons()
        await c.press("t:OISE")
        await c.press("th:1")
        assert c.state == "need" and c.form.textarea == ""
        await c.write(NEED_FR)
        await c.write(SOLUTION_FR)
        await c.write(LEVERS_FR)
        await c.press("p:-")
        assert c.state == "review" and c.said(NEED_FR[:40])
        await c.press("send")
        assert c.said("HDF-OISE-000001"), (c.status, c.page.problem, c.replies)
        async with chat.channel.service.sessions() as s:
            row = (await s.scalars(select(Contribution))).one()
            participant = (await s.scalars(select(Participant))).one()
        assert (row.channel, row.need, row.solution) == ("web", NEED_FR, SOLUTION_FR)
        assert participant.channel == "web"
        stored = await all_text(chat)
        assert ADDRESS not in stored and "127.0.0.1" not in stored
        assert "CanaryBrowser" not in stored
        cookie = next(iter(c.session.cookie_jar))
        assert cookie.value not in stored  # the token itself is never stored


async def test_whole_contribution_with_the_chat_script(db_settings: Settings) -> None:
    async with running_web(db_settings) as chat, WebCitizen(chat, script=True) as c:
        await c.open()
        await c.press("consent:yes")
        assert c.status == 200 and c.json["status"] == "ok" and c.state == "territory"
        assert c.last is not None and not c.last.history  # no redirect: answered in place
        await c.press("t:OISE")
        await c.press("th:2")
        await c.write(NEED_FR)
        await c.write(SOLUTION_FR)
        await c.press("skip")
        await c.press("p:-")
        await c.press("send")
        assert c.said("HDF-OISE-000001")
        assert await count(chat, Contribution, Contribution.channel == "web") == 1


async def test_coming_back_with_the_same_browser_resumes_even_after_a_restart(
    sqlite_settings: Settings,
) -> None:
    async with running_web(sqlite_settings) as chat:
        c = WebCitizen(chat)
        await c.open()
        await c.press("consent:yes")
        await c.press("t:OISE")
        await c.press("th:3")
        await c.write(NEED_FR)
        assert c.state == "solution"
    # the server is restarted: same database, same browser (its cookie)
    async with running_web(sqlite_settings) as chat:
        c.chat = chat
        await c.open()
        assert c.state == "solution" and c.said(t("fr", "solution.prompt")[:30])
        await c.write(SOLUTION_FR)
        assert c.state == "levers"
        await c.close()


async def test_a_new_browser_is_a_new_citizen(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat:
        async with WebCitizen(chat) as first:
            await contribute(first)
        async with WebCitizen(chat) as second:
            await second.open()
            assert second.state == "new"
            await second.command("mine")
            assert second.said(t("fr", "mine.none"))


# --- once, whatever happens ------------------------------------------------------------------


async def test_double_click_on_send_stores_one_contribution(db_settings: Settings) -> None:
    async with running_web(db_settings) as chat, WebCitizen(chat, script=True) as c:
        await c.open()
        for step in ("consent:yes", "t:OISE", "th:1"):
            await c.press(step)
        for answer in (NEED_FR, SOLUTION_FR, LEVERS_FR):
            await c.write(answer)
        await c.press("p:-")
        fields = {**c.form.fields, "choice": "send"}
        twins = [WebCitizen(chat, script=True, session=c.session) for _ in range(4)]
        await asyncio.gather(*(twin.post(dict(fields)) for twin in twins))
        assert [twin.json["status"] for twin in twins] == ["ok"] * 4
        for twin in twins:
            assert twin.said("HDF-OISE-000001")
        assert await count(chat, Contribution) == 1


async def test_resubmitted_form_is_applied_once(sqlite_settings: Settings) -> None:
    """The back button and "resend the form": the same message again, nothing applied twice,
    the answer it got the first time."""
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        for step in ("consent:yes", "t:OISE", "th:1"):
            await c.press(step)
        need_form = dict(c.form.fields)
        await c.write(NEED_FR)
        first = list(c.replies)
        await c.post({**need_form, "text": NEED_FR, "send": "1"})  # resubmitted
        assert c.replies == first and c.state == "solution"
        await c.post({**need_form, "text": "Un tout autre texte qui ne doit pas être pris."})
        assert c.state == "solution"
        async with chat.channel.service.sessions() as s:
            (row,) = await s.execute(text("SELECT data FROM conversations"))
        assert "tout autre texte" not in str(row)
        # consent, territory, theme, need: the resubmissions recorded nothing
        assert await count(chat, InboundMessage, InboundMessage.channel == "web") == 4


async def test_an_old_button_is_no_longer_available(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        await c.press("consent:yes")
        territory_form = dict(c.form.fields)
        await c.press("t:OISE")
        # the back button, then another territory of the old page
        await c.post({**territory_form, "choice": "t:AISNE-HAUTE-SOMME"})
        assert c.said(t("fr", "channel.stale_choice")) and c.state == "theme"


async def test_two_tabs_do_not_corrupt_the_conversation(db_settings: Settings) -> None:
    async with running_web(db_settings) as chat, WebCitizen(chat) as tab1:
        await tab1.open()
        for step in ("consent:yes", "t:OISE", "th:1"):
            await tab1.press(step)
        tab2 = WebCitizen(chat, session=tab1.session)
        await tab2.open()
        assert tab2.state == "need"
        await tab1.write(NEED_FR)
        assert tab1.state == "solution"
        # tab 2 still shows the need step: its text is not taken as the solution...
        status = await tab2.write("Ce texte vient d'un onglet resté en arrière sur l'étape.")
        assert status == 200 and tab2.said(t("fr", "channel.stale_text")[:40])
        # ... and it is given back in the text box (nothing lost)
        assert tab2.form.textarea == "Ce texte vient d'un onglet resté en arrière sur l'étape."
        assert tab2.state == "solution"
        await tab2.write(SOLUTION_FR)
        await tab1.open()
        assert tab1.state == "levers"
        async with chat.channel.service.sessions() as s:
            (data,) = (await s.execute(text("SELECT data FROM conversations"))).one()
        answers = data["answers"] if isinstance(data, dict) else __import__("json").loads(data)
        answers = answers.get("answers", answers)
        assert answers["need"] == NEED_FR and answers["solution"] == SOLUTION_FR


# --- the menu --------------------------------------------------------------------------------


async def test_my_contributions_and_delete_my_data(db_settings: Settings) -> None:
    async with running_web(db_settings) as chat, WebCitizen(chat) as c:
        await contribute(c)
        await c.command("mine")
        assert c.said("HDF-OISE-000001") and c.said(t("fr", "status.pending"))
        await c.command("delete")
        assert c.said(t("fr", "delete.confirm")[:30])
        await c.press("delete:yes")
        assert c.said(t("fr", "delete.done")[:30])
        assert await count(chat, Participant) == 0
        assert await count(chat, Contribution) == 0
        # what the inbox kept to answer a reload (the replies, with the texts) is erased too
        async with chat.channel.service.sessions() as s:
            kept = await s.scalar(
                select(func.count()).where(
                    InboundMessage.replies.is_not(None), InboundMessage.status == "done"
                )
            )
        assert kept == 1  # only the answer to "delete:yes" itself ("your data is erased")
        await c.command("mine")
        assert c.said(t("fr", "mine.none"))


async def test_moderation_news_are_shown_at_the_next_visit_once(db_settings: Settings) -> None:
    async with running_web(db_settings) as chat, WebCitizen(chat) as c:
        await contribute(c)
        async with chat.channel.service.sessions() as s, s.begin():
            pid = (await s.scalars(select(Participant.id))).one()
            s.add(
                Outbox(
                    participant_id=pid,
                    dedupe_key="approved:HDF-OISE-000001",
                    kind="approved",
                    params={"reference": "HDF-OISE-000001"},
                    created_at=datetime.now(UTC),
                )
            )
        # Telegram's sender never takes a web citizen's notice
        assert await chat.channel.outbox.claim(["telegram"], skip_reminders=False) == []
        await c.open()
        notice = t("fr", "notify.approved", reference="HDF-OISE-000001")
        assert c.page.notices == [" ".join((t("fr", "web.notices") + " " + notice).split())]
        await c.open()
        assert c.page.notices == []  # shown once
        async with chat.channel.service.sessions() as s:
            assert (await s.scalars(select(Outbox.status))).one() == "sent"


# --- posters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given", ["oise", "OISE", "Oise", "oise\x00", "littoral-nord", "Littoral Nord"]
)
async def test_a_posters_link_preselects_the_territory(
    sqlite_settings: Settings, given: str
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open(f"?territoire={given}")
        await c.press("consent:yes")
        assert c.state == "theme"
        territory = "Oise" if "oise" in given.lower() else "Littoral Nord"
        assert c.said(territory)
        await c.press("th:1")
        await c.write(NEED_FR)
        await c.write(SOLUTION_FR)
        await c.press("skip")
        await c.press("p:-")
        await c.press("send")
        code = "OISE" if territory == "Oise" else "LITTORAL-NORD"
        assert c.said(f"HDF-{code}-000001")


async def test_a_posters_link_opened_mid_draft_offers_its_territory_keeping_the_draft(
    sqlite_settings: Settings,
) -> None:
    """As Telegram's /start <territory> mid-draft: the page offers the poster's territory;
    taking it asks to confirm, and the draft goes on there with its answers."""
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        await c.press("consent:yes")
        await c.press("t:OISE")
        await c.press("th:1")
        await c.write(NEED_FR)
        assert c.state == "solution"
        async with c.session.get(chat.url, params={"territoire": "littoral-nord"}) as r:
            assert t("fr", "web.poster_offer", territory="Littoral Nord") in unescape(
                await r.text()
            )
        await c.open("?territoire=littoral-nord")
        assert c.state == "solution", "nothing applied by opening a link"
        offer = c.page.forms["affiche"]
        assert [b.value for b in offer.buttons] == ["start"]
        await c.post({**offer.fields, "command": "start"}, form=offer)
        assert c.buttons() == ["aside:move", "aside:stay"]
        await c.press("aside:move")
        assert c.state == "solution" and c.said("Littoral Nord")
        assert "affiche" not in c.page.forms, "offered on the link's page only"
        await c.write(SOLUTION_FR)
        await c.press("skip")
        await c.press("p:-")
        await c.press("send")
        assert c.said("HDF-LITTORAL-NORD-000001")
        # the same link again, once sent: offered for the next contribution, no question
        await c.open("?territoire=oise")
        assert "affiche" in c.page.forms


@pytest.mark.parametrize(
    "given", ["nulle-part", "<script>alert(1)</script>", "x" * 5000, "%00", "'; --"]
)
async def test_an_unknown_or_hostile_posters_link_mid_draft_offers_nothing(
    sqlite_settings: Settings, given: str
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        await c.press("consent:yes")
        await c.press("t:OISE")
        async with c.session.get(chat.url, params={"territoire": given}) as r:
            html = await r.text()
        assert r.status == 200 and "<script>alert" not in html
        assert 'id="affiche"' not in html and c.state == "theme"
        # a forged offer: the dialog asks nothing and the draft is as it was
        await c.post({**c.menu.fields, "command": "start", "territoire": given}, form=c.menu)
        assert c.status == 200 and c.state == "theme"


@pytest.mark.parametrize(
    "given",
    ["nulle-part", "", "<script>alert(1)</script>", "x" * 5000, "%00", "'; --"],
)
async def test_an_unknown_or_hostile_territory_link_asks_as_usual(
    sqlite_settings: Settings, given: str
) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        async with c.session.get(chat.url, params={"territoire": given}) as r:
            html = await r.text()
            assert r.status == 200 and "<script>alert" not in html
        await c.open()
        await c.post({**c.form.fields, "choice": "consent:yes", "territoire": given})
        assert c.status == 200 and c.state == "territory"
