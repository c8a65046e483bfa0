"""The processor: applies recorded updates, strictly in order per citizen, concurrently across
citizens, each exactly once.

For one update: the dialog event goes through :meth:`DialogService.handle` whose ``also`` hook
marks the inbox row ``applied`` (refusing if it is no longer ``pending``: a twin worker got there
first) and keeps the encrypted chat id, in the same transaction as the conversation and its
effects. The replies are then sent and the row marked ``done``.

Delivery of replies is *at least once* across a crash: a process killed between the commit and
the last reply leaves the row ``applied``; on restart the citizen is shown their current step
again (the dialog re-renders it), so nobody is left without a prompt and no effect is applied
twice. Replies are never sent for an update whose transaction did not commit.

Several processes may share one PostgreSQL database (webhook scale-out): a worker drains a
citizen's updates only while holding a PostgreSQL advisory lock on the citizen's key; the
``applied`` guard keeps even a lock-less race correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.telegram import render
from bot.telegram.inbox import (
    APPLIED,
    CHANNEL,
    DONE,
    FAILED,
    PENDING,
    Envelope,
    Inbox,
    envelope,
)
from bot.telegram.locks import CitizenLocks
from dialogs.messages import normalise_lang, t
from dialogs.model import ChoiceEvent, Conversation, Event, Reply
from storage.models import ChatIdentity, ConversationRow, InboundUpdate, Participant
from storage.service import Also, Participation
from storage.settings import Settings

log = logging.getLogger(__name__)

#: Errors meaning "the database is not reachable right now": retry later, never give up.
DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)


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
    ) -> Any: ...


class AlreadyApplied(Exception):
    """The update was applied meanwhile (another worker, or a re-delivery): change nothing."""


def parse_event(text_: str) -> Event:
    from dialogs.flow import parse_text

    return parse_text(text_)


#: The event that re-renders a citizen's current step without changing anything: a button
#: "from an older step" (version -1). Used after a crash between commit and replies.
RESUME_EVENT = ChoiceEvent(choice="", version=-1)


# Statements built once (SQLAlchemy then reuses their compiled form and cache key).
_older = aliased(InboundUpdate)
_MARK_APPLIED = (
    update(InboundUpdate)
    .where(
        InboundUpdate.update_id == bindparam("uid"),
        InboundUpdate.status == PENDING,
        ~exists().where(
            _older.participant_key == bindparam("key"),
            _older.status == PENDING,
            _older.update_id < bindparam("uid"),
        ),
    )
    .values(status=APPLIED, processed_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)
_INSERT_IDENTITY = insert(ChatIdentity)
_UNBLOCK_IDENTITY = (
    update(ChatIdentity)
    .where(ChatIdentity.participant_id == bindparam("pid"))
    .values(blocked=False, updated_at=bindparam("now"))
)

#: An update applied by another (live) worker is left to it this long before being resumed.
RESUME_AFTER = timedelta(seconds=60)


def _advisory_id(key: str) -> int:
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


class Processor:
    def __init__(
        self,
        settings: Settings,
        inbox: Inbox,
        service: DialogHandler,
        bot: Bot,
        *,
        concurrency: int | None = None,
        sweep_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.inbox = inbox
        self.service = service
        self.bot = bot
        self.sweep_interval = sweep_interval
        pg = inbox.dialect == "postgresql"
        if concurrency is None:
            # SQLite has one writer at a time: queueing here beats "database is locked" retries.
            concurrency = max(2, settings.database_pool_size // 2) if pg else 1
        #: Slots for database work (the dialog's transaction); sending to Telegram is outside.
        #: On SQLite, the inbox's single writer slot (all the channel's writes in turn).
        self._db_slot = asyncio.Semaphore(concurrency) if pg else inbox.write_slot
        #: Citizens drained at once (their updates wait for the dialog's slots anyway).
        pool = settings.database_pool_size
        self._drain_slots = asyncio.Semaphore(4 * pool if pg else 1_000_000)
        self._locks = CitizenLocks(inbox.engine) if pg else None
        #: Keys whose inbox rows must be read (sweeper, recovery), not only memory.
        self._db_check: set[str] = set()
        #: Updates handed over by the receivers, by ordering key (the fast path: no re-read).
        self._queued: dict[str, dict[int, tuple[Envelope, dict[str, Any]]]] = {}
        #: Update ids in memory: queued, or taken and being applied (the sweeper leaves them
        #: alone; under load they wait longer than its interval).
        self._held: set[int] = set()
        #: Updates answered, to be marked done (batched: one commit for many).
        self._to_finish: dict[int, str] = {}
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
        self.stats = Stats()
        self.started_at = datetime.now(UTC)

    # --- scheduling ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="inbox-sweeper")
        if self._finisher is None:
            self._finisher = asyncio.create_task(self._finish_loop(), name="inbox-finisher")

    def notify(
        self, envelopes: Sequence[Envelope], updates: Sequence[dict[str, Any]] | None = None
    ) -> None:
        """Updates were recorded: drain their keys (``updates``: their content, so that the
        processor need not read them back)."""
        for i, env in enumerate(envelopes):
            if updates is not None:
                self._queued.setdefault(env.key, {})[env.update_id] = (env, updates[i])
                self._held.add(env.update_id)
            self._ensure(env.key)

    # --- marking done, in batches -----------------------------------------------------------

    def _finish(self, update_id: int, status: str = DONE) -> None:
        self._to_finish[update_id] = status
        self._finish_wakeup.set()

    async def _finish_loop(self) -> None:
        while True:
            await self._finish_wakeup.wait()
            self._finish_wakeup.clear()
            try:
                await self.flush()
            except DB_ERRORS as exc:
                log.warning("marking updates done failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self.sweep_interval)
                self._finish_wakeup.set()

    async def flush(self) -> None:
        """Write the pending "done" marks (one transaction per status)."""
        if not self._to_finish:
            return
        batch = dict(self._to_finish)
        by_status: dict[str, list[int]] = {}
        for uid, status in batch.items():
            by_status.setdefault(status, []).append(uid)
        async with self._db_slot:
            for status, ids in by_status.items():
                await self.inbox.finish(ids, status)
        for uid, status in batch.items():
            if self._to_finish.get(uid) == status:
                del self._to_finish[uid]

    def sweep_soon(self) -> None:
        self._sweep_now.set()

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
            log.error("drain of a citizen's updates stopped: %s", type(exc).__name__)
        if key in self._again:
            self._again.discard(key)
            self._ensure(key)
        if not self._active:
            self._idle.set()

    async def _sweep_loop(self) -> None:
        while not self._closing:
            try:
                now = datetime.now(UTC)
                # Updates in memory (queued or being applied) are not the sweeper's business:
                # under load they wait longer than the sweep interval, and re-reading them
                # from the inbox would only add work.
                keys = await self.inbox.pending_keys(
                    received_before=now - timedelta(seconds=self.sweep_interval),
                    applied_before=max(self.started_at, now - RESUME_AFTER),
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
        """Until no update is being processed."""
        while self._active:
            await self._idle.wait()

    async def drain(self, grace: float = 30.0) -> None:
        """Stop taking new work and finish what is in flight (SIGTERM)."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        tasks = list(self._active.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
        if self._side_tasks:
            await asyncio.wait(list(self._side_tasks), timeout=5)
        if self._finisher is not None:
            self._finisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._finisher
            self._finisher = None
        with contextlib.suppress(*DB_ERRORS):
            await self.flush()
        if self._locks is not None:
            await self._locks.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # --- one citizen -----------------------------------------------------------------------------

    async def _drain(self, key: str) -> None:
        while True:
            try:
                async with self._drain_slots, self._claim(key) as claimed:
                    if claimed:
                        await self._drain_claimed(key)
                    else:
                        self._drop_queued(key)  # another worker has this citizen
            except DB_ERRORS as exc:
                # The database went away: the rows stay; the sweeper comes back for them.
                log.warning("processing paused, database unavailable (%s)", type(exc).__name__)
                self._again.discard(key)
                self._drop_queued(key)
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
        lock_id = _advisory_id(key)
        got = await self._locks.try_lock(lock_id)
        try:
            yield got
        finally:
            if got:
                self._locks.release(lock_id)

    def _drop_queued(self, key: str) -> None:
        """Forget the updates of ``key`` held in memory: the inbox has them (the sweeper)."""
        for uid in self._queued.pop(key, {}):
            self._held.discard(uid)

    async def _next(self, key: str) -> tuple[Envelope | None, dict[str, Any] | None, str] | None:
        """The next update of ``key`` (with its envelope when already known): handed over in
        memory, else read from the inbox."""
        queued = self._queued.get(key)
        if queued:
            env, update_ = queued.pop(min(queued))
            return env, update_, PENDING
        self._queued.pop(key, None)
        if key not in self._db_check:
            return None
        # An update applied by this very process is being answered; one applied before it
        # started (a crash), or long ago by another worker, is an orphan to resume.
        orphan_before = max(self.started_at, datetime.now(UTC) - RESUME_AFTER)
        row = await self.inbox.next_for(key, skip=self._to_finish, applied_before=orphan_before)
        if row is None:
            self._db_check.discard(key)
            return None
        if row.payload is None:  # cannot happen for unfinished rows; never loop on it
            self._finish(row.update_id, FAILED)
            return None, None, FAILED
        return None, self.inbox.decode(row.payload), row.status

    async def _drain_claimed(self, key: str) -> None:
        while True:
            self._again.discard(key)
            item = await self._next(key)
            if item is None:
                return
            env, update_, status = item
            if update_ is None:
                continue
            env = env or envelope(update_, self.inbox.pseudonymiser)
            try:
                if status == APPLIED:
                    await self._resume(env, update_)
                else:
                    await self._process(env, update_)
            except (NetworkError, RetryAfter) as exc:
                # Telegram unreachable (after the rate limiter's retries): try again later.
                log.warning(
                    "update %s: Telegram unreachable (%s)", env.update_id, type(exc).__name__
                )
                raise _Later() from exc
            except DB_ERRORS:
                raise
            except Exception as exc:
                await self._failed(env, update_, exc)
            finally:
                # applied, finished, or left pending in the inbox for the sweeper
                self._held.discard(env.update_id)

    # --- routing ---------------------------------------------------------------------------------

    async def _process(self, env: Envelope, update_: dict[str, Any]) -> None:
        obj = update_.get(env.kind) or {}
        private = env.chat_type in (None, "private")
        if env.kind == "callback_query":
            # Answer at once (the spinner stops), while the dialog does its work.
            self._spawn(self._answer_callback(str(obj.get("id", ""))))
            event: Event = render.parse_callback_data(obj.get("data"))
            message = obj.get("message")
            pressed = (0, 0)
            if isinstance(message, dict) and env.chat_id is not None:
                pressed = (env.chat_id, int(message.get("message_id", 0)))
            await self._dialog(env, event, remove_keyboard=pressed)
        elif env.kind == "message" and private:
            text_ = obj.get("text")
            if isinstance(text_, str) and env.user_id is not None:
                await self._dialog(env, parse_event(text_))
            else:
                await self._local_reply(env, "channel.unsupported")
        elif env.kind == "edited_message" and private:
            await self._local_reply(env, "channel.edited")
        elif env.kind in ("message", "my_chat_member") and env.chat_type in ("group", "supergroup"):
            await self._group(env, update_)
        elif env.kind == "my_chat_member" and private:
            status = str((obj.get("new_chat_member") or {}).get("status", ""))
            await self._set_blocked_by_key(env.key, status in ("kicked", "left"))
            self._finish(env.update_id)
        else:  # channel posts, edits in groups, kinds we did not ask for: nothing to say
            self.stats.skipped += 1
            self._finish(env.update_id)
        self.stats.processed += 1

    async def _dialog(
        self, env: Envelope, event: Event, *, remove_keyboard: tuple[int, int] = (0, 0)
    ) -> None:
        assert env.user_id is not None
        update_id = env.update_id
        key = env.key
        cipher = self.inbox.cipher
        chat_id = env.chat_id if env.chat_id is not None else env.user_id

        async def also(db: AsyncConnection, who: Participation) -> None:
            # Applied once, and only when no older update of this citizen is still waiting.
            params = {"uid": update_id, "key": key, "now": datetime.now(UTC)}
            result = await db.execute(_MARK_APPLIED, params)
            if getattr(result, "rowcount", 1) != 1:
                raise AlreadyApplied()
            if not who.participant_id:
                return
            if who.chat_blocked is None:  # keep how to reach them (encrypted, apart)
                await db.execute(
                    _INSERT_IDENTITY,
                    {
                        "participant_id": who.participant_id,
                        "channel": CHANNEL,
                        "secret": cipher.encrypt(str(chat_id)),
                        "blocked": False,
                        "updated_at": datetime.now(UTC),
                    },
                )
            elif who.chat_blocked:  # they write to us again
                await db.execute(
                    _UNBLOCK_IDENTITY, {"pid": who.participant_id, "now": datetime.now(UTC)}
                )

        try:
            async with self._db_slot:
                result = await self.service.handle(
                    CHANNEL, str(env.user_id), event, lang_hint=env.lang_hint, also=also
                )
        except AlreadyApplied:
            # Done already (a re-delivery), or an older update waits: the inbox decides.
            self.stats.skipped += 1
            self._db_check.add(key)
            return
        if remove_keyboard[1]:
            self._spawn(self._remove_keyboard(*remove_keyboard))
        await self._send_replies(
            chat_id, result.replies, result.conversation, result.participant_id
        )
        self._finish(update_id)

    async def _resume(self, env: Envelope, update_: dict[str, Any]) -> None:
        """Applied but maybe not answered (crash): show the current step again."""
        self.stats.resumed += 1
        log.info("update %s was applied before a restart: showing the step again", env.update_id)
        if env.kind == "callback_query":
            await self._answer_callback(str((update_.get("callback_query") or {}).get("id", "")))
        if env.user_id is not None and env.chat_type in (None, "private"):
            user = str(env.user_id)
            async with self._db_slot:
                result = await self.service.handle(
                    CHANNEL, user, RESUME_EVENT, lang_hint=env.lang_hint
                )
                if result.conversation.state == "done":
                    # The lost reply may have been the thank-you: list their contributions
                    # (with the references) rather than leave them wondering.
                    mine = ChoiceEvent("mine", result.conversation.version)
                    result = await self.service.handle(CHANNEL, user, mine, lang_hint=env.lang_hint)
            chat_id = env.chat_id if env.chat_id is not None else env.user_id
            stale = t(result.conversation.lang, "channel.stale_choice")
            replies = [r for r in result.replies if r.text.strip() and r.text != stale]
            await self._send_replies(chat_id, replies, result.conversation, result.participant_id)
        self._finish(env.update_id)

    async def _local_reply(self, env: Envelope, msg_id: str) -> None:
        """A reply of the channel itself (unsupported content, edits): no dialog step."""
        lang = await self._lang(env)
        if env.chat_id is not None:
            await self._send(env.chat_id, t(lang, msg_id), None, await self._participant_id(env))
        self._finish(env.update_id)

    async def _group(self, env: Envelope, update_: dict[str, Any]) -> None:
        """Say once per group that the bot only converses in private."""
        obj = update_.get(env.kind) or {}
        if env.kind == "my_chat_member":
            status = str((obj.get("new_chat_member") or {}).get("status", ""))
            if status in ("left", "kicked"):
                self._finish(env.update_id)
                return
        await self.flush()
        async with self.inbox.sessions() as session:
            replied = await session.scalar(
                select(
                    exists().where(
                        InboundUpdate.participant_key == env.key,
                        InboundUpdate.status == DONE,
                        InboundUpdate.update_id != env.update_id,
                    )
                )
            )
        if not replied and env.chat_id is not None:
            lang = normalise_lang(env.lang_hint)
            with contextlib.suppress(Forbidden, BadRequest):
                await self.bot.send_message(env.chat_id, t(lang, "channel.private_only"))
                self.stats.replies += 1
        self._finish(env.update_id)

    # --- sending ---------------------------------------------------------------------------------

    async def _send_replies(
        self,
        chat_id: int,
        replies: Sequence[Reply],
        conversation: Conversation,
        participant_id: int | None,
    ) -> None:
        for reply in replies:
            for text_, markup in render.messages(reply, conversation.version):
                if not await self._send(chat_id, text_, markup, participant_id):
                    return

    async def _send(
        self, chat_id: int, text_: str, markup: Any, participant_id: int | None
    ) -> bool:
        """Send one message; False when the chat is out of reach (blocked, gone)."""
        try:
            await self.bot.send_message(chat_id, text_, reply_markup=markup)
        except Forbidden:
            log.info("a participant's chat refuses messages (bot blocked); marked")
            await self._mark_blocked(participant_id)
            return False
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                log.info("a participant's chat no longer exists; marked")
                await self._mark_blocked(participant_id)
                return False
            log.error("Telegram refused a reply: %s", exc.message[:120])
            self.stats.errors.append(exc.message[:120])
            return True
        self.stats.replies += 1
        return True

    async def _answer_callback(self, query_id: str) -> None:
        if not query_id:
            return
        with contextlib.suppress(BadRequest):  # expired, or already answered before a crash
            await self.bot.answer_callback_query(query_id)

    async def _remove_keyboard(self, chat_id: int, message_id: int) -> None:
        if not message_id:
            return
        with contextlib.suppress(BadRequest, Forbidden):  # already gone or not modified
            await self.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)

    # --- state -----------------------------------------------------------------------------------

    async def _participant_id(self, env: Envelope) -> int | None:
        async with self.inbox.sessions() as session:
            pid = await session.scalar(select(Participant.id).where(Participant.key == env.key))
            return int(pid) if pid is not None else None

    async def _lang(self, env: Envelope) -> str:
        async with self.inbox.sessions() as session:
            lang = await session.scalar(select(Participant.lang).where(Participant.key == env.key))
        return normalise_lang(lang or env.lang_hint)

    async def _mark_blocked(self, participant_id: int | None, blocked: bool = True) -> None:
        self.stats.blocked += 1
        if not participant_id:
            return
        async with self.inbox.sessions() as session, session.begin():
            await session.execute(
                update(ChatIdentity)
                .where(ChatIdentity.participant_id == participant_id)
                .values(blocked=blocked)
            )

    async def _set_blocked_by_key(self, key: str, blocked: bool) -> None:
        async with self.inbox.sessions() as session, session.begin():
            pid = await session.scalar(select(Participant.id).where(Participant.key == key))
            if pid is not None:
                await session.execute(
                    update(ChatIdentity)
                    .where(ChatIdentity.participant_id == pid)
                    .values(blocked=blocked)
                )

    # --- errors ----------------------------------------------------------------------------------

    async def _failed(self, env: Envelope, update_: dict[str, Any], exc: BaseException) -> None:
        """The one error handler: log update id, state and exception (never text nor identity),
        tell the citizen politely, and set the update aside so the citizen is not stuck."""
        state = await self._state(env)
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error(
            "update %s (kind %s) failed in state %s: %s\n%s",
            env.update_id,
            env.kind,
            state,
            type(exc).__name__,
            frames,
        )
        self.stats.failed += 1
        self.stats.errors.append(type(exc).__name__)
        if env.chat_id is not None and env.chat_type in (None, "private"):
            lang = await self._lang(env)
            with contextlib.suppress(TelegramError):
                await self._send(env.chat_id, t(lang, "channel.error"), None, None)
        if env.kind == "callback_query":
            with contextlib.suppress(TelegramError):
                await self._answer_callback(
                    str((update_.get("callback_query") or {}).get("id", ""))
                )
        self._finish(env.update_id, FAILED)

    async def _state(self, env: Envelope) -> str:
        try:
            async with self.inbox.sessions() as session:
                state = await session.scalar(
                    select(ConversationRow.state)
                    .join(Participant, Participant.id == ConversationRow.participant_id)
                    .where(Participant.key == env.key)
                )
            return str(state) if state else "none"
        except DB_ERRORS:
            return "unknown"


class _Later(SQLAlchemyError):
    """Telegram is unreachable: leave the update for the sweeper (treated like a DB outage)."""
