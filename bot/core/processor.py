"""The processor: applies citizens' messages, strictly in order per citizen, concurrently across
citizens, the effects of each exactly once (none for a message the program fails on: it is set
aside as ``failed`` at the first error, not retried), whatever the channel.

A channel (its :class:`Adapter`) hands messages over in one of two ways:

* :meth:`Processor.notify` — recorded in the inbox already (Telegram): the processor drains
  each citizen's messages, those handed over in memory first, then those read back from the
  inbox (after a restart, a database outage, or from another worker);
* :meth:`Processor.submit` — not recorded (the web chat, whose citizen waits for the answer):
  recorded by the dialog's own transaction, with its effects and replies.

For one message the adapter routes it and calls :meth:`Processor.apply`, which runs the dialog
event through :meth:`DialogService.handle` whose ``also`` hook, in the same transaction as the
conversation and its effects, marks the message applied (refusing if it is no longer pending: a
twin worker got there first), or records it with its replies, and keeps the encrypted chat
identity. The adapter then delivers the replies and calls :meth:`Processor.finish`.

Delivery of replies is *at least once* across a crash for channels that record first: a
process killed between the commit and the last reply leaves the message ``applied``; on restart
the adapter's ``resume`` shows the citizen their current step again, and no effect is applied
twice. Replies are never delivered for a message whose transaction did not commit.

Several processes may share one PostgreSQL database: a worker drains a citizen's recorded
messages only while holding a PostgreSQL advisory lock on the citizen's key
(:class:`storage.locks.CitizenLocks`); the ``applied`` guard keeps even a lock-less race correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot import metrics
from bot.core.group_commit import GroupCommit, stored
from dialogs.model import ChoiceEvent, Event
from storage.contacts import Brief, Contacts
from storage.db import cancel_task
from storage.inbox import APPLIED, DONE, FAILED, JSON, PENDING, Inbox, Keyed
from storage.locks import CitizenLocks
from storage.service import Also, AlsoMany, GroupEvent, HandleResult, Participation
from storage.settings import Settings

log = logging.getLogger(__name__)

#: Errors meaning "the database is not reachable right now": retry later, never give up.
DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)

#: The event that re-renders a citizen's current step without changing anything: a choice
#: "from an older step" (version -1). Used after a crash between commit and replies.
RESUME_EVENT = ChoiceEvent(choice="", version=-1)

#: A message applied by another (live) worker is left to it this long before being resumed.
RESUME_AFTER = timedelta(seconds=60)


class Envelope(Keyed, Protocol):
    """What the core needs of a message (what the inbox needs, and who sent it); each channel
    has its own envelope with more."""

    @property
    def user(self) -> str | None:
        """The channel's id of the citizen (the pseudonymous key is derived from it); None
        when the message is not a citizen's (a group, a channel post)."""

    @property
    def lang_hint(self) -> str | None: ...


Env = TypeVar("Env", bound=Envelope)


class DialogHandler(Protocol):
    async def handle(
        self,
        channel: str,
        user_id: str,
        event: Event,
        *,
        lang_hint: str | None = None,
        now: datetime | None = None,
        also: Also | None = None,
        key: str | None = None,
    ) -> HandleResult: ...

    async def handle_many(
        self, channel: str, events: Sequence[GroupEvent], also: AlsoMany | None = None
    ) -> list[HandleResult]: ...


class Adapter(Protocol[Env]):
    """What a channel gives the core: its name, how to read its messages back, and what to do
    with one (route it, apply it with :meth:`Processor.apply`, deliver the replies)."""

    name: str
    #: Errors meaning the channel itself is out of reach right now (the message is kept and
    #: tried again later, like during a database outage).
    unreachable: tuple[type[BaseException], ...]

    def envelope(self, payload: JSON) -> Env:
        """The envelope of a message read back from the inbox."""

    def describe(self, env: Env) -> str:
        """The message in a log line: ids and kinds, never a text nor an identity."""

    async def process(self, env: Env, payload: JSON) -> None:
        """Handle one message: route, apply, reply, finish."""

    async def resume(self, env: Env, payload: JSON) -> None:
        """A message applied before a crash, perhaps never answered: show the step again."""

    async def failed(self, env: Env, payload: JSON, exc: BaseException) -> None:
        """The program failed on this message: tell the citizen (the core logs and sets the
        message aside)."""

    def dropped(self, env: Env, exc: BaseException) -> None:
        """A message handed over with :meth:`Processor.submit` could not be applied now (the
        database is out of reach): tell whoever waits for it."""


class AlreadyApplied(Exception):
    """The message was applied meanwhile (another worker, or a re-delivery): change nothing."""


class AlreadyRecorded(AlreadyApplied):
    """A submitted message is in the inbox already (a form sent twice): nothing applied."""


def advisory_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


@dataclass
class Stats:
    processed: int = 0
    replies: int = 0
    failed: int = 0
    resumed: int = 0
    blocked: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Held(Generic[Env]):
    env: Env
    payload: JSON
    #: Handed over with submit(): the dialog's transaction records it.
    unrecorded: bool = False


class _Later(SQLAlchemyError):
    """The channel is unreachable: leave the message for the sweeper (like a DB outage)."""


class Processor(Generic[Env]):
    def __init__(
        self,
        settings: Settings,
        inbox: Inbox,
        service: DialogHandler,
        adapter: Adapter[Env],
        *,
        concurrency: int | None = None,
        sweep_interval: float = 1.0,
        locks: bool = True,
        group: bool = False,
    ) -> None:
        self.settings = settings
        self.inbox = inbox
        self.service = service
        self.adapter = adapter
        self.channel = adapter.name
        self.contacts = Contacts(settings, inbox.engine)
        self.sweep_interval = sweep_interval
        pg = inbox.dialect == "postgresql"
        if concurrency is None:
            # SQLite has one writer at a time: queueing here beats "database is locked" retries.
            concurrency = max(2, settings.database_pool_size // 2) if pg else 1
        #: Slots for database work (the dialog's transaction); sending to the channel is
        #: outside. On SQLite, the inbox's single writer slot (all the channel's writes in turn).
        self.db_slot = asyncio.Semaphore(concurrency) if pg else inbox.write_slot
        #: Citizens drained at once (their messages wait for the dialog's slots anyway; with
        #: ``group``, every citizen waiting may join the next group).
        pool = settings.database_pool_size
        self._drain_slots = asyncio.Semaphore(4 * pool if pg and not group else 1_000_000)
        #: ``group``: submitted events applied together, as many groups at once as database
        #: slots (one writer on SQLite).
        self._groups: GroupCommit[Env] | None = (
            GroupCommit(
                service,
                inbox,
                self.channel,
                slot=self.db_slot,
                width=concurrency if pg else 1,
                alone=self._apply_alone,
                spawn=self.spawn,
            )
            if group
            else None
        )
        self._locks = CitizenLocks(inbox.engine) if pg and locks else None
        #: Keys whose inbox rows must be read (sweeper, recovery), not only memory.
        self._db_check: set[str] = set()
        #: Messages handed over by the channel, by ordering key (the fast path: no re-read).
        self._queued: dict[str, dict[tuple[int, str], _Held[Env]]] = {}
        #: Message ids in memory: queued, or taken and being applied (the sweeper leaves them
        #: alone; under load they wait longer than its interval).
        self._held: set[str] = set()
        #: Messages answered, to be marked done (batched: one commit for many).
        self._to_finish: dict[str, str] = {}
        self._finish_wakeup = asyncio.Event()
        self._finisher: asyncio.Task[None] | None = None
        self._active: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_now = asyncio.Event()
        self._side_tasks: set[asyncio.Task[Any]] = set()
        #: For the metrics, by message id while it is handled: the state it led to, and
        #: whether it turned out to be applied already.
        self._steps: dict[str, str] = {}
        self._duplicates: set[str] = set()
        self.stats = Stats()
        self.started_at = datetime.now(UTC)

    # --- scheduling ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="inbox-sweeper")
        if self._finisher is None:
            self._finisher = asyncio.create_task(self._finish_loop(), name="inbox-finisher")

    def notify(self, items: Sequence[tuple[Env, JSON]], *, held: bool = True) -> None:
        """Messages were recorded: drain their keys (``held``: their content is handed over,
        so that the processor need not read them back)."""
        for env, payload in items:
            if held:
                self._hold(env, payload, unrecorded=False)
            self._ensure(env.key)

    def submit(self, env: Env, payload: JSON) -> bool:
        """Hand over a message not recorded yet (the dialog's transaction records it). False
        when the same message is in hand already (a double submission: its first giver is
        answered, the adapter pairs the two)."""
        if env.message_id in self._held:
            metrics.message(self.channel, "duplicate")
            return False
        self._hold(env, payload, unrecorded=True)
        self._ensure(env.key)
        return True

    def _hold(self, env: Env, payload: JSON, *, unrecorded: bool) -> None:
        self._queued.setdefault(env.key, {})[(env.seq, env.message_id)] = _Held(
            env, payload, unrecorded
        )
        self._held.add(env.message_id)

    def holds(self, message_id: str) -> bool:
        return message_id in self._held

    def repeated(self, count: int) -> None:
        """``count`` messages the channel received were known already (re-deliveries the
        inbox recorded before): counted, nothing else to do."""
        for _ in range(count):
            metrics.message(self.channel, "duplicate")

    # --- marking done, in batches -----------------------------------------------------------

    def finish(self, env: Envelope, status: str = DONE) -> None:
        """The message is over (answered, or set aside): marked in the next batch."""
        self._to_finish[env.message_id] = status
        self._finish_wakeup.set()

    async def _finish_loop(self) -> None:
        while True:
            await self._finish_wakeup.wait()
            self._finish_wakeup.clear()
            try:
                await self.flush()
            except DB_ERRORS as exc:
                log.warning("marking messages done failed (%s); retrying", type(exc).__name__)
                metrics.error(exc, "processor")
                await asyncio.sleep(self.sweep_interval)
                self._finish_wakeup.set()

    async def flush(self) -> None:
        """Write the pending "done" marks (one transaction per status)."""
        if not self._to_finish:
            return
        batch = dict(self._to_finish)
        by_status: dict[str, list[str]] = {}
        for mid, status in batch.items():
            by_status.setdefault(status, []).append(mid)
        async with self.db_slot:
            for status, ids in by_status.items():
                await self.inbox.finish(ids, status)
        for mid, status in batch.items():
            if self._to_finish.get(mid) == status:
                del self._to_finish[mid]

    def _ensure(self, key: str) -> None:
        if self._closing:
            return
        if key in self._active:
            self._again.add(key)
            return
        task = asyncio.create_task(self._drain(key))
        self._active[key] = task
        self._idle.clear()
        task.add_done_callback(lambda t, k=key: self._finished(k, t))  # type: ignore[misc]

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        self._active.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("drain of a citizen's messages stopped: %s", type(exc).__name__)
            if exc is not None:
                metrics.error(exc, "processor")
        if key in self._again:
            self._again.discard(key)
            self._ensure(key)
        if not self._active:
            self._idle.set()

    async def _sweep_loop(self) -> None:
        while not self._closing:
            try:
                now = datetime.now(UTC)
                # Messages in memory (queued or being applied) are not the sweeper's business:
                # under load they wait longer than the sweep interval, and re-reading them
                # from the inbox would only add work.
                keys = await self.inbox.pending_keys(
                    received_before=now - timedelta(seconds=self.sweep_interval),
                    applied_before=self._orphan_before(now),
                    known=self._held,
                )
                for key in keys:
                    self._db_check.add(key)
                    self._ensure(key)
            except DB_ERRORS as exc:
                log.warning("inbox sweep: database unavailable (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sweep_interval):
                    await self._sweep_now.wait()
            self._sweep_now.clear()

    async def idle(self) -> None:
        """Until no message is being processed."""
        while self._active:
            await self._idle.wait()

    async def drain(self, grace: float = 30.0) -> None:
        """Stop taking new work and finish what is in flight (SIGTERM)."""
        self._closing = True
        sweeper, self._sweeper = self._sweeper, None
        await cancel_task(sweeper)
        tasks = list(self._active.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
        if self._side_tasks:
            await asyncio.wait(list(self._side_tasks), timeout=5)
        finisher, self._finisher = self._finisher, None
        await cancel_task(finisher)
        with contextlib.suppress(*DB_ERRORS):
            await self.flush()
        if self._locks is not None:
            await self._locks.close()

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` on the side (kept referenced; awaited briefly when draining)."""
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # --- one citizen -----------------------------------------------------------------------------

    async def _drain(self, key: str) -> None:
        while True:
            try:
                async with self._drain_slots:
                    if self._locks is None:  # nothing to claim (one worker, or the web chat)
                        await self._drain_claimed(key)
                    else:
                        async with self._claim(key) as claimed:
                            if claimed:
                                await self._drain_claimed(key)
                            else:
                                self._drop_queued(key)  # another worker has this citizen
            except DB_ERRORS as exc:
                # The database went away: recorded rows stay; the sweeper comes back for them.
                log.warning("processing paused, database unavailable (%s)", type(exc).__name__)
                if not isinstance(exc, _Later):  # the channel's own error is counted already
                    metrics.error(exc, "processor")
                self._again.discard(key)
                self._drop_queued(key, exc)
                return
            if key in self._again and not self._closing:
                self._again.discard(key)
                continue
            return

    @contextlib.asynccontextmanager
    async def _claim(self, key: str) -> Any:
        """PostgreSQL: hold an advisory lock on the citizen's key while draining, so that two
        workers never work for one citizen at once. All locks live on one dedicated
        connection (no pool connection held per citizen)."""
        if self._locks is None:
            yield True
            return
        lock_id = advisory_id(key)
        got = await self._locks.try_lock(lock_id)
        try:
            yield got
        finally:
            if got:
                self._locks.release(lock_id)

    def _orphan_before(self, now: datetime) -> datetime:
        """Messages applied before this time and not finished are orphans to resume. A message
        applied by this very process is being answered. Alone on its database (no citizen
        locks: SQLite, one worker), one applied before this process started was left by its
        crash and is resumed at once; beside other workers (PostgreSQL), it may be one a live
        worker is still answering (Telegram slow, retrying), so only one applied longer ago than
        RESUME_AFTER is resumed: resuming it early would send its replies twice."""
        if self._locks is None:
            return max(self.started_at, now - RESUME_AFTER)
        return now - RESUME_AFTER

    def _drop_queued(self, key: str, exc: BaseException | None = None) -> None:
        """Forget the messages of ``key`` held in memory: the inbox has the recorded ones (the
        sweeper); whoever waits for an unrecorded one is told."""
        for held in self._queued.pop(key, {}).values():
            self._held.discard(held.env.message_id)
            if held.unrecorded:
                self.adapter.dropped(held.env, exc or _Later("another worker"))

    async def _next(self, key: str) -> tuple[_Held[Env] | None, str] | None:
        """The next message of ``key``: handed over in memory, else read from the inbox."""
        queued = self._queued.get(key)
        if queued:
            return queued.pop(min(queued)), PENDING
        self._queued.pop(key, None)
        if key not in self._db_check:
            return None
        orphan_before = self._orphan_before(datetime.now(UTC))
        row = await self.inbox.next_for(key, skip=self._to_finish, applied_before=orphan_before)
        if row is None:
            self._db_check.discard(key)
            return None
        if row.payload is None:  # cannot happen for unfinished rows; never loop on it
            self._to_finish[row.message_id] = FAILED
            self._finish_wakeup.set()
            return None, FAILED
        payload = self.inbox.decode(row.payload)
        return _Held(self.adapter.envelope(payload), payload), row.status

    async def _drain_claimed(self, key: str) -> None:
        while True:
            self._again.discard(key)
            item = await self._next(key)
            if item is None:
                return
            held, status = item
            if held is None:
                continue
            env, payload = held.env, held.payload
            try:
                if status == APPLIED:
                    self.stats.resumed += 1
                    log.info(
                        "%s was applied before a restart: showing the step again",
                        self.adapter.describe(env),
                    )
                    await self.adapter.resume(env, payload)
                    metrics.message(self.channel, "resumed")
                    # Marked done before the citizen's lock is released: an orphan is old, so
                    # another worker would otherwise take it for one still to resume.
                    await self.flush()
                else:
                    started = time.perf_counter()
                    await self.adapter.process(env, payload)
                    self.stats.processed += 1
                    self._measured(env.message_id, time.perf_counter() - started)
            except self.adapter.unreachable as exc:
                # The channel is out of reach (after its own retries): try again later.
                log.warning(
                    "%s: %s unreachable (%s)",
                    self.adapter.describe(env),
                    self.channel,
                    type(exc).__name__,
                )
                metrics.error(exc, "processor")
                if held.unrecorded:
                    self.adapter.dropped(env, exc)
                raise _Later() from exc
            except DB_ERRORS as exc:
                if held.unrecorded:
                    self.adapter.dropped(env, exc)
                raise
            except Exception as exc:
                await self._failed(env, payload, exc, recorded=not held.unrecorded)
            finally:
                # applied, finished, or left pending in the inbox for the sweeper
                self._held.discard(env.message_id)
                self._steps.pop(env.message_id, None)
                self._duplicates.discard(env.message_id)

    def _measured(self, message_id: str, seconds: float) -> None:
        """A message handled: its outcome, and its time under the step it led to."""
        if message_id in self._duplicates:
            metrics.message(self.channel, "duplicate")
            return
        metrics.message(self.channel, "done")
        step = metrics.step_label(self._steps.get(message_id))
        metrics.STEP_SECONDS.labels(metrics.channel_label(self.channel), step).observe(seconds)

    # --- applying ----------------------------------------------------------------------------

    async def apply(
        self,
        env: Env,
        event: Event,
        *,
        identity: str | None = None,
        record: bool = False,
        now: datetime | None = None,
    ) -> HandleResult:
        """Apply a dialog event of the message's citizen, in one transaction with the inbox
        mark and (``identity``) the encrypted way to reach them (``now``: the dialog's clock,
        when not the real one).

        ``record``: the message is not in the inbox yet (:meth:`submit`): the transaction
        records it, done, with its replies (raises :class:`AlreadyRecorded` when it was
        recorded meanwhile). Otherwise raises :class:`AlreadyApplied` when another worker or
        a re-delivery applied it first.

        With ``group`` (the processor's), the events of several citizens submitted at the same
        moment are applied together (:class:`~bot.core.group_commit.GroupCommit`).
        """
        assert env.user is not None
        try:
            if self._groups is not None and record and identity is None:
                result = await self._groups.apply(env, event, now or datetime.now(UTC))
            else:
                async with self.db_slot:
                    result = await self._handle(env, event, record, identity, now)
        except AlreadyApplied:
            # Done already (a re-delivery), or an older message waits: the inbox decides.
            self.stats.skipped += 1
            self._duplicates.add(env.message_id)
            if not record:
                self._db_check.add(env.key)
            raise
        self._steps[env.message_id] = result.conversation.state
        return result

    async def _handle(
        self,
        env: Env,
        event: Event,
        record: bool,
        identity: str | None = None,
        now: datetime | None = None,
    ) -> HandleResult:
        """One event in its own transaction (the caller holds a database slot)."""
        assert env.user is not None
        inbox = self.inbox
        contacts = self.contacts
        channel = self.channel

        async def also(db: AsyncConnection, who: Participation) -> None:
            if record:
                if not await inbox.record_applied(db, env, stored(who)):
                    raise AlreadyRecorded()
            elif not await inbox.mark_applied(db, env):
                # Applied once, and only when no older message of this citizen still waits.
                raise AlreadyApplied()
            if not who.participant_id or identity is None:
                return
            if who.chat_blocked is None:  # keep how to reach them (encrypted, apart)
                await contacts.keep(db, who.participant_id, channel, identity)
            elif who.chat_blocked:  # they write to us again
                await contacts.unblock(db, who.participant_id)

        return await self.service.handle(
            channel,
            env.user,
            event,
            lang_hint=env.lang_hint,
            now=now,
            also=also,
            key=env.key,
        )

    async def _apply_alone(self, env: Env, event: Event, now: datetime) -> HandleResult:
        """A submitted event in its own transaction (a group that could not be applied)."""
        async with self.db_slot:
            return await self._handle(env, event, True, now=now)

    async def current(self, env: Env) -> HandleResult:
        """The citizen's current step shown again, changing nothing; after a crash the lost
        reply may have been the thank-you, so a finished contribution lists the citizen's
        contributions (with their references)."""
        assert env.user is not None
        async with self.db_slot:
            result = await self.service.handle(
                self.channel, env.user, RESUME_EVENT, lang_hint=env.lang_hint, key=env.key
            )
            if result.conversation.state == "done":
                mine = ChoiceEvent("mine", result.conversation.version)
                result = await self.service.handle(
                    self.channel, env.user, mine, lang_hint=env.lang_hint, key=env.key
                )
        return result

    async def brief(self, env: Envelope) -> Brief | None:
        return await self.contacts.brief(env.key)

    async def mark_blocked(self, participant_id: int | None, blocked: bool = True) -> None:
        """The channel says this participant is out of reach (bot blocked, chat gone)."""
        self.stats.blocked += 1
        if participant_id:
            await self.contacts.set_blocked(participant_id, blocked)

    # --- errors ----------------------------------------------------------------------------------

    async def _failed(
        self, env: Env, payload: JSON, exc: BaseException, *, recorded: bool = True
    ) -> None:
        """The one error handler: log message id, state and exception (never text nor
        identity), let the channel tell the citizen politely, and set the message aside so
        the citizen is not stuck."""
        state = await self._state(env)
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error(
            "%s failed in state %s: %s\n%s",
            self.adapter.describe(env),
            state,
            type(exc).__name__,
            frames,
        )
        self.stats.failed += 1
        self.stats.errors.append(type(exc).__name__)
        metrics.message(self.channel, "failed")
        metrics.error(exc, "processor")
        try:
            await self.adapter.failed(env, payload, exc)
        except Exception as again:  # telling the citizen must not hide the first error
            log.warning("could not tell a citizen about an error: %s", type(again).__name__)
        if recorded:
            self.finish(env, FAILED)

    async def _state(self, env: Envelope) -> str:
        try:
            brief = await self.contacts.brief(env.key)
        except DB_ERRORS:
            return "unknown"
        return (brief.state if brief else None) or "none"
