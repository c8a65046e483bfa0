"""Campaigns in the database: load a campaign file, list campaigns, build the dialog's view.

The validated campaign file is kept as JSON (``campaigns.spec``) with the SHA-256 of its
canonical form (``spec_hash``): loading the same file twice changes nothing, and loading a
changed file with the same code updates labels and positions in place, keeping the rows (and
the reference counters) that existing contributions point to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialogs.model import CampaignView
from storage.campaign_file import CAMPAIGNS_DIR, CampaignSpec
from storage.models import Campaign, Contribution, ConversationRow, Territory, Theme

LoadStatus = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class LoadResult:
    code: str
    status: LoadStatus
    campaign_id: int


@dataclass(frozen=True)
class CampaignSummary:
    id: int
    code: str
    name: str
    region: str
    opens_on: date
    closes_on: date
    territories: int
    contributions: int
    loaded_at: datetime


@dataclass(frozen=True)
class CurrentCampaign:
    """What the service needs of the campaign offered to citizens, per event."""

    id: int
    code: str
    ref_prefix: str
    spec_hash: str


def canonical_spec(spec: CampaignSpec) -> dict[str, Any]:
    """The spec as plain JSON data (what is stored and hashed)."""
    data: dict[str, Any] = spec.model_dump(mode="json")
    return data


def spec_hash(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_campaign_file(name: str | Path) -> Path:
    """``name`` as a path when it is one, else the file of that name shipped in
    ``storage/campaigns/`` (``hauts-de-france-2022.toml``)."""
    path = Path(name)
    if path.exists() or path.parent != Path("."):
        return path
    return CAMPAIGNS_DIR / path


def _theme_rows(spec: CampaignSpec) -> list[tuple[str, int, str, str]]:
    """(code, number, label_fr, label_en) in display order. Theme "5" (the annex's
    supplementary section) is always stored: predefined extra themes belong to it."""
    sup = spec.supplementary
    rows = [
        (str(t.number), t.number, t.label_fr, t.label_en)
        for t in sorted(spec.themes, key=lambda t: t.number)
    ]
    rows.append(("5", 5, sup.label_fr, sup.label_en))
    rows.extend((e.code, 5, e.label_fr, e.label_en) for e in sup.themes)
    return rows


async def load_campaign(
    session: AsyncSession, spec: CampaignSpec, *, now: datetime | None = None
) -> LoadResult:
    """Create or update the campaign of ``spec`` (by its code). Call inside a transaction."""
    now = now or datetime.now(UTC)
    data = canonical_spec(spec)
    digest = spec_hash(data)
    info = spec.campaign
    campaign = await session.scalar(select(Campaign).where(Campaign.code == info.code))
    if campaign is not None and campaign.spec_hash == digest:
        return LoadResult(info.code, "unchanged", campaign.id)
    status: LoadStatus = "updated"
    if campaign is None:
        status = "created"
        campaign = Campaign(code=info.code)
        session.add(campaign)
    campaign.ref_prefix = info.ref_prefix
    campaign.name = info.name
    campaign.region = info.region
    campaign.opens_on = info.opens_on
    campaign.closes_on = info.closes_on
    campaign.spec = data
    campaign.spec_hash = digest
    campaign.loaded_at = now
    await session.flush()
    await _sync_territories(session, campaign.id, spec)
    await _sync_themes(session, campaign.id, spec)
    await session.flush()
    return LoadResult(info.code, status, campaign.id)


async def _used_ids(session: AsyncSession, column: Any, campaign_id: int) -> set[int]:
    rows = await session.scalars(
        select(column).where(Contribution.campaign_id == campaign_id).distinct()
    )
    return set(rows)


async def _draft_codes(session: AsyncSession, campaign_id: int, answer: str) -> set[str]:
    """Codes (territory or theme) that drafts in progress of this campaign have picked: such
    rows are kept, so that sending the draft still works after the file changed."""
    rows = await session.scalars(
        select(ConversationRow.data).where(ConversationRow.campaign_id == campaign_id)
    )
    codes = set()
    for data in rows:
        answers = data.get("answers") if isinstance(data, dict) else None
        if isinstance(answers, dict) and isinstance(answers.get(answer), str):
            codes.add(answers[answer])
    return codes


async def _sync_territories(session: AsyncSession, campaign_id: int, spec: CampaignSpec) -> None:
    existing = {
        t.code: t
        for t in await session.scalars(
            select(Territory).where(Territory.campaign_id == campaign_id)
        )
    }
    wanted = {t.code for t in spec.territories}
    for position, t in enumerate(spec.territories):
        row = existing.get(t.code)
        if row is None:
            row = Territory(campaign_id=campaign_id, code=t.code, last_number=0)
            session.add(row)
        row.name = t.name
        row.position = position
        row.departments = list(t.departments)
        row.situation = t.situation
    used = await _used_ids(session, Contribution.territory_id, campaign_id)
    drafts = await _draft_codes(session, campaign_id, "territory")
    gone = [row for code, row in existing.items() if code not in wanted]
    for offset, row in enumerate(gone):
        if row.id in used or row.code in drafts:  # kept for what names it, out of the offer
            row.position = len(spec.territories) + offset
        else:
            await session.execute(delete(Territory).where(Territory.id == row.id))


async def _sync_themes(session: AsyncSession, campaign_id: int, spec: CampaignSpec) -> None:
    existing = {
        t.code: t
        for t in await session.scalars(select(Theme).where(Theme.campaign_id == campaign_id))
    }
    rows = _theme_rows(spec)
    wanted = {code for code, *_ in rows}
    for position, (code, number, label_fr, label_en) in enumerate(rows):
        row = existing.get(code)
        if row is None:
            row = Theme(campaign_id=campaign_id, code=code)
            session.add(row)
        row.number = number
        row.label_fr = label_fr
        row.label_en = label_en
        row.position = position
    used = await _used_ids(session, Contribution.theme_id, campaign_id)
    drafts = await _draft_codes(session, campaign_id, "theme")
    gone = [row for code, row in existing.items() if code not in wanted]
    for offset, row in enumerate(gone):
        if row.id in used or row.code in drafts:
            row.position = len(rows) + offset
        else:
            await session.execute(delete(Theme).where(Theme.id == row.id))


async def list_campaigns(session: AsyncSession) -> list[CampaignSummary]:
    territories = (
        select(func.count(Territory.id))
        .where(Territory.campaign_id == Campaign.id)
        .scalar_subquery()
    )
    contributions = (
        select(func.count(Contribution.id))
        .where(Contribution.campaign_id == Campaign.id)
        .scalar_subquery()
    )
    result = await session.execute(
        select(Campaign, territories, contributions).order_by(Campaign.opens_on, Campaign.id)
    )
    return [
        CampaignSummary(
            id=c.id,
            code=c.code,
            name=c.name,
            region=c.region,
            opens_on=c.opens_on,
            closes_on=c.closes_on,
            territories=int(n_terr),
            contributions=int(n_contrib),
            loaded_at=c.loaded_at,
        )
        for c, n_terr, n_contrib in result.all()
    ]


async def current_campaign(
    session: AsyncSession | AsyncConnection, code: str | None = None
) -> CurrentCampaign | None:
    """The campaign offered to citizens: the one named ``code`` (settings.campaign), else the
    latest loaded one. ``None`` when the database holds no campaign (or not that code)."""
    query = select(Campaign.id, Campaign.code, Campaign.ref_prefix, Campaign.spec_hash)
    if code is not None:
        query = query.where(Campaign.code == code)
    else:
        query = query.order_by(Campaign.loaded_at.desc(), Campaign.id.desc()).limit(1)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    return CurrentCampaign(id=row[0], code=row[1], ref_prefix=row[2], spec_hash=row[3])


async def campaign_view(session: AsyncSession | AsyncConnection, campaign_id: int) -> CampaignView:
    """The dialog's view of a stored campaign (from its stored spec)."""
    spec_data = await session.scalar(select(Campaign.spec).where(Campaign.id == campaign_id))
    if spec_data is None:
        raise LookupError(f"no campaign with id {campaign_id}")
    return CampaignSpec.model_validate(spec_data).to_view()


async def has_campaign(session: AsyncSession) -> bool:
    return (await session.scalar(select(func.count(Campaign.id)))) != 0
