"""Queries of the citizen side: participants, conversations, contributions.

Every function takes the caller's :class:`AsyncSession` and neither commits nor rolls back:
the service decides the transaction (one per dialog event).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
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
    #: Whether they have sent a contribution (any status).
    contributed: bool = False


# Built once: the statements on every event's path (no per-event construction).
_STATE = (
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
        exists().where(_contributions.c.participant_id == _participants.c.id),
    )
    .select_from(_participants)
    .outerjoin(_conversations, _conversations.c.participant_id == _participants.c.id)
    .outerjoin(_table(Campaign), _table(Campaign).c.id == _conversations.c.campaign_id)
    .outerjoin(_table(ChatIdentity), _table(ChatIdentity).c.participant_id == _participants.c.id)
)
_LOAD_STATE = _STATE.where(_participants.c.key == bindparam("key"))
#: The same for several keys at once (a group of events, ``DialogService.handle_many``): an
#: expanding ``IN`` on SQLite, ``= ANY(array)`` on PostgreSQL (one statement text whatever the
#: number of keys, so prepared once per connection).
_LOAD_STATES = {
    "sqlite": _STATE.add_columns(_participants.c.key).where(
        _participants.c.key.in_(bindparam("keys", expanding=True))
    ),
    "postgresql": _STATE.add_columns(_participants.c.key).where(
        _participants.c.key == func.any(bindparam("keys", type_=ARRAY(String)))
    ),
}
_UPDATE_PARTICIPANT = update(_participants).where(_participants.c.id == bindparam("pid"))
_NEW_PARTICIPANTS = (
    func.unnest(
        bindparam("keys", type_=ARRAY(String)),
        bindparam("channels", type_=ARRAY(String)),
        bindparam("langs", type_=ARRAY(String)),
        bindparam("times", type_=ARRAY(DateTime(timezone=True))),
    )
    .table_valued("key", "channel", "lang", "created_at")
    .render_derived(name="p")
)
_INSERT_PARTICIPANTS = insert(_participants).returning(_participants.c.id, _participants.c.key)
#: Several participants in one statement on PostgreSQL (one text whatever their number).
_INSERT_PARTICIPANTS_PG = (
    insert(_participants)
    .from_select(["key", "channel", "lang", "created_at"], select(_NEW_PARTICIPANTS))
    .returning(_participants.c.id, _participants.c.key)
)
_INSERT_CONVERSATION = insert(_conversations)
_UPDATE_CONVERSATION = update(_conversations).where(
    _conversations.c.participant_id == bindparam("pid"),
    _conversations.c.version == bindparam("expected"),
)
#: Several conversations in one statement on PostgreSQL, each only if its version is still
#: the one read (RETURNING tells which were saved): ``UPDATE … FROM unnest(arrays)``, one
#: statement text whatever their number. (SQLite: the single UPDATE run for each row in one
#: call, its row count summed.)
_UPDATES = (
    func.unnest(
        bindparam("pids", type_=ARRAY(Integer)),
        bindparam("expected", type_=ARRAY(Integer)),
        bindparam("campaigns", type_=ARRAY(Integer)),
        bindparam("states", type_=ARRAY(String)),
        bindparam("datas", type_=ARRAY(Text)),
        bindparam("versions", type_=ARRAY(Integer)),
        bindparam("times", type_=ARRAY(DateTime(timezone=True))),
    )
    .table_valued("pid", "expected", "campaign_id", "state", "data", "version", "updated_at")
    .render_derived(name="v")
)
_UPDATE_CONVERSATIONS_PG = (
    update(_conversations)
    .where(
        _conversations.c.participant_id == _UPDATES.c.pid,
        _conversations.c.version == _UPDATES.c.expected,
    )
    .values(
        campaign_id=_UPDATES.c.campaign_id,
        state=_UPDATES.c.state,
        data=sql_cast(_UPDATES.c.data, JSON),
        version=_UPDATES.c.version,
        updated_at=_UPDATES.c.updated_at,
    )
    .returning(_conversations.c.participant_id)
)
_THEME_ID = select(_table(Theme).c.id).where(
    _table(Theme).c.campaign_id == bindparam("cid"), _table(Theme).c.code == bindparam("code")
)
_NEXT_NUMBERS = (
    update(_table(Territory))
    .where(
        _table(Territory).c.campaign_id == bindparam("cid"),
        _table(Territory).c.code == bindparam("tcode"),
    )
    .values(last_number=_table(Territory).c.last_number + bindparam("n", type_=Integer))
    .returning(_table(Territory).c.id, _table(Territory).c.last_number)
)
_INSERT_CONTRIBUTION = insert(_contributions)


async def load_state(db: Executor, key: str) -> ParticipantState | None:
    """The participant of ``key`` (or None), their conversation and its campaign: one query
    per event instead of three (this is on every event's path)."""
    row = (await db.execute(_LOAD_STATE, {"key": key})).first()
    return None if row is None else _state(row)


async def load_states(db: AsyncConnection, keys: Sequence[str]) -> dict[str, ParticipantState]:
    """:func:`load_state` of several keys in one query (those unknown are left out)."""
    statement = _LOAD_STATES["postgresql" if db.dialect.name == "postgresql" else "sqlite"]
    rows = await db.execute(statement, {"keys": list(keys)})
    return {row[-1]: _state(row) for row in rows}


def _state(row: Any) -> ParticipantState:
    pid, lang, consent_version, consent_at, data, campaign_id, updated_at = row[:7]
    cid, code, ref_prefix, digest, blocked, contributed = row[7:13]
    stored = None
    if data is not None:
        stored = StoredConversation(Conversation.from_dict(data), campaign_id, updated_at)
    campaign = CurrentCampaign(cid, code, ref_prefix, digest) if cid is not None else None
    return ParticipantState(
        ParticipantRow(pid, lang, consent_version, consent_at),
        stored,
        campaign,
        None if blocked is None else bool(blocked),
        bool(contributed),
    )


async def create_participant(
    session: AsyncSession, key: str, channel: str, lang: str, now: datetime
) -> Participant:
    """Insert a participant (flushes: a concurrent twin makes this raise IntegrityError)."""
    participant = Participant(key=key, channel=channel, lang=lang, created_at=now)
    session.add(participant)
    await session.flush()
    return participant


async def insert_participants(
    db: AsyncConnection, rows: Sequence[tuple[str, str, str, datetime]]
) -> dict[str, ParticipantRow]:
    """Insert participants, given as (key, channel, language, time), in one statement: their
    rows by key. A twin inserted meanwhile makes it raise IntegrityError."""
    if db.dialect.name == "postgresql":
        result = await db.execute(
            _INSERT_PARTICIPANTS_PG,
            {
                "keys": [r[0] for r in rows],
                "channels": [r[1] for r in rows],
                "langs": [r[2] for r in rows],
                "times": [r[3] for r in rows],
            },
        )
    else:
        result = await db.execute(
            _INSERT_PARTICIPANTS,
            [{"key": k, "channel": c, "lang": lang, "created_at": t} for k, c, lang, t in rows],
        )
    langs = {r[0]: r[2] for r in rows}
    return {key: ParticipantRow(int(pid), langs[key], None, None) for pid, key in result}


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


def conversation_row(
    participant_id: int,
    campaign_id: int | None,
    conv: Conversation,
    now: datetime,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """The parameters that save a conversation (``expected_version``: of an update)."""
    row = {
        "campaign_id": campaign_id,
        "state": conv.state,
        "data": conv.to_dict(),
        "version": conv.version,
        "updated_at": now,
    }
    if expected_version is None:
        row["participant_id"] = participant_id
    else:
        row["pid"] = participant_id
        row["expected"] = expected_version
    return row


async def insert_conversations(db: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert several conversations (rows of :func:`conversation_row`) in one call."""
    if rows:
        await db.execute(_INSERT_CONVERSATION, list(rows))


async def update_conversations(db: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """:func:`update_conversation` for several conversations in one call (rows of
    :func:`conversation_row` with their expected version): raises
    :class:`StaleConversation` unless every one was still at its expected version (the caller
    then rolls back: some may have been saved)."""
    if not rows:
        return
    if db.dialect.name == "postgresql":
        result = await db.execute(
            _UPDATE_CONVERSATIONS_PG,
            {
                "pids": [r["pid"] for r in rows],
                "expected": [r["expected"] for r in rows],
                "campaigns": [r["campaign_id"] for r in rows],
                "states": [r["state"] for r in rows],
                "datas": [json.dumps(r["data"]) for r in rows],
                "versions": [r["version"] for r in rows],
                "times": [r["updated_at"] for r in rows],
            },
        )
        saved = len(result.all())
    else:
        result = await db.execute(_UPDATE_CONVERSATION, list(rows))
        saved = result.rowcount
    if saved != len(rows):
        raise StaleConversation(f"{len(rows) - saved} of {len(rows)} conversations changed")


async def update_participants(db: AsyncConnection, participants: Sequence[ParticipantRow]) -> None:
    """:func:`update_participant` for several participants in one call."""
    if participants:
        await db.execute(
            _UPDATE_PARTICIPANT,
            [
                {
                    "pid": p.id,
                    "lang": p.lang,
                    "consent_version": p.consent_version,
                    "consent_at": p.consent_at,
                }
                for p in participants
            ],
        )


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
    row = conversation_row(participant_id, campaign_id, conv, now, expected_version)
    await update_conversation_row(db, row)


async def update_conversation_row(db: Executor, row: dict[str, Any]) -> None:
    """:func:`update_conversation` of a row of :func:`conversation_row`."""
    result = await db.execute(_UPDATE_CONVERSATION, row)
    if getattr(result, "rowcount", 0) != 1:
        raise StaleConversation(f"conversation of participant {row['pid']} changed")


async def find_theme_id(db: Executor, campaign_id: int, code: str) -> int:
    """The id of the theme ``code`` of a campaign."""
    found = (await db.execute(_THEME_ID, {"cid": campaign_id, "code": code})).scalar()
    if found is None:
        raise LookupError(f"theme {code!r} is not in campaign {campaign_id}")
    return int(found)


async def next_numbers(
    db: Executor, campaign_id: int, territory_code: str, n: int
) -> tuple[int, int]:
    """Atomically take the next ``n`` contribution numbers of a territory: (territory id, the
    last of them; the first is ``last - n + 1``)."""
    params = {"cid": campaign_id, "tcode": territory_code, "n": n}
    row = (await db.execute(_NEXT_NUMBERS, params)).first()
    if row is None:
        raise LookupError(f"territory {territory_code!r} is not in campaign {campaign_id}")
    return int(row[0]), int(row[1])


def make_reference(prefix: str, territory_code: str, number: int) -> str:
    return f"{prefix}-{territory_code}-{number:06d}"


def contribution_row(
    *,
    reference: str,
    participant_id: int,
    campaign_id: int,
    territory_id: int,
    theme_id: int,
    channel: str,
    effect: SubmitContribution,
    now: datetime,
) -> dict[str, Any]:
    """The parameters that store a submitted contribution (status ``pending``)."""
    return {
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
    }


async def insert_contributions(db: Executor, rows: Sequence[dict[str, Any]]) -> None:
    """Store several contributions (rows of :func:`contribution_row`) in one call."""
    if rows:
        await db.execute(_INSERT_CONTRIBUTION, list(rows))


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
