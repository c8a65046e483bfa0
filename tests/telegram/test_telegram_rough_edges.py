"""Issue 11, points 2-5, on Telegram through the fake Bot API: personal data told as it is
typed, /start and the French commands (and their menu), odd messages answered by the step,
one question open at a time, short levers, and the pressed question edited to show the
choice made."""

from __future__ import annotations

import pytest

from dialogs.flow import COMMANDS, FRENCH_COMMANDS
from dialogs.messages import t
from storage.settings import Settings
from tests.telegram_helpers import (
    NEED_EN,
    NEED_FR,
    SOLUTION_FR,
    Citizen,
    running_bot,
    settle,
    up_to_profile,
)

PII_NEED = "Il n'y a plus de médecin au village, appelez-moi au 06 12 34 56 78 pour en parler."


async def to_need(c: Citizen) -> None:
    await c.say("Bonjour")
    await c.expect(button="consent:yes")
    await c.press("consent:yes")
    await c.expect(button="t:OISE")
    await c.press("t:OISE")
    await c.expect(button="th:1")
    await c.press("th:1")
    await c.expect(text=t("fr", "need.prompt")[:30])


async def test_personal_data_is_told_and_the_choice_is_recorded(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(2001))
        await to_need(c)
        await c.say(PII_NEED)
        warning = await c.expect(button="aside:keep")
        assert warning.text == t("fr", "pii.found", what=t("fr", "pii.kind.phone"))
        await c.press("aside:rewrite")
        await c.expect(text=t("fr", "need.prompt")[:30])
        await c.say(PII_NEED)
        second = await c.expect(button="aside:keep")
        await c.press("aside:keep")
        await c.expect(text=t("fr", "solution.prompt")[:30])
        await settle(bot)
        for message, choice in ((warning, "pii.rewrite"), (second, "pii.keep")):
            chosen = t("fr", "channel.chosen", choice=t("fr", choice))
            assert message.text.endswith("\n\n" + chosen) and not message.buttons()
        assert bot.channel.processor.stats.failed == 0


async def test_a_pressed_question_shows_the_choice_made(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(2002))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        territory = await c.expect(button="t:OISE")
        question = territory.text
        await c.press("t:OISE")
        await c.expect(button="th:1")
        await settle(bot)
        assert territory.text == question + "\n\n" + t("fr", "channel.chosen", choice="Oise")
        assert not territory.buttons() and territory.history == [question]
        # a stale press on it later: the record stays as it is
        await bot.api.press_data(c.user, territory, "v2:t:HAINAUT")
        await c.expect(text=t("fr", "channel.stale_choice"))
        await settle(bot)
        assert territory.text.endswith(t("fr", "channel.chosen", choice="Oise"))


async def test_start_mid_draft_and_a_poster_mid_draft_ask_first(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(2003))
        await to_need(c)
        await c.say(NEED_FR)
        await c.expect(text=t("fr", "solution.prompt")[:30])
        await c.say("/start")
        offer = await c.expect(button="aside:restart")
        assert offer.text == t("fr", "restart.confirm")
        await c.press("aside:continue")
        await c.expect(text=t("fr", "solution.prompt")[:30])
        await c.say("/start littoral-nord")
        await c.expect(
            text=t("fr", "territory.change_confirm", territory="Littoral Nord", current="Oise")
        )
        await c.press("aside:move")
        await c.expect(text=t("fr", "territory.changed", territory="Littoral Nord"))
        await c.expect(text=t("fr", "solution.prompt")[:30])
        await c.say("/start")
        await c.expect(button="aside:restart")
        await c.press("aside:restart")
        await c.expect(text=t("fr", "restart.done"))
        await c.expect(button="t:OISE")


async def test_french_commands_and_their_menu(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        french = [FRENCH_COMMANDS[c] for c in COMMANDS]
        for key, names, lang in (
            (("all_private_chats", "fr"), french, "fr"),
            (("all_private_chats", ""), french, "fr"),
            (("all_private_chats", "en"), list(COMMANDS), "en"),
        ):
            menu = bot.api.commands[key]
            assert [m["command"] for m in menu] == names, key
            assert [m["description"] for m in menu] == [t(lang, f"menu.{c}") for c in COMMANDS]
        assert {"aide", "retour", "annuler", "langue", "mes_contributions"} <= set(french)
        assert "supprimer_mes_donnees" in french
        c = Citizen(bot.api, bot.api.user(2004))
        await c.say("/aide")
        await c.expect(text=t("fr", "help.text")[:40])
        await c.say("/supprimer_mes_donnees")
        await c.expect(button="delete:no")
        await c.press("delete:no")
        await c.say("/mes_contributions")
        await c.expect(text=t("fr", "mine.none"))


@pytest.mark.parametrize("kind", ["photo", "voice", "sticker", "document", "location", "contact"])
async def test_an_odd_message_at_a_button_step_gets_the_steps_hint(
    sqlite_settings: Settings, kind: str
) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(2005))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        await c.press("t:OISE")
        await c.expect(button="th:1")
        await bot.api.send_content(c.user, kind)
        hint = await c.expect(text=t("fr", "theme.hint"))
        if kind in ("location", "contact"):
            assert hint.text.startswith(t("fr", f"attachment.{kind}"))
        assert t("fr", "channel.unsupported") not in hint.text
        again = await c.expect(button="th:1")
        assert again.text == t("fr", "theme.prompt")
        await c.press("th:1", again)
        await c.expect(text=t("fr", "need.prompt")[:30])
        await settle(bot)
        assert bot.channel.processor.stats.failed == 0


async def test_invisible_characters_short_levers_and_one_question_at_a_time(
    sqlite_settings: Settings,
) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(2006))
        await to_need(c)
        await c.say("Trop" + "\u200b\u202e\x00" * 20 + " court")
        await c.expect(text=t("fr", "text.too_short", count=10, min=15))
        await c.say(NEED_EN)
        offer = await c.expect(button="lang:en")
        await settle(bot)
        assert offer is c.messages[-1], "the solution's question waits for the answer"
        await c.press("lang:keep")
        await c.expect(text=t("fr", "solution.prompt")[:30])
        await c.say(SOLUTION_FR)
        await c.expect(button="skip")
        await c.say("CPTS, ARS")
        await c.expect(button="p:usager")
        d = Citizen(bot.api, bot.api.user(2007))
        await up_to_profile(d, levers="Rectorat")
