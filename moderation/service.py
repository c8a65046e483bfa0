"""Moderation logic: scope, the queue, actions with optimistic versions, audit and outbox.

Every query that touches contributions goes through :meth:`Scope.clause`, so a moderator never
sees, counts or acts on a contribution outside their territories (a reference out of scope is
exactly as absent as an unknown one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    event,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from dialogs.validation import clean_text  # the same cleaning as the citizens' texts
from exporter.report import CHANNELS as CHANNELS  # the annex's labels: one wording everywhere
from exporter.source import day_bounds
from storage.models import (
    AuditEntry,
    Campaign,
    Contribution,
    Outbox,
    Staff,
    Territory,
    Theme,
)
from storage.settings import Settings

STATUSES = {
    "pending": "en attente",
    "approved": "approuvée",
    "rejected": "rejetée",
    "duplicate": "doublon",
}
REJECT_REASONS = {
    "offtopic": "Hors sujet",
    "abusive": "Propos injurieux ou abusifs",
    "personal_data": "Données personnelles",
    "duplicate": "Doublon",
    "other": "Autre motif",
}
TEXT_FIELDS = ("need", "solution", "levers", "custom_theme")
TEXT_LABELS = {
    "need": "Constat",
    "solution": "Solution",
    "levers": "Propositions (leviers)",
    "custom_theme": "Thématique libre",
}
NOTE_MAX_CHARS = 2000
SEARCH_MAX_CHARS = 200
_CASEFOLD_FN = "cnr_casefold"
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


# --- scope ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    staff_id: int
    email: str
    role: str
    territory_ids: frozenset[int]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def clause(self) -> ColumnElement[bool]:
        """Contributions this staff member may see."""
        if self.is_admin:
            return true()
        if not self.territory_ids:
            return false()
        return Contribution.territory_id.in_(sorted(self.territory_ids))

    def territory_clause(self) -> ColumnElement[bool]:
        if self.is_admin:
            return true()
        if not self.territory_ids:
            return false()
        return Territory.id.in_(sorted(self.territory_ids))

    def allows_territory(self, territory_id: int) -> bool:
        return self.is_admin or territory_id in self.territory_ids


async def scope_for(session: AsyncSession, staff: Staff) -> Scope:
    ids = await session.scalars(
        select(Territory.id).join_from(Staff, Staff.territories).where(Staff.id == staff.id)
    )
    return Scope(staff.id, staff.email, staff.role, frozenset(ids))


# --- audit and outbox -----------------------------------------------------------------------------


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    staff_id: int | None,
    action: str,
    target: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> None:
    """Append one audit entry (the console never updates nor deletes one)."""
    session.add(
        AuditEntry(
            at=now or datetime.now(UTC),
            staff_id=staff_id,
            actor=actor[:254],
            action=action[:40],
            target=target[:120] if target else None,
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
            remote_addr=remote_addr[:64] if remote_addr else None,
        )
    )


async def queue_notification(
    session: AsyncSession, settings: Settings, contribution: Contribution, kind: str
) -> bool:
    """Queue the citizen's notice of a decision, once per meaning; False when none was added."""
    if not settings.notify_citizens:
        return False
    key = f"{kind}:{contribution.reference}"
    if await session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
        return False
    # the sender (bot.core.notifier) renders notify.<kind> in the participant's language
    params: dict[str, Any] = {"reference": contribution.reference}
    if kind == "rejected":
        params["reason"] = contribution.reject_reason or "other"
    try:
        async with session.begin_nested():
            session.add(
                Outbox(
                    participant_id=contribution.participant_id,
                    dedupe_key=key,
                    kind=kind,
                    params=params,
                )
            )
    except IntegrityError:  # queued meanwhile by another moderator: once is enough
        return False
    return True


# --- the queue ------------------------------------------------------------------------------------


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


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _parse_int(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit() or len(raw.strip()) > 12:
        return None
    return int(raw.strip())


def _parse_date(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        return None


#: Days typed by staff and days of the dashboard are local days of this zone (settings'
#: CNR_TIMEZONE, the zone of the quiet hours too): the exporter reads the campaign's days the
#: same way (exporter.source.day_bounds), so a console filter and an export of the same dates
#: select the same texts.
DEFAULT_ZONE = "Europe/Paris"


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

    @classmethod
    def parse(cls, params: Mapping[str, str], *, zone: str = DEFAULT_ZONE) -> QueueFilters:
        status = params.get("status", "pending")
        if status not in STATUSES and status != "":
            status = "pending"
        language = clean_text(params.get("language", ""))[:8]
        q = clean_text(params.get("q", ""))[:SEARCH_MAX_CHARS]
        page = _parse_int(params.get("page")) or 1
        channel = params.get("channel", "")
        unknown_channel = ""
        if channel not in CHANNELS:
            unknown_channel = clean_text(channel)[:40]
            channel = ""
        return cls(
            territory=_parse_int(params.get("territory")),
            theme=_parse_int(params.get("theme")),
            status=status,
            language=language,
            since=_parse_date(params.get("since")),
            until=_parse_date(params.get("until")),
            q=q,
            page=max(1, min(page, 1_000_000)),
            channel=channel,
            unknown_channel=unknown_channel,
            zone=zone,
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
        start, end = day_bounds(self.since, self.until, self.zone)
        if start is not None:
            conds.append(Contribution.created_at >= start)
        if end is not None:
            conds.append(Contribution.created_at < end)
        if self.q:
            fold = getattr(func, _CASEFOLD_FN) if dialect == "sqlite" else func.lower
            pattern = _like_pattern(self.q.casefold() if dialect == "sqlite" else self.q.lower())
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


# --- actions --------------------------------------------------------------------------------------


@dataclass
class ActionResult:
    #: ok | conflict | not_found | invalid
    status: str
    message: str
    contribution: Contribution | None = None
    notified: bool = False


@dataclass
class Actor:
    scope: Scope
    remote_addr: str | None = None


def _snapshot(c: Contribution, fields: Sequence[str]) -> dict[str, Any]:
    return {f: getattr(c, f) for f in fields}


def _handled_message(c: Contribution, by: str | None) -> str:
    who = f" par {by}" if by else ""
    when = f" le {c.moderated_at:%d/%m/%Y à %H:%M} UTC" if c.moderated_at else ""
    return (
        f"La contribution {c.reference} a déjà été traitée{who}{when} "
        f"(statut actuel : {STATUSES.get(c.status, c.status)}). "
        "Rien n'a été modifié ; relisez-la avant d'agir."
    )


async def _conflict(session: AsyncSession, scope: Scope, ref: str) -> ActionResult:
    fresh = await get_contribution(session, scope, ref)
    if fresh is None:
        return ActionResult("not_found", "Contribution introuvable.")
    by = None
    if fresh.moderated_by is not None:
        by = await session.scalar(select(Staff.email).where(Staff.id == fresh.moderated_by))
    return ActionResult("conflict", _handled_message(fresh, by), fresh)


async def _apply(
    session: AsyncSession,
    actor: Actor,
    ref: str,
    version: int | None,
    action: str,
    changes: dict[str, Any],
    *,
    now: datetime | None = None,
    check: Any = None,
) -> ActionResult:
    """Change ``ref`` if still at ``version``; audit before/after. Caller commits."""
    now = now or datetime.now(UTC)
    c = await get_contribution(session, actor.scope, ref)
    if c is None:
        return ActionResult("not_found", "Contribution introuvable.")
    if version is None:
        return ActionResult("invalid", "Version manquante : rechargez la page.", c)
    if c.version != version:
        return await _conflict(session, actor.scope, ref)
    if check is not None:
        problem = await check(c)
        if problem:
            return ActionResult("invalid", problem, c)
    before = _snapshot(c, list(changes))
    result = await session.execute(
        update(Contribution)
        .where(Contribution.id == c.id, Contribution.version == version)
        .values(
            **changes,
            version=Contribution.version + 1,
            updated_at=now,
            moderated_by=actor.scope.staff_id,
            moderated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return await _conflict(session, actor.scope, ref)
    fresh = await get_contribution(session, actor.scope, ref)
    if fresh is None:  # moved out of scope by this very action (reclassification)
        fresh = await session.scalar(
            select(Contribution)
            .where(Contribution.id == c.id)
            .execution_options(populate_existing=True)
        )
    await audit(
        session,
        actor=actor.scope.email,
        staff_id=actor.scope.staff_id,
        action=action,
        target=ref,
        before={**before, "version": version},
        after={**{k: _jsonable(v) for k, v in changes.items()}, "version": version + 1},
        remote_addr=actor.remote_addr,
        now=now,
    )
    return ActionResult("ok", "", fresh)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def approve(
    session: AsyncSession, settings: Settings, actor: Actor, ref: str, version: int | None
) -> ActionResult:
    res = await _apply(
        session,
        actor,
        ref,
        version,
        "approve",
        {"status": "approved", "reject_reason": None, "reject_note": None, "duplicate_of": None},
    )
    if res.status == "ok" and res.contribution is not None:
        res.notified = await queue_notification(session, settings, res.contribution, "approved")
        res.message = f"Contribution {ref} approuvée."
    return res


async def reject(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    ref: str,
    version: int | None,
    reason: str,
    note: str,
) -> ActionResult:
    note = clean_text(note)
    if reason not in REJECT_REASONS:
        return ActionResult("invalid", "Choisissez un motif de rejet.")
    if len(note) > NOTE_MAX_CHARS:
        return ActionResult("invalid", f"Le commentaire dépasse {NOTE_MAX_CHARS} caractères.")
    if reason == "other" and not note:
        return ActionResult("invalid", "Précisez le motif « Autre » dans le commentaire.")
    res = await _apply(
        session,
        actor,
        ref,
        version,
        "reject",
        {"status": "rejected", "reject_reason": reason, "reject_note": note or None},
    )
    if res.status == "ok" and res.contribution is not None:
        res.notified = await queue_notification(session, settings, res.contribution, "rejected")
        res.message = f"Contribution {ref} rejetée ({REJECT_REASONS[reason].lower()})."
    return res


async def edit_texts(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    ref: str,
    version: int | None,
    texts: Mapping[str, str],
) -> ActionResult:
    """Redact/edit the texts; the citizen's originals are kept once, for admins."""
    c = await get_contribution(session, actor.scope, ref)
    if c is None:
        return ActionResult("not_found", "Contribution introuvable.")
    if version is not None and c.version != version:
        return await _conflict(session, actor.scope, ref)
    new: dict[str, str | None] = {}
    for f in TEXT_FIELDS:
        if f not in texts:
            continue
        value = clean_text(texts[f])
        limit = settings.custom_theme_max_chars if f == "custom_theme" else settings.text_max_chars
        if len(value) > limit:
            return ActionResult("invalid", f"{TEXT_LABELS[f]} : {limit} caractères au plus.", c)
        if f in ("need", "solution") and not value:
            return ActionResult("invalid", f"{TEXT_LABELS[f]} : ce texte ne peut être vide.", c)
        if f == "custom_theme" and c.custom_theme is None and not value:
            continue
        new[f] = value or None
    changes = {f: v for f, v in new.items() if v != getattr(c, f)}
    if not changes:
        return ActionResult("invalid", "Aucun texte n'a été modifié.", c)
    originals = dict(c.originals or {})
    for f in changes:
        originals.setdefault(f, getattr(c, f))
    changes_all: dict[str, Any] = {**changes, "originals": originals}
    res = await _apply(session, actor, ref, version, "edit", changes_all)
    if res.status == "ok":
        res.message = f"Textes de {ref} modifiés ({len(changes)} champ(s))."
    return res


async def reclassify(
    session: AsyncSession,
    actor: Actor,
    ref: str,
    version: int | None,
    theme_id: int | None,
    territory_id: int | None,
) -> ActionResult:
    c = await get_contribution(session, actor.scope, ref)
    if c is None:
        return ActionResult("not_found", "Contribution introuvable.")
    if version is not None and c.version != version:
        return await _conflict(session, actor.scope, ref)
    changes: dict[str, Any] = {}
    if theme_id is not None and theme_id != c.theme_id:
        theme = await session.get(Theme, theme_id)
        if theme is None or theme.campaign_id != c.campaign_id:
            return ActionResult("invalid", "Thème inconnu pour cette campagne.", c)
        changes["theme_id"] = theme_id
    if territory_id is not None and territory_id != c.territory_id:
        terr = await session.get(Territory, territory_id)
        if terr is None or terr.campaign_id != c.campaign_id:
            return ActionResult("invalid", "Territoire inconnu pour cette campagne.", c)
        if not actor.scope.allows_territory(territory_id):
            # writing into another team's territory: an administrator does that
            return ActionResult(
                "invalid",
                "Ce territoire n'est pas dans votre périmètre : demandez à un administrateur.",
                c,
            )
        changes["territory_id"] = territory_id
    if not changes:
        return ActionResult("invalid", "Ni le thème ni le territoire n'ont changé.", c)
    res = await _apply(session, actor, ref, version, "reclassify", changes)
    if res.status == "ok":
        res.message = f"Contribution {ref} reclassée."
    return res


async def mark_duplicate(
    session: AsyncSession, actor: Actor, ref: str, version: int | None, of_ref: str
) -> ActionResult:
    of_ref = clean_text(of_ref).upper()

    async def check(c: Contribution) -> str | None:
        if not of_ref:
            return "Indiquez la référence de la contribution d'origine."
        if of_ref == c.reference:
            return "Une contribution ne peut pas être le doublon d'elle-même."
        original = await get_contribution(session, actor.scope, of_ref)
        if original is None or original.campaign_id != c.campaign_id:
            return f"Référence introuvable dans votre périmètre : {of_ref[:64]}"
        if original.duplicate_of == c.reference:
            return f"{of_ref} est déjà marquée comme doublon de {c.reference}."
        return None

    res = await _apply(
        session,
        actor,
        ref,
        version,
        "duplicate",
        {"status": "duplicate", "duplicate_of": of_ref[:64]},
        check=check,
    )
    if res.status == "ok":
        res.message = f"Contribution {ref} marquée comme doublon de {of_ref}."
    return res


# --- dashboard ------------------------------------------------------------------------------------


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
    ids = select(Territory.campaign_id).where(scope.territory_clause())
    return list(
        await session.scalars(
            select(Campaign).where(Campaign.id.in_(ids)).order_by(Campaign.opens_on.desc())
        )
    )


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
    base = [scope.clause(), Contribution.campaign_id == campaign.id]
    territories, themes = await territories_and_themes(session, scope, campaign.id)
    cells: dict[tuple[int, int], dict[str, int]] = {}
    by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
    theme_totals: dict[int, int] = {}
    rows = await session.execute(
        select(
            Contribution.territory_id,
            Contribution.theme_id,
            Contribution.status,
            func.count(Contribution.id),
        )
        .where(*base)
        .group_by(Contribution.territory_id, Contribution.theme_id, Contribution.status)
    )
    for terr_id, theme_id, status, n in rows:
        cells.setdefault((terr_id, theme_id), {})[status] = n
        by_status[status] = by_status.get(status, 0) + n
        theme_totals[theme_id] = theme_totals.get(theme_id, 0) + n
    # Counted per hour (UTC) in SQL, then per local day here: SQLite knows no time zones,
    # and every zone of the French health regions is a whole number of hours from UTC.
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    hour = (
        func.strftime("%Y-%m-%d %H:00:00", Contribution.created_at)
        if dialect == "sqlite"
        else func.date_trunc("hour", Contribution.created_at)
    )
    counted: dict[date, int] = {}
    for at, n in await session.execute(
        select(hour, func.count(Contribution.id)).where(*base).group_by(hour)
    ):
        instant = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
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
    oldest = await session.scalar(
        select(Contribution)
        .where(*base, Contribution.status == "pending")
        .options(selectinload(Contribution.territory))
        .order_by(Contribution.created_at, Contribution.id)
        .limit(1)
    )
    week_ago = datetime.now(UTC) - timedelta(days=7)
    decided = (
        await session.scalar(
            select(func.count(Contribution.id)).where(
                *base, Contribution.status != "pending", Contribution.moderated_at >= week_ago
            )
        )
        or 0
    )
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
        oldest_pending=oldest,
        pending=pending,
        days_left=days_left,
        needed_per_day=needed,
        decided_last_7_days=decided,
        campaigns=campaigns,
    )


# --- audit log ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor: str = ""
    target: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1
    zone: str = DEFAULT_ZONE

    @classmethod
    def parse(cls, params: Mapping[str, str], *, zone: str = DEFAULT_ZONE) -> AuditFilters:
        return cls(
            zone=zone,
            action=clean_text(params.get("action", ""))[:40],
            actor=clean_text(params.get("actor", ""))[:254],
            target=clean_text(params.get("target", ""))[:120],
            since=_parse_date(params.get("since")),
            until=_parse_date(params.get("until")),
            page=max(1, min(_parse_int(params.get("page")) or 1, 1_000_000)),
        )

    def query(self, *, page: int | None = None) -> dict[str, str]:
        out = {
            k: v
            for k, v in (("action", self.action), ("actor", self.actor), ("target", self.target))
            if v
        }
        if self.since:
            out["since"] = self.since.isoformat()
        if self.until:
            out["until"] = self.until.isoformat()
        p = self.page if page is None else page
        if p != 1:
            out["page"] = str(p)
        return out

    def where(self, dialect: str) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.action:
            conds.append(AuditEntry.action == self.action)
        if self.actor:
            conds.append(func.lower(AuditEntry.actor).like(_like_pattern(self.actor.lower()), "\\"))
        if self.target:
            conds.append(AuditEntry.target.like(_like_pattern(self.target), escape="\\"))
        start, end = day_bounds(self.since, self.until, self.zone)
        if start is not None:
            conds.append(AuditEntry.at >= start)
        if end is not None:
            conds.append(AuditEntry.at < end)
        return conds


async def audit_page(
    session: AsyncSession, filters: AuditFilters, page_size: int
) -> tuple[list[AuditEntry], int, int, int]:
    conds = filters.where(_dialect(session))
    total = await session.scalar(select(func.count(AuditEntry.id)).where(*conds)) or 0
    pages = max(1, -(-total // page_size))
    page = min(filters.page, pages)
    rows = await session.scalars(
        select(AuditEntry)
        .where(*conds)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), total, page, pages


async def audit_rows(session: AsyncSession, filters: AuditFilters) -> list[AuditEntry]:
    return list(
        await session.scalars(
            select(AuditEntry)
            .where(*filters.where(_dialect(session)))
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )
