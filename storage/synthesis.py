"""What the synthesis helps compute needs from the tables (read only): the contributions with
the time their author first came, for the detection of coordinated campaigns
(``exporter.coordination``). The participant is an opaque number, never a key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Contribution, Participant, Territory

#: Statuses a moderator still has to decide on, or has published.
LIVE_STATUSES = ("pending", "approved")


@dataclass(frozen=True, slots=True)
class PostingRow:
    reference: str
    need: str
    solution: str
    participant: int
    participant_since: datetime
    created_at: datetime
    territory: str
    status: str


async def postings(
    db: AsyncConnection,
    campaign_id: int,
    *,
    territory_ids: Sequence[int] | None = None,
    since: datetime | None = None,
    statuses: Sequence[str] = LIVE_STATUSES,
) -> list[PostingRow]:
    """Contributions of a campaign (optionally some territories, sent since a time)."""
    query = (
        select(
            Contribution.reference,
            Contribution.need,
            Contribution.solution,
            Contribution.participant_id,
            Participant.created_at,
            Contribution.created_at,
            Territory.code,
            Contribution.status,
        )
        .join(Participant, Participant.id == Contribution.participant_id)
        .join(Territory, Territory.id == Contribution.territory_id)
        .where(Contribution.campaign_id == campaign_id, Contribution.status.in_(statuses))
        .order_by(Contribution.reference)
    )
    if territory_ids is not None:
        query = query.where(Contribution.territory_id.in_(territory_ids))
    if since is not None:
        query = query.where(Contribution.created_at >= since)
    return [PostingRow(*row) for row in await db.execute(query)]
