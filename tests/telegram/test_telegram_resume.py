"""An update whose replies Telegram refused midway is resumed without repeating anything: what
was delivered is not sent again, what was not is; and once the citizen has gone on (a later
update answered), resuming an older one shows nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.settings import Settings
from tests.fakebotapi import FakeBotAPI
from tests.telegram_helpers import Citizen, running_bot, up_to_profile

ANOTHER = "Souhaitez-vous faire une autre contribution"


@pytest.fixture(autouse=True)
def quick_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orphans are resumed after a second (60 s in production)."""
    monkeypatch.setattr("bot.core.processor.RESUME_AFTER", timedelta(seconds=1))


async def test_a_reply_refused_midway_is_sent_once_when_resumed(db_settings: Settings) -> None:
    async with FakeBotAPI() as api, running_bot(db_settings, api=api, rate_limit=False) as bot:
        c = Citizen(api, api.user(4242))
        await up_to_profile(c)
        await c.press("p:usager")
        await c.expect(button="send")
        # "send" answers the thank-you, then the next question: the first goes, the second
        # is refused (502); the update is resumed later.
        api.fail_sends(after=1, times=1)
        await c.press("send")
        await c.expect(text=ANOTHER, within=30)
        await bot.channel.processor.idle()
        texts = [m.text for m in c.messages]
        thanks = [x for x in texts if "HDF-OISE-" in x]
        assert len(thanks) == 1, texts[-4:]  # the thank-you was not sent again
        assert sum(x.startswith(ANOTHER) for x in texts) == 1
        assert bot.channel.processor.stats.resumed >= 1


async def test_an_older_update_resumed_after_the_citizen_went_on_shows_nothing(
    db_settings: Settings,
) -> None:
    async with FakeBotAPI() as api, running_bot(db_settings, api=api, rate_limit=False) as bot:
        c = Citizen(api, api.user(4343))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        api.fail_sends(after=0, times=1)
        await c.press("consent:yes")  # applied; its territory question refused by Telegram
        await c.say("Oise")  # the citizen goes on (a territory typed) before it is resumed
        theme = await c.expect(button="th:1", within=30)
        await api.wait_for(lambda: bot.channel.processor.stats.resumed >= 1, 30)
        await bot.channel.processor.idle()
        assert sum(m.text == theme.text for m in c.messages) == 1
