"""The inbox: raw Telegram updates recorded durably *before* they are acknowledged.

Each update is stored once (``update_id`` is the primary key: a re-delivery inserts nothing),
encrypted (:class:`storage.identity.ChatCipher`), with its ordering key: the citizen's
pseudonymous key for private chats and button presses, a key of the chat for groups and
channels. Status: ``pending`` -> ``applied`` (its effects committed, in the dialog's own
transaction) -> ``done`` (its replies handed to Telegram; payload erased). ``failed`` after
repeated errors of the program (never for an unreachable database).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import session_factory
from storage.identity import ChatCipher, Pseudonymiser
from storage.models import InboundUpdate
from storage.settings import Settings

CHANNEL = "telegram"
#: Key space of group and channel chats (not citizens): kept apart from participant keys.
GROUP_CHANNEL = "telegram-chat"

PENDING, APPLIED, DONE, FAILED = "pending", "applied", "done", "failed"

JSON = dict[str, Any]

#: Update kinds carrying a message.
MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")


@dataclass(frozen=True)
class Envelope:
    """What the transport knows of an update without reading its content."""

    update_id: int
    key: str
    kind: str
    chat_id: int | None
    chat_type: str | None
    user_id: int | None
    lang_hint: str | None


def update_kind(update: JSON) -> str:
    for key in update:
        if key != "update_id":
            return key
    return "unknown"


def envelope(update: JSON, pseudonymiser: Pseudonymiser) -> Envelope:
    """Ordering key, chat and sender of a raw update."""
    kind = update_kind(update)
    obj = update.get(kind)
    obj = obj if isinstance(obj, dict) else {}
    sender = obj.get("from") if isinstance(obj.get("from"), dict) else None
    chat = obj.get("chat") if isinstance(obj.get("chat"), dict) else None
    if chat is None and kind == "callback_query":
        message = obj.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            chat = message["chat"]
        elif sender is not None:
            chat = {"id": sender["id"], "type": "private"}
    chat_id = int(chat["id"]) if chat and "id" in chat else None
    chat_type = str(chat.get("type")) if chat else None
    user_id = int(sender["id"]) if sender and "id" in sender else None
    lang = str(sender["language_code"]) if sender and sender.get("language_code") else None
    if chat_type in (None, "private") and user_id is not None:
        key = pseudonymiser.key(CHANNEL, str(user_id))
    elif chat_id is not None:
        key = pseudonymiser.key(GROUP_CHANNEL, str(chat_id))
    else:
        key = pseudonymiser.key(GROUP_CHANNEL, f"update:{update.get('update_id')}")
    return Envelope(
        update_id=int(update["update_id"]),
        key=key,
        kind=kind,
        chat_id=chat_id,
        chat_type=chat_type,
        user_id=user_id,
        lang_hint=lang,
    )


_FINISH = (
    update(InboundUpdate)
    .where(InboundUpdate.update_id.in_(bindparam("ids", expanding=True)))
    .values(status=bindparam("status"), payload=None, processed_at=bindparam("now"))
)


class Inbox:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self.cipher = ChatCipher(settings)
        self.pseudonymiser = Pseudonymiser(settings)
        self.dialect = engine.dialect.name
        #: Where one statement is the whole transaction (recording a batch, marking done):
        #: on PostgreSQL, autocommit spares the BEGIN and COMMIT round trips (the statement is
        #: atomic by itself); SQLite's own begin and commit cost no round trip.
        self.single: AsyncEngine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        #: SQLite has one writer at a time: every write of the channel takes this slot (no
        #: "database is locked" retries); PostgreSQL needs none.
        self.write_slot = asyncio.Semaphore(1 if self.dialect == "sqlite" else 1_000_000)
        self._waiting: list[tuple[list[tuple[Envelope, JSON]], asyncio.Future[set[int]]]] = []
        self._writer: asyncio.Task[None] | None = None

    def envelopes(self, updates: Sequence[JSON]) -> list[Envelope]:
        return [envelope(u, self.pseudonymiser) for u in updates]

    async def record(self, updates: Sequence[JSON]) -> list[tuple[Envelope, JSON]]:
        """Store the updates; already known update ids are left alone.

        Returns the updates newly recorded (a re-delivery returns nothing). Raises the
        database's error when it cannot: the caller must then not acknowledge. Updates
        arriving together (concurrent webhook requests) share one transaction (group commit).
        """
        if not updates:
            return []
        future: asyncio.Future[set[int]] = asyncio.get_running_loop().create_future()
        pairs = list(zip(self.envelopes(updates), updates, strict=True))  # (keyed once)
        self._waiting.append((pairs, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        new = await future
        return [(env, u) for env, u in pairs if env.update_id in new]

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            unique: dict[int, tuple[Envelope, JSON]] = {}
            for pairs, _ in batch:
                for env, u in pairs:
                    unique.setdefault(env.update_id, (env, u))
            try:
                async with self.write_slot:
                    new = await self._insert(list(unique.values()))
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for pairs, future in batch:
                if not future.done():
                    # an update given twice in one batch is "new" for its first giver only
                    mine = {env.update_id for env, _ in pairs} & new
                    new -= mine
                    future.set_result(mine)

    async def _insert(self, pairs: Sequence[tuple[Envelope, JSON]]) -> set[int]:
        now = datetime.now(UTC)
        rows = [
            {
                "update_id": env.update_id,
                "participant_key": env.key,
                "payload": self.cipher.encrypt(json.dumps(u, ensure_ascii=False)),
                "status": PENDING,
                "attempts": 0,
                "received_at": now,
            }
            for env, u in pairs
        ]
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        # One statement for any number of rows (SQLAlchemy's "insertmanyvalues"): compiled
        # once, and RETURNING gives the ids actually inserted (not the re-deliveries).
        stmt = (
            insert(InboundUpdate)
            .on_conflict_do_nothing(index_elements=["update_id"])
            .returning(InboundUpdate.update_id)
        )
        # On a connection (Core), not a session: no ORM bulk-insert machinery per batch.
        async with self.single.begin() as conn:
            result = await conn.execute(stmt, rows)
            return set(result.scalars())

    def decode(self, payload: bytes) -> JSON:
        data: JSON = json.loads(self.cipher.decrypt(payload))
        return data

    async def pending_keys(
        self,
        limit: int = 1000,
        *,
        received_before: datetime | None = None,
        applied_before: datetime | None = None,
        known: Container[int] = (),
    ) -> list[str]:
        """Ordering keys with work left: updates pending (received before
        ``received_before``) that are not ``known`` (already in the processor's hands), or
        applied before ``applied_before`` and never answered (orphans of a crash)."""
        pending = InboundUpdate.status == PENDING
        if received_before is not None:
            pending = pending & (InboundUpdate.received_at < received_before)
        applied = InboundUpdate.status == APPLIED
        if applied_before is not None:
            applied = applied & (InboundUpdate.processed_at < applied_before)
        keys: dict[str, None] = {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(InboundUpdate.participant_key, InboundUpdate.update_id)
                .where(pending | applied)
                .order_by(InboundUpdate.update_id)
                .limit(limit * 10)
            )
            for key, update_id in rows:
                if update_id not in known:
                    keys[key] = None
                    if len(keys) >= limit:
                        break
        return list(keys)

    async def next_for(
        self, key: str, skip: Container[int] = (), applied_before: datetime | None = None
    ) -> InboundUpdate | None:
        """The oldest unfinished update of ``key``, ignoring ``skip`` (finished, not yet
        marked) and rows applied at or after ``applied_before`` (another worker may still be
        sending their replies)."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(InboundUpdate)
                .where(
                    InboundUpdate.participant_key == key,
                    InboundUpdate.status.in_((PENDING, APPLIED)),
                )
                .order_by(InboundUpdate.update_id)
                .limit(20)
            )
            for row in rows:
                if row.update_id in skip:
                    continue
                if (
                    row.status == APPLIED
                    and applied_before is not None
                    and (row.processed_at is None or row.processed_at >= applied_before)
                ):
                    continue
                return row
            return None

    async def finish(self, update_ids: Sequence[int], status: str = DONE) -> None:
        """Mark updates finished and erase their payload."""
        if not update_ids:
            return
        async with self.single.begin() as conn:  # Core: no ORM session synchronisation
            await conn.execute(
                _FINISH, {"ids": list(update_ids), "status": status, "now": datetime.now(UTC)}
            )

    async def count(self, *statuses: str) -> int:
        from sqlalchemy import func

        async with self.sessions() as session:
            stmt = select(func.count()).select_from(InboundUpdate)
            if statuses:
                stmt = stmt.where(InboundUpdate.status.in_(statuses))
            return int(await session.scalar(stmt) or 0)
