"""The queue: contributions in scope, filtered, paged, one at a time with its neighbours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, event, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from dialogs.validation import clean_text  # the same cleaning as the citizens' texts
from exporter.report import CHANNELS as CHANNELS  # the annex's labels: one wording everywhere
from exporter.source import day_bounds
from moderation.services.filters import DEFAULT_ZONE, like_pattern, parse_date, parse_int
from moderation.services.scope import Scope
from storage import vocabulary
from storage.models import Campaign, Contribution, Staff, Territory, Theme

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
_CASEFOLD_FN = "cnr_casefold"
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
#: A topic's id within a theme of a territory (``exporter.topics``).
_TOPIC = re.compile(r"T[0-9]{1,5}")


def install_sqlite_casefold(engine: AsyncEngine) -> bool:
    """Give SQLite a Unicode-aware case folding for searches (its lower() is ASCII-only).

    Returns True when the pool must be recycled for connections opened before.
    """
    if engine.dialect.name != "sqlite":
        return False
    sync = engine.sync_engine
    if event.contains(sync, "connect", _sqlite_connect):
        return False
    event.listen(sync, "connect", _sqlite_connect)
    return True


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.create_function(_CASEFOLD_FN, 1, _casefold, deterministic=True)


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
        )

    def query(self, *, page: int | None = None) -> dict[str, str]:
        """The filters as query parameters (to rebuild links and redirects safely)."""
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
        if p != 1:
            out["page"] = str(p)
        return out

    def where(self, scope: Scope, dialect: str) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [scope.clause()]
        if self.territory is not None:
            conds.append(Contribution.territory_id == self.territory)
        if self.theme is not None:
            conds.append(Contribution.theme_id == self.theme)
        if self.status:
            conds.append(Contribution.status == self.status)
        if self.language:
            conds.append(Contribution.language == self.language)
        if self.channel:
            conds.append(Contribution.channel == self.channel)
        if self.topic_refs is not None:
            conds.append(Contribution.reference.in_(self.topic_refs))
        start, end = day_bounds(self.since, self.until, self.zone)
        if start is not None:
            conds.append(Contribution.created_at >= start)
        if end is not None:
            conds.append(Contribution.created_at < end)
        if self.q:
            fold = getattr(func, _CASEFOLD_FN) if dialect == "sqlite" else func.lower
            pattern = like_pattern(self.q.casefold() if dialect == "sqlite" else self.q.lower())
            conds.append(
                or_(
                    *(
                        fold(func.coalesce(col, "")).like(pattern, escape="\\")
                        for col in (
                            Contribution.reference,
                            Contribution.need,
                            Contribution.solution,
                            Contribution.levers,
                            Contribution.custom_theme,
                        )
                    )
                )
            )
        return conds


@dataclass
class QueuePage:
    items: list[Contribution]
    total: int
    page: int
    pages: int


def _dialect(session: AsyncSession) -> str:
    bind = session.get_bind()
    return bind.dialect.name


def _queue_select(scope: Scope, filters: QueueFilters, dialect: str) -> Select[Contribution]:
    return select(Contribution).where(*filters.where(scope, dialect))


async def queue_page(
    session: AsyncSession, scope: Scope, filters: QueueFilters, page_size: int
) -> QueuePage:
    dialect = _dialect(session)
    total = (
        await session.scalar(
            select(func.count(Contribution.id)).where(*filters.where(scope, dialect))
        )
        or 0
    )
    pages = max(1, -(-total // page_size))
    page = min(filters.page, pages)
    rows = await session.scalars(
        _queue_select(scope, filters, dialect)
        .options(selectinload(Contribution.territory), selectinload(Contribution.theme))
        .order_by(Contribution.created_at, Contribution.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return QueuePage(list(rows), total, page, pages)


async def neighbours(
    session: AsyncSession, scope: Scope, filters: QueueFilters, c: Contribution
) -> tuple[str | None, str | None]:
    """References of the previous and next items of the queue around ``c`` (same filters)."""
    dialect = _dialect(session)
    conds = filters.where(scope, dialect)
    after = or_(
        Contribution.created_at > c.created_at,
        and_(Contribution.created_at == c.created_at, Contribution.id > c.id),
    )
    before = or_(
        Contribution.created_at < c.created_at,
        and_(Contribution.created_at == c.created_at, Contribution.id < c.id),
    )
    nxt = await session.scalar(
        select(Contribution.reference)
        .where(*conds, after)
        .order_by(Contribution.created_at, Contribution.id)
        .limit(1)
    )
    prev = await session.scalar(
        select(Contribution.reference)
        .where(*conds, before)
        .order_by(Contribution.created_at.desc(), Contribution.id.desc())
        .limit(1)
    )
    return prev, nxt


async def get_contribution(session: AsyncSession, scope: Scope, ref: str) -> Contribution | None:
    """The contribution ``ref`` if it exists and is in scope (else None: a 404 either way)."""
    if not _REFERENCE.fullmatch(ref):
        return None
    return await session.scalar(
        select(Contribution)
        .where(Contribution.reference == ref, scope.clause())
        .options(selectinload(Contribution.territory), selectinload(Contribution.theme))
        .execution_options(populate_existing=True)
    )


async def staff_email(session: AsyncSession, staff_id: int | None) -> str | None:
    """The email of the staff member ``staff_id`` (who moderated a contribution), if any."""
    if staff_id is None:
        return None
    return await session.scalar(select(Staff.email).where(Staff.id == staff_id))


async def profile_labels(session: AsyncSession, campaign_id: int) -> dict[str, str]:
    """The campaign's participant profiles: code -> French label."""
    campaign = await session.get_one(Campaign, campaign_id)
    return {
        str(p.get("code")): str(p.get("label_fr") or p.get("code"))
        for p in (campaign.spec or {}).get("profiles") or []
        if isinstance(p, dict)
    }


async def campaign_choices(
    session: AsyncSession, scope: Scope
) -> tuple[list[Territory], list[Theme], list[str]]:
    """Territories in scope, themes of those campaigns, and languages seen (for filters)."""
    territories = list(
        await session.scalars(
            select(Territory)
            .where(scope.territory_clause())
            .order_by(Territory.campaign_id, Territory.position, Territory.id)
        )
    )
    campaign_ids = sorted({t.campaign_id for t in territories})
    themes = list(
        await session.scalars(
            select(Theme)
            .where(Theme.campaign_id.in_(campaign_ids))
            .order_by(Theme.campaign_id, Theme.position, Theme.id)
        )
    )
    languages = sorted(
        lang
        for lang in await session.scalars(
            select(Contribution.language).where(scope.clause()).distinct()
        )
        if lang
    )
    return territories, themes, languages


async def territories_and_themes(
    session: AsyncSession, scope: Scope, campaign_id: int
) -> tuple[list[Territory], list[Theme]]:
    """A campaign's territories within the staff member's scope, and its themes, in order."""
    territories = await session.scalars(
        select(Territory)
        .where(Territory.campaign_id == campaign_id, scope.territory_clause())
        .order_by(Territory.position, Territory.id)
    )
    themes = await session.scalars(
        select(Theme).where(Theme.campaign_id == campaign_id).order_by(Theme.position, Theme.id)
    )
    return list(territories), list(themes)
