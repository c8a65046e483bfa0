"""A citizen's right of access: everything stored about one participant, as one JSON document
(schema: ``docs/my-data.schema.json``, version :data:`SCHEMA_ID`).

It holds what is about them and only that: their consent (notice version and time), language,
channel, each contribution (reference, territory, theme, the texts as published after
moderation and, when a moderator changed them, as they were sent; status; the reason of a
rejection, a code of ``storage.vocabulary.REJECT_REASONS``), the unfinished draft, the
notices queued for them, and whether a chat identity is kept (never the identity itself,
which they know: the encrypted chat id is not decrypted for this). Nothing about staff (who
moderated) and no internal note.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

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

SCHEMA_ID = "https://cnr-sante-bot.example/schemas/my-data/v1"
#: Keys of a draft's answers that are the citizen's own words or choices.
DRAFT_KEYS = ("territory", "theme", "custom_theme", "need", "solution", "levers", "profile")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def participant_data(
    db: AsyncConnection, participant_id: int, *, now: datetime
) -> dict[str, Any] | None:
    """The participant's data as a JSON-ready dict, or None if there is no such participant."""
    person = (
        await db.execute(
            select(
                Participant.channel,
                Participant.lang,
                Participant.consent_version,
                Participant.consent_at,
                Participant.created_at,
            ).where(Participant.id == participant_id)
        )
    ).first()
    if person is None:
        return None
    channel, lang, consent_version, consent_at, created_at = person
    contributions = [
        {
            "reference": row.reference,
            "campaign": row.campaign,
            "territory": row.territory,
            "theme": row.custom_theme or row.theme,
            "texts": {"need": row.need, "solution": row.solution, "levers": row.levers},
            "texts_as_sent": _as_sent(row.originals, row.need, row.solution, row.levers),
            "profile": row.profile,
            "language": row.language,
            "channel": row.channel,
            "consent_version": row.consent_version,
            "status": row.status,
            "reject_reason": row.reject_reason,
            "sent_at": _iso(row.created_at),
            "moderated_at": _iso(row.moderated_at),
        }
        for row in await db.execute(
            select(
                Contribution.reference,
                Campaign.name.label("campaign"),
                Territory.name.label("territory"),
                Theme.label_fr.label("theme"),
                Contribution.custom_theme,
                Contribution.need,
                Contribution.solution,
                Contribution.levers,
                Contribution.originals,
                Contribution.profile,
                Contribution.language,
                Contribution.channel,
                Contribution.consent_version,
                Contribution.status,
                Contribution.reject_reason,
                Contribution.created_at,
                Contribution.moderated_at,
            )
            .join(Campaign, Campaign.id == Contribution.campaign_id)
            .join(Territory, Territory.id == Contribution.territory_id)
            .join(Theme, Theme.id == Contribution.theme_id)
            .where(Contribution.participant_id == participant_id)
            .order_by(Contribution.created_at, Contribution.id)
        )
    ]
    draft_row = (
        await db.execute(
            select(ConversationRow.state, ConversationRow.data, ConversationRow.updated_at).where(
                ConversationRow.participant_id == participant_id
            )
        )
    ).first()
    draft = None
    if draft_row is not None:
        answers = (draft_row.data or {}).get("answers") or {}
        draft = {
            "step": draft_row.state,
            "answers": {k: answers[k] for k in DRAFT_KEYS if answers.get(k) not in (None, "")},
            "updated_at": _iso(draft_row.updated_at),
        }
    notices = [
        {
            "kind": row.kind,
            "reference": (row.params or {}).get("reference"),
            "status": row.status,
            "created_at": _iso(row.created_at),
            "sent_at": _iso(row.sent_at),
        }
        for row in await db.execute(
            select(Outbox.kind, Outbox.params, Outbox.status, Outbox.created_at, Outbox.sent_at)
            .where(Outbox.participant_id == participant_id)
            .order_by(Outbox.created_at, Outbox.id)
        )
    ]
    identity = await db.scalar(
        select(ChatIdentity.channel).where(ChatIdentity.participant_id == participant_id)
    )
    return {
        "$schema": SCHEMA_ID,
        "generated_at": now.isoformat(),
        "participant": {
            "channel": channel,
            "language": lang,
            "first_contact_at": _iso(created_at),
            "consent": {"notice_version": consent_version, "accepted_at": _iso(consent_at)},
            "chat_identity_kept": identity is not None,
        },
        "contributions": contributions,
        "draft": draft,
        "notices": notices,
    }


def _as_sent(
    originals: dict[str, Any] | None, need: str, solution: str, levers: str | None
) -> dict[str, Any] | None:
    """The texts as the citizen sent them, when a moderator changed one (else None)."""
    if not originals:
        return None
    published = {"need": need, "solution": solution, "levers": levers}
    return {key: originals.get(key, published[key]) for key in published}
