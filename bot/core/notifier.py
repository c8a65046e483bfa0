"""Messages sent to citizens on the system's own initiative: the outbox (moderation news
queued by the console) and reminders of idle drafts, for every channel.

Channels that push (Telegram) give the notifier a :class:`Pusher`; it claims their citizens'
notices and sends them, trying again after a network error or a timeout (``storage.outbox``
says what that guarantees: queued once; a crash may lose a notice, a timed-out send that did
arrive is sent again). The web chat cannot push: it shows a
citizen's notices at their next visit (:func:`notices_for`), and its citizens get no reminders.

Reminders: one per idle draft (idle longer than ``settings.reminder_after``), queued in the
outbox in the same transaction that sets ``conversations.reminded_at`` (so at most once), and
never queued nor sent during quiet hours (``quiet_hours_start``..``quiet_hours_end``, local time
of ``settings.timezone``). Every notice is written in the citizen's language.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from bot import metrics
from dialogs.flow import DRAFT_STATES
from dialogs.messages import normalise_lang
from dialogs.notices import notice_text
from storage.contacts import Contacts
from storage.notify import OutboxListener
from storage.outbox import Claimed, OutboxStore
from storage.settings import Settings

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Pushed:
    """What became of one push: ``sent``; ``blocked`` (the citizen refuses the channel's
    messages, or their chat is gone: marked, not retried); ``retry`` (the channel is out of
    reach); ``failed`` (refused for another reason)."""

    outcome: str
    error: str | None = None


class Pusher(Protocol):
    """A channel that can send a citizen a message on its own initiative."""

    name: str

    async def push(self, secret: str, text: str) -> Pushed:
        """Send ``text`` to the citizen reached through ``secret`` (their chat id)."""


class Notifier:
    """Sends the outbox's notices as soon as they are queued: on PostgreSQL an
    :class:`~storage.notify.OutboxListener` wakes it when the console commits a decision
    (``LISTEN``/``NOTIFY``); it also looks every ``interval`` seconds
    (``settings.notify_poll_interval``): the safety net there, the only way on SQLite."""

    def __init__(
        self,
        settings: Settings,
        store: OutboxStore,
        contacts: Contacts,
        pusher: Pusher,
        *,
        interval: float | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.contacts = contacts
        self.pusher = pusher
        if interval is None:
            interval = settings.notify_poll_interval.total_seconds()
        self.interval = interval
        #: PostgreSQL: wakes the loop when a notice is queued (None on SQLite).
        self.listener = OutboxListener(store.engine, self.wake) if store.pg else None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop = False
        self.sent = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="notifier")
            if self.listener is not None:
                self.listener.start()

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stop = True
        if self.listener is not None:
            await self.listener.stop()
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
                metrics.error(exc, "notifier")
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
        if in_quiet_hours(self.settings, now):
            return 0
        return await self.store.queue_reminders(
            now, now - self.settings.reminder_after, DRAFT_STATES, [self.pusher.name]
        )

    async def send_pending(self, now: datetime) -> int:
        sent = 0
        quiet = in_quiet_hours(self.settings, now)
        while True:
            rows = await self.store.claim([self.pusher.name], skip_reminders=quiet)
            if not rows:
                return sent
            before = sent
            for row in rows:
                status, error = await self._send(row)
                await self.store.mark(row.id, status, error)
                metrics.notice(self.pusher.name, status)
                if status == "sent":
                    sent += 1
            self.sent += sent - before
            if sent == before:
                return sent  # the channel is unreachable: next round

    async def _send(self, row: Claimed) -> tuple[str, str | None]:
        recipient = await self.store.recipient(row.participant_id)
        if recipient is None:
            return "failed", "no chat identity"
        if recipient.blocked:
            return "failed", "blocked"
        text = notice_text(normalise_lang(recipient.lang), row.kind, row.params)
        pushed = await self.pusher.push(self.contacts.reveal(recipient.secret), text)
        if pushed.outcome == "blocked":
            await self.contacts.set_blocked(row.participant_id)
            return "failed", pushed.error or "blocked"
        if pushed.outcome == "retry":
            if row.attempts >= MAX_ATTEMPTS:
                return "failed", pushed.error
            return "pending", pushed.error
        if pushed.outcome == "failed":
            return "failed", (pushed.error or "")[:200]
        return "sent", None


async def notices_for(store: OutboxStore, participant_key: str, lang: str) -> list[str]:
    """The texts of a citizen's pending notices, taken (shown once): for channels that cannot
    push, at the citizen's next visit."""
    return [notice_text(lang, n.kind, n.params) for n in await store.take_notices(participant_key)]
