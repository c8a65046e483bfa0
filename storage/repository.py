"""Queries of the citizen side: participants, conversations, contributions.

Every function takes the caller's :class:`AsyncSession` and neither commits nor rolls back:
the service decides the transaction (one per dialog event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.model import ContributionSummary, Conversation, SubmitContribution
from storage.campaigns_db import CurrentCampaign
from storage.models import (
    Campaign,
    ChatIdentity,
    Contribution,
    ConversationRow,
    Outbox,
    Participant,
    Territory,
    Theme,
)

#: Characters of the need shown when a citizen lists their contributions.
EXCERPT_CHARS = 80


class StaleConversation(Exception):
    """The conversation changed since it was read (another event of the same citizen)."""


@dataclass(frozen=True)
class StoredConversation:
    conversation: Conversation
    campaign_id: int | None
    updated_at: datetime


@dataclass(frozen=True)
class ParticipantState:
    """A participant with their stored conversation and its campaign, read in one query."""

    participant: Participant
    stored: StoredConversation | None
    campaign: CurrentCampaign | None


async def load_state(session: AsyncSession, key: str) -> ParticipantState | None:
    """The participant of ``key`` (or None), their conversation and its campaign: one query
    per event instead of three (this is on every event's path)."""
    row = (
        await session.execute(
            select(
                Participant,
                ConversationRow.data,
                ConversationRow.campaign_id,
                ConversationRow.updated_at,
                Campaign.id,
                Campaign.code,
                Campaign.ref_prefix,
                Campaign.spec_hash,
            )
            .outerjoin(ConversationRow, ConversationRow.participant_id == Participant.id)
            .outerjoin(Campaign, Campaign.id == ConversationRow.campaign_id)
            .where(Participant.key == key)
        )
    ).first()
    if row is None:
        return None
    participant, data, campaign_id, updated_at, cid, code, ref_prefix, digest = row
    stored = None
    if data is not None:
        stored = StoredConversation(Conversation.from_dict(data), campaign_id, updated_at)
    campaign = CurrentCampaign(cid, code, ref_prefix, digest) if cid is not None else None
    return ParticipantState(participant, stored, campaign)


async def get_participant(session: AsyncSession, key: str) -> Participant | None:
    return await session.scalar(select(Participant).where(Participant.key == key))


async def create_participant(
    session: AsyncSession, key: str, channel: str, lang: str, now: datetime
) -> Participant:
    """Insert a participant (flushes: a concurrent twin makes this raise IntegrityError)."""
    participant = Participant(key=key, channel=channel, lang=lang, created_at=now)
    session.add(participant)
    await session.flush()
    return participant


async def load_conversation(
    session: AsyncSession, participant_id: int
) -> StoredConversation | None:
    row = (
        await session.execute(
            select(
                ConversationRow.data, ConversationRow.campaign_id, ConversationRow.updated_at
            ).where(ConversationRow.participant_id == participant_id)
        )
    ).first()
    if row is None:
        return None
    data: dict[str, Any] = row[0]
    return StoredConversation(Conversation.from_dict(data), row[1], row[2])


async def insert_conversation(
    session: AsyncSession,
    participant_id: int,
    campaign_id: int | None,
    conv: Conversation,
    now: datetime,
) -> None:
    session.add(
        ConversationRow(
            participant_id=participant_id,
            campaign_id=campaign_id,
            state=conv.state,
            data=conv.to_dict(),
            version=conv.version,
            updated_at=now,
        )
    )
    await session.flush()


async def update_conversation(
    session: AsyncSession,
    participant_id: int,
    campaign_id: int | None,
    conv: Conversation,
    expected_version: int,
    now: datetime,
) -> None:
    """Save ``conv`` if the stored version is still ``expected_version``, else raise
    :class:`StaleConversation` (optimistic concurrency)."""
    result = await session.execute(
        update(ConversationRow)
        .where(
            ConversationRow.participant_id == participant_id,
            ConversationRow.version == expected_version,
        )
        .values(
            campaign_id=campaign_id,
            state=conv.state,
            data=conv.to_dict(),
            version=conv.version,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise StaleConversation(f"conversation of participant {participant_id} changed")


async def find_contribution_reference(
    session: AsyncSession, participant_id: int, draft_id: int
) -> str | None:
    ref: str | None = await session.scalar(
        select(Contribution.reference).where(
            Contribution.participant_id == participant_id, Contribution.draft_id == draft_id
        )
    )
    return ref


async def next_number(
    session: AsyncSession, campaign_id: int, territory_code: str
) -> tuple[int, int]:
    """Atomically take the next contribution number of a territory: (territory id, number)."""
    row = (
        await session.execute(
            update(Territory)
            .where(Territory.campaign_id == campaign_id, Territory.code == territory_code)
            .values(last_number=Territory.last_number + 1)
            .returning(Territory.id, Territory.last_number)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if row is None:
        raise LookupError(f"territory {territory_code!r} is not in campaign {campaign_id}")
    return int(row[0]), int(row[1])


def make_reference(prefix: str, territory_code: str, number: int) -> str:
    return f"{prefix}-{territory_code}-{number:06d}"


async def insert_contribution(
    session: AsyncSession,
    *,
    participant_id: int,
    campaign_id: int,
    ref_prefix: str,
    channel: str,
    effect: SubmitContribution,
    now: datetime,
) -> str:
    """Store a submitted contribution (status ``pending``) and return its reference."""
    theme_id = await session.scalar(
        select(Theme.id).where(Theme.campaign_id == campaign_id, Theme.code == effect.theme)
    )
    if theme_id is None:
        raise LookupError(f"theme {effect.theme!r} is not in campaign {campaign_id}")
    territory_id, number = await next_number(session, campaign_id, effect.territory)
    reference = make_reference(ref_prefix, effect.territory, number)
    session.add(
        Contribution(
            reference=reference,
            campaign_id=campaign_id,
            territory_id=territory_id,
            theme_id=theme_id,
            custom_theme=effect.custom_theme,
            need=effect.need,
            solution=effect.solution,
            levers=effect.levers,
            profile=effect.profile,
            language=effect.language,
            channel=channel,
            consent_version=effect.consent_version,
            status="pending",
            participant_id=participant_id,
            draft_id=effect.draft_id,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    return reference


async def list_contributions(
    session: AsyncSession, participant_id: int, lang: str
) -> list[ContributionSummary]:
    """The participant's contributions, newest first."""
    rows = await session.execute(
        select(
            Contribution.reference,
            Contribution.created_at,
            Territory.name,
            Theme.label_fr,
            Theme.label_en,
            Contribution.custom_theme,
            Contribution.status,
            Contribution.need,
        )
        .join(Territory, Territory.id == Contribution.territory_id)
        .join(Theme, Theme.id == Contribution.theme_id)
        .where(Contribution.participant_id == participant_id)
        .order_by(Contribution.created_at.desc(), Contribution.id.desc())
    )
    items = []
    for reference, created_at, territory, label_fr, label_en, custom, status, need in rows:
        theme = custom or (label_en if lang == "en" else label_fr)
        excerpt = need if len(need) <= EXCERPT_CHARS else need[: EXCERPT_CHARS - 1].rstrip() + "…"
        items.append(ContributionSummary(reference, created_at, territory, theme, status, excerpt))
    return items


async def delete_participant(session: AsyncSession, participant_id: int) -> None:
    """Erase a participant and everything about them. Explicit deletes (not only the foreign
    key cascade) so that erasure does not depend on the backend's cascade settings."""
    for table in (Outbox, ChatIdentity, Contribution, ConversationRow):
        await session.execute(
            delete(table)
            .where(table.participant_id == participant_id)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        delete(Participant)
        .where(Participant.id == participant_id)
        .execution_options(synchronize_session=False)
    )
