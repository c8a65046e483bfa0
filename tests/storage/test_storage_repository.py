"""Repository and maintenance queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from dialogs.model import Conversation, SubmitContribution
from storage import campaigns_db, repository
from storage.campaign_file import CampaignSpec
from storage.db import create_engine, session_factory, upgrade
from storage.maintenance import purge_expired_drafts
from storage.models import (
    ChatIdentity,
    Contribution,
    ConversationRow,
    Outbox,
    Participant,
    Territory,
)
from storage.settings import Settings
from tests.service_helpers import TEST_TOML

NOW = datetime(2022, 11, 20, 10, 0, tzinfo=UTC)


async def _load(engine: AsyncEngine) -> campaigns_db.CurrentCampaign:
    with TEST_TOML.open("rb") as fh:
        spec = CampaignSpec.model_validate(tomllib.load(fh))
    async with session_factory(engine)() as s, s.begin():
        await campaigns_db.load_campaign(s, spec)
        current = await campaigns_db.current_campaign(s)
    assert current is not None
    return current


def _submit(draft_id: int, territory: str = "OISE") -> SubmitContribution:
    return SubmitContribution(
        draft_id=draft_id,
        territory=territory,
        theme="2",
        custom_theme=None,
        need="Pas de médecin traitant depuis deux ans.",
        solution="Ouvrir un centre de santé.",
        levers=None,
        profile=None,
        language="fr",
        consent_version="2022-11-v1",
    )


async def _participant(engine: AsyncEngine, key: str) -> int:
    async with session_factory(engine)() as s, s.begin():
        p = await repository.create_participant(s, key, "terminal", "fr", NOW)
        return p.id


async def _store(
    db: AsyncSession | AsyncConnection,
    campaign: campaigns_db.CurrentCampaign,
    pid: int,
    effect: SubmitContribution,
    now: datetime,
) -> str:
    """Store one contribution as the service does (storage.decisions.store_contributions):
    a number taken, the row made, inserted."""
    theme_id = await repository.find_theme_id(db, campaign.id, effect.theme)
    territory_id, number = await repository.next_numbers(db, campaign.id, effect.territory, 1)
    reference = repository.make_reference(campaign.ref_prefix, effect.territory, number)
    row = repository.contribution_row(
        reference=reference,
        participant_id=pid,
        campaign_id=campaign.id,
        territory_id=territory_id,
        theme_id=theme_id,
        channel="terminal",
        effect=effect,
        now=now,
    )
    await repository.insert_contributions(db, [row])
    return reference


async def test_sqlite_wal_and_busy_timeout(sqlite_settings: Settings) -> None:
    engine = create_engine(sqlite_settings)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            sync = (await conn.execute(text("PRAGMA synchronous"))).scalar()
        assert str(mode).lower() == "wal"
        assert busy == sqlite_settings.sqlite_busy_timeout_ms
        assert fks == 1
        assert sync == 1  # NORMAL
    finally:
        await engine.dispose()


async def test_reference_numbers_are_unique_under_concurrency(engine: AsyncEngine) -> None:
    campaign = await _load(engine)
    sessions = session_factory(engine)
    ids = [await _participant(engine, f"{i:064x}") for i in range(12)]

    async def submit(pid: int) -> str:
        async with sessions() as s, s.begin():
            return await _store(s, campaign, pid, _submit(1), NOW)

    refs = await asyncio.gather(*(submit(pid) for pid in ids))
    assert sorted(refs) == [f"TST-OISE-{n:06d}" for n in range(1, 13)]
    async with sessions() as s:
        last = await s.scalar(select(Territory.last_number).where(Territory.code == "OISE"))
        nord = await s.scalar(select(Territory.last_number).where(Territory.code == "NORD"))
    assert (last, nord) == (12, 0)


async def test_numbers_taken_together_never_overlap(engine: AsyncEngine) -> None:
    """A group takes several numbers of a territory in one statement (next_numbers): groups
    taking numbers concurrently get disjoint ranges, with no gap."""
    campaign = await _load(engine)
    sessions = session_factory(engine)

    async def take(n: int) -> range:
        async with sessions() as s, s.begin():
            _tid, last = await repository.next_numbers(s, campaign.id, "OISE", n)
        return range(last - n + 1, last + 1)

    ranges = await asyncio.gather(*(take(n) for n in (3, 1, 5, 2, 4, 1)))
    numbers = sorted(k for r in ranges for k in r)
    assert numbers == list(range(1, 17))
    async with sessions() as s:
        last = await s.scalar(select(Territory.last_number).where(Territory.code == "OISE"))
    assert last == 16


async def test_unknown_territory_or_theme_is_refused(engine: AsyncEngine) -> None:
    campaign = await _load(engine)
    pid = await _participant(engine, "a" * 64)
    for effect in (_submit(1, territory="ATLANTIS"),):
        with pytest.raises(LookupError):
            async with session_factory(engine)() as s, s.begin():
                await _store(s, campaign, pid, effect, NOW)
    async with session_factory(engine)() as s:
        assert await s.scalar(select(func.count(Contribution.id))) == 0
        assert await s.scalar(select(func.sum(Territory.last_number))) == 0


async def test_stale_version_is_refused(engine: AsyncEngine) -> None:
    await _load(engine)
    pid = await _participant(engine, "b" * 64)
    sessions = session_factory(engine)
    conv = Conversation(state="need", version=3)
    async with sessions() as s, s.begin():
        await repository.insert_conversation(s, pid, None, conv, NOW)
    newer = Conversation(state="solution", version=4)
    with pytest.raises(repository.StaleConversation):
        async with sessions() as s, s.begin():
            await repository.update_conversation(s, pid, None, newer, 2, NOW)
    async with sessions() as s, s.begin():
        await repository.update_conversation(s, pid, None, newer, 3, NOW)
    with pytest.raises(repository.StaleConversation):
        async with sessions() as s, s.begin():
            await repository.update_conversation(s, pid, None, newer, 3, NOW)
    async with sessions() as s:
        stored = await repository.load_conversation(s, pid)
    assert stored is not None and stored.conversation.state == "solution"
    assert stored.conversation.version == 4 and stored.updated_at == NOW


async def test_delete_participant_erases_everything(engine: AsyncEngine) -> None:
    campaign = await _load(engine)
    keep = await _participant(engine, "c" * 64)
    gone = await _participant(engine, "d" * 64)
    sessions = session_factory(engine)
    for pid in (keep, gone):
        async with sessions() as s, s.begin():
            await repository.insert_conversation(s, pid, campaign.id, Conversation(), NOW)
            await _store(s, campaign, pid, _submit(1), NOW)
            s.add(ChatIdentity(participant_id=pid, channel="telegram", secret=b"x"))
            s.add(Outbox(participant_id=pid, dedupe_key=f"k{pid}", kind="reminder"))
    async with sessions() as s, s.begin():
        await repository.delete_participant(s, gone)
    async with sessions() as s:
        for model in (ConversationRow, Contribution, ChatIdentity, Outbox):
            owners = set(await s.scalars(select(model.participant_id)))
            assert owners == {keep}, model.__tablename__
        assert set(await s.scalars(select(Participant.id))) == {keep}


async def test_list_contributions_summary(engine: AsyncEngine) -> None:
    campaign = await _load(engine)
    pid = await _participant(engine, "e" * 64)
    long_need = "Un besoin très long " * 20
    async with session_factory(engine)() as s, s.begin():
        effect = _submit(1)
        await _store(
            s, campaign, pid, SubmitContribution(**{**effect.__dict__, "need": long_need}), NOW
        )
        custom = SubmitContribution(**{**effect.__dict__, "draft_id": 2, "theme": "5",
                                       "custom_theme": "Transports sanitaires"})  # fmt: skip
        await _store(s, campaign, pid, custom, NOW + timedelta(minutes=1))
    async with session_factory(engine)() as s:
        fr = await repository.list_contributions(s, pid, "fr")
        en = await repository.list_contributions(s, pid, "en")
    assert [c.reference for c in fr] == ["TST-OISE-000002", "TST-OISE-000001"]  # newest first
    assert fr[1].theme == "Garantir la continuité des soins"
    assert en[1].theme == "Ensure continuity of care"
    assert fr[0].theme == en[0].theme == "Transports sanitaires"
    assert fr[1].territory == "Oise" and fr[1].status == "pending"
    assert len(fr[1].need_excerpt) <= repository.EXCERPT_CHARS
    assert fr[1].need_excerpt.endswith("…") and fr[1].created_at == NOW


async def test_purge_expired_drafts(engine: AsyncEngine) -> None:
    await _load(engine)
    sessions = session_factory(engine)
    ttl = timedelta(days=7)
    old_draft = await _participant(engine, "f" * 64)
    old_empty = await _participant(engine, "0" * 64)
    fresh = await _participant(engine, "1" * 64)
    answers = {"territory": "OISE", "need": "Mon besoin personnel et détaillé"}
    async with sessions() as s, s.begin():
        await repository.insert_conversation(
            s, old_draft, None, Conversation(state="solution", answers=answers, version=5),
            NOW - ttl - timedelta(seconds=1),
        )  # fmt: skip
        await repository.insert_conversation(
            s, old_empty, None, Conversation(state="territory", version=2), NOW - ttl * 3
        )
        await repository.insert_conversation(
            s, fresh, None, Conversation(state="solution", answers=answers, version=5),
            NOW - ttl + timedelta(seconds=1),
        )  # fmt: skip
    async with sessions() as s, s.begin():
        assert await purge_expired_drafts(s, NOW, ttl) == 1
    async with sessions() as s, s.begin():
        assert await purge_expired_drafts(s, NOW, ttl) == 0  # nothing left to erase
    async with sessions() as s:
        purged = await repository.load_conversation(s, old_draft)
        kept = await repository.load_conversation(s, fresh)
        raw = await s.scalar(
            select(ConversationRow.data).where(ConversationRow.participant_id == old_draft)
        )
    assert purged is not None and purged.conversation.answers == {"territory": "OISE"}
    assert purged.conversation.version == 6 and purged.conversation.state == "solution"
    assert "Mon besoin" not in str(raw)
    assert kept is not None and kept.conversation.answers == answers
