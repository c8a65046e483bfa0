"""The synthesis as moderators see it: the topics of a theme of a territory
(``exporter.topics``), and the coordinated campaigns in their scope
(``exporter.coordination``), computed on the fly from the live contributions (pending or
approved) through ``storage.console_synthesis`` and ``storage.synthesis``.

Both are CPU work (TF-IDF and clustering; similarity): they run in a worker thread, so the
console keeps answering. Topics are kept a short while per (campaign, territory, theme)
(:class:`TopicsCache`): the queue's topic filter and the topics page agree, and a page reloaded
does not cluster again. Topic ids ("T1"...) rank the topics by distinct citizens *now*: as
contributions arrive they may change, so a link carries the territory and theme with the id.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from exporter.coordination import Campaign as Coordinated
from exporter.coordination import Posting, find_coordinated
from exporter.topics import Contribution as TopicInput
from exporter.topics import Topics, TopicSettings, find_topics
from moderation.services.scope import Scope
from storage import console_synthesis
from storage import moderation as store

if TYPE_CHECKING:
    from storage.models import Territory, Theme

#: How long topics are kept (seconds).
TOPICS_TTL = 120.0
#: How many (campaign, territory, theme) are kept.
TOPICS_KEPT = 256
#: Labels by YAKE for the topics shown first; the rest by their frequent words (faster).
_TOPIC_SETTINGS = TopicSettings(labelled_topics=30)


class TopicsCache:
    """Topics per (campaign, territory, theme), each kept :data:`TOPICS_TTL` seconds."""

    def __init__(
        self,
        ttl: float = TOPICS_TTL,
        kept: int = TOPICS_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.kept = kept
        self.clock = clock
        self._items: OrderedDict[tuple[int, int, int], tuple[float, Topics]] = OrderedDict()
        self.computed = 0

    def get(self, key: tuple[int, int, int]) -> Topics | None:
        item = self._items.get(key)
        if item is None or item[0] < self.clock():
            self._items.pop(key, None)
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: tuple[int, int, int], topics: Topics) -> None:
        self._items[key] = (self.clock() + self.ttl, topics)
        self._items.move_to_end(key)
        while len(self._items) > self.kept:
            self._items.popitem(last=False)


@dataclass(frozen=True)
class ThemeTopics:
    theme: Theme
    topics: Topics
    #: Contributions read (live: pending or approved).
    total: int


async def territory_in_scope(
    session: AsyncSession, scope: Scope, territory_id: int | None
) -> Territory | None:
    """The territory if the staff member may see it, else None."""
    if territory_id is None or not scope.allows_territory(territory_id):
        return None
    return await store.territory(session, territory_id)


async def topics_for(
    session: AsyncSession, cache: TopicsCache, territory: Territory, theme_id: int
) -> Topics:
    """The topics of one theme of a territory (the caller checked the scope)."""
    key = (territory.campaign_id, territory.id, theme_id)
    found = cache.get(key)
    if found is not None:
        return found
    texts = await console_synthesis.theme_texts(
        session, territory.campaign_id, territory.id, theme_id
    )
    items = [TopicInput(t.reference, str(t.participant), t.need, t.solution) for t in texts]
    topics = await asyncio.to_thread(find_topics, items, _TOPIC_SETTINGS)
    cache.put(key, topics)
    cache.computed += 1
    return topics


async def topic_references(
    session: AsyncSession, cache: TopicsCache, territory: Territory, theme_id: int, topic_id: str
) -> tuple[str, ...]:
    """The references of a topic (none when the topic is no longer there)."""
    topics = await topics_for(session, cache, territory, theme_id)
    topic = next((t for t in topics.topics if t.id == topic_id), None)
    return topic.contributions if topic is not None else ()


async def territory_topics(
    session: AsyncSession, cache: TopicsCache, territory: Territory, theme_id: int | None
) -> list[ThemeTopics]:
    """The topics of every theme of the territory's campaign (or of one)."""
    out: list[ThemeTopics] = []
    for theme in await store.campaign_themes(session, territory.campaign_id, theme_id):
        topics = await topics_for(session, cache, territory, theme.id)
        total = len(topics.unassigned) + sum(t.size for t in topics.topics)
        out.append(ThemeTopics(theme, topics, total))
    return out


@dataclass(frozen=True)
class CampaignMember:
    reference: str
    version: int
    status: str


@dataclass(frozen=True)
class CoordinatedView:
    """A coordinated campaign as the page shows it."""

    found: Coordinated
    territories: tuple[str, ...]
    members: tuple[CampaignMember, ...]

    @property
    def pending(self) -> int:
        return sum(1 for m in self.members if m.status == "pending")


async def coordinated(
    session: AsyncSession, scope: Scope, campaign_id: int
) -> list[CoordinatedView]:
    """The coordinated campaigns among the live contributions of the staff member's
    territories (an administrator: every territory), largest first."""
    rows = await store.live_postings(session, campaign_id, scope.territories)
    items = [
        Posting(
            r.reference,
            f"{r.need}\n{r.solution}",
            r.participant,
            r.participant_since,
            r.created_at,
            r.territory,
        )
        for r in rows
    ]
    found = await asyncio.to_thread(find_coordinated, items)
    refs = [ref for c in found for ref in c.references]
    current = await console_synthesis.versions(session, refs)
    names = await console_synthesis.territory_names(session, campaign_id)
    views: list[CoordinatedView] = []
    for c in found:
        members = tuple(
            CampaignMember(ref, *current[ref]) for ref in c.references if ref in current
        )
        territories = tuple(names.get(code, code) for code in c.territories)
        views.append(CoordinatedView(c, territories, members))
    return views
