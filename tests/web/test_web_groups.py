"""Messages of many citizens at once, applied in groups (``bot.core.processor``'s group commit),
over real HTTP, on a real SQLite file and a real PostgreSQL: fewer transactions than messages,
and every guarantee of one message at a time — each applied once, in order, a failing one
failing alone, one sent again answered as the first time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from dialogs import flow
from dialogs.model import TextEvent
from storage.models import Contribution, InboundMessage
from storage.service import DialogService
from storage.settings import Settings
from tests.telegram_helpers import NEED_FR
from tests.web_helpers import WebChat, WebCitizen, contribute, count, running_web

CROWD = 24
#: The crowd comes from one address and solves no proof-of-work: limits out of the way.
OPEN = {
    "web_rate_per_address": 100_000,
    "web_rate_unverified_per_address": 1_000,
    "web_rate_unverified_total": 1_000,
}


def groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the groups tried from now on (applied, or rolled back and applied one by
    one)."""
    sizes: list[int] = []
    real = DialogService.handle_many

    async def spied(self: DialogService, channel: str, events: Any, **kw: Any) -> Any:
        sizes.append(len(events))
        return await real(self, channel, events, **kw)

    monkeypatch.setattr(DialogService, "handle_many", spied)
    return sizes


def commits(chat: WebChat) -> list[int]:
    """The database commits of the web chat from now on (one per transaction)."""
    seen: list[int] = []
    event.listen(chat.channel.service.engine.sync_engine, "commit", lambda _c: seen.append(1))
    return seen


async def test_a_crowd_is_applied_in_groups(db_settings: Settings) -> None:
    """24 citizens contribute at the same time (as the chat script, and without JavaScript):
    every contribution stored once, every message recorded once, and the messages applied in
    fewer transactions than there are messages."""
    async with running_web(db_settings, **OPEN) as chat:
        done = commits(chat)
        citizens = [WebCitizen(chat, script=n % 2 == 0) for n in range(CROWD)]
        try:
            await asyncio.gather(*(contribute(c) for c in citizens))
            for c in citizens:
                assert c.state == "done" and c.said("HDF-OISE-"), c.replies
        finally:
            await asyncio.gather(*(c.close() for c in citizens))
        messages = await count(chat, InboundMessage, InboundMessage.channel == "web")
        assert messages == CROWD * 8
        assert await count(chat, Contribution) == CROWD
        assert len(done) < messages / 2, (len(done), messages)


async def test_a_failing_message_fails_alone_and_order_holds(
    db_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a group, the dialog failing on one citizen's message: that citizen is told (nothing
    of theirs stored), the others of the same moment are answered as usual; and a citizen's
    messages sent at once are applied in the order they came, one per group."""
    real = flow.handle

    def failing(conv: Any, event_: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(event_, TextEvent) and event_.text.startswith("PANNE"):
            raise RuntimeError("the dialog failed")
        return real(conv, event_, *args, **kw)

    monkeypatch.setattr(flow, "handle", failing)
    async with running_web(db_settings, **OPEN) as chat:
        citizens = [WebCitizen(chat, script=True) for _ in range(6)]
        try:
            for c in citizens:
                await c.open()
                for step in ("consent:yes", "t:OISE", "th:1"):
                    await c.press(step)
            texts = [f"PANNE {NEED_FR}" if n == 2 else NEED_FR for n in range(6)]
            tried = groups(monkeypatch)
            statuses = await asyncio.gather(
                *(c.write(text) for c, text in zip(citizens, texts, strict=True))
            )
            assert statuses == [200, 200, 500, 200, 200, 200]
            assert sum(tried) == 6 and max(tried) > 1  # tried together
            assert [c.state for c in citizens] == ["solution"] * 2 + ["need"] + ["solution"] * 3
            # the failed one goes on as if nothing happened
            assert await citizens[2].write(NEED_FR) == 200 and citizens[2].state == "solution"
        finally:
            await asyncio.gather(*(c.close() for c in citizens))


async def test_a_message_sent_again_in_a_group_is_answered_as_the_first_time(
    db_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form sent again (the back button, a retried request) arriving together with other
    citizens' messages: it is applied once and given its first answer; the others are applied."""
    async with running_web(db_settings, **OPEN) as chat:
        citizens = [WebCitizen(chat, script=True) for _ in range(5)]
        try:
            for c in citizens:
                await c.open()
                await c.press("consent:yes")
            again = citizens[0]
            territory_form = dict(again.form.fields)
            await again.press("t:OISE")
            first = list(again.replies)
            tried = groups(monkeypatch)
            statuses = await asyncio.gather(
                again.post({**territory_form, "choice": "t:OISE"}),
                *(c.press("t:OISE") for c in citizens[1:]),
            )
            assert statuses == [200] * 5
            assert sum(tried) == 5 and max(tried) > 1  # tried together
            assert again.replies == first and again.state == "theme"
            assert all(c.state == "theme" for c in citizens)
            # consent and territory, once each
            assert await count(chat, InboundMessage, InboundMessage.channel == "web") == 10
        finally:
            await asyncio.gather(*(c.close() for c in citizens))
