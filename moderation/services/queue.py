"""The queue: contributions in scope, filtered, paged, one at a time with its neighbours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, event, func, or_, select, tuple_
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
_CURSOR = re.compile(r"(\d{1,17})-(\d{1,12})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The columns searched, in the order of the queue's search.
_SEARCHED = (
    Contribution.reference,
    Contribution.need,
    Contribution.solution,
    Contribution.levers,
    Contribution.custom_theme,
)


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
class Cursor:
    """A place in the queue's order (received at, id): a page starts at or ends before it.

    Written in links as ``<microseconds since 1970>-<id>``; anything else is no cursor."""

    at: datetime
    id: int

    @classmethod
    def of(cls, c: Contribution) -> Cursor:
        return cls(c.created_at, c.id)

    @classmethod
    def parse(cls, raw: str | None) -> Cursor | None:
        found = _CURSOR.fullmatch(raw or "")
        if found is None:
            return None
        try:
            at = _EPOCH + timedelta(microseconds=int(found.group(1)))
        except OverflowError:
            return None
        return cls(at, int(found.group(2)))

    def token(self) -> str:
        at = self.at.replace(tzinfo=UTC) if self.at.tzinfo is None else self.at
        return f"{(at - _EPOCH) // timedelta(microseconds=1)}-{self.id}"


def _key() -> Any:
    return tuple_(Contribution.created_at, Contribution.id)


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
            conds.append(search_clause(self.q, dialect))
        return conds


def search_clause(q: str, dialect: str) -> ColumnElement[bool]:
    """``q`` anywhere in a contribution's reference or texts, case-insensitively, wildcards
    taken literally. PostgreSQL: ILIKE on the columns, which the trigram index
    ``ix_contributions_search`` serves (patterns of 3 characters or more); SQLite: LIKE over
    the rows on a Unicode case folding (its lower() is ASCII-only)."""
    if dialect == "sqlite":
        fold = getattr(func, _CASEFOLD_FN)
        pattern = like_pattern(q.casefold())
        return or_(*(fold(func.coalesce(col, "")).like(pattern, escape="\\") for col in _SEARCHED))
    if dialect == "postgresql":
        return or_(*(col.ilike(like_pattern(q), escape="\\") for col in _SEARCHED))
    pattern = like_pattern(q.lower())
    return or_(
        *(func.lower(func.coalesce(col, "")).like(pattern, escape="\\") for col in _SEARCHED)
    )


@dataclass
class QueuePage:
    items: list[Contribution]
    total: int
    page: int
    pages: int
    has_prev: bool = False
    has_next: bool = False
    #: Where the next page starts (its link's cursor), if there is one.
    next_start: Cursor | None = None

    @property
    def start(self) -> Cursor | None:
        """Where this page starts (to come back to it)."""
        return Cursor.of(self.items[0]) if self.items else None


def _dialect(session: AsyncSession) -> str:
    bind = session.get_bind()
    return bind.dialect.name


async def queue_page(
    session: AsyncSession, scope: Scope, filters: QueueFilters, page_size: int
) -> QueuePage:
    """A page of the queue, oldest first. Its links carry a cursor (keyset pagination: the
    page after this one starts at the row after its last, the one before ends before its
    first), so a deep page costs what the first does. A page asked by its number alone (typed,
    or an old link) is found from the nearer end of the queue by its keys only (an index-only
    scan), then read like the others."""
    dialect = _dialect(session)
    conds = filters.where(scope, dialect)
    total = await session.scalar(select(func.count(Contribution.id)).where(*conds)) or 0
    pages = max(1, -(-total // page_size))
    page = min(filters.page, pages)
    if filters.start is not None:
        rows = await _rows(
            session, conds, _key() >= (filters.start.at, filters.start.id), page_size + 1
        )
        if rows:
            has_next = len(rows) > page_size
            if not has_next:
                page = pages
            elif page >= pages:
                page = max(1, pages - 1)
            return _page(rows, page_size, total, page, pages, page > 1)
    elif filters.before is not None:
        rows = await _rows(
            session,
            conds,
            _key() < (filters.before.at, filters.before.id),
            page_size + 1,
            descending=True,
        )
        if len(rows) > page_size:
            rows = rows[:page_size][::-1]
            page = min(max(page, 2), pages)
            shown = _page(rows, page_size, total, page, pages, True)
            shown.has_next = True
            shown.next_start = filters.before
            return shown
        page = 1  # nothing before the page any more: the first page
    if page == 1:
        rows = await _rows(session, conds, None, page_size + 1)
        return _page(rows, page_size, total, 1, pages, False)
    return await _numbered_page(session, conds, total, page, pages, page_size)


def _page(
    rows: list[Contribution], size: int, total: int, page: int, pages: int, has_prev: bool
) -> QueuePage:
    more = len(rows) > size
    return QueuePage(
        rows[:size],
        total,
        page,
        pages,
        has_prev=has_prev,
        has_next=more,
        next_start=Cursor.of(rows[size]) if more else None,
    )


async def _rows(
    session: AsyncSession,
    conds: list[ColumnElement[bool]],
    bound: ColumnElement[bool] | None,
    limit: int,
    *,
    descending: bool = False,
) -> list[Contribution]:
    order = (
        (Contribution.created_at.desc(), Contribution.id.desc())
        if descending
        else (Contribution.created_at, Contribution.id)
    )
    query = select(Contribution).where(*conds)
    if bound is not None:
        query = query.where(bound)
    rows = await session.scalars(
        query.options(selectinload(Contribution.territory), selectinload(Contribution.theme))
        .order_by(*order)
        .limit(limit)
    )
    return list(rows)


async def _numbered_page(
    session: AsyncSession,
    conds: list[ColumnElement[bool]],
    total: int,
    page: int,
    pages: int,
    size: int,
) -> QueuePage:
    """Page ``page`` (> 1) by its number: its keys (and the next row's) counted from the
    nearer end, then its rows by id."""
    skip = (page - 1) * size
    after = total - page * size  # rows after this page (negative: a short last page)
    keys_query = select(Contribution.created_at, Contribution.id).where(*conds)
    if skip <= max(after, 0):
        keys = (
            await session.execute(
                keys_query.order_by(Contribution.created_at, Contribution.id)
                .offset(skip)
                .limit(size + 1)
            )
        ).all()
    else:
        backwards = keys_query.order_by(Contribution.created_at.desc(), Contribution.id.desc())
        if after > 0:
            backwards = backwards.offset(after - 1).limit(size + 1)
        else:
            backwards = backwards.limit(size + after)
        keys = (await session.execute(backwards)).all()[::-1]
    wanted = [Cursor(at, id_) for at, id_ in keys]
    found = {
        c.id: c
        for c in await session.scalars(
            select(Contribution)
            .where(Contribution.id.in_([k.id for k in wanted[:size]]))
            .options(selectinload(Contribution.territory), selectinload(Contribution.theme))
        )
    }
    items = [found[k.id] for k in wanted[:size] if k.id in found]
    more = len(wanted) > size
    return QueuePage(
        items,
        total,
        page,
        pages,
        has_prev=True,
        has_next=more,
        next_start=wanted[size] if more else None,
    )


async def neighbours(
    session: AsyncSession, scope: Scope, filters: QueueFilters, c: Contribution
) -> tuple[str | None, str | None]:
    """References of the previous and next items of the queue around ``c`` (same filters)."""
    conds = filters.where(scope, _dialect(session))
    here = (c.created_at, c.id)
    after = _key() > here
    before = _key() < here
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
    return territories, themes, await languages_seen(session, scope)


async def languages_seen(session: AsyncSession, scope: Scope) -> list[str]:
    """The languages of the contributions in scope, sorted: one probe of
    ``ix_contributions_language`` per language (a recursive "loose index scan"), not a
    DISTINCT over every row."""
    first = select(func.min(Contribution.language).label("language")).where(scope.clause())
    seen = first.cte("languages_seen", recursive=True)
    following = (
        select(func.min(Contribution.language))
        .where(scope.clause(), Contribution.language > seen.c.language)
        .scalar_subquery()
    )
    seen = seen.union_all(select(following).where(seen.c.language.is_not(None)))
    found = await session.scalars(select(seen.c.language).where(seen.c.language.is_not(None)))
    return sorted(lang for lang in found if lang)


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
