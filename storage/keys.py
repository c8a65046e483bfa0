"""Rotation of ``CNR_SECRET_KEY`` (``cnrbot db rotate-keys``).

The secret derives two keys (``storage.identity``): the encryption key of what is stored
encrypted (chat ids, inbox payloads, web replies) and the pseudonymisation key of the
participants' keys. To rotate:

1. set the new secret in ``CNR_SECRET_KEY`` and the old one in ``CNR_PREVIOUS_SECRET_KEYS``
   (a JSON list) on every worker, and restart them: everything still decrypts, new data is
   encrypted with the new secret, and a citizen who comes back under their old key is
   re-keyed on the spot (:func:`adopt_previous_key`);
2. run ``cnrbot db rotate-keys``: every encrypted value is encrypted again with the new
   secret, and every Telegram participant is re-keyed (their key is derived from their user id,
   which is their chat id, stored encrypted); web and terminal participants, whose identifier
   (a browser's token) is stored nowhere, are re-keyed when they come back;
3. once it reports nothing left to re-encrypt, remove ``CNR_PREVIOUS_SECRET_KEYS``. A web
   participant who had not come back by then keeps an old key that nobody can derive any more:
   their contributions stay (they count and are exported), unlinkable to any browser.

Every step is idempotent and runs in batches, each in its own transaction: it can be stopped
and run again, and workers keep serving while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.identity import ChatCipher, Pseudonymiser
from storage.models import ChatIdentity, InboundMessage, Participant
from storage.settings import Settings

TELEGRAM = "telegram"
BATCH = 500

_participants: Table = Participant.__table__  # type: ignore[assignment]
_identities: Table = ChatIdentity.__table__  # type: ignore[assignment]
_inbox: Table = InboundMessage.__table__  # type: ignore[assignment]


@dataclass
class Rotation:
    """What ``rotate_keys`` did (counts only)."""

    chat_ids_reencrypted: int = 0
    payloads_reencrypted: int = 0
    replies_reencrypted: int = 0
    participants_rekeyed: int = 0
    #: Encrypted values no configured secret opens (tampered with, or an older secret missing).
    unreadable: int = 0
    #: Participants whose key none of the secrets derives from what is stored (web, terminal):
    #: re-keyed when they come back.
    left_for_their_return: int = 0

    def __str__(self) -> str:
        return (
            f"chat ids re-encrypted: {self.chat_ids_reencrypted}; "
            f"inbox payloads re-encrypted: {self.payloads_reencrypted}; "
            f"web replies re-encrypted: {self.replies_reencrypted}; "
            f"Telegram participants re-keyed: {self.participants_rekeyed}; "
            f"unreadable values: {self.unreadable}; "
            f"participants re-keyed at their return: {self.left_for_their_return}"
        )


async def rotate_keys(settings: Settings, engine: AsyncEngine) -> Rotation:
    cipher = ChatCipher(settings)
    pseudonymiser = Pseudonymiser(settings)
    report = Rotation()
    report.participants_rekeyed = await _rekey_telegram(engine, cipher, pseudonymiser, report)
    report.chat_ids_reencrypted = await _reencrypt(
        engine, cipher, _identities, "participant_id", "secret", report
    )
    report.payloads_reencrypted = await _reencrypt(engine, cipher, _inbox, "id", "payload", report)
    report.replies_reencrypted = await _reencrypt(engine, cipher, _inbox, "id", "replies", report)
    if pseudonymiser.rotating:
        async with engine.connect() as conn:
            report.left_for_their_return = len(
                (
                    await conn.execute(
                        select(_participants.c.id).where(_participants.c.channel != TELEGRAM)
                    )
                ).all()
            )
    return report


async def _reencrypt(
    engine: AsyncEngine,
    cipher: ChatCipher,
    table: Table,
    pk_name: str,
    column: str,
    report: Rotation,
) -> int:
    """Encrypt every non-null ``column`` again with the current secret, batch by batch."""
    done = 0
    after: object = None
    pk, col = table.c[pk_name], table.c[column]
    while True:
        async with engine.begin() as conn:
            query = select(pk, col).where(col.is_not(None)).order_by(pk).limit(BATCH)
            if after is not None:
                query = query.where(pk > after)
            rows = (await conn.execute(query)).all()
            for row_id, value in rows:
                try:
                    fresh = cipher.rotate(value)
                except InvalidToken:
                    report.unreadable += 1
                    continue
                # Only if unchanged meanwhile (a worker may have erased or replaced it).
                result = await conn.execute(
                    update(table).where(pk == row_id, col == value).values({column: fresh})
                )
                done += result.rowcount or 0
        if len(rows) < BATCH:
            return done
        after = rows[-1][0]


async def _rekey_telegram(
    engine: AsyncEngine, cipher: ChatCipher, pseudonymiser: Pseudonymiser, report: Rotation
) -> int:
    """Telegram participants under an older key get the current key (derived from their
    chat id, which is their user id in a private chat), with their pending inbox rows."""
    if not pseudonymiser.rotating:
        return 0
    rekeyed = 0
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(_participants.c.id, _participants.c.key, _identities.c.secret)
                .join(_identities, _identities.c.participant_id == _participants.c.id)
                .where(_participants.c.channel == TELEGRAM)
            )
        ).all()
    for participant_id, key, secret in rows:
        try:
            chat_id = cipher.decrypt(secret)
        except InvalidToken:
            report.unreadable += 1
            continue
        current = pseudonymiser.key(TELEGRAM, chat_id)
        if key == current or key not in pseudonymiser.previous_keys(TELEGRAM, chat_id):
            continue
        async with engine.begin() as conn:
            if await _move_key(conn, participant_id, key, current):
                rekeyed += 1
    return rekeyed


async def adopt_previous_key(
    conn: AsyncConnection, pseudonymiser: Pseudonymiser, channel: str, user_id: str, key: str
) -> bool:
    """In the caller's transaction: if nobody has ``key`` but someone has one of this
    citizen's older keys, give them ``key``. True when a participant was re-keyed."""
    if not pseudonymiser.rotating:
        return False
    olds = pseudonymiser.previous_keys(channel, user_id)
    found = (
        await conn.execute(
            select(_participants.c.id, _participants.c.key).where(
                _participants.c.key.in_([key, *olds])
            )
        )
    ).all()
    if not found or any(k == key for _, k in found):
        return False
    participant_id, old = found[0]
    return await _move_key(conn, participant_id, old, key)


async def _move_key(conn: AsyncConnection, participant_id: int, old: str, new: str) -> bool:
    result = await conn.execute(
        update(_participants)
        .where(_participants.c.id == participant_id, _participants.c.key == old)
        .values(key=new)
    )
    if not result.rowcount:
        return False
    await conn.execute(
        update(_inbox).where(_inbox.c.participant_key == old).values(participant_key=new)
    )
    return True
