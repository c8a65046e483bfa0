"""The Telegram channel end to end: python-telegram-bot over HTTP against the fake Bot API,
the real dialog and DialogService on a real database."""

from __future__ import annotations

import pytest

from storage.settings import Settings
from tests.telegram_helpers import Citizen, contribute_fr, running_bot


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_full_conversation_in_french(sqlite_settings: Settings, mode: str) -> None:
    async with running_bot(sqlite_settings, mode=mode) as bot:
        c = Citizen(bot.api, bot.api.user(1001, lang="fr"))
        thanks = await contribute_fr(c)
        assert "HDF-OISE-000001" in thanks.text
