"""The Telegram channel end to end: python-telegram-bot over HTTP against the fake Bot API,
the real dialog and DialogService on a real SQLite file (PostgreSQL in the reliability tests)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dialogs.flow import COMMANDS
from dialogs.messages import t
from storage.identity import ChatCipher
from storage.models import ChatIdentity, Contribution, InboundMessage
from storage.settings import Settings
from tests.telegram_helpers import (
    NEED_EN,
    NEED_FR,
    SOLUTION_EN,
    Bot,
    Citizen,
    contribute_fr,
    running_bot,
    settle,
    up_to_profile,
)


async def count(bot: Bot, model: type, *where: object) -> int:
    async with bot.service.sessions() as session:
        stmt = select(func.count()).select_from(model)
        for w in where:
            stmt = stmt.where(w)  # type: ignore[arg-type]
        return int(await session.scalar(stmt) or 0)


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_full_conversation_in_french(sqlite_settings: Settings, mode: str) -> None:
    async with running_bot(sqlite_settings, mode=mode) as bot:
        c = Citizen(bot.api, bot.api.user(1001, lang="fr"))
        thanks = await contribute_fr(c)
        assert "HDF-OISE-000001" in thanks.text
        await settle(bot)
        # every button press was answered, and each pressed keyboard removed
        assert set(bot.api.callback_answers) == set(bot.api.callback_queries)
        pressed = [q["message"]["message_id"] for q in bot.api.callback_queries.values()]
        for m in c.messages:
            if m.message_id in pressed:
                assert m.reply_markup is None or not m.buttons(), m.text[:40]
        assert await count(bot, Contribution) == 1
        assert await count(bot, InboundMessage, InboundMessage.status == "done") == len(
            bot.api.delivered
        )
        # processed updates keep no content
        async with bot.service.sessions() as session:
            payloads = (await session.scalars(select(InboundMessage.payload))).all()
        assert payloads and all(p is None for p in payloads)
        assert bot.channel.processor.stats.failed == 0
        assert not bot.api.errors


async def test_full_conversation_in_english_from_language_code(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, mode="webhook") as bot:
        c = Citizen(bot.api, bot.api.user(1002, lang="en-GB"))
        await c.say("hello")
        await c.expect(text="Do you accept", button="consent:yes")
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        await c.say("60200")
        await c.expect(button="th:4")
        await c.press("th:4")
        await c.expect(text=t("en", "need.prompt")[:30])
        await c.say(NEED_EN)
        await c.expect(text=t("en", "solution.prompt")[:30])
        await c.say(SOLUTION_EN)
        await c.expect(button="skip")
        await c.press("skip")
        await c.expect(button="p:-")
        await c.press("p:-")
        await c.expect(text="Here is your contribution", button="send")
        await c.press("send")
        thanks = await c.expect(text="HDF-OISE-")
        assert thanks.text == t("en", "submitted", reference="HDF-OISE-000001")


async def test_command_menu_in_french_and_english(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        for lang in ("fr", "en"):
            menu = bot.api.commands[("default", lang)]
            assert [c["command"] for c in menu] == list(COMMANDS)
            assert [c["description"] for c in menu] == [t(lang, f"menu.{c}") for c in COMMANDS]
        assert bot.api.commands[("default", "")]  # users of other languages: French


async def test_deep_link_preselects_the_territory(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1003))
        await c.say("/start oise")
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        await c.expect(text=t("fr", "territory.preselected", territory="Oise"))
        await c.expect(button="th:1")


async def test_stale_button_says_so_and_shows_the_current_step(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1004))
        await c.say("Bonjour")
        consent = await c.expect(button="consent:yes")
        await c.press("consent:yes")
        territory = await c.expect(button="t:OISE")
        await c.press("t:OISE")
        await c.expect(button="th:2")
        await settle(bot)
        # the territory keyboard was removed; a client showing it still can press it
        assert not territory.buttons()
        qid = str(await bot.api.press_data(c.user, territory, "v2:t:HAINAUT"))
        stale = await c.expect(text=t("fr", "channel.stale_choice"))
        again = await c.expect(button="th:2")
        assert again.message_id > stale.message_id
        await settle(bot)
        answered = [q for q, a in bot.api.callback_answers.items()]
        assert len(answered) == len(bot.api.callback_queries)
        del qid
        # a forged or mangled callback data is just as stale
        for data in ("", "garbage", "v99999:t:OISE", "v1:" + "x" * 60, "v-1:x", "v1:\x00"):
            await bot.api.press_data(c.user, consent, data)
            await c.expect(text=t("fr", "channel.stale_choice"))
        await settle(bot)
        assert set(bot.api.callback_answers) == set(bot.api.callback_queries)
        assert bot.channel.processor.stats.failed == 0
        assert await count(bot, Contribution) == 0


async def test_long_review_is_split_cleanly(sqlite_settings: Settings) -> None:
    """3 answers of 3,000 characters: the review exceeds 4,096 characters and is split at
    line boundaries; the keyboard comes with the last part."""
    need = ("Il manque des médecins dans nos villages. " * 80)[:2990]
    solution = ("Créer des centres de santé itinérants.\n" * 90)[:2990]
    levers = ("Des financements pérennes et une coordination locale. " * 60)[:2990]
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1005))
        await up_to_profile(c, theme="1", need=need, solution=solution, levers=levers)
        before = len(c.messages)
        await c.press("p:usager")
        review = await c.expect(button="send")
        parts = [m for m in c.messages[before:] if m.message_id <= review.message_id]
        assert len(parts) >= 3
        assert all(len(m.text) <= 4096 for m in parts)
        joined = "\n".join(m.text for m in parts)
        for text in (need.strip(), levers.strip()):
            assert text[:500] in joined and text[-200:] in joined
        assert all(not m.buttons() for m in parts[:-1]) and parts[-1].buttons()
        await c.press("send")
        await c.expect(text="HDF-OISE-")
        assert await count(bot, Contribution) == 1
        assert not [e for e in bot.api.errors if e[0] == "sendMessage"]


@pytest.mark.parametrize(
    "kind",
    ["photo", "voice", "sticker", "location", "contact", "document", "poll", "video", "audio"],
)
async def test_non_text_messages_get_a_clear_reply(sqlite_settings: Settings, kind: str) -> None:
    async with running_bot(sqlite_settings) as bot:
        fr = Citizen(bot.api, bot.api.user(1006, lang="fr"))
        en = Citizen(bot.api, bot.api.user(1007, lang="en"))
        await bot.api.send_content(fr.user, kind)
        await fr.expect(text=t("fr", "channel.unsupported"))
        await bot.api.send_content(en.user, kind)
        await en.expect(text=t("en", "channel.unsupported"))
        # the conversation goes on normally afterwards
        await fr.say("Bonjour")
        await fr.expect(button="consent:yes")
        await settle(bot)
        assert bot.channel.processor.stats.failed == 0


async def test_edited_and_forwarded_messages(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1008))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await bot.api.edit_text(c.user, 1, "Bonjour, modifié")
        await c.expect(text=t("fr", "channel.edited"))
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        await c.press("t:OISE")
        await c.expect(button="th:3")
        await c.press("th:3")
        await c.expect(text=t("fr", "need.prompt")[:30])
        # a forwarded text is the citizen's answer like any text
        await bot.api.send_forwarded(c.user, NEED_FR)
        await c.expect(text=t("fr", "solution.prompt")[:30])
        await settle(bot)
        assert bot.channel.processor.stats.failed == 0


async def test_groups_get_one_polite_reply_channels_none(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        u = bot.api.user(1009)
        group = -100123
        await bot.api.send_in_group(u, group, "Bonjour le bot")
        await bot.api.wait_message(group, 1)
        await bot.api.send_in_group(u, group, "/start")
        await bot.api.send_in_group(u, group, "Encore ?")
        await bot.api.my_chat_member(
            u, chat={"id": -100999, "type": "group", "title": "Autre"}, old="left", new="member"
        )
        await bot.api.wait_message(-100999, 1)
        await bot.api.channel_post(-100555, "Un message de canal")
        await settle(bot)
        assert [m.text for m in bot.api.messages(group)] == [t("fr", "channel.private_only")]
        assert [m.text for m in bot.api.messages(-100999)] == [t("fr", "channel.private_only")]
        assert bot.api.messages(-100555) == []
        assert await count(bot, Contribution) == 0
        assert bot.channel.processor.stats.failed == 0


HOSTILE = [
    " ",
    "\u200b\u200b",
    "x" * 5000,
    "😀😀😀",
    "abc\x00def",
    "مرحبا بالعالم، نحتاج إلى طبيب",
    "<b>gras</b><script>alert(1)</script>",
    "'; DROP TABLE contributions; --",
    "/",
    "/unknowncommand arg",
    "/start " + "x" * 300,
    "/help@cnr_sante_test_bot",
    "\u202eevil",
]


async def test_hostile_text_at_every_step_never_breaks(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1010))
        for text in HOSTILE:
            await c.say(text)
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        for text in HOSTILE:
            await c.say(text)
        await c.press("t:OISE", c.keyboard())
        await c.expect(button="th:2")
        await c.press("th:2")
        await c.expect(text=t("fr", "need.prompt")[:30])
        for text in HOSTILE:
            await c.say(text)
        await settle(bot)
        assert bot.channel.processor.stats.failed == 0
        # every update got at least one message back
        assert len(c.messages) >= 3 * len(HOSTILE)
        assert not [e for e in bot.api.errors if e[0] == "sendMessage"]


async def test_blocked_bot_keeps_the_contribution(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1011))
        await up_to_profile(c)
        await c.press("p:usager")
        review = await c.expect(button="send")
        bot.api.block(c.chat_id)  # the citizen blocks the bot, then presses "send"
        await bot.api.press(c.user, review, "send")
        await settle(bot)
        assert await count(bot, Contribution) == 1
        assert await count(bot, ChatIdentity, ChatIdentity.blocked.is_(True)) == 1
        # chat not found (account deleted): same
        d = Citizen(bot.api, bot.api.user(1012))
        await d.say("Bonjour")
        welcome = await d.expect(button="consent:yes")
        bot.api.forget_chat(d.chat_id)
        await bot.api.press_data(d.user, None, welcome.buttons()[0]["callback_data"])
        await settle(bot)
        assert await count(bot, ChatIdentity, ChatIdentity.blocked.is_(True)) == 2
        assert bot.channel.processor.stats.failed == 0


async def test_blocking_and_unblocking_via_my_chat_member(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1013))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        await bot.api.my_chat_member(c.user, old="member", new="kicked")
        await settle(bot)
        assert await count(bot, ChatIdentity, ChatIdentity.blocked.is_(True)) == 1
        await bot.api.my_chat_member(c.user, old="kicked", new="member")
        await c.say("/help")
        await c.expect(text="/")
        await settle(bot)
        assert await count(bot, ChatIdentity, ChatIdentity.blocked.is_(True)) == 0


async def test_chat_identity_is_encrypted_and_apart(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(424242))
        await contribute_fr(c)
        async with bot.service.sessions() as session:
            ident = (await session.scalars(select(ChatIdentity))).one()
            contribution = (await session.scalars(select(Contribution))).one()
        assert b"424242" not in ident.secret
        assert ChatCipher(bot.settings).decrypt(ident.secret) == "424242"
        assert "424242" not in repr(vars(contribution))
    db = sqlite_settings.database_url.split("///", 1)[1]
    assert b"424242" not in await asyncio.to_thread(Path(db).read_bytes)


async def test_rate_limit_429_is_honoured(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = Citizen(bot.api, bot.api.user(1014))
        bot.api.rate_limit(times=1, retry_after=1)
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        assert ("sendMessage", 429, "Too Many Requests: retry after 1") in bot.api.errors


async def test_errors_are_logged_without_text_or_identity(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    secret_text = "Texte tres personnel qui ne doit jamais apparaitre dans les journaux"

    class Broken:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        async def handle(self, channel: str, user_id: str, event: object, **kw: object) -> object:
            if getattr(event, "text", "") == secret_text:
                raise RuntimeError(secret_text)
            return await self.inner.handle(channel, user_id, event, **kw)  # type: ignore[attr-defined]

    async with running_bot(sqlite_settings) as bot:
        bot.channel.processor.service = Broken(bot.service)
        c = Citizen(bot.api, bot.api.user(55667788))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        with caplog.at_level(logging.DEBUG, logger="bot"):
            uid = await c.say(secret_text)
            await c.expect(text=t("fr", "channel.error"))
            await settle(bot)
        # the citizen is not stuck
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"update {uid}" in logged and "RuntimeError" in logged and "state consent" in logged
    assert secret_text not in logged and "55667788" not in logged
    assert "Texte" not in caplog.text and "55667788" not in caplog.text


async def test_every_command_in_every_kind_of_state(sqlite_settings: Settings) -> None:
    """Each menu command, typed at the start, mid-draft and after /cancel, gets an answer."""
    async with running_bot(sqlite_settings, mode="webhook") as bot:
        c = Citizen(bot.api, bot.api.user(1015, lang="en"))
        for command in COMMANDS:
            if command == "delete":
                continue  # erases everything: checked last
            before = len(c.messages)
            await c.say(f"/{command}")
            await bot.api.wait_for(lambda b=before: len(c.messages) > b)
            await settle(bot)  # every reply in before the next command (as below)
        await c.say("/start")
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        await c.press("t:OISE")
        await c.expect(button="th:1")
        for command in COMMANDS:
            before = len(c.messages)
            await c.say(f"/{command.upper()}")  # commands are case-insensitive
            await bot.api.wait_for(lambda b=before: len(c.messages) > b)
            await settle(bot)
        await settle(bot)
        assert bot.channel.processor.stats.failed == 0
        assert not [e for e in bot.api.errors if e[0] == "sendMessage"]
