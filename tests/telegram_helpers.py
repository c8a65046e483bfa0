"""Shared helpers of the Telegram tests and benchmark: the bot under test wired to the fake
Bot API, and scripted citizens that act and wait for what the bot says (events, no sleeps)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.telegram.app import TelegramChannel, build_application
from dialogs.messages import t
from storage.campaigns_db import CAMPAIGNS_DIR
from storage.service import DialogService
from storage.settings import Settings
from tests.fakebotapi import FakeBotAPI, FakeUser, SentMessage

NEED_FR = (
    "Il n'y a plus de médecin traitant dans notre village depuis deux ans, il faut faire 30 km."
)
SOLUTION_FR = "Ouvrir une maison de santé avec des consultations avancées de spécialistes."
LEVERS_FR = "Financer les locaux par la commune et simplifier l'installation des jeunes médecins."
NEED_EN = "There has been no family doctor in our village for two years; we must drive 30 km."
SOLUTION_EN = "Open a health centre with regular visits from specialists and nurses every week."


def open_campaign_file(directory: Path) -> Path:
    """The shipped Hauts-de-France campaign, open from 2020 to 2099 (tests run "today")."""
    source = CAMPAIGNS_DIR / "hauts-de-france-2022.toml"
    text = source.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^opens_on = .*$", "opens_on = 2020-01-01", text)
    text = re.sub(r"(?m)^closes_on = .*$", "closes_on = 2099-12-31", text)
    path = directory / "hdf-open.toml"
    path.write_text(text, encoding="utf-8")
    return path


def bot_settings(settings: Settings, api: FakeBotAPI, **extra: Any) -> Settings:
    values = settings.model_dump()
    values.setdefault("default_campaign_file", "")
    if values["default_campaign_file"] == Settings().default_campaign_file:
        values["default_campaign_file"] = str(open_campaign_file(settings.secret_file.parent))
    values.update(
        telegram_token=api.token,
        telegram_api_base_url=api.base_url,
        telegram_api_file_url=api.base_url.replace("/bot", "/file/bot"),
        **extra,
    )
    return Settings(**values)


@dataclass
class Bot:
    api: FakeBotAPI
    settings: Settings
    service: DialogService
    channel: TelegramChannel
    tasks: list[Any] = field(default_factory=list)
    #: Webhook mode: the URL registered with the fake.
    url: str = ""


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings,
    *,
    mode: str = "polling",
    api: FakeBotAPI | None = None,
    service: DialogService | None = None,
    rate_limit: bool = True,
    **channel_kwargs: Any,
) -> AsyncIterator[Bot]:
    """The real channel (PTB over HTTP) against the fake server, polling or webhook."""
    import asyncio

    own_api = api is None
    api = api or await FakeBotAPI().start()
    settings = bot_settings(settings, api)
    own_service = service is None
    service = service or await DialogService.open(settings)
    application = build_application(settings, rate_limit=rate_limit, overall_max_rate=0)
    channel_kwargs.setdefault("sweep_interval", 0.2)
    channel_kwargs.setdefault("poll_timeout", 2.0)
    channel = TelegramChannel(
        settings, service, service.engine, application=application, **channel_kwargs
    )
    await channel.start()
    stop = asyncio.Event()
    bot = Bot(api, settings, service, channel)
    if mode == "polling":
        bot.tasks.append(asyncio.create_task(channel.poll(stop)))
    else:
        port = await channel.serve_webhook("127.0.0.1", 0)
        bot.url = await channel.register_webhook(f"http://127.0.0.1:{port}")
    try:
        yield bot
    finally:
        stop.set()
        for task in bot.tasks:
            with contextlib.suppress(Exception):
                await task
        await channel.stop()
        if own_service:
            await service.close()
        if own_api:
            await api.stop()


async def settle(bot: Bot) -> None:
    """Until every update the fake has handed over is recorded, processed and marked done."""
    await bot.api.wait_for(lambda: not bot.api.queue)
    await bot.channel.processor.idle()
    await bot.channel.processor.flush()


class Citizen:
    """A scripted citizen: acts, then waits for the bot's answer matching an expectation."""

    def __init__(self, api: FakeBotAPI, user: FakeUser, *, within: float = 20.0) -> None:
        self.api = api
        self.user = user
        self.seen = 0
        self.within = within

    @property
    def chat_id(self) -> int:
        return self.user.id

    @property
    def messages(self) -> list[SentMessage]:
        return self.api.messages(self.user.id)

    async def say(self, text: str) -> int:
        return await self.api.send_text(self.user, text)

    async def press(self, choice: str, message: SentMessage | None = None) -> int:
        message = message or self.keyboard()
        return await self.api.press(self.user, message, choice)

    def keyboard(self) -> SentMessage:
        """The latest message with buttons."""
        for m in reversed(self.messages):
            if m.buttons():
                return m
        raise AssertionError("no message with buttons")

    async def expect(
        self,
        *,
        button: str | None = None,
        text: str | None = None,
        within: float | None = None,
    ) -> SentMessage:
        """Wait for a new message (after the last one expected) with this button/text."""

        def match(m: SentMessage) -> bool:
            if button is not None and not any(
                b.get("callback_data", "").endswith(":" + button) for b in m.buttons()
            ):
                return False
            return text is None or text.casefold() in m.text.casefold()

        chat = self.api.chats[self.user.id]

        def found() -> bool:
            return any(match(m) for m in chat.messages[self.seen :])

        try:
            await self.api.wait_for(found, within or self.within)
        except TimeoutError:
            got = [
                (m.text[:60], [b.get("callback_data") for b in m.buttons()])
                for m in chat.messages[self.seen :]
            ]
            raise AssertionError(f"expected button={button} text={text}; got {got}") from None
        for i in range(self.seen, len(chat.messages)):
            if match(chat.messages[i]):
                self.seen = i + 1
                return chat.messages[i]
        raise AssertionError("unreachable")


async def up_to_profile(
    c: Citizen,
    *,
    start: str = "Bonjour",
    theme: str = "2",
    need: str = NEED_FR,
    solution: str = SOLUTION_FR,
    levers: str | None = LEVERS_FR,
) -> None:
    """Consent, Oise, ``theme`` and the texts (``levers=None``: skipped), up to the profile."""
    await c.say(start)
    await c.expect(button="consent:yes")
    await c.press("consent:yes")
    await c.expect(button="t:OISE")
    await c.press("t:OISE")
    await c.expect(button=f"th:{theme}")
    await c.press(f"th:{theme}")
    await c.expect(text=t("fr", "need.prompt")[:30])
    await c.say(need)
    await c.expect(text=t("fr", "solution.prompt")[:30])
    await c.say(solution)
    await c.expect(button="skip")
    if levers is None:
        await c.press("skip")
    else:
        await c.say(levers)
    await c.expect(button="p:usager")


async def contribute_fr(c: Citizen, *, start: str = "Bonjour") -> SentMessage:
    """A whole French contribution; returns the bot's thank-you message."""
    await up_to_profile(c, start=start)
    await c.press("p:usager")
    await c.expect(button="send")
    await c.press("send")
    return await c.expect(text="HDF-OISE-")


Step = Callable[[Citizen], Any]
