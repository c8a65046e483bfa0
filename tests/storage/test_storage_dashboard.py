"""What the dashboard reads (``storage.dashboard``), within a staff member's territories: the
campaigns they see, the counts per cell and per hour (from the tallies), the oldest
contribution waiting, the decisions since a time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import dashboard as store
from storage.db import session_factory
from storage.models import Contribution
from tests.moderation_helpers import T0, seed_world


async def test_the_dashboard_counts_within_the_territories(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    world = await seed_world(sessions, per_territory=2)  # OISE 1-2, SOMME 3-4, AISNE 5-6
    oise, somme = world.territories["OISE"], world.territories["SOMME"]
    decided_at = T0 + timedelta(days=3)
    async with sessions() as s:
        first = await s.scalar(
            select(Contribution).where(Contribution.reference == "HDF-OISE-000001")
        )
        assert first is not None
        first.status, first.moderated_at = "approved", decided_at
        await s.commit()
    async with sessions() as s:
        for territories in (None, frozenset({oise}), frozenset({somme}), frozenset()):
            campaigns = await store.campaigns(s, territories)
            assert [c.id for c in campaigns] == (
                [] if territories == frozenset() else [world.campaign_id]
            )
        since = decided_at - timedelta(days=1)
        oise_only = await store.figures(s, world.campaign_id, frozenset({oise}), since)
        assert sorted(oise_only.cells) == sorted(
            [(oise, world.themes["1"], "approved", 1), (oise, world.themes["2"], "pending", 1)]
        )
        assert sum(n for _, n in oise_only.per_hour) == 2
        assert oise_only.oldest_pending is not None
        assert oise_only.oldest_pending.reference == "HDF-OISE-000002"
        assert oise_only.oldest_pending.territory.code == "OISE"  # loaded with it
        assert oise_only.decided == 1
        everywhere = await store.figures(s, world.campaign_id, None, since)
        assert sum(n for *_, n in everywhere.cells) == 6
        assert sum(n for _, n in everywhere.per_hour) == 6
        assert everywhere.oldest_pending is not None
        assert everywhere.oldest_pending.reference == "HDF-OISE-000002"
        assert everywhere.decided == 1
        somme_only = await store.figures(s, world.campaign_id, frozenset({somme}), since)
        assert somme_only.oldest_pending is not None
        assert somme_only.oldest_pending.reference == "HDF-SOMME-000001"
        assert somme_only.decided == 0
        nothing = await store.figures(s, world.campaign_id, frozenset(), since)
        assert (nothing.cells, nothing.per_hour, nothing.oldest_pending) == ([], [], None)
        later = decided_at + timedelta(seconds=1)
        assert (await store.figures(s, world.campaign_id, None, later)).decided == 0
