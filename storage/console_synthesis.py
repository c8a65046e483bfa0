"""What the console's synthesis pages read (read only): the texts of one theme of one
territory for its topics (``exporter.topics``), and the versions of contributions a moderator
decides on at once (a coordinated campaign, ``exporter.coordination``). The participant is an
opaque number, only compared (distinct citizens)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Contribution, Territory
from storage.synthesis import LIVE_STATUSES


@dataclass(frozen=True, slots=True)
class ThemeText:
    reference: str
    participant: int
    need: str
    solution: str


async def theme_texts(
    session: AsyncSession,
    campaign_id: int,
    territory_id: int,
    theme_id: int,
    *,
    statuses: Sequence[str] = LIVE_STATUSES,
) -> list[ThemeText]:
    """The live contributions (to decide on, or published) of one theme of one territory."""
    rows = await session.execute(
        select(
            Contribution.reference,
            Contribution.participant_id,
            Contribution.need,
            Contribution.solution,
        )
        .where(
            Contribution.campaign_id == campaign_id,
            Contribution.territory_id == territory_id,
            Contribution.theme_id == theme_id,
            Contribution.status.in_(statuses),
        )
        .order_by(Contribution.reference)
    )
    return [ThemeText(*row) for row in rows]


async def versions(session: AsyncSession, references: Sequence[str]) -> dict[str, tuple[int, str]]:
    """reference -> (version, status) of these contributions (what a bulk decision checks)."""
    if not references:
        return {}
    rows = await session.execute(
        select(Contribution.reference, Contribution.version, Contribution.status).where(
            Contribution.reference.in_(sorted(set(references)))
        )
    )
    return {ref: (version, status) for ref, version, status in rows}


async def territory_names(session: AsyncSession, campaign_id: int) -> dict[str, str]:
    """A campaign's territories: code -> name."""
    rows = await session.execute(
        select(Territory.code, Territory.name).where(Territory.campaign_id == campaign_id)
    )
    return {str(code): str(name) for code, name in rows}
