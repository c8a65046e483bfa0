"""Housekeeping that protects privacy: erase the texts of abandoned drafts.

The dialog resets a draft idle longer than ``settings.draft_ttl`` on the citizen's next event
(and says so); this erases the free texts of such drafts from the database even if that
citizen never comes back (run ``cnrbot db purge-drafts`` daily). The codes picked (territory,
theme, profile) stay, so the dialog still sees an expired draft and tells the citizen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.flow import FREE_TEXT_STATES
from storage.models import ConversationRow, Participant
from storage.repository import delete_participant

#: Answers typed by the citizen (the free-text steps of the dialog).
FREE_TEXT_KEYS: tuple[str, ...] = tuple(FREE_TEXT_STATES)


async def purge_expired_drafts(session: AsyncSession, now: datetime, ttl: timedelta) -> int:
    """Erase the free-text answers of conversations idle since before ``now - ttl``; return
    how many conversations were purged.

    The state, language, consent, codes picked and ``updated_at`` stay: on the citizen's next
    event the dialog sees the idle time, resets the draft and says it expired. The version is
    bumped so that an event handled concurrently with the purge re-reads the conversation.
    """
    cutoff = now - ttl
    rows = await session.execute(
        select(ConversationRow.participant_id, ConversationRow.version, ConversationRow.data).where(
            ConversationRow.updated_at < cutoff
        )
    )
    purged = 0
    for participant_id, version, data in rows.all():
        if not _has_texts(data):
            continue
        cleared = dict(data)
        answers = dict(data["answers"])
        for key in FREE_TEXT_KEYS:
            answers.pop(key, None)
        cleared["answers"] = answers
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


def _has_texts(data: Any) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        return False
    return any(data["answers"].get(key) for key in FREE_TEXT_KEYS)
