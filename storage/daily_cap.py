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

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialogs.messages import t
from dialogs.model import Reply, SubmitContribution
from storage.models import Contribution

_c = Contribution.__table__.c
#: The participant's contributions that matter to a submission: its own draft's, if stored
#: already (sent again), and those of today (the cap): one query for both, built once.
_SUBMITTED = select(_c.draft_id, _c.reference, _c.created_at).where(
    _c.participant_id == bindparam("pid"),
    _c.draft_id.in_(bindparam("drafts", expanding=True))
    | (_c.created_at >= bindparam("since", type_=_c.created_at.type)),
)


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


async def check(
    db: AsyncConnection,
    participant_id: int,
    effects: Sequence[object],
    *,
    cap: int,
    now: datetime,
    zone: str,
) -> Submission | None:
    """What the database says of the contributions ``effects`` submit (None: they submit
    none): those stored already, and whether a new one is beyond the participant's daily cap
    (a draft sent again is never refused: it is the same contribution)."""
    drafts = [e.draft_id for e in effects if isinstance(e, SubmitContribution)]
    if not drafts:
        return None
    since = local_midnight(now, zone)
    rows = await db.execute(_SUBMITTED, {"pid": participant_id, "drafts": drafts, "since": since})
    stored: dict[int, str] = {}
    today = 0
    for draft_id, reference, created_at in rows:
        if draft_id in drafts:
            stored[draft_id] = reference
        if created_at >= since:
            today += 1
    return Submission(refused=not stored and today >= cap, stored=stored)


def refusal(lang: str, cap: int) -> Reply:
    """The polite message of a contribution kept back by the cap."""
    return Reply(t(lang, "daily_cap", cap=cap))
