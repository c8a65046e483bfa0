"""The per-citizen daily cap on contributions (``settings.daily_contribution_cap``).

One voice speaking many times weighs on a synthesis (issue 14): a citizen may send so many
contributions a local day (the campaign's time zone, from local midnight); one more is not
stored, its draft stays at the review step, and the citizen is told politely, in their
language, that it can be sent the next day. A draft sent again (the same ``draft_id``, already
stored) is never refused: it is the same contribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialogs.messages import t
from dialogs.model import Reply, SubmitContribution
from storage.models import Contribution

_c = Contribution.__table__.c
# Built once (on every submission's path).
_SENT_SINCE = select(func.count()).where(
    _c.participant_id == bindparam("pid"),
    _c.created_at >= bindparam("since", type_=_c.created_at.type),
)
_STORED_DRAFTS = select(func.count()).where(
    _c.participant_id == bindparam("pid"), _c.draft_id.in_(bindparam("drafts", expanding=True))
)


def local_midnight(now: datetime, zone: str) -> datetime:
    """The start (UTC) of ``now``'s local day in ``zone``."""
    tz = ZoneInfo(zone)
    return datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz).astimezone(UTC)


async def sent_today(db: AsyncConnection, participant_id: int, now: datetime, zone: str) -> int:
    """How many contributions the participant sent since local midnight (any status)."""
    count = await db.scalar(
        _SENT_SINCE, {"pid": participant_id, "since": local_midnight(now, zone)}
    )
    return int(count or 0)


async def refuses(
    db: AsyncConnection,
    participant_id: int,
    effects: Sequence[object],
    *,
    cap: int,
    now: datetime,
    zone: str,
) -> bool:
    """Whether ``effects`` submit a new contribution beyond the participant's daily cap."""
    drafts = [e.draft_id for e in effects if isinstance(e, SubmitContribution)]
    if not drafts:
        return False
    stored = await db.scalar(_STORED_DRAFTS, {"pid": participant_id, "drafts": drafts})
    if stored:
        return False  # the same draft sent again: answered with its reference
    return await sent_today(db, participant_id, now, zone) >= cap


def refusal(lang: str, cap: int) -> Reply:
    """The polite message of a contribution kept back by the cap."""
    return Reply(t(lang, "daily_cap", cap=cap))
