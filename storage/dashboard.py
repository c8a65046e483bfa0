"""What the console's dashboard reads of a campaign, within a staff member's territories
(:data:`storage.moderation.Territories`): the campaigns they see, the counts per territory,
theme, status and hour (from the tallies, ``storage.tallies``), the oldest contribution
waiting, the decisions of the last days."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Campaign, Contribution, ContributionTally, Territory
from storage.moderation import Territories, within
from storage.tallies import cell_counts, received_per_hour


async def campaigns(session: AsyncSession, territories: Territories) -> list[Campaign]:
    """The campaigns with a territory among ``territories``, the latest opened first."""
    ids = select(Territory.campaign_id).where(within(Territory.id, territories))
    return list(
        await session.scalars(
            select(Campaign).where(Campaign.id.in_(ids)).order_by(Campaign.opens_on.desc())
        )
    )


@dataclass(frozen=True)
class Figures:
    """A campaign's figures within some territories."""

    #: (territory, theme, status, count) of its contributions.
    cells: Sequence[tuple[int, int, str, int]]
    #: (hour, contributions received), UTC.
    per_hour: Sequence[tuple[datetime, int]]
    #: The contribution waiting the longest (with its territory).
    oldest_pending: Contribution | None
    #: How many were decided since the time asked (and not sent back to waiting).
    decided: int


async def figures(
    session: AsyncSession, campaign_id: int, territories: Territories, decided_since: datetime
) -> Figures:
    """The campaign's counts (from the tallies, not from every row), its oldest contribution
    waiting, and the decisions since ``decided_since``, within ``territories``."""
    tallied = within(ContributionTally.territory_id, territories)
    cells = await cell_counts(session, campaign_id, tallied)
    per_hour = await received_per_hour(session, campaign_id, tallied)
    base = [within(Contribution.territory_id, territories), Contribution.campaign_id == campaign_id]
    oldest = await session.scalar(
        select(Contribution)
        .where(*base, Contribution.status == "pending")
        .options(selectinload(Contribution.territory))
        .order_by(Contribution.created_at, Contribution.id)
        .limit(1)
    )
    decided = await session.scalar(
        select(func.count(Contribution.id)).where(
            *base, Contribution.status != "pending", Contribution.moderated_at >= decided_since
        )
    )
    return Figures(cells, per_hour, oldest, decided or 0)
