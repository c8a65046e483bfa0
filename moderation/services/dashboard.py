"""The dashboard of a campaign: counts per territory, theme, status and day; the pace needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from moderation.services.filters import DEFAULT_ZONE
from moderation.services.queue import STATUSES, territories_and_themes
from moderation.services.scope import Scope
from storage import dashboard as store

if TYPE_CHECKING:
    from storage.models import Campaign, Contribution, Territory, Theme


@dataclass
class Dashboard:
    campaign: Campaign
    territories: list[Territory]
    themes: list[Theme]
    #: (territory_id, theme_id) -> status -> count
    cells: dict[tuple[int, int], dict[str, int]]
    by_status: dict[str, int]
    per_day: list[tuple[date, int]]
    per_theme: list[tuple[Theme, int]]
    empty_themes: list[Theme]
    oldest_pending: Contribution | None
    pending: int
    days_left: int
    needed_per_day: float
    decided_last_7_days: int
    campaigns: list[Campaign] = field(default_factory=list)


async def scoped_campaigns(session: AsyncSession, scope: Scope) -> list[Campaign]:
    return await store.campaigns(session, scope.territories)


async def dashboard(
    session: AsyncSession,
    scope: Scope,
    campaign_id: int | None,
    today: date | None = None,
    zone: str = DEFAULT_ZONE,
) -> Dashboard | None:
    campaigns = await scoped_campaigns(session, scope)
    if not campaigns:
        return None
    campaign = next((c for c in campaigns if c.id == campaign_id), campaigns[0])
    tz = ZoneInfo(zone)
    today = today or datetime.now(tz).date()
    territories, themes = await territories_and_themes(session, scope, campaign.id)
    cells: dict[tuple[int, int], dict[str, int]] = {}
    by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
    theme_totals: dict[int, int] = {}
    week_ago = datetime.now(UTC) - timedelta(days=7)
    figures = await store.figures(session, campaign.id, scope.territories, week_ago)
    for terr_id, theme_id, status, n in figures.cells:
        cells.setdefault((terr_id, theme_id), {})[status] = n
        by_status[status] = by_status.get(status, 0) + n
        theme_totals[theme_id] = theme_totals.get(theme_id, 0) + n
    # Counted per hour (UTC), then per local day here: every zone of the French health
    # regions is a whole number of hours from UTC.
    counted: dict[date, int] = {}
    for instant, n in figures.per_hour:
        instant = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
        local_day = instant.astimezone(tz).date()
        counted[local_day] = counted.get(local_day, 0) + n
    per_day: list[tuple[date, int]] = []
    if counted:  # every day from the first to the last (at most the last 120), gaps as zero
        first, last = min(counted), max(counted)
        first = max(first, last - timedelta(days=119))
        per_day = [
            (first + timedelta(days=i), counted.get(first + timedelta(days=i), 0))
            for i in range((last - first).days + 1)
        ]
    pending = by_status.get("pending", 0)
    days_left = (campaign.closes_on - today).days
    needed = pending / days_left if days_left > 0 else float(pending)
    return Dashboard(
        campaign=campaign,
        territories=territories,
        themes=themes,
        cells=cells,
        by_status=by_status,
        per_day=per_day,
        per_theme=[(t, theme_totals.get(t.id, 0)) for t in themes],
        empty_themes=[t for t in themes if not theme_totals.get(t.id)],
        oldest_pending=figures.oldest_pending,
        pending=pending,
        days_left=days_left,
        needed_per_day=needed,
        decided_last_7_days=figures.decided,
        campaigns=campaigns,
    )
