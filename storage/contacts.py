"""How channels know and reach a participant: a short description by pseudonymous key, and
the encrypted chat identity of channels that push messages (Telegram's chat id), kept in a
table apart from contributions, with the channel's "unreachable" flag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.db import reader
from storage.identity import ChatCipher
from storage.models import ChatIdentity, Contribution, ConversationRow, Participant
from storage.settings import Settings
from storage.sqlite_driver import inline

_identities: Table = ChatIdentity.__table__  # type: ignore[assignment]
_INSERT = insert(_identities)
_UNBLOCK = (
    update(_identities)
    .where(_identities.c.participant_id == bindparam("pid"))
    .values(blocked=False, updated_at=bindparam("now"))
)
_CONTRIBUTIONS = (
    select(func.count(Contribution.id))
    .join(Participant, Participant.id == Contribution.participant_id)
    .where(Participant.key == bindparam("key"))
)
_BRIEF = (
    select(Participant.id, Participant.lang, ConversationRow.state)
    .outerjoin(ConversationRow, ConversationRow.participant_id == Participant.id)
    .where(Participant.key == bindparam("key"))
)


@dataclass(frozen=True)
class Brief:
    """What a channel may know of a participant: their id, language, and conversation state
    (None when no conversation is stored)."""

    id: int
    lang: str
    state: str | None


class Contacts:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.engine = engine
        #: Single reads: no BEGIN/ROLLBACK round trips on PostgreSQL.
        self.reader = reader(engine)
        self.cipher = ChatCipher(settings)

    async def brief(self, key: str) -> Brief | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_BRIEF, {"key": key})).first()
        return None if row is None else Brief(int(row[0]), str(row[1]), row[2])

    async def keep(
        self, db: AsyncConnection, participant_id: int, channel: str, secret: str
    ) -> None:
        """In the event's transaction: remember how to reach the participant (encrypted)."""
        await db.execute(
            _INSERT,
            {
                "participant_id": participant_id,
                "channel": channel,
                "secret": self.cipher.encrypt(secret),
                "blocked": False,
                "updated_at": datetime.now(UTC),
            },
        )

    @staticmethod
    async def unblock(db: AsyncConnection, participant_id: int) -> None:
        """In the event's transaction: they write to us again."""
        await db.execute(_UNBLOCK, {"pid": participant_id, "now": datetime.now(UTC)})

    async def set_blocked(self, participant_id: int, blocked: bool = True) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(_identities)
                .where(_identities.c.participant_id == participant_id)
                .values(blocked=blocked, updated_at=datetime.now(UTC))
            )

    async def set_blocked_by_key(self, key: str, blocked: bool) -> None:
        async with self.engine.begin() as conn:
            pid = await conn.scalar(select(Participant.id).where(Participant.key == key))
            if pid is not None:
                await conn.execute(
                    update(_identities)
                    .where(_identities.c.participant_id == pid)
                    .values(blocked=blocked, updated_at=datetime.now(UTC))
                )

    async def contributions(self, key: str) -> int:
        """How many contributions the participant of ``key`` has sent."""
        async with self.reader.connect() as conn, inline(conn):
            count = await conn.scalar(_CONTRIBUTIONS, {"key": key})
        return int(count or 0)

    def reveal(self, secret: bytes) -> str:
        """The clear secret (to send a message); raises if it was tampered with."""
        return self.cipher.decrypt(secret)
