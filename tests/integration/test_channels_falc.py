"""« Français facile » on every channel: chosen at the greeting or with /langue (or the web
chat's language switch), spoken at every step, stored and resumed, and used for the notices
the bot sends on its own (moderation decisions, reminders): the terminal through a real
process, Telegram through the fake Bot API, the web chat over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from dialogs.messages import t
from storage.models import Contribution, Outbox, Participant
from storage.settings import Settings
from tests.telegram_helpers import (
    NEED_FR,
    SOLUTION_FR,
    Bot,
    Citizen,
    running_bot,
    settle,
)
from tests.terminal.test_terminal import chat as terminal_chat
from tests.terminal.test_terminal import db_rows
from tests.web_helpers import WebCitizen, running_web

REFERENCE = "HDF-OISE-000001"


def _first_line(msg_id: str, **params: str) -> str:
    return t("falc", msg_id, **params).split("\n")[0]


# --- terminal ---------------------------------------------------------------------------------


def test_terminal_easy_french_chosen_at_the_greeting_then_resumed(tmp_path: Path) -> None:
    first = terminal_chat(
        tmp_path,
        [
            "Français facile",  # the greeting's button, typed
            "1",  # Je suis d'accord
            "Oise",
            "2",
            NEED_FR,
        ],
    )
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert _first_line("lang.set") in out and _first_line("consent.prompt") in out
    assert _first_line("territory.prompt") in out and _first_line("need.prompt") in out
    assert _first_line("solution.prompt") in out
    assert "Je suis d'accord" in out
    assert db_rows(tmp_path, "select lang from participants") == [("falc",)]

    again = terminal_chat(tmp_path, ["/aide", SOLUTION_FR, "Passer", "Je ne veux pas le dire", "1"])
    assert again.returncode == 0, again.stderr
    assert _first_line("help.text") in again.stdout, "the language is resumed"
    assert _first_line("submitted", reference=REFERENCE) in again.stdout
    assert db_rows(tmp_path, "select reference, language from contributions") == [
        (REFERENCE, "fr")
    ], "the texts are French"


def test_terminal_lang_falc_starts_in_easy_french(tmp_path: Path) -> None:
    result = terminal_chat(tmp_path, ["1"], "--lang", "falc")
    assert result.returncode == 0, result.stderr
    assert _first_line("consent.prompt") in result.stdout
    assert _first_line("territory.prompt") in result.stdout
    assert db_rows(tmp_path, "select lang from participants") == [("falc",)]


def test_terminal_langue_switches_mid_conversation(tmp_path: Path) -> None:
    result = terminal_chat(tmp_path, ["1", "Oise", "/langue", "3", "/langue", "1"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Français facile" in out
    assert _first_line("lang.set") in out and _first_line("theme.prompt") in out
    assert t("fr", "lang.set") in out, "and back to French"
    assert db_rows(tmp_path, "select lang from participants") == [("fr",)]


# --- Telegram ---------------------------------------------------------------------------------


async def _falc_contribution(c: Citizen) -> None:
    await c.say("Bonjour")
    await c.expect(button="lang:falc")
    await c.press("lang:falc")
    await c.expect(text=_first_line("consent.prompt"), button="consent:yes")
    await c.press("consent:yes")
    await c.expect(text=_first_line("territory.prompt"), button="t:OISE")
    await c.press("t:OISE")
    await c.expect(text=_first_line("theme.prompt"), button="th:2")
    await c.press("th:2")
    await c.expect(text=_first_line("need.prompt"))
    await c.say(NEED_FR)
    await c.expect(text=_first_line("solution.prompt"))
    await c.say(SOLUTION_FR)
    await c.expect(button="skip")
    await c.press("skip")
    await c.expect(button="p:-")
    await c.press("p:-")
    review = await c.expect(button="send")
    assert "Ce qui manque : " + NEED_FR in review.text
    await c.press("send")
    await c.expect(text=_first_line("submitted", reference=REFERENCE))


async def _participant(bot: Bot) -> Participant:
    async with bot.service.sessions() as session:
        return (await session.scalars(select(Participant))).one()


async def test_telegram_falc_citizen_gets_a_falc_approval_notice(
    sqlite_settings: Settings,
) -> None:
    async with running_bot(sqlite_settings, notify_interval=3600) as bot:
        c = Citizen(bot.api, bot.api.user(7301, lang="fr"))
        await _falc_contribution(c)
        await settle(bot)
        participant = await _participant(bot)
        assert participant.lang == "falc"
        async with bot.service.sessions() as session, session.begin():
            contribution = (await session.scalars(select(Contribution))).one()
            assert contribution.language == "fr"
            session.add(
                Outbox(
                    participant_id=participant.id,
                    dedupe_key=f"approved:{REFERENCE}",
                    kind="approved",
                    params={"reference": REFERENCE},
                )
            )
            session.add(
                Outbox(
                    participant_id=participant.id,
                    dedupe_key=f"rejected:{REFERENCE}",
                    kind="rejected",
                    params={"reference": REFERENCE, "reason": "personal_data"},
                )
            )
        before = len(c.messages)
        assert await bot.channel.notifier.run_once() == 2
        assert [m.text for m in c.messages[before:]] == [
            t("falc", "notify.approved", reference=REFERENCE),
            t(
                "falc",
                "notify.rejected",
                reference=REFERENCE,
                reason=t("falc", "reject_reason.personal_data"),
            ),
        ]


async def test_telegram_langue_mid_draft_and_a_falc_reminder(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, notify_interval=3600) as bot:
        c = Citizen(bot.api, bot.api.user(7302, lang="fr"))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        await c.press("t:OISE")
        await c.expect(button="th:2")
        await c.say("/langue")
        await c.expect(text=t("fr", "lang.prompt"), button="lang:falc")
        await c.press("lang:falc")
        await c.expect(text=_first_line("theme.prompt"), button="th:2")
        await settle(bot)
        assert (await _participant(bot)).lang == "falc"
        before = len(c.messages)
        noon = (datetime.now(UTC) + timedelta(days=2)).replace(hour=11, minute=0)
        assert await bot.channel.notifier.run_once(noon) == 1
        assert [m.text for m in c.messages[before:]] == [t("falc", "notify.reminder")]


# --- web chat ---------------------------------------------------------------------------------


async def test_web_language_switch_without_javascript(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat) as c:
        await c.open()
        switch = c.page.forms["langues"]
        assert [(b.value, b.label) for b in switch.buttons] == [
            ("lang:fr", "Français"),
            ("lang:en", "English"),
            ("lang:falc", "Français facile"),
        ]
        assert set(switch.fields) == {"mid"}, "no version: never out of date"
        assert "lang:falc" in c.buttons(), "and offered at the greeting"
        await c.post({**switch.fields, "choice": "lang:falc"})
        assert c.status == 200 and '<html lang="fr-x-falc">' in c.body
        assert c.said(_first_line("consent.prompt"))
        assert [b.label for b in c.menu.buttons if b.value == "mine"] == ["Mes avis"]
        await c.press("consent:yes")
        await c.press("t:OISE")
        await c.press("th:1")
        assert c.said(_first_line("need.prompt"))
        # the switch again, at a later step and from an older page: back to French
        await c.post({**switch.fields, "choice": "lang:fr"})
        assert '<html lang="fr">' in c.body and c.said(t("fr", "need.prompt")[:40])
        assert c.state == "need"


async def test_web_falc_contribution_and_its_notice(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as chat, WebCitizen(chat, script=True) as c:
        await c.open()
        await c.press("lang:falc")  # the greeting's button, sent by the chat script
        assert c.json["lang"] == "fr-x-falc", "the script reloads the page in the new language"
        await c.open()
        assert c.said(_first_line("consent.prompt"))
        await c.press("consent:yes")
        if c.state == "territory":
            await c.press("t:OISE")
        await c.press("th:1")
        await c.write(NEED_FR)
        await c.write(SOLUTION_FR)
        await c.press("skip")
        await c.press("p:-")
        assert c.state == "review"
        await c.press("send")
        assert c.said(_first_line("submitted", reference=REFERENCE))
        async with chat.channel.service.sessions() as s, s.begin():
            participant = (await s.scalars(select(Participant))).one()
            assert participant.lang == "falc"
            s.add(
                Outbox(
                    participant_id=participant.id,
                    dedupe_key=f"approved:{REFERENCE}",
                    kind="approved",
                    params={"reference": REFERENCE},
                    created_at=datetime.now(UTC),
                )
            )
        await c.open()
        notice = t("falc", "notify.approved", reference=REFERENCE)
        assert c.page.notices == [" ".join((t("falc", "web.notices") + " " + notice).split())]
