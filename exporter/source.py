"""What the exporter reads: the campaign, and its approved contributions, streamed.

Only ``approved`` contributions are read, in their moderated form, and only the columns an
export shows, plus the contribution's participant *number* (``participant_id``, an opaque row
number): the topics count distinct citizens with it, no file ever shows it. The participant's
key, chat identity, the original texts and the moderation fields are never selected.
Every text goes through :func:`_line` (the citizens' cleaning, on one line) and the
personal-data safety net :func:`exporter.pii.mask` here, once, so that no writer can forget it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.model import DEFAULT_TIMEZONE
from dialogs.validation import one_line
from exporter.pii import mask
from storage.models import Campaign, Contribution, Territory, Theme

BATCH_SIZE = 2000

SUPPLEMENTARY_FALLBACK = "Thématique(s) supplémentaire(s)"
NO_LABEL = "Thématique non précisée"


class ExportError(Exception):
    """A problem the person running the export can fix (shown as is, exit code 2)."""


@dataclass(frozen=True, slots=True)
class TerritoryInfo:
    id: int
    code: str
    name: str
    situation: str


@dataclass(frozen=True, slots=True)
class ThemeInfo:
    id: int
    code: str
    number: int
    label: str


@dataclass(frozen=True)
class CampaignData:
    """The campaign as the exporter needs it (French labels: the annex is in French)."""

    id: int
    code: str
    name: str
    region: str
    timezone: str
    context: str
    perspectives: str
    territories: tuple[TerritoryInfo, ...]
    themes: tuple[ThemeInfo, ...]
    profiles: dict[str, str] = field(default_factory=dict)

    def territory(self, code: str) -> TerritoryInfo:
        for t in self.territories:
            if t.code.casefold() == code.casefold():
                return t
        known = ", ".join(t.code for t in self.territories)
        raise ExportError(f"unknown territory {code!r} in campaign {self.code} (known: {known})")

    def theme_label(self, number: int) -> str:
        for th in self.themes:
            if th.number == number and (number != 5 or th.code == "5"):
                return th.label
        return SUPPLEMENTARY_FALLBACK if number == 5 else f"Thématique {number}"


@dataclass(frozen=True, slots=True)
class Item:
    """One approved contribution, as exported (texts cleaned and masked)."""

    reference: str
    submitted_at: datetime
    territory: str
    theme_code: str
    theme_number: int
    #: Label under theme 5 (predefined extra theme or the citizen's own); None for 1-4.
    supplementary: str | None
    need: str
    solution: str
    levers: str
    profile: str | None
    language: str
    channel: str
    #: Who wrote it, as an opaque number (the participant's row id): only compared, to count
    #: distinct citizens per topic; never written to any file.
    participant: int = 0


def _line(text: str | None) -> str:
    """One line of printable text (:func:`dialogs.validation.one_line`); ``""`` for none."""
    return one_line(text) if text else ""


def safe_text(text: str | None) -> str:
    """:func:`_line` then the personal-data safety net."""
    return mask(_line(text))


async def load_campaign(session: AsyncSession, code: str) -> CampaignData:
    row = (
        await session.execute(select(Campaign).where(Campaign.code == code))
    ).scalar_one_or_none()
    if row is None:
        codes = (await session.execute(select(Campaign.code).order_by(Campaign.code))).scalars()
        known = ", ".join(codes) or "none: load a campaign file first (cnrbot campaign load)"
        raise ExportError(f"unknown campaign {code!r} (known: {known})")
    spec: dict[str, Any] = row.spec or {}
    info: dict[str, Any] = spec.get("campaign") or {}
    territories = (
        await session.execute(
            select(Territory)
            .where(Territory.campaign_id == row.id)
            .order_by(Territory.position, Territory.code)
        )
    ).scalars()
    themes = (
        await session.execute(
            select(Theme).where(Theme.campaign_id == row.id).order_by(Theme.position, Theme.code)
        )
    ).scalars()
    profiles = {
        str(p.get("code")): str(p.get("label_fr") or p.get("code"))
        for p in spec.get("profiles") or []
        if isinstance(p, dict)
    }
    return CampaignData(
        id=row.id,
        code=row.code,
        name=row.name,
        region=row.region,
        timezone=str(info.get("timezone") or DEFAULT_TIMEZONE),
        context=safe_text(info.get("context")),
        perspectives=safe_text(info.get("perspectives")),
        territories=tuple(
            TerritoryInfo(t.id, t.code, _line(t.name), safe_text(t.situation)) for t in territories
        ),
        themes=tuple(ThemeInfo(t.id, t.code, t.number, _line(t.label_fr)) for t in themes),
        profiles=profiles,
    )


def day_bounds(
    since: date | None, until: date | None, zone: str
) -> tuple[datetime | None, datetime | None]:
    """``[since 00:00, until+1 00:00)`` local time of ``zone`` (``until`` included), as
    instants. The console's day filters use it too: the same dates select the same texts."""
    tz = ZoneInfo(zone)
    start = datetime.combine(since, time(0), tz) if since else None
    end = datetime.combine(until + timedelta(days=1), time(0), tz) if until else None
    return start, end


def period_bounds(
    campaign: CampaignData, since: date | None, until: date | None
) -> tuple[datetime | None, datetime | None]:
    """The period in the campaign's time zone."""
    return day_bounds(since, until, campaign.timezone)


def exported(
    campaign: CampaignData,
    territory_ids: Sequence[int],
    since: date | None,
    until: date | None,
) -> list[ColumnElement[bool]]:
    """What an export selects: approved contributions of the campaign and territories,
    created within the period (campaign time zone)."""
    start, end = period_bounds(campaign, since, until)
    conds: list[ColumnElement[bool]] = [
        Contribution.campaign_id == campaign.id,
        Contribution.status == "approved",
        Contribution.territory_id.in_(list(territory_ids)),
    ]
    if start is not None:
        conds.append(Contribution.created_at >= start)
    if end is not None:
        conds.append(Contribution.created_at < end)
    return conds


async def stream_items(
    session: AsyncSession,
    campaign: CampaignData,
    territories: Sequence[TerritoryInfo],
    since: date | None = None,
    until: date | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[Item]:
    """Approved contributions of ``territories``, ordered by reference, read in batches."""
    if not territories:
        return
    codes = {t.id: t.code for t in territories}
    supplementary = {th.id: th.label for th in campaign.themes if th.number == 5}
    stmt = (
        select(
            Contribution.reference,
            Contribution.created_at,
            Contribution.territory_id,
            Contribution.theme_id,
            Theme.code,
            Theme.number,
            Contribution.custom_theme,
            Contribution.need,
            Contribution.solution,
            Contribution.levers,
            Contribution.profile,
            Contribution.language,
            Contribution.channel,
            Contribution.participant_id,
        )
        .join(Theme, Theme.id == Contribution.theme_id)
        .where(*exported(campaign, list(codes), since, until))
        .order_by(Contribution.reference)
    )
    result = await session.stream(stmt.execution_options(yield_per=batch_size))
    # the few values many contributions share (theme, label, profile, language, channel) are
    # kept once, not once a contribution (the roll-up keeps every contribution)
    shared: dict[str, str] = {}
    once = shared.setdefault
    #: label as stored -> as exported (masked)
    labels: dict[str, str] = {}
    async for rows in result.partitions():
        for row in rows:
            number = int(row[5])
            label: str | None = None
            if number == 5:
                if row[4] == "5":
                    label = _line(row[6]) or NO_LABEL
                else:
                    label = supplementary.get(row[3]) or _line(row[6]) or NO_LABEL
                masked = labels.get(label)
                if masked is None:
                    masked = labels[label] = mask(label)
                label = masked
            yield Item(
                reference=row[0],
                submitted_at=row[1],
                territory=codes[row[2]],
                theme_code=once(row[4], row[4]),
                theme_number=number,
                supplementary=label,
                need=safe_text(row[7]),
                solution=safe_text(row[8]),
                levers=safe_text(row[9]),
                profile=once(row[10], row[10]) if row[10] else None,
                language=once(row[11], row[11]) if row[11] else "",
                channel=once(row[12], row[12]) if row[12] else "",
                participant=int(row[13]),
            )
