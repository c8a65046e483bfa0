"""What the console's dashboard reads of a campaign, within a staff member's territories
(:data:`storage.moderation.Territories`): the campaigns they see, the counts per territory,
theme, status and hour (from the tallies, ``storage.tallies``), the oldest contribution
waiting, the decisions of the last days."""

from __future__ import annotations

from collections.abc import Sequence
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


async def cells(
    session: AsyncSession, campaign_id: int, territories: Territories
) -> Sequence[tuple[int, int, str, int]]:
    """(territory, theme, status, count) of the campaign's contributions."""
    return await cell_counts(
        session, campaign_id, within(ContributionTally.territory_id, territories)
    )


async def per_hour(
    session: AsyncSession, campaign_id: int, territories: Territories
) -> Sequence[tuple[datetime, int]]:
    """(hour, contributions received) of the campaign, UTC."""
    return await received_per_hour(
        session, campaign_id, within(ContributionTally.territory_id, territories)
    )


async def oldest_pending(
    session: AsyncSession, campaign_id: int, territories: Territories
) -> Contribution | None:
    """The contribution waiting the longest (with its territory)."""
    return await session.scalar(
        select(Contribution)
        .where(
            within(Contribution.territory_id, territories),
            Contribution.campaign_id == campaign_id,
            Contribution.status == "pending",
        )
        .options(selectinload(Contribution.territory))
        .order_by(Contribution.created_at, Contribution.id)
        .limit(1)
    )


async def decided_since(
    session: AsyncSession, campaign_id: int, territories: Territories, since: datetime
) -> int:
    """How many contributions were decided since ``since`` (and not sent back to waiting)."""
    return (
        await session.scalar(
            select(func.count(Contribution.id)).where(
                within(Contribution.territory_id, territories),
                Contribution.campaign_id == campaign_id,
                Contribution.status != "pending",
                Contribution.moderated_at >= since,
            )
        )
        or 0
    )
