"""``cnrbot db purge-drafts`` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from dialogs.model import Conversation
from storage import repository
from storage.db import create_engine, session_factory, upgrade
from storage.maintenance import purge_unconsented
from storage.models import ConversationRow, Participant
from storage.settings import Settings

NOW = datetime.now(UTC)
T = TypeVar("T")


async def _setup(engine: AsyncEngine) -> dict[str, int]:
    sessions = session_factory(engine)
    ids: dict[str, int] = {}
    old = NOW - timedelta(days=30)
    async with sessions() as s, s.begin():
        for name, consent, updated, answers, state in (
            ("old_draft", "v1", old, {"theme": "2", "need": "Un constat assez long"}, "solution"),
            ("new_draft", "v1", NOW, {"theme": "2", "need": "Un autre constat long"}, "solution"),
            ("old_notice", None, old, {}, "consent"),
            ("new_notice", None, NOW, {}, "consent"),
        ):
            p = await repository.create_participant(s, name.ljust(64, "0"), "terminal", "fr", old)
            p.consent_version = consent
            conv = Conversation(state=state, answers=answers, version=3, consent_version=consent)
            await repository.insert_conversation(s, p.id, None, conv, updated)
            ids[name] = p.id
    return ids


async def _with_engine(settings: Settings, body: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        return await body(engine)
    finally:
        await engine.dispose()


def test_cli_purge_drafts(
    db_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI runs its own event loop: this test is synchronous, with engines of its own."""
    ids = asyncio.run(_with_engine(db_settings, _setup))
    monkeypatch.setenv("CNR_DATABASE_URL", db_settings.database_url)
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)
    monkeypatch.setenv("CNR_DRAFT_TTL", "P7D")
    assert main(["db", "purge-drafts"]) == 0
    out = capsys.readouterr().out
    assert "expired drafts erased: 1" in out and "unanswered privacy notices erased: 1" in out

    async def check(engine: AsyncEngine) -> None:
        async with session_factory(engine)() as s:
            people = set(await s.scalars(select(Participant.id)))
            data = {
                pid: d
                for pid, d in (
                    await s.execute(select(ConversationRow.participant_id, ConversationRow.data))
                ).all()
            }
        assert people == {ids["old_draft"], ids["new_draft"], ids["new_notice"]}
        assert "need" not in data[ids["old_draft"]]["answers"]
        assert data[ids["old_draft"]]["answers"]["theme"] == "2"
        assert data[ids["new_draft"]]["answers"]["need"] == "Un autre constat long"

    asyncio.run(_with_engine(db_settings, check))


async def test_purge_unconsented_keeps_consented(engine: AsyncEngine) -> None:
    ids = await _setup(engine)
    async with session_factory(engine)() as s, s.begin():
        assert await purge_unconsented(s, NOW, timedelta(days=7)) == 1
    async with session_factory(engine)() as s:
        people = set(await s.scalars(select(Participant.id)))
    assert ids["old_notice"] not in people and len(people) == 3
