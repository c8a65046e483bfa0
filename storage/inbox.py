"""The inbox: citizens' messages of every channel, recorded durably before the channel is
acknowledged, then applied once, in order per citizen (``bot.core.processor``).

A message is stored once: (channel, message id) is unique, so a re-delivery (Telegram's retry of
an update, a web form sent twice) inserts nothing. The payload is encrypted
(:class:`storage.identity.ChatCipher`); the ordering key is the citizen's pseudonymous key (or a
key of the chat for Telegram groups); ``seq`` orders the messages of one key.

Two ways in, one per kind of channel:

* *record, then apply* (Telegram: an update is acknowledged once recorded): ``pending`` ->
  ``applied`` (its effects committed, in the dialog's own transaction: :meth:`Inbox.mark_applied`)
  -> ``done`` (its replies handed to the channel; payload erased), or ``failed`` at the first
  error of the program on it (any exception of the dialog or the adapter but an unreachable
  database or channel: no retry, the message is set aside at once so that the citizen is not
  stuck; :meth:`bot.core.processor.Processor._failed`). An unreachable database or channel
  leaves it ``pending`` (or ``applied``), tried again by the sweeper without limit.
* *record with the effects* (the web chat: the citizen's browser waits for the answer): one
  transaction inserts the row ``done`` with its encrypted replies, together with the
  conversation and its effects (:meth:`Inbox.record_applied`); a second submission of the same
  message finds the row and gets the stored replies back, applying nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Table, bindparam, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.db import reader
from storage.identity import ChatCipher
from storage.models import InboundMessage
from storage.settings import Settings
from storage.sqlite_driver import inline

PENDING, APPLIED, DONE, FAILED = "pending", "applied", "done", "failed"

JSON = dict[str, Any]

_table: Table = InboundMessage.__table__  # type: ignore[assignment]
_c = _table.c


class Keyed(Protocol):
    """What the inbox needs to know of a message (a channel's envelope)."""

    @property
    def message_id(self) -> str: ...

    @property
    def seq(self) -> int: ...

    @property
    def key(self) -> str: ...


E = TypeVar("E", bound=Keyed)


@dataclass(frozen=True)
class Unfinished:
    """A message read back from the inbox: pending, or applied and perhaps never answered."""

    message_id: str
    status: str
    payload: bytes | None


@dataclass(frozen=True)
class Stored:
    """A message already recorded: its status and, for pulling channels, its replies."""

    status: str
    replies: bytes | None


# Statements built once (SQLAlchemy then reuses their compiled form and cache key).
_older = _table.alias("older")
_MARK_APPLIED = (
    update(_table)
    .where(
        _c.channel == bindparam("ch"),
        _c.message_id == bindparam("mid"),
        _c.status == PENDING,
        ~exists().where(
            _older.c.participant_key == bindparam("key"),
            _older.c.status == PENDING,
            _older.c.seq < bindparam("s"),
        ),
    )
    .values(status=APPLIED, processed_at=bindparam("now"))
)
_FINISH = (
    update(_table)
    .where(
        _c.channel == bindparam("ch"),
        _c.message_id.in_(bindparam("ids", expanding=True)),
    )
    .values(status=bindparam("status"), payload=None, processed_at=bindparam("now"))
)
_RECORD = insert(_table)
_STORED = select(_c.status, _c.replies).where(
    _c.channel == bindparam("ch"),
    _c.message_id == bindparam("mid"),
    _c.participant_key == bindparam("key"),
)
_ANSWERED = select(
    exists().where(
        _c.participant_key == bindparam("key"),
        _c.status == DONE,
        _c.message_id != bindparam("mid"),
    )
)
_MOVED_ON = select(
    exists().where(
        _c.channel == bindparam("ch"),
        _c.participant_key == bindparam("key"),
        _c.status.in_((APPLIED, DONE)),
        _c.seq > bindparam("s"),
    )
)


class Inbox:
    """The inbox of one channel."""

    def __init__(self, settings: Settings, engine: AsyncEngine, channel: str) -> None:
        self.engine = engine
        self.channel = channel
        self.cipher = ChatCipher(settings)
        self.dialect = engine.dialect.name
        #: Where one statement is the whole transaction (recording a batch, marking done):
        #: on PostgreSQL, autocommit spares the BEGIN and COMMIT round trips (the statement is
        #: atomic by itself); SQLite's own begin and commit cost no round trip.
        self.single: AsyncEngine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        #: Single reads: no BEGIN/ROLLBACK round trips on PostgreSQL.
        self.reader = reader(engine)
        #: SQLite has one writer at a time: every write of the channel takes this slot (no
        #: "database is locked" retries); PostgreSQL needs none.
        self.write_slot = asyncio.Semaphore(1 if self.dialect == "sqlite" else 1_000_000)
        self._waiting: list[tuple[list[tuple[Any, JSON]], asyncio.Future[set[str]]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._insert = (
            (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(_table)
            .on_conflict_do_nothing(index_elements=["channel", "message_id"])
            .returning(_c.message_id)
        )

    # --- record, then apply ----------------------------------------------------------------

    async def record(self, items: Sequence[tuple[E, JSON]]) -> list[tuple[E, JSON]]:
        """Store the messages; those already known are left alone.

        Returns the messages newly recorded (a re-delivery returns nothing). Raises the
        database's error when it cannot: the caller must then not acknowledge. Messages
        arriving together (concurrent webhook requests) share one transaction (group commit).
        """
        if not items:
            return []
        future: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        pairs = list(items)
        self._waiting.append((pairs, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        new = await future
        return [(env, u) for env, u in pairs if env.message_id in new]

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            unique: dict[str, tuple[Keyed, JSON]] = {}
            for pairs, _ in batch:
                for env, u in pairs:
                    unique.setdefault(env.message_id, (env, u))
            try:
                async with self.write_slot:
                    new = await self._insert_rows(list(unique.values()))
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for pairs, future in batch:
                if not future.done():
                    # a message given twice in one batch is "new" for its first giver only
                    mine = {env.message_id for env, _ in pairs} & new
                    new -= mine
                    future.set_result(mine)

    async def _insert_rows(self, pairs: Sequence[tuple[Keyed, JSON]]) -> set[str]:
        now = datetime.now(UTC)
        rows = [
            {
                "channel": self.channel,
                "message_id": env.message_id,
                "seq": env.seq,
                "participant_key": env.key,
                "payload": self.cipher.encrypt(json.dumps(u, ensure_ascii=False)),
                "status": PENDING,
                "received_at": now,
            }
            for env, u in pairs
        ]
        # One statement for any number of rows (SQLAlchemy's "insertmanyvalues"): compiled
        # once, and RETURNING gives the ids actually inserted (not the re-deliveries). On a
        # connection (Core), not a session: no ORM bulk-insert machinery per batch.
        async with self.single.begin() as conn:
            result = await conn.execute(self._insert, rows)
            return set(result.scalars())

    def decode(self, payload: bytes) -> JSON:
        data: JSON = json.loads(self.cipher.decrypt(payload))
        return data

    async def mark_applied(
        self, db: AsyncConnection, env: Keyed, now: datetime | None = None
    ) -> bool:
        """In the dialog's transaction: mark the message applied, only if it is still pending
        and no older message of its key is (False: a twin worker or a re-delivery got there
        first, or an older message waits)."""
        params = {
            "ch": self.channel,
            "mid": env.message_id,
            "key": env.key,
            "s": env.seq,
            "now": now or datetime.now(UTC),
        }
        result = await db.execute(_MARK_APPLIED, params)
        return getattr(result, "rowcount", 1) == 1

    async def pending_keys(
        self,
        limit: int = 1000,
        *,
        received_before: datetime | None = None,
        applied_before: datetime | None = None,
        known: Container[str] = (),
    ) -> list[str]:
        """Ordering keys with work left: messages pending (received before
        ``received_before``) that are not ``known`` (already in the processor's hands), or
        applied before ``applied_before`` and never answered (orphans of a crash)."""
        pending = _c.status == PENDING
        if received_before is not None:
            pending = pending & (_c.received_at < received_before)
        applied = _c.status == APPLIED
        if applied_before is not None:
            applied = applied & (_c.processed_at < applied_before)
        keys: dict[str, None] = {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(_c.participant_key, _c.message_id)
                .where(_c.channel == self.channel, pending | applied)
                .order_by(_c.seq, _c.id)
                .limit(limit * 10)
            )
            for key, message_id in rows:
                if message_id not in known:
                    keys[key] = None
                    if len(keys) >= limit:
                        break
        return list(keys)

    async def next_for(
        self, key: str, skip: Container[str] = (), applied_before: datetime | None = None
    ) -> Unfinished | None:
        """The oldest unfinished message of ``key``, ignoring ``skip`` (finished, not yet
        marked) and rows applied at or after ``applied_before`` (another worker may still be
        sending their replies)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(_c.message_id, _c.status, _c.payload, _c.processed_at)
                .where(
                    _c.participant_key == key,
                    _c.channel == self.channel,
                    _c.status.in_((PENDING, APPLIED)),
                )
                .order_by(_c.seq, _c.id)
                .limit(20)
            )
            for message_id, status, payload, processed_at in rows:
                if message_id in skip:
                    continue
                if (
                    status == APPLIED
                    and applied_before is not None
                    and (processed_at is None or processed_at >= applied_before)
                ):
                    continue
                return Unfinished(message_id, status, payload)
            return None

    async def finish(self, message_ids: Sequence[str], status: str = DONE) -> None:
        """Mark messages finished and erase their payload."""
        if not message_ids:
            return
        async with self.single.begin() as conn:  # Core: no ORM session synchronisation
            await conn.execute(
                _FINISH,
                {
                    "ch": self.channel,
                    "ids": list(message_ids),
                    "status": status,
                    "now": datetime.now(UTC),
                },
            )

    async def answered_before(self, key: str, message_id: str) -> bool:
        """Whether another message of ``key`` was answered (done) already."""
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(_ANSWERED, {"key": key, "mid": message_id}))

    async def moved_on(self, key: str, seq: int) -> bool:
        """Whether a later message of ``key`` (after ``seq``) was applied already: the citizen
        has been answered since, so an older message resumed has nothing left to show."""
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(_MOVED_ON, {"ch": self.channel, "key": key, "s": seq}))

    # --- record with the effects ------------------------------------------------------------

    async def record_applied(
        self, db: AsyncConnection, env: Keyed, replies: JSON, now: datetime | None = None
    ) -> bool:
        """In the dialog's transaction: record the message as done, with its replies
        (encrypted). False when it was recorded already (the caller then rolls back)."""
        row = {
            "channel": self.channel,
            "message_id": env.message_id,
            "seq": env.seq,
            "participant_key": env.key,
            "payload": None,
            "replies": self.cipher.encrypt(json.dumps(replies, ensure_ascii=False)),
            "status": DONE,
            "received_at": now or datetime.now(UTC),
            "processed_at": now or datetime.now(UTC),
        }
        result = await db.execute(self._insert, row)
        return result.first() is not None

    async def record_applied_many(
        self, db: AsyncConnection, items: Sequence[tuple[Keyed, JSON]], now: datetime
    ) -> None:
        """:meth:`record_applied` of several messages in one statement: raises the database's
        ``IntegrityError`` if one of them was recorded already (the caller rolls back, then
        records them one by one)."""
        rows = [
            {
                "channel": self.channel,
                "message_id": env.message_id,
                "seq": env.seq,
                "participant_key": env.key,
                "payload": None,
                "replies": self.cipher.encrypt(json.dumps(replies, ensure_ascii=False)),
                "status": DONE,
                "received_at": now,
                "processed_at": now,
            }
            for env, replies in items
        ]
        await db.execute(_RECORD, rows)

    async def keep_unsent(self, message_id: str, unsent: JSON) -> None:
        """An applied message whose replies could not all be delivered (the channel out of
        reach): keep, encrypted, what is left to send, so that whoever resumes it sends just
        that (not the step again: what was delivered would be sent twice)."""
        async with self.single.begin() as conn:
            await conn.execute(
                update(_table)
                .where(
                    _c.channel == self.channel,
                    _c.message_id == message_id,
                    _c.status == APPLIED,
                )
                .values(replies=self.cipher.encrypt(json.dumps(unsent, ensure_ascii=False)))
            )

    async def stored(self, message_id: str, key: str) -> Stored | None:
        """A message of ``key`` already recorded (None: unknown, or another citizen's)."""
        async with self.reader.connect() as conn, inline(conn):
            row = (
                await conn.execute(_STORED, {"ch": self.channel, "mid": message_id, "key": key})
            ).first()
        return None if row is None else Stored(str(row[0]), row[1])

    def decode_replies(self, blob: bytes) -> JSON:
        data: JSON = json.loads(self.cipher.decrypt(blob))
        return data
