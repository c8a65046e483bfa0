"""The outbox: notices for citizens (moderation news queued by the console, reminders of idle
drafts), and how to reach them.

A notice is queued once: ``dedupe_key`` is unique per meaning ("approved:HDF-OISE-000042", a
reminder per draft and version), so queuing it again inserts nothing. Its delivery is neither
"exactly once" nor strictly "at most once":

* channels that push (Telegram) claim rows ``pending`` -> ``sending`` in one transaction
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never take the same row), send,
  then mark them ``sent``, ``failed`` (refused, blocked), or ``pending`` again when the send
  ended in a network error or a timeout, tried again up to ``bot.core.notifier.MAX_ATTEMPTS``
  claims. A crash between the claim and the mark leaves the row ``sending``: it is not sent
  again (the maintenance marks it failed after ``settings.outbox_sending_timeout``), so a crash
  may lose a notice. A timeout of a send that Telegram did accept puts the row back to
  ``pending``: the next try sends it a second time (the unique key deduplicates the queuing,
  not the delivery).
* the web chat, which cannot push, takes a citizen's pending notices when they next visit
  (:func:`take_notices`: marked ``sent`` in the transaction that reads them): shown at most
  once; a page lost on its way to the browser is not shown again.

Reminders are queued only for citizens of channels that push: a reminder shown to someone who
came back is pointless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import session_factory
from storage.models import ChatIdentity, ConversationRow, Outbox, Participant

#: Rows claimed per round.
CLAIM_BATCH = 50
#: Reminders queued per round.
REMINDER_BATCH = 200


@dataclass(frozen=True)
class Claimed:
    """A notice claimed for sending."""

    id: int
    participant_id: int
    kind: str
    params: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Recipient:
    """How to reach a participant: the channel's encrypted secret (a chat id), whether the
    channel marked it unreachable, and their language."""

    secret: bytes
    blocked: bool
    lang: str | None


@dataclass(frozen=True)
class Notice:
    """A notice taken for showing (web chat): kind, parameters, language."""

    kind: str
    params: dict[str, Any]


class OutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self.pg = engine.dialect.name == "postgresql"

    async def queue_reminders(
        self,
        now: datetime,
        idle_before: datetime,
        draft_states: Sequence[str],
        channels: Sequence[str],
    ) -> int:
        """One reminder per draft idle since before ``idle_before`` of a participant of
        ``channels``, queued in the same transaction that sets ``reminded_at`` (at most
        once)."""
        async with self.sessions() as session, session.begin():
            stmt = (
                select(ConversationRow)
                .join(Participant, Participant.id == ConversationRow.participant_id)
                .where(
                    ConversationRow.state.in_(draft_states),
                    ConversationRow.updated_at < idle_before,
                    ConversationRow.reminded_at.is_(None),
                    Participant.channel.in_(channels),
                )
                .limit(REMINDER_BATCH)
            )
            if self.pg:
                stmt = stmt.with_for_update(skip_locked=True, of=ConversationRow)
            rows = list(await session.scalars(stmt))
            for row in rows:
                draft = (row.data or {}).get("draft_id", 0)
                session.add(
                    Outbox(
                        participant_id=row.participant_id,
                        dedupe_key=f"reminder:{row.participant_id}:{draft}:{row.version}",
                        kind="reminder",
                        params={},
                        status="pending",
                        created_at=now,
                    )
                )
                row.reminded_at = now
        return len(rows)

    async def claim(self, channels: Sequence[str], *, skip_reminders: bool) -> list[Claimed]:
        """Claim pending notices of participants of ``channels`` (reminders left waiting when
        ``skip_reminders``: the quiet hours)."""
        async with self.sessions() as session, session.begin():
            stmt = (
                select(Outbox)
                .join(Participant, Participant.id == Outbox.participant_id)
                .where(Outbox.status == "pending", Participant.channel.in_(channels))
                .order_by(Outbox.id)
                .limit(CLAIM_BATCH)
            )
            if skip_reminders:
                stmt = stmt.where(Outbox.kind != "reminder")
            if self.pg:
                stmt = stmt.with_for_update(skip_locked=True, of=Outbox)
            rows = list(await session.scalars(stmt))
            claimed_at = datetime.now(UTC)  # the real clock: what the recovery compares
            claimed = []
            for row in rows:
                row.status = "sending"
                row.claimed_at = claimed_at
                row.attempts += 1
                claimed.append(
                    Claimed(
                        row.id, row.participant_id, row.kind, dict(row.params or {}), row.attempts
                    )
                )
        return claimed

    async def mark(self, row_id: int, status: str, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status == "sent":
            values["sent_at"] = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            await session.execute(update(Outbox).where(Outbox.id == row_id).values(**values))

    async def recipient(self, participant_id: int) -> Recipient | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(ChatIdentity.secret, ChatIdentity.blocked, Participant.lang)
                    .join(Participant, Participant.id == ChatIdentity.participant_id)
                    .where(ChatIdentity.participant_id == participant_id)
                )
            ).first()
        return None if row is None else Recipient(row[0], bool(row[1]), row[2])

    async def take_notices(self, participant_key: str, limit: int = 20) -> list[Notice]:
        """The pending notices of a participant, marked sent (shown) in the same transaction:
        a notice is shown once."""
        async with self.sessions() as session, session.begin():
            stmt = (
                select(Outbox)
                .join(Participant, Participant.id == Outbox.participant_id)
                .where(Participant.key == participant_key, Outbox.status == "pending")
                .order_by(Outbox.id)
                .limit(limit)
            )
            if self.pg:
                stmt = stmt.with_for_update(skip_locked=True, of=Outbox)
            rows = list(await session.scalars(stmt))
            now = datetime.now(UTC)
            for row in rows:
                row.status = "sent"
                row.sent_at = now
                row.claimed_at = now
                row.attempts += 1
            return [Notice(row.kind, dict(row.params or {})) for row in rows]
