"""Test data for the exporter: the real Hauts-de-France campaign file and contributions
inserted with the real models (no participant data is ever read back by the exporter)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.campaign_file import builtin_campaign_path, read_campaign_file
from storage.campaigns_db import load_campaign
from storage.db import session_factory
from storage.models import Contribution, Participant, Territory, Theme

CAMPAIGN = "HDF-2022"
BASE = datetime(2022, 11, 14, 9, 30, tzinfo=UTC)
PARTICIPANT_KEY = "f" * 64


@dataclass
class C:
    """One contribution to insert (defaults: approved, theme 1, OISE)."""

    need: str
    solution: str = "Ouvrir un centre de santé avec des médecins salariés."
    levers: str | None = None
    territory: str = "OISE"
    theme: str = "1"
    custom_theme: str | None = None
    status: str = "approved"
    profile: str | None = None
    language: str = "fr"
    channel: str = "telegram"
    day: int = 0
    number: int | None = None
    originals: dict[str, Any] | None = None
    #: Another citizen than the shared one: any distinct word ("a", "b"...).
    participant: str | None = None


async def seed(engine: AsyncEngine, contributions: list[C]) -> list[str]:
    """Load the campaign and insert ``contributions``; returns their references."""
    factory = session_factory(engine)
    refs: list[str] = []
    async with factory() as session, session.begin():
        result = await load_campaign(
            session, read_campaign_file(builtin_campaign_path("hauts-de-france-2022.toml"))
        )
        campaign_id = result.campaign_id
        participant = await session.scalar(
            select(Participant).where(Participant.key == PARTICIPANT_KEY)
        )
        if participant is None:
            participant = Participant(key=PARTICIPANT_KEY, channel="telegram", lang="fr")
            session.add(participant)
            await session.flush()
        territories = {
            t.code: t
            for t in await session.scalars(
                select(Territory).where(Territory.campaign_id == campaign_id)
            )
        }
        themes = {
            t.code: t
            for t in await session.scalars(select(Theme).where(Theme.campaign_id == campaign_id))
        }
        others: dict[str, Participant] = {}
        for idx, c in enumerate(contributions):
            author = participant
            if c.participant is not None:
                if c.participant not in others:
                    key = (c.participant * 64)[:64]
                    found = await session.scalar(select(Participant).where(Participant.key == key))
                    others[c.participant] = found or Participant(
                        key=key, channel="telegram", lang="fr"
                    )
                    session.add(others[c.participant])
                    await session.flush()
                author = others[c.participant]
            territory = territories[c.territory]
            territory.last_number += 1
            number = c.number or territory.last_number
            ref = f"HDF-{c.territory}-{number:06d}"
            refs.append(ref)
            session.add(
                Contribution(
                    reference=ref,
                    campaign_id=campaign_id,
                    territory_id=territory.id,
                    theme_id=themes[c.theme].id,
                    custom_theme=c.custom_theme,
                    need=c.need,
                    solution=c.solution,
                    levers=c.levers,
                    profile=c.profile,
                    language=c.language,
                    channel=c.channel,
                    consent_version="2022-11-v1",
                    status=c.status,
                    participant_id=author.id,
                    draft_id=list(territories).index(c.territory) * 1_000_000 + number,
                    created_at=BASE + timedelta(days=c.day, minutes=idx),
                    originals=c.originals,
                )
            )
    return refs
