"""Housekeeping that protects privacy and keeps the tables small.

* Expired drafts: the dialog resets a draft idle longer than ``settings.draft_ttl`` on the
  citizen's next event (and says so); :func:`purge_expired_drafts` erases the free texts of such
  drafts from the database even if that citizen never comes back. The codes picked (territory,
  theme, profile) stay, so the dialog still sees an expired draft and tells the citizen.
* Processed messages (every channel's inbox): :func:`purge_processed_updates` erases the
  (encrypted) payload of every finished message and deletes those processed longer ago than
  ``settings.inbound_retention`` (at least 24 h: Telegram re-delivers for 24 h, and the row is
  what makes a re-delivered message a no-op). Pending and applied messages are never touched.
  :func:`erase_old_replies` erases the web chat's stored replies after
  ``settings.web_reply_retention``.
* Web chat rate counters (``storage.ratelimit``) whose window is over are deleted.
* Identities after the campaign: :func:`erase_identities_after_close` erases, once every
  campaign a participant took part in closed more than ``settings.identity_retention`` ago,
  what ties them to a person (the encrypted chat id, the conversation, pending notices) and
  replaces their pseudonymous key with a random one: their contributions stay, tied to nobody.
* Rejected texts: :func:`erase_rejected_texts` erases the texts of contributions rejected
  more than ``settings.rejected_text_retention`` ago (reference, reason and dates stay).
* Dashboard tallies (``storage.tallies``): the deltas the triggers append are folded into
  one row per group, so the console's dashboard reads a few hundred rows.
* Interrupted notices: :func:`recover_interrupted_sends` marks outbox rows claimed
  (``sending``) longer ago than ``settings.outbox_sending_timeout`` as ``failed`` with
  ``last_error = "interrupted"``; they are never sent again (a crash loses a notice rather than
  repeating it).

:func:`run_maintenance` runs them, each step in its own transaction (``dry_run``: each rolled
back, the report then tells what would be erased); the running bot does it
every ``settings.maintenance_interval`` (:class:`MaintenanceLoop`), ``cnrbot db maintenance``
once. Every step is idempotent (conditional updates, deletes by condition), so several workers
may run it at the same time; on PostgreSQL a transaction-level advisory lock per step lets one
worker do a step while the others skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, null, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialogs.flow import FREE_TEXT_STATES
from storage.db import cancel_task, session_factory
from storage.models import (
    Campaign,
    ChatIdentity,
    Contribution,
    ConversationRow,
    InboundMessage,
    Outbox,
    Participant,
)
from storage.ratelimit import purge_expired
from storage.repository import delete_participant
from storage.settings import Settings
from storage.tallies import fold_tallies

log = logging.getLogger(__name__)

#: Statuses of inbound messages that are over (see ``storage.inbox``).
FINISHED_UPDATES: tuple[str, ...] = ("done", "failed")
#: Telegram re-delivers an unacknowledged update for up to 24 hours.
REDELIVERY_WINDOW = timedelta(hours=24)
INTERRUPTED = "interrupted"
#: Namespace of this module's PostgreSQL advisory locks (two-key form: a key space apart from
#: the processor's one-key locks).
LOCK_NAMESPACE = 0x434E52

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


# --- identities and rejected texts ------------------------------------------------------------

#: Prefix of the random key an anonymised participant gets (no HMAC ever equals it).
ERASED_KEY_PREFIX = "erased-"
#: What replaces an erased text (the columns are not nullable).
ERASED_TEXT = ""


async def erase_identities_after_close(
    session: AsyncSession, now: datetime, keep: timedelta
) -> int:
    """Anonymise participants whose every campaign closed before ``now - keep``; return how
    many. Their contributions stay (counted, exported); nothing links them to an account or a
    browser any more."""
    cutoff = (now - keep).date()
    live = select(Campaign.id).where(Campaign.closes_on >= cutoff)
    over = select(Campaign.id).where(Campaign.closes_on < cutoff)
    took_part_in_over = Participant.id.in_(
        select(ConversationRow.participant_id).where(ConversationRow.campaign_id.in_(over))
    ) | Participant.id.in_(
        select(Contribution.participant_id).where(Contribution.campaign_id.in_(over))
    )
    still_live = Participant.id.in_(
        select(ConversationRow.participant_id).where(ConversationRow.campaign_id.in_(live))
    ) | Participant.id.in_(
        select(Contribution.participant_id).where(Contribution.campaign_id.in_(live))
    )
    ids = list(
        await session.scalars(
            select(Participant.id).where(
                took_part_in_over,
                ~still_live,
                ~Participant.key.startswith(ERASED_KEY_PREFIX),
            )
        )
    )
    for participant_id in ids:
        for model in (ChatIdentity, ConversationRow):
            await session.execute(
                delete(model)
                .where(model.participant_id == participant_id)
                .execution_options(synchronize_session=False)
            )
        await session.execute(
            delete(Outbox)
            .where(Outbox.participant_id == participant_id, Outbox.status == "pending")
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Participant)
            .where(Participant.id == participant_id)
            .values(key=ERASED_KEY_PREFIX + secrets.token_hex(28))
            .execution_options(synchronize_session=False)
        )
    return len(ids)


async def erase_rejected_texts(session: AsyncSession, now: datetime, keep: timedelta) -> int:
    """Erase the texts of contributions rejected before ``now - keep``; return how many."""
    has_text = (
        (Contribution.need != ERASED_TEXT)
        | (Contribution.solution != ERASED_TEXT)
        | Contribution.levers.is_not(None)
        | Contribution.custom_theme.is_not(None)
        | Contribution.originals.is_not(None)
        | Contribution.reject_note.is_not(None)
        | Contribution.citizen_reason.is_not(None)
    )
    result = await session.execute(
        update(Contribution)
        .where(
            Contribution.status == "rejected",
            Contribution.moderated_at < now - keep,
            has_text,
        )
        .values(
            need=ERASED_TEXT,
            solution=ERASED_TEXT,
            levers=None,
            custom_theme=None,
            originals=null(),  # SQL NULL, not JSON null
            reject_note=None,
            citizen_reason=None,
            version=Contribution.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


# --- inbound updates --------------------------------------------------------------------------


async def erase_finished_payloads(session: AsyncSession) -> int:
    """Erase the encrypted payload of every finished (done or failed) update still holding
    one; return how many were erased."""
    result = await session.execute(
        update(InboundMessage)
        .where(InboundMessage.status.in_(FINISHED_UPDATES), InboundMessage.payload.is_not(None))
        .values(payload=None)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def purge_processed_updates(session: AsyncSession, now: datetime, keep: timedelta) -> int:
    """Delete finished (done or failed) updates processed before ``now - keep``; return how
    many were deleted. Payloads of finished updates kept are erased too. Pending and applied
    updates are never touched.

    ``keep`` must be at least 24 hours: a deleted ``update_id`` re-delivered by Telegram would
    be recorded and applied again.
    """
    if keep < REDELIVERY_WINDOW:
        raise ValueError("keep must be at least 24 hours (Telegram re-delivers for 24 hours)")
    await erase_finished_payloads(session)
    cutoff = now - keep
    # processed_at >= received_at: both are before the cutoff.
    processed = func.coalesce(InboundMessage.processed_at, InboundMessage.received_at)
    result = await session.execute(
        delete(InboundMessage)
        .where(
            InboundMessage.status.in_(FINISHED_UPDATES),
            InboundMessage.received_at < cutoff,
            processed < cutoff,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def erase_old_replies(session: AsyncSession, now: datetime, keep: timedelta) -> int:
    """Erase the stored replies (web chat) of messages processed before ``now - keep``: they
    serve a reloaded page or a retried request, not more. Returns how many were erased."""
    result = await session.execute(
        update(InboundMessage)
        .where(InboundMessage.replies.is_not(None), InboundMessage.processed_at < now - keep)
        .values(replies=None)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


# --- outbox -----------------------------------------------------------------------------------


async def recover_interrupted_sends(session: AsyncSession, now: datetime, after: timedelta) -> int:
    """Mark outbox rows claimed (``sending``) before ``now - after`` as failed
    ("interrupted"): the sender crashed between the claim and the end of the send. They are
    not sent again (lost rather than perhaps repeated). Returns how many rows were marked."""
    cutoff = now - after
    result = await session.execute(
        update(Outbox)
        .where(
            Outbox.status == "sending",
            (Outbox.claimed_at < cutoff)
            # claimed before claimed_at existed (migration 0002): judged by their age
            | (Outbox.claimed_at.is_(None) & (Outbox.created_at < cutoff)),
        )
        .values(status="failed", last_error=INTERRUPTED)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def outbox_counts(session: AsyncSession) -> dict[str, int]:
    """Outbox rows per status (every status present, zero when none)."""
    counts = {status: 0 for status in ("pending", "sending", "sent", "failed")}
    rows = await session.execute(select(Outbox.status, func.count()).group_by(Outbox.status))
    for status, count in rows.all():
        counts[str(status)] = int(count)
    return counts


# --- all together -----------------------------------------------------------------------------


@dataclass
class MaintenanceReport:
    """Counts of one maintenance run (never identities nor texts)."""

    drafts_purged: int = 0
    #: People who saw the privacy notice but never answered it, erased after the draft TTL.
    unanswered_erased: int = 0
    payloads_erased: int = 0
    #: Replies kept for the web chat, erased after settings.web_reply_retention.
    replies_erased: int = 0
    #: Rate-limit counters of the web chat whose window is over.
    counters_deleted: int = 0
    updates_deleted: int = 0
    sends_interrupted: int = 0
    #: Participants anonymised after their campaigns closed (settings.identity_retention).
    identities_erased: int = 0
    #: Rejected contributions whose texts were erased (settings.rejected_text_retention).
    rejected_texts_erased: int = 0
    #: Dashboard tally rows folded away (storage.tallies).
    tallies_folded: int = 0
    #: A dry run: nothing was changed, the counts say what would have been.
    dry_run: bool = False
    #: Steps skipped because another worker was doing them (PostgreSQL).
    skipped: list[str] = field(default_factory=list)
    #: Steps that failed (exception class names), retried on the next run.
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"expired drafts erased: {self.drafts_purged}; "
            f"unanswered privacy notices erased: {self.unanswered_erased}; "
            f"processed updates deleted: {self.updates_deleted}; "
            f"update payloads erased: {self.payloads_erased}; "
            f"web replies erased: {self.replies_erased}; "
            f"interrupted notices marked failed: {self.sends_interrupted}; "
            f"expired rate counters deleted: {self.counters_deleted}; "
            f"identities erased after their campaign: {self.identities_erased}; "
            f"rejected texts erased: {self.rejected_texts_erased}"
        )
        if self.dry_run:
            text = "dry run, nothing changed; would have: " + text
        if self.skipped:
            text += f"; skipped (another worker): {', '.join(self.skipped)}"
        if self.errors:
            text += f"; failed: {', '.join(self.errors)}"
        return text


async def run_maintenance(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
) -> MaintenanceReport:
    """Run every maintenance step once, each in its own transaction. A failing step is
    reported in ``errors`` (class name only) and does not stop the others. ``dry_run``: each
    step's transaction is rolled back; the counts tell what would have been done."""
    now = now or datetime.now(UTC)
    report = MaintenanceReport(dry_run=dry_run)

    async def drafts(session: AsyncSession) -> None:
        report.drafts_purged = await purge_expired_drafts(session, now, settings.draft_ttl)
        report.unanswered_erased = await purge_unconsented(session, now, settings.draft_ttl)

    async def updates(session: AsyncSession) -> None:
        report.payloads_erased = await erase_finished_payloads(session)
        report.replies_erased = await erase_old_replies(session, now, settings.web_reply_retention)
        report.updates_deleted = await purge_processed_updates(
            session, now, settings.inbound_retention
        )

    async def outbox(session: AsyncSession) -> None:
        report.sends_interrupted = await recover_interrupted_sends(
            session, now, settings.outbox_sending_timeout
        )

    async def counters(session: AsyncSession) -> None:
        report.counters_deleted = await purge_expired(session, now)

    async def retention(session: AsyncSession) -> None:
        report.identities_erased = await erase_identities_after_close(
            session, now, settings.identity_retention
        )
        report.rejected_texts_erased = await erase_rejected_texts(
            session, now, settings.rejected_text_retention
        )

    async def tallies(session: AsyncSession) -> None:
        report.tallies_folded = await fold_tallies(session)

    steps: list[tuple[int, str, Callable[[AsyncSession], Awaitable[None]]]] = [
        (1, "drafts", drafts),
        (2, "updates", updates),
        (3, "outbox", outbox),
        (4, "rate counters", counters),
        (5, "retention", retention),
        (6, "tallies", tallies),
    ]
    for lock, name, step in steps:
        try:
            async with sessions() as session:
                transaction = await session.begin()
                try:
                    if not await _try_lock(session, lock):
                        report.skipped.append(name)
                        continue
                    await step(session)
                except BaseException:
                    await transaction.rollback()
                    raise
                if dry_run:
                    await transaction.rollback()
                else:
                    await transaction.commit()
        except Exception as exc:  # reported; the next run retries
            report.errors.append(f"{name}:{type(exc).__name__}")
    return report


async def _try_lock(session: AsyncSession, key: int) -> bool:
    """PostgreSQL: a transaction-level advisory lock (released at commit) so that one worker
    runs a step at a time; elsewhere (SQLite: one writer anyway) always True."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    got = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:ns, :key)"), {"ns": LOCK_NAMESPACE, "key": key}
    )
    return bool(got)


class MaintenanceLoop:
    """Runs :func:`run_maintenance` at start-up and then every ``interval`` seconds, in a task
    kept referenced until :meth:`stop` cancels it. A failed run (database down...) is logged
    (class names only) and retried on the next round; the loop never ends on its own."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        *,
        interval: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        #: The time the retention is judged at (a channel acting "as on" another day passes its
        #: own clock: a campaign of 2022 tried today must not have its participants erased).
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sessions = session_factory(engine)
        self.interval = (
            interval if interval is not None else settings.maintenance_interval.total_seconds()
        )
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        #: Completed runs (successful or not), and a condition to wait for the next one.
        self.runs = 0
        self.last: MaintenanceReport | None = None
        self._ran = asyncio.Condition()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="maintenance")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Run now rather than at the end of the interval."""
        self._wake.set()

    async def wait_run(self, after: int) -> MaintenanceReport | None:
        """Wait until more than ``after`` runs completed; the last report."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.runs > after)
        return self.last

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self) -> MaintenanceReport:
        try:
            report = await run_maintenance(self.sessions, self.settings, self.clock())
        except Exception as exc:  # never end the loop; never log more than the class
            report = MaintenanceReport(errors=[type(exc).__name__])
        if report.errors:
            log.warning("maintenance: %s (retried next round)", report.summary())
        else:
            log.info("maintenance: %s", report.summary())
        self.last = report
        async with self._ran:
            self.runs += 1
            self._ran.notify_all()
        return report


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
