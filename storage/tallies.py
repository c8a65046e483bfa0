"""The dashboard's counts (``contribution_tallies``), kept by triggers as deltas (migration
0007): reading sums the deltas of a campaign; :func:`fold_tallies` (run by the maintenance)
replaces them by one row per group, so a dashboard reads a few hundred rows, not every
contribution.

Folding is safe while contributions change: on PostgreSQL one statement deletes the rows its
snapshot sees and inserts their sums (a delta appended meanwhile is neither deleted nor
summed; a concurrent fold skips the rows this one deleted); on SQLite the single writer runs
the two statements alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ContributionTally

_GROUP = (
    ContributionTally.campaign_id,
    ContributionTally.territory_id,
    ContributionTally.theme_id,
    ContributionTally.status,
    ContributionTally.hour,
)
_COLUMNS = "campaign_id, territory_id, theme_id, status, hour"


async def fold_tallies(session: AsyncSession) -> int:
    """Fold the deltas into one row per group (none for a group that sums to zero); returns
    how many rows were folded away. Call inside a transaction."""
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(
            text(
                f"WITH gone AS (DELETE FROM contribution_tallies RETURNING {_COLUMNS}, n), "  # noqa: S608
                f"folded AS (INSERT INTO contribution_tallies ({_COLUMNS}, n) "
                f"SELECT {_COLUMNS}, sum(n) FROM gone GROUP BY {_COLUMNS} "
                "HAVING sum(n) <> 0 RETURNING 1) "
                "SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded)"
            )
        )
        return int(result.scalar_one())
    last = await session.scalar(select(func.max(ContributionTally.id)))
    if last is None:
        return 0
    before = await session.scalar(select(func.count(ContributionTally.id))) or 0
    await session.execute(
        insert(ContributionTally).from_select(
            [*(c.key for c in _GROUP), "n"],
            select(*_GROUP, func.sum(ContributionTally.n))
            .where(ContributionTally.id <= last)
            .group_by(*_GROUP)
            .having(func.sum(ContributionTally.n) != 0),
        )
    )
    await session.execute(delete(ContributionTally).where(ContributionTally.id <= last))
    after = await session.scalar(select(func.count(ContributionTally.id))) or 0
    return before - after


async def cell_counts(
    session: AsyncSession, campaign_id: int, scope: ColumnElement[bool]
) -> Sequence[tuple[int, int, str, int]]:
    """(territory, theme, status, count) of a campaign's contributions, within ``scope`` (a
    condition on ``ContributionTally.territory_id``)."""
    total = func.sum(ContributionTally.n)
    rows = await session.execute(
        select(
            ContributionTally.territory_id,
            ContributionTally.theme_id,
            ContributionTally.status,
            total,
        )
        .where(
            ContributionTally.campaign_id == campaign_id,
            ContributionTally.status.is_not(None),
            scope,
        )
        .group_by(
            ContributionTally.territory_id, ContributionTally.theme_id, ContributionTally.status
        )
        .having(total != 0)
    )
    return [(int(t), int(th or 0), str(s), int(n)) for t, th, s, n in rows]


async def received_per_hour(
    session: AsyncSession, campaign_id: int, scope: ColumnElement[bool]
) -> Sequence[tuple[datetime, int]]:
    """(UTC hour, contributions received in it) of a campaign, within ``scope``."""
    total = func.sum(ContributionTally.n)
    rows = await session.execute(
        select(ContributionTally.hour, total)
        .where(
            ContributionTally.campaign_id == campaign_id,
            ContributionTally.status.is_(None),
            ContributionTally.hour.is_not(None),
            scope,
        )
        .group_by(ContributionTally.hour)
        .having(total != 0)
    )
    return [(hour, int(n)) for hour, n in rows if hour is not None]


__all__ = ["cell_counts", "fold_tallies", "received_per_hour"]
