"""Counts an operator watches (the metrics' gauges, ``bot.metrics``): contributions by status,
the moderation backlog, the notices and messages waiting. Counts only: no text, no key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import reader
from storage.models import Contribution, InboundMessage, Outbox
from storage.vocabulary import STATUSES


@dataclass(frozen=True)
class Backlog:
    #: Contributions by status (every status of ``storage.vocabulary.STATUSES``, 0 included).
    contributions: dict[str, int]
    #: Notices of the outbox not sent yet (pending, or claimed by a sender).
    outbox: int
    #: Citizens' messages recorded and not processed yet, by channel.
    inbox: dict[str, int]

    @property
    def moderation(self) -> int:
        """Contributions waiting for a moderator."""
        return self.contributions.get("pending", 0)


async def backlog(engine: AsyncEngine) -> Backlog:
    """The counts, read in one connection (indexed: a few milliseconds at 100,000 rows)."""
    async with reader(engine).connect() as conn:
        by_status = await conn.execute(
            select(Contribution.status, func.count()).group_by(Contribution.status)
        )
        contributions = dict.fromkeys(STATUSES, 0)
        for status, n in by_status:
            contributions[str(status)] = int(n)
        outbox = await conn.scalar(
            select(func.count())
            .select_from(Outbox)
            .where(Outbox.status.in_(("pending", "sending")))
        )
        by_channel = await conn.execute(
            select(InboundMessage.channel, func.count())
            .where(InboundMessage.status.in_(("pending", "applied")))
            .group_by(InboundMessage.channel)
        )
        inbox = {str(channel): int(n) for channel, n in by_channel}
    return Backlog(contributions, int(outbox or 0), inbox)
