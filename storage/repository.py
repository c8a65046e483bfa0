"""Queries of the citizen side: participants, conversations, contributions.

Every function takes the caller's :class:`AsyncSession` and neither commits nor rolls back:
the service decides the transaction (one per dialog event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialogs.model import ContributionSummary, Conversation, SubmitContribution
from storage.campaigns_db import CurrentCampaign
from storage.models import (
    Campaign,
    ChatIdentity,
    Contribution,
    ConversationRow,
    InboundMessage,
    Outbox,
    Participant,
    Territory,
    Theme,
)

#: Characters of the need shown when a citizen lists their contributions.
EXCERPT_CHARS = 80


#: Where a query runs: the caller's session, or (cheaper, no unit of work: what the service
#: uses on every event) the connection of its transaction.
Executor = AsyncSession | AsyncConnection


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


_participants = _table(Participant)
_conversations = _table(ConversationRow)
_contributions = _table(Contribution)


class StaleConversation(Exception):
    """The conversation changed since it was read (another event of the same citizen)."""


@dataclass(frozen=True)
class StoredConversation:
    conversation: Conversation
    campaign_id: int | None
    updated_at: datetime


@dataclass
class ParticipantRow:
    """What an event needs of its participant (a plain row, not a session-tracked object:
    changes are written with explicit UPDATEs)."""

    id: int
    lang: str
    consent_version: str | None
    consent_at: datetime | None


@dataclass(frozen=True)
class ParticipantState:
    """A participant with their stored conversation and its campaign, read in one query."""

    participant: ParticipantRow
    stored: StoredConversation | None
    campaign: CurrentCampaign | None
    #: Whether the channel marked their chat unreachable (None: no chat identity stored).
    #: Only this flag is read here: the chat id itself stays in its own table.
    chat_blocked: bool | None = None


# Built once: the statements on every event's path (no per-event construction).
_LOAD_STATE = (
    select(
        _participants.c.id,
        _participants.c.lang,
        _participants.c.consent_version,
        _participants.c.consent_at,
        _conversations.c.data,
        _conversations.c.campaign_id,
        _conversations.c.updated_at,
        _table(Campaign).c.id,
        _table(Campaign).c.code,
        _table(Campaign).c.ref_prefix,
        _table(Campaign).c.spec_hash,
        _table(ChatIdentity).c.blocked,
    )
    .select_from(_participants)
    .outerjoin(_conversations, _conversations.c.participant_id == _participants.c.id)
    .outerjoin(_table(Campaign), _table(Campaign).c.id == _conversations.c.campaign_id)
    .outerjoin(_table(ChatIdentity), _table(ChatIdentity).c.participant_id == _participants.c.id)
    .where(_participants.c.key == bindparam("key"))
)
_INSERT_PARTICIPANT = insert(_participants).returning(_participants.c.id)
_UPDATE_PARTICIPANT = update(_participants).where(_participants.c.id == bindparam("pid"))
_INSERT_CONVERSATION = insert(_conversations)
_UPDATE_CONVERSATION = update(_conversations).where(
    _conversations.c.participant_id == bindparam("pid"),
    _conversations.c.version == bindparam("expected"),
)
_FIND_REFERENCE = select(_contributions.c.reference).where(
    _contributions.c.participant_id == bindparam("pid"),
    _contributions.c.draft_id == bindparam("draft"),
)
_THEME_ID = select(_table(Theme).c.id).where(
    _table(Theme).c.campaign_id == bindparam("cid"), _table(Theme).c.code == bindparam("code")
)
_NEXT_NUMBER = (
    update(_table(Territory))
    .where(
        _table(Territory).c.campaign_id == bindparam("cid"),
        _table(Territory).c.code == bindparam("tcode"),
    )
    .values(last_number=_table(Territory).c.last_number + 1)
    .returning(_table(Territory).c.id, _table(Territory).c.last_number)
)
_INSERT_CONTRIBUTION = insert(_contributions)


async def load_state(db: Executor, key: str) -> ParticipantState | None:
    """The participant of ``key`` (or None), their conversation and its campaign: one query
    per event instead of three (this is on every event's path)."""
    row = (await db.execute(_LOAD_STATE, {"key": key})).first()
    if row is None:
        return None
    pid, lang, consent_version, consent_at, data, campaign_id, updated_at = row[:7]
    cid, code, ref_prefix, digest, blocked = row[7:]
    stored = None
    if data is not None:
        stored = StoredConversation(Conversation.from_dict(data), campaign_id, updated_at)
    campaign = CurrentCampaign(cid, code, ref_prefix, digest) if cid is not None else None
    return ParticipantState(
        ParticipantRow(pid, lang, consent_version, consent_at),
        stored,
        campaign,
        None if blocked is None else bool(blocked),
    )


async def create_participant(
    session: AsyncSession, key: str, channel: str, lang: str, now: datetime
) -> Participant:
    """Insert a participant (flushes: a concurrent twin makes this raise IntegrityError)."""
    participant = Participant(key=key, channel=channel, lang=lang, created_at=now)
    session.add(participant)
    await session.flush()
    return participant


async def insert_participant(
    db: Executor, key: str, channel: str, lang: str, now: datetime
) -> ParticipantRow:
    """:func:`create_participant` as one Core statement, for the service's event path."""
    pid = (
        await db.execute(
            _INSERT_PARTICIPANT,
            {"key": key, "channel": channel, "lang": lang, "created_at": now},
        )
    ).scalar_one()
    return ParticipantRow(int(pid), lang, None, None)


async def update_participant(db: Executor, participant: ParticipantRow) -> None:
    """Write the participant's language and consent (after the event changed them)."""
    await db.execute(
        _UPDATE_PARTICIPANT,
        {
            "pid": participant.id,
            "lang": participant.lang,
            "consent_version": participant.consent_version,
            "consent_at": participant.consent_at,
        },
    )


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
    db: Executor,
    participant_id: int,
    campaign_id: int | None,
    conv: Conversation,
    now: datetime,
) -> None:
    await db.execute(
        _INSERT_CONVERSATION,
        {
            "participant_id": participant_id,
            "campaign_id": campaign_id,
            "state": conv.state,
            "data": conv.to_dict(),
            "version": conv.version,
            "updated_at": now,
        },
    )


async def update_conversation(
    db: Executor,
    participant_id: int,
    campaign_id: int | None,
    conv: Conversation,
    expected_version: int,
    now: datetime,
) -> None:
    """Save ``conv`` if the stored version is still ``expected_version``, else raise
    :class:`StaleConversation` (optimistic concurrency)."""
    result = await db.execute(
        _UPDATE_CONVERSATION,
        {
            "pid": participant_id,
            "expected": expected_version,
            "campaign_id": campaign_id,
            "state": conv.state,
            "data": conv.to_dict(),
            "version": conv.version,
            "updated_at": now,
        },
    )
    if getattr(result, "rowcount", 0) != 1:
        raise StaleConversation(f"conversation of participant {participant_id} changed")


async def find_contribution_reference(
    db: Executor, participant_id: int, draft_id: int
) -> str | None:
    ref: str | None = (
        await db.execute(_FIND_REFERENCE, {"pid": participant_id, "draft": draft_id})
    ).scalar()
    return ref


async def next_number(db: Executor, campaign_id: int, territory_code: str) -> tuple[int, int]:
    """Atomically take the next contribution number of a territory: (territory id, number)."""
    row = (await db.execute(_NEXT_NUMBER, {"cid": campaign_id, "tcode": territory_code})).first()
    if row is None:
        raise LookupError(f"territory {territory_code!r} is not in campaign {campaign_id}")
    return int(row[0]), int(row[1])


def make_reference(prefix: str, territory_code: str, number: int) -> str:
    return f"{prefix}-{territory_code}-{number:06d}"


async def insert_contribution(
    db: Executor,
    *,
    participant_id: int,
    campaign_id: int,
    ref_prefix: str,
    channel: str,
    effect: SubmitContribution,
    now: datetime,
) -> str:
    """Store a submitted contribution (status ``pending``) and return its reference."""
    theme_id = (await db.execute(_THEME_ID, {"cid": campaign_id, "code": effect.theme})).scalar()
    if theme_id is None:
        raise LookupError(f"theme {effect.theme!r} is not in campaign {campaign_id}")
    territory_id, number = await next_number(db, campaign_id, effect.territory)
    reference = make_reference(ref_prefix, effect.territory, number)
    await db.execute(
        _INSERT_CONTRIBUTION,
        {
            "reference": reference,
            "campaign_id": campaign_id,
            "territory_id": territory_id,
            "theme_id": theme_id,
            "custom_theme": effect.custom_theme,
            "need": effect.need,
            "solution": effect.solution,
            "levers": effect.levers,
            "profile": effect.profile,
            "language": effect.language,
            "channel": channel,
            "consent_version": effect.consent_version,
            "status": "pending",
            "participant_id": participant_id,
            "draft_id": effect.draft_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    return reference


async def list_contributions(
    db: Executor, participant_id: int, lang: str
) -> list[ContributionSummary]:
    """The participant's contributions, newest first."""
    rows = await db.execute(
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


_inbound = _table(InboundMessage)
_DELETES = (
    # What the inbox still holds of them (the web chat's stored replies): erased. The rows stay
    # (a re-delivered message must remain a no-op), and an unfinished one is the very event
    # being applied.
    update(_inbound)
    .where(
        _inbound.c.participant_key
        == select(_participants.c.key)
        .where(_participants.c.id == bindparam("pid"))
        .scalar_subquery(),
        _inbound.c.status.in_(("done", "failed")),
    )
    .values(payload=None, replies=None),
    *(
        delete(_table(table)).where(_table(table).c.participant_id == bindparam("pid"))
        for table in (Outbox, ChatIdentity, Contribution, ConversationRow)
    ),
    delete(_participants).where(_participants.c.id == bindparam("pid")),
)


async def delete_participant(db: Executor, participant_id: int) -> None:
    """Erase a participant and everything about them. Explicit deletes (not only the foreign
    key cascade) so that erasure does not depend on the backend's cascade settings."""
    for statement in _DELETES:
        await db.execute(statement, {"pid": participant_id})
