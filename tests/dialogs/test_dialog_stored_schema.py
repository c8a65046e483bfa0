"""A conversation stored by the code of schema 1 (its bookkeeping under ``_`` keys of the
answers) continues through the real dialog service, on SQLite and PostgreSQL, and is stored
back in schema 2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from dialogs.model import ChoiceEvent, CommandEvent, Event, TextEvent
from storage.models import ConversationRow
from storage.service import DialogService, HandleResult
from storage.settings import Settings
from tests.dialog_helpers import NEED_EN, NEED_FR
from tests.service_helpers import TEST_TOML

NOW = datetime(2022, 11, 20, 9, 30, tzinfo=UTC)
V2_FIELDS = ("territory_candidates", "return_to", "return_resume", "lang_offered")


@pytest.fixture
async def service(db_settings: Settings) -> AsyncIterator[DialogService]:
    settings = db_settings.model_copy(update={"default_campaign_file": str(TEST_TOML)})
    svc = await DialogService.open(settings)
    try:
        yield svc
    finally:
        await svc.close()


async def _send(service: DialogService, event: Event) -> HandleResult:
    return await service.handle("terminal", "4242", event, now=NOW)


async def _stored(service: DialogService) -> dict[str, Any]:
    async with service.sessions() as s:
        row = await s.scalar(select(ConversationRow))
    assert row is not None
    return dict(row.data)


def _as_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    """What the code of schema 1 stored for the same conversation."""
    old = {k: v for k, v in data.items() if k not in V2_FIELDS}
    old["schema"] = 1
    answers = dict(data["answers"])
    answers["_return"] = data["return_to"]
    answers["_return_resume"] = data["return_resume"]
    answers["_lang_offered"] = True
    old["answers"] = answers
    return old


async def test_a_stored_schema_1_conversation_continues(service: DialogService) -> None:
    await _send(service, CommandEvent("start"))
    result = await _send(service, ChoiceEvent("consent:yes"))
    result = await _send(service, ChoiceEvent("t:OISE", result.conversation.version))
    result = await _send(service, ChoiceEvent("th:2", result.conversation.version))
    await _send(service, TextEvent(NEED_FR))
    result = await _send(service, CommandEvent("cancel"))
    assert result.conversation.state == "confirm_cancel"
    stored = await _stored(service)
    assert stored["schema"] == 2 and stored["return_to"] == "solution"

    async with service.sessions() as s, s.begin():
        await s.execute(update(ConversationRow).values(data=_as_schema_1(stored)))
    old = await _stored(service)
    assert old["schema"] == 1 and old["answers"]["_return"] == "solution"

    result = await _send(service, ChoiceEvent("cancel:no", result.conversation.version))
    assert result.conversation.state == "solution", "back where the confirmation was asked"
    assert result.conversation.answers["need"] == NEED_FR
    new = await _stored(service)
    assert new["schema"] == 2 and new["state"] == "solution"
    assert not any(key.startswith("_") for key in new["answers"])
    assert new["return_to"] is None and new["lang_offered"] is True

    result = await _send(service, TextEvent(NEED_EN))  # English: offered before, not again
    assert result.conversation.state == "levers"
    assert not any(c.id.startswith("lang:") for r in result.replies for c in r.choices)
