"""What the moderation console reads and writes of the contributions: the queue (filtered,
keyset-paged, a contribution's neighbours), one contribution in a staff member's territories,
the choices of the filters, a decision (a change checked against the version the moderator
saw) and the citizen's notice of it (an outbox row, once per meaning).

A staff member's territories are :data:`Territories`: ``None`` for every territory (an
administrator), else the set of ids (possibly empty: nothing). Every read of contributions
here takes them, so a contribution out of scope is as absent as an unknown one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, event, false, func, or_, select, true, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from storage.models import Campaign, Contribution, Outbox, Participant, Territory, Theme
from storage.notify import outbox_queued
from storage.synthesis import PostingRow, postings

#: The territories a staff member sees: None for all of them, else their ids.
Territories = frozenset[int] | None

_CASEFOLD_FN = "cnr_casefold"
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


def within(
    column: ColumnElement[int] | InstrumentedAttribute[int], territories: Territories
) -> ColumnElement[bool]:
    """``column`` (a territory id) among ``territories``."""
    if territories is None:
        return true()
    if not territories:
        return false()
    return column.in_(sorted(territories))


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape ``\\``) that finds ``text`` anywhere, wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- search ---------------------------------------------------------------------------------------


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


# --- the queue ------------------------------------------------------------------------------------


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
class QueueSelection:
    """Which contributions the queue shows (every field set narrows it)."""

    territories: Territories = None
    territory: int | None = None
    theme: int | None = None
    #: "" means every status.
    status: str = "pending"
    language: str = ""
    channel: str = ""
    #: Only these references (a topic's), when set.
    references: tuple[str, ...] | None = None
    #: Received at or after ``start``, before ``end`` (UTC instants).
    start: datetime | None = None
    end: datetime | None = None
    #: Searched in the reference and the texts.
    q: str = ""

    def where(self, dialect: str) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [within(Contribution.territory_id, self.territories)]
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
        if self.references is not None:
            conds.append(Contribution.reference.in_(self.references))
        if self.start is not None:
            conds.append(Contribution.created_at >= self.start)
        if self.end is not None:
            conds.append(Contribution.created_at < self.end)
        if self.q:
            conds.append(search_clause(self.q, dialect))
        return conds


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
    return session.get_bind().dialect.name


async def queue_page(
    session: AsyncSession,
    selection: QueueSelection,
    page_size: int,
    *,
    page: int = 1,
    start: Cursor | None = None,
    before: Cursor | None = None,
) -> QueuePage:
    """A page of the queue, oldest first. Its links carry a cursor (keyset pagination: the
    page after this one starts at the row after its last, the one before ends before its
    first), so a deep page costs what the first does. A page asked by its number alone (typed,
    or an old link) is found from the nearer end of the queue by its keys only (an index-only
    scan), then read like the others."""
    conds = selection.where(_dialect(session))
    total = await session.scalar(select(func.count(Contribution.id)).where(*conds)) or 0
    pages = max(1, -(-total // page_size))
    page = min(page, pages)
    if start is not None:
        rows = await _rows(session, conds, _key() >= (start.at, start.id), page_size + 1)
        if rows:
            has_next = len(rows) > page_size
            if not has_next:
                page = pages
            elif page >= pages:
                page = max(1, pages - 1)
            return _page(rows, page_size, total, page, pages, page > 1)
    elif before is not None:
        rows = await _rows(
            session, conds, _key() < (before.at, before.id), page_size + 1, descending=True
        )
        if len(rows) > page_size:
            rows = rows[:page_size][::-1]
            page = min(max(page, 2), pages)
            shown = _page(rows, page_size, total, page, pages, True)
            shown.has_next = True
            shown.next_start = before
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
        keys = list((await session.execute(backwards)).all())[::-1]
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
    session: AsyncSession, selection: QueueSelection, c: Contribution
) -> tuple[str | None, str | None]:
    """References of the previous and next contributions of the queue around ``c``."""
    conds = selection.where(_dialect(session))
    here = (c.created_at, c.id)
    nxt = await session.scalar(
        select(Contribution.reference)
        .where(*conds, _key() > here)
        .order_by(Contribution.created_at, Contribution.id)
        .limit(1)
    )
    prev = await session.scalar(
        select(Contribution.reference)
        .where(*conds, _key() < here)
        .order_by(Contribution.created_at.desc(), Contribution.id.desc())
        .limit(1)
    )
    return prev, nxt


# --- one contribution -----------------------------------------------------------------------------


async def contribution(
    session: AsyncSession, territories: Territories, reference: str
) -> Contribution | None:
    """The contribution ``reference`` if it is in ``territories`` (read afresh, with its
    territory and theme)."""
    return await session.scalar(
        select(Contribution)
        .where(Contribution.reference == reference, within(Contribution.territory_id, territories))
        .options(selectinload(Contribution.territory), selectinload(Contribution.theme))
        .execution_options(populate_existing=True)
    )


async def contribution_by_id(session: AsyncSession, contribution_id: int) -> Contribution | None:
    """The contribution ``contribution_id``, read afresh, whatever its territory."""
    return await session.scalar(
        select(Contribution)
        .where(Contribution.id == contribution_id)
        .execution_options(populate_existing=True)
    )


async def change_contribution(
    session: AsyncSession,
    contribution_id: int,
    version: int,
    changes: Mapping[str, Any],
    *,
    staff_id: int,
    now: datetime,
) -> bool:
    """Apply ``changes`` if the contribution is still at ``version`` (optimistic locking): the
    version goes up by one and the moderator and time are recorded. False when it moved on
    meanwhile. The caller commits."""
    result = await session.execute(
        update(Contribution)
        .where(Contribution.id == contribution_id, Contribution.version == version)
        .values(
            **changes,
            version=Contribution.version + 1,
            updated_at=now,
            moderated_by=staff_id,
            moderated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def queue_notice(
    session: AsyncSession,
    participant_id: int,
    dedupe_key: str,
    kind: str,
    params: dict[str, Any],
) -> bool:
    """Queue a notice for the citizen unless one with ``dedupe_key`` exists (queued before, or
    meanwhile by another moderator); False when none was added. The workers are woken when
    the caller's transaction commits."""
    if await session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                Outbox(
                    participant_id=participant_id, dedupe_key=dedupe_key, kind=kind, params=params
                )
            )
    except IntegrityError:  # queued meanwhile: once is enough
        return False
    await outbox_queued(session)
    return True


async def participant_lang(session: AsyncSession, participant_id: int) -> str | None:
    """The language a citizen reads their messages in."""
    return await session.scalar(select(Participant.lang).where(Participant.id == participant_id))


# --- campaigns, territories, themes, languages ----------------------------------------------------


async def campaign(session: AsyncSession, campaign_id: int) -> Campaign | None:
    return await session.get(Campaign, campaign_id)


async def territory(session: AsyncSession, territory_id: int) -> Territory | None:
    return await session.get(Territory, territory_id)


async def theme(session: AsyncSession, theme_id: int) -> Theme | None:
    return await session.get(Theme, theme_id)


async def territories_in(
    session: AsyncSession, territories: Territories, campaign_id: int | None = None
) -> list[Territory]:
    """The territories among ``territories`` (of one campaign, or of every one), in order."""
    if campaign_id is None:
        query = select(Territory).where(within(Territory.id, territories))
        query = query.order_by(Territory.campaign_id, Territory.position, Territory.id)
    else:
        query = select(Territory).where(
            Territory.campaign_id == campaign_id, within(Territory.id, territories)
        )
        query = query.order_by(Territory.position, Territory.id)
    return list(await session.scalars(query))


async def themes_of(session: AsyncSession, campaign_ids: Sequence[int]) -> list[Theme]:
    """The themes of these campaigns, in order."""
    return list(
        await session.scalars(
            select(Theme)
            .where(Theme.campaign_id.in_(campaign_ids))
            .order_by(Theme.campaign_id, Theme.position, Theme.id)
        )
    )


async def campaign_themes(
    session: AsyncSession, campaign_id: int, theme_id: int | None = None
) -> list[Theme]:
    """A campaign's themes in order (or just ``theme_id``, if it is one of them)."""
    query = select(Theme).where(Theme.campaign_id == campaign_id)
    if theme_id is not None:
        query = query.where(Theme.id == theme_id)
    return list(await session.scalars(query.order_by(Theme.position, Theme.id)))


async def languages_seen(session: AsyncSession, territories: Territories) -> list[str]:
    """The languages of the contributions in ``territories``, sorted: one probe of
    ``ix_contributions_language`` per language (a recursive "loose index scan"), not a
    DISTINCT over every row."""
    first = select(func.min(Contribution.language).label("language")).where(
        within(Contribution.territory_id, territories)
    )
    seen = first.cte("languages_seen", recursive=True)
    following = (
        select(func.min(Contribution.language))
        .where(
            within(Contribution.territory_id, territories), Contribution.language > seen.c.language
        )
        .scalar_subquery()
    )
    seen = seen.union_all(select(following).where(seen.c.language.is_not(None)))
    found = await session.scalars(select(seen.c.language).where(seen.c.language.is_not(None)))
    return sorted(lang for lang in found if lang)


async def live_postings(
    session: AsyncSession, campaign_id: int, territories: Territories
) -> list[PostingRow]:
    """The live contributions of a campaign as postings (``storage.synthesis.postings``), on
    the session's connection."""
    territory_ids = None if territories is None else sorted(territories)
    return await postings(await session.connection(), campaign_id, territory_ids=territory_ids)
