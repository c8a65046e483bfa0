"""The per-citizen daily cap on contributions (``settings.daily_contribution_cap``).

One voice speaking many times weighs on a synthesis (issue 14): a citizen may send so many
contributions a local day (the campaign's time zone, from local midnight); one more is not
stored, its draft stays at the review step, and the citizen is told politely, in their
language, that it can be sent the next day. A draft sent again (the same ``draft_id``, already
stored) is never refused: it is the same contribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from dialogs.messages import t
from dialogs.model import Reply
from storage.models import Contribution

_c = Contribution.__table__.c
#: The participants' contributions that matter to their submissions: their own drafts', if
#: stored already (sent again), and those of the day (the cap): one query for both.
_SUBMITTED = {
    "sqlite": select(_c.participant_id, _c.draft_id, _c.reference, _c.created_at).where(
        _c.participant_id.in_(bindparam("pids", expanding=True)),
        _c.draft_id.in_(bindparam("drafts", expanding=True))
        | (_c.created_at >= bindparam("since", type_=_c.created_at.type)),
    ),
    # = ANY(array): one statement text whatever the number of participants
    "postgresql": select(_c.participant_id, _c.draft_id, _c.reference, _c.created_at).where(
        _c.participant_id == func.any(bindparam("pids", type_=ARRAY(Integer))),
        (_c.draft_id == func.any(bindparam("drafts", type_=ARRAY(Integer))))
        | (_c.created_at >= bindparam("since", type_=_c.created_at.type)),
    ),
}


@dataclass(frozen=True)
class Submission:
    """What the database says of the contributions an event submits."""

    #: A new contribution beyond the daily cap: not to be stored.
    refused: bool
    #: The references of those stored already (the same draft sent again), by draft id.
    stored: dict[int, str]


def local_midnight(now: datetime, zone: str) -> datetime:
    """The start (UTC) of ``now``'s local day in ``zone``."""
    tz = ZoneInfo(zone)
    return datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz).astimezone(UTC)


async def check_many(
    db: AsyncConnection, submissions: Sequence[tuple[int, Sequence[int], datetime]], *, cap: int
) -> list[Submission]:
    """What the database says of the contributions several participants submit, given as
    (participant id, draft ids, local midnight of the event), in one query: those stored
    already (the same draft sent again), and whether a new one is beyond the daily cap (a
    draft sent again is never refused: it is the same contribution)."""
    pids = [pid for pid, _drafts, _since in submissions]
    drafts = sorted({d for _pid, ds, _since in submissions for d in ds})
    since = min(s for _pid, _drafts, s in submissions)
    statement = _SUBMITTED["postgresql" if db.dialect.name == "postgresql" else "sqlite"]
    rows = await db.execute(statement, {"pids": pids, "drafts": drafts, "since": since})
    found: dict[int, list[tuple[int, str, datetime]]] = {}
    for pid, draft_id, reference, created_at in rows:
        found.setdefault(pid, []).append((draft_id, reference, created_at))
    checked = []
    for pid, own, midnight in submissions:
        stored = {d: ref for d, ref, _at in found.get(pid, ()) if d in own}
        today = sum(1 for _d, _ref, at in found.get(pid, ()) if at >= midnight)
        checked.append(Submission(refused=not stored and today >= cap, stored=stored))
    return checked


def refusal(lang: str, cap: int) -> Reply:
    """The polite message of a contribution kept back by the cap."""
    return Reply(t(lang, "daily_cap", cap=cap))
