"""The synthesis pages: the topics of each theme of a territory (« Sujets »), with links to the
queue filtered on a topic, and the coordinated campaigns in the staff member's scope
(« Campagnes coordonnées »), each decided at once through the bulk action."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from aiohttp import web

from exporter.topics import Topic
from moderation.services import synthesis
from moderation.services.actions import REJECT_REASONS
from moderation.services.dashboard import scoped_campaigns
from moderation.services.queue import STATUSES, QueueFilters, campaign_choices
from moderation.services.synthesis import TopicsCache
from moderation.web import db_of, render, scope_of

if TYPE_CHECKING:
    from storage.models import Territory

TOPICS_KEY = web.AppKey("topics_cache", TopicsCache)


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 12 else None


async def with_topic(
    request: web.Request, filters: QueueFilters
) -> tuple[QueueFilters, Topic | None]:
    """The queue's filters limited to the references of their topic (``filters.topic``), and
    that topic; a topic needs a territory in scope and a theme, else it is dropped."""
    if not filters.topic:
        return filters, None
    db, scope = db_of(request), scope_of(request)
    territory = await synthesis.territory_in_scope(db, scope, filters.territory)
    if territory is None or filters.theme is None:
        return replace(filters, topic=""), None
    topics = await synthesis.topics_for(db, request.app[TOPICS_KEY], territory, filters.theme)
    topic = next((t for t in topics.topics if t.id == filters.topic), None)
    refs = topic.contributions if topic is not None else ()
    return replace(filters, topic_refs=refs), topic


async def topics_page(request: web.Request) -> web.Response:
    db, scope = db_of(request), scope_of(request)
    territories, all_themes, _ = await campaign_choices(db, scope)
    wanted = _int(request.query.get("territory"))
    territory: Territory | None = next(
        (t for t in territories if t.id == wanted), territories[0] if territories else None
    )
    themes = [t for t in all_themes if territory and t.campaign_id == territory.campaign_id]
    theme_id = _int(request.query.get("theme"))
    if theme_id not in {t.id for t in themes}:
        theme_id = None
    sections: list[synthesis.ThemeTopics] = []
    if territory is not None:
        sections = await synthesis.territory_topics(
            db, request.app[TOPICS_KEY], territory, theme_id
        )
    return render(
        request,
        "topics.html",
        {
            "territories": territories,
            "territory": territory,
            "themes": themes,
            "theme_id": theme_id,
            "sections": sections,
        },
    )


async def campaigns_page(request: web.Request) -> web.Response:
    db, scope = db_of(request), scope_of(request)
    campaigns = await scoped_campaigns(db, scope)
    wanted = _int(request.query.get("campaign"))
    campaign = next((c for c in campaigns if c.id == wanted), campaigns[0] if campaigns else None)
    found = await synthesis.coordinated(db, scope, campaign.id) if campaign is not None else []
    return render(
        request,
        "campaigns.html",
        {
            "campaigns": campaigns,
            "campaign": campaign,
            "found": found,
            "reasons": REJECT_REASONS,
            "statuses": STATUSES,
        },
    )


def setup(app: web.Application) -> None:
    app[TOPICS_KEY] = TopicsCache()
    app.router.add_get("/sujets", topics_page)
    app.router.add_get("/campagnes", campaigns_page)
