"""The queue: contributions in scope, filtered, paged, one at a time with its neighbours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.validation import clean_text  # the same cleaning as the citizens' texts
from exporter.report import CHANNELS as CHANNELS  # the annex's labels: one wording everywhere
from exporter.source import day_bounds
from moderation.services.filters import DEFAULT_ZONE, parse_date, parse_int
from moderation.services.scope import Scope
from storage import moderation as store
from storage import staff as staff_store
from storage import vocabulary
from storage.moderation import Cursor as Cursor
from storage.moderation import QueuePage as QueuePage
from storage.moderation import QueueSelection

if TYPE_CHECKING:
    from storage.models import Contribution, Territory, Theme

_STATUS_LABELS = {
    "pending": "en attente",
    "approved": "approuvée",
    "rejected": "rejetée",
    "duplicate": "doublon",
    "withdrawn": "retirée par son auteur",
}
#: Every status (``storage.vocabulary``) as staff read it.
STATUSES = {code: _STATUS_LABELS[code] for code in vocabulary.STATUSES}
TEXT_FIELDS = ("need", "solution", "levers", "custom_theme")
TEXT_LABELS = {
    "need": "Constat",
    "solution": "Solution",
    "levers": "Propositions (leviers)",
    "custom_theme": "Thématique libre",
}
SEARCH_MAX_CHARS = 200
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
#: A topic's id within a theme of a territory (``exporter.topics``).
_TOPIC = re.compile(r"T[0-9]{1,5}")


@dataclass(frozen=True)
class QueueFilters:
    territory: int | None = None
    theme: int | None = None
    #: "" means every status.
    status: str = "pending"
    language: str = ""
    since: date | None = None
    until: date | None = None
    q: str = ""
    page: int = 1
    #: "" means every channel; otherwise a key of ``CHANNELS``.
    channel: str = ""
    #: A channel asked for in the query string that is not one (ignored, shown to staff).
    unknown_channel: str = ""
    #: The zone of the days (not a parameter of the page: the console's setting).
    zone: str = DEFAULT_ZONE
    #: A topic of the theme of the territory ("T1"); its references are found by the route
    #: (``moderation.services.synthesis``) and set in ``topic_refs``.
    topic: str = ""
    topic_refs: tuple[str, ...] | None = None
    #: Keyset pagination (the page links): the page starts at this place of the queue, or
    #: ends just before it. ``page`` is then the page's number as shown.
    start: Cursor | None = None
    before: Cursor | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], *, zone: str = DEFAULT_ZONE) -> QueueFilters:
        status = params.get("status", "pending")
        if status not in STATUSES and status != "":
            status = "pending"
        language = clean_text(params.get("language", ""))[:8]
        q = clean_text(params.get("q", ""))[:SEARCH_MAX_CHARS]
        page = parse_int(params.get("page")) or 1
        channel = params.get("channel", "")
        unknown_channel = ""
        if channel not in CHANNELS:
            unknown_channel = clean_text(channel)[:40]
            channel = ""
        return cls(
            territory=parse_int(params.get("territory")),
            theme=parse_int(params.get("theme")),
            status=status,
            language=language,
            since=parse_date(params.get("since")),
            until=parse_date(params.get("until")),
            q=q,
            page=max(1, min(page, 1_000_000)),
            channel=channel,
            unknown_channel=unknown_channel,
            zone=zone,
            topic=topic if _TOPIC.fullmatch(topic := params.get("topic", "")) else "",
            start=Cursor.parse(params.get("start")),
            before=Cursor.parse(params.get("before")),
        )

    def query(
        self,
        *,
        page: int | None = None,
        start: Cursor | None = None,
        before: Cursor | None = None,
    ) -> dict[str, str]:
        """The filters as query parameters (to rebuild links and redirects safely): this page
        (with its cursor), or ``page`` (with the cursor given, if any)."""
        out: dict[str, str] = {"status": self.status}
        if self.territory is not None:
            out["territory"] = str(self.territory)
        if self.theme is not None:
            out["theme"] = str(self.theme)
        if self.language:
            out["language"] = self.language
        if self.channel:
            out["channel"] = self.channel
        if self.since:
            out["since"] = self.since.isoformat()
        if self.until:
            out["until"] = self.until.isoformat()
        if self.q:
            out["q"] = self.q
        if self.topic:
            out["topic"] = self.topic
        p = self.page if page is None else page
        if page is None:
            start, before = self.start, self.before
        if p != 1:
            out["page"] = str(p)
        if start is not None:
            out["start"] = start.token()
        elif before is not None:
            out["before"] = before.token()
        return out

    def selection(self, scope: Scope) -> QueueSelection:
        """The contributions these filters select within ``scope`` (days as UTC bounds)."""
        start, end = day_bounds(self.since, self.until, self.zone)
        return QueueSelection(
            territories=scope.territories,
            territory=self.territory,
            theme=self.theme,
            status=self.status,
            language=self.language,
            channel=self.channel,
            references=self.topic_refs,
            start=start,
            end=end,
            q=self.q,
        )


async def queue_page(
    session: AsyncSession, scope: Scope, filters: QueueFilters, page_size: int
) -> QueuePage:
    """A page of the queue, oldest first (:func:`storage.moderation.queue_page`: keyset pages;
    a page asked by its number is found from the nearer end)."""
    return await store.queue_page(
        session,
        filters.selection(scope),
        page_size,
        page=filters.page,
        start=filters.start,
        before=filters.before,
    )


async def neighbours(
    session: AsyncSession, scope: Scope, filters: QueueFilters, c: Contribution
) -> tuple[str | None, str | None]:
    """References of the previous and next items of the queue around ``c`` (same filters)."""
    return await store.neighbours(session, filters.selection(scope), c)


async def get_contribution(session: AsyncSession, scope: Scope, ref: str) -> Contribution | None:
    """The contribution ``ref`` if it exists and is in scope (else None: a 404 either way)."""
    if not _REFERENCE.fullmatch(ref):
        return None
    return await store.contribution(session, scope.territories, ref)


async def staff_email(session: AsyncSession, staff_id: int | None) -> str | None:
    """The email of the staff member ``staff_id`` (who moderated a contribution), if any."""
    if staff_id is None:
        return None
    return await staff_store.staff_email(session, staff_id)


async def profile_labels(session: AsyncSession, campaign_id: int) -> dict[str, str]:
    """The campaign's participant profiles: code -> French label."""
    campaign = await store.campaign(session, campaign_id)
    spec = (campaign.spec if campaign is not None else None) or {}
    return {
        str(p.get("code")): str(p.get("label_fr") or p.get("code"))
        for p in spec.get("profiles") or []
        if isinstance(p, dict)
    }


async def campaign_choices(
    session: AsyncSession, scope: Scope
) -> tuple[list[Territory], list[Theme], list[str]]:
    """Territories in scope, themes of those campaigns, and languages seen (for filters)."""
    territories = await store.territories_in(session, scope.territories)
    campaign_ids = sorted({t.campaign_id for t in territories})
    themes = await store.themes_of(session, campaign_ids)
    return territories, themes, await languages_seen(session, scope)


async def languages_seen(session: AsyncSession, scope: Scope) -> list[str]:
    """The languages of the contributions in scope, sorted."""
    return await store.languages_seen(session, scope.territories)


async def territories_and_themes(
    session: AsyncSession, scope: Scope, campaign_id: int
) -> tuple[list[Territory], list[Theme]]:
    """A campaign's territories within the staff member's scope, and its themes, in order."""
    territories = await store.territories_in(session, scope.territories, campaign_id)
    return territories, await store.campaign_themes(session, campaign_id)
