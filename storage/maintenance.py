"""Housekeeping that protects privacy: erase the answers of abandoned drafts.

The dialog already resets a draft idle longer than ``settings.draft_ttl`` on the citizen's
next event; this erases the answers of such drafts from the database even if that citizen
never comes back (run ``cnrbot db purge-drafts`` daily).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConversationRow, Participant
from storage.repository import delete_participant


async def purge_expired_drafts(session: AsyncSession, now: datetime, ttl: timedelta) -> int:
    """Erase the answers of conversations idle since before ``now - ttl``; return how many.

    The state, language, consent and ``updated_at`` stay: on the citizen's next event the
    dialog sees the idle time and starts them afresh. The version is bumped so that an event
    handled concurrently with the purge re-reads the conversation.
    """
    cutoff = now - ttl
    rows = await session.execute(
        select(ConversationRow.participant_id, ConversationRow.version, ConversationRow.data).where(
            ConversationRow.updated_at < cutoff
        )
    )
    purged = 0
    for participant_id, version, data in rows.all():
        if not _has_answers(data):
            continue
        cleared = dict(data)
        cleared["answers"] = {}
        cleared["version"] = version + 1
        result = await session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.participant_id == participant_id,
                ConversationRow.version == version,
            )
            .values(data=cleared, version=version + 1)
            .execution_options(synchronize_session=False)
        )
        purged += int(getattr(result, "rowcount", 0) or 0)
    return purged


async def purge_unconsented(session: AsyncSession, now: datetime, ttl: timedelta) -> int:
    """Erase people who saw the privacy notice but never answered it (idle since before
    ``now - ttl``): without consent nothing about them is kept longer."""
    stale = await session.scalars(
        select(Participant.id)
        .join(ConversationRow, ConversationRow.participant_id == Participant.id, isouter=True)
        .where(Participant.consent_version.is_(None))
        .where((ConversationRow.updated_at < now - ttl) | ConversationRow.updated_at.is_(None))
        .where(Participant.created_at < now - ttl)
    )
    ids = list(stale)
    for participant_id in ids:
        await delete_participant(session, participant_id)
    return len(ids)


def _has_answers(data: Any) -> bool:
    return isinstance(data, dict) and bool(data.get("answers"))
