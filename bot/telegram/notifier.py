"""Messages the bot sends on its own: the outbox (moderation news queued by the console) and
reminders for idle drafts.

Reminders: one per idle draft (idle longer than ``settings.reminder_after``), queued in the
outbox in the same transaction that sets ``conversations.reminded_at`` (so at most once), and
never queued nor sent during quiet hours (``quiet_hours_start``..``quiet_hours_end``, local time
of ``settings.timezone``).

Outbox: rows are claimed ``pending`` -> ``sending`` in one transaction (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several workers never take the same row), sent, then marked
``sent``. A crash between the claim and the send leaves the row ``sending``: it is not sent
again (at most once; a duplicated moderation notice is worse than a missing one, and the
citizen can always list their contributions with /mine). The claim time is kept
(``claimed_at``); the periodic maintenance (``storage.maintenance``) marks rows claimed longer
ago than ``settings.outbox_sending_timeout`` as ``failed`` ("interrupted").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from dialogs.messages import normalise_lang, t
from storage.db import session_factory
from storage.identity import ChatCipher
from storage.models import ChatIdentity, ConversationRow, Outbox, Participant
from storage.settings import Settings

log = logging.getLogger(__name__)

REASONS = ("offtopic", "abusive", "personal_data", "duplicate", "other")
MAX_ATTEMPTS = 5


def in_quiet_hours(settings: Settings, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(settings.timezone)).time()
    start, end = settings.quiet_hours_start, settings.quiet_hours_end
    return _between(local, start, end)


def _between(value: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= value < end
    return value >= start or value < end  # over midnight


def notice_text(lang: str, kind: str, params: dict[str, Any]) -> str:
    """The citizen-facing text of an outbox row."""
    msg_id = kind if kind.startswith("notify.") else f"notify.{kind}"
    values = {k: str(v) for k, v in params.items()}
    if msg_id == "notify.rejected":
        reason = values.get("reason", "other")
        if reason.startswith("reject_reason."):
            reason = reason.split(".", 1)[1]
        values["reason"] = t(lang, f"reject_reason.{reason if reason in REASONS else 'other'}")
    if msg_id == "notify.reminder":
        return t(lang, msg_id)
    return t(lang, msg_id, **values)


class Notifier:
    def __init__(
        self, settings: Settings, engine: AsyncEngine, bot: Bot, *, interval: float = 30.0
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.bot = bot
        self.interval = interval
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self.cipher = ChatCipher(settings)
        self.pg = engine.dialect.name == "postgresql"
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop = False
        self.sent = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="notifier")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stop:
            try:
                await self.run_once()
            except Exception as exc:  # the loop must survive outages; logged, never hidden
                log.warning("notifier round failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self, now: datetime | None = None) -> int:
        """Queue due reminders, then send what the outbox holds. Returns messages sent."""
        now = now or datetime.now(UTC)
        await self.queue_reminders(now)
        if not self.settings.notify_citizens:
            return 0
        return await self.send_pending(now)

    async def queue_reminders(self, now: datetime) -> int:
        from dialogs.flow import DRAFT_STATES

        if in_quiet_hours(self.settings, now):
            return 0
        cutoff = now - self.settings.reminder_after
        async with self.sessions() as session, session.begin():
            stmt = (
                select(ConversationRow)
                .where(
                    ConversationRow.state.in_(DRAFT_STATES),
                    ConversationRow.updated_at < cutoff,
                    ConversationRow.reminded_at.is_(None),
                )
                .limit(200)
            )
            if self.pg:
                stmt = stmt.with_for_update(skip_locked=True)
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

    async def _claim(self, now: datetime) -> list[Outbox]:
        async with self.sessions() as session, session.begin():
            stmt = select(Outbox).where(Outbox.status == "pending").order_by(Outbox.id).limit(50)
            if self.pg:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(await session.scalars(stmt))
            quiet = in_quiet_hours(self.settings, now)
            claimed_at = datetime.now(UTC)  # the real clock: what the recovery compares
            claimed = []
            for row in rows:
                if row.kind == "reminder" and quiet:
                    continue  # waits for the morning
                row.status = "sending"
                row.claimed_at = claimed_at
                row.attempts += 1
                claimed.append(row)
        return claimed

    async def send_pending(self, now: datetime) -> int:
        sent = 0
        while True:
            rows = await self._claim(now)
            if not rows:
                return sent
            before = sent
            for row in rows:
                status, error = await self._send(row)
                async with self.sessions() as session, session.begin():
                    values: dict[str, Any] = {"status": status, "last_error": error}
                    if status == "sent":
                        values["sent_at"] = datetime.now(UTC)
                        sent += 1
                    await session.execute(
                        update(Outbox).where(Outbox.id == row.id).values(**values)
                    )
            self.sent += sent - before
            if sent == before:
                return sent  # Telegram unreachable: next round

    async def _send(self, row: Outbox) -> tuple[str, str | None]:
        async with self.sessions() as session:
            ident = await session.get(ChatIdentity, row.participant_id)
            lang = await session.scalar(
                select(Participant.lang).where(Participant.id == row.participant_id)
            )
        if ident is None:
            return "failed", "no chat identity"
        if ident.blocked:
            return "failed", "blocked"
        chat_id = int(self.cipher.decrypt(ident.secret))
        text = notice_text(normalise_lang(lang), row.kind, dict(row.params or {}))
        try:
            await self.bot.send_message(chat_id, text)
        except Forbidden:
            await self._mark_blocked(row.participant_id)
            return "failed", "blocked"
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                await self._mark_blocked(row.participant_id)
                return "failed", "chat not found"
            return "failed", exc.message[:200]
        except (NetworkError, RetryAfter) as exc:
            if row.attempts >= MAX_ATTEMPTS:
                return "failed", type(exc).__name__
            return "pending", type(exc).__name__
        return "sent", None

    async def _mark_blocked(self, participant_id: int) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(ChatIdentity)
                .where(ChatIdentity.participant_id == participant_id)
                .values(blocked=True)
            )
