"""Coordinated campaigns: one voice speaking many times.

A text copied from a social network, or a scripted flood, arrives as many near-identical
contributions from participants who are new (their first contact shortly before they post), in
a short time. Moderators should see them as one campaign (how many, first and last time,
territories) and decide once; the synthesis should weigh them as one voice.

:func:`find_coordinated` is pure: near-identical texts are grouped with the exporter's
similarity (:func:`exporter.similarity.group_similar`); within a group, the contributions of
new participants are scanned in time order for the busiest window of ``window``; when it holds
at least ``min_count`` contributions from at least ``min_count`` distinct participants, those
form a campaign. The same contributions in any order give the same campaigns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from exporter.similarity import group_similar

#: Defaults: five look-alike texts from five new participants within 48 hours.
MIN_COUNT = 5
WINDOW = timedelta(hours=48)
#: A participant is "new" for a contribution sent within this time of their first contact.
NEW_WITHIN = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Posting:
    """One contribution as the detection needs it (``participant``: an opaque number)."""

    reference: str
    text: str
    participant: int
    participant_since: datetime
    created_at: datetime
    territory: str


@dataclass(frozen=True, slots=True)
class Campaign:
    """Near-identical contributions from new participants in a short time."""

    references: tuple[str, ...]
    participants: int
    first: datetime
    last: datetime
    territories: tuple[str, ...]
    #: The text of the earliest one (what moderators read once).
    text: str

    @property
    def count(self) -> int:
        return len(self.references)


def find_coordinated(
    postings: Sequence[Posting],
    *,
    threshold: float = 0.82,
    min_count: int = MIN_COUNT,
    window: timedelta = WINDOW,
    new_within: timedelta = NEW_WITHIN,
) -> list[Campaign]:
    """The coordinated campaigns among ``postings``, largest first, then earliest."""
    by_ref = {p.reference: p for p in postings}
    groups = group_similar([(p.reference, p.text) for p in by_ref.values()], threshold)
    found: list[Campaign] = []
    for group in groups:
        members = [by_ref[group.reference], *(by_ref[r] for r in group.similar)]
        if len(members) < min_count:
            continue
        fresh = sorted(
            (p for p in members if p.created_at - p.participant_since <= new_within),
            key=lambda p: (p.created_at, p.reference),
        )
        best = _busiest_window(fresh, window)
        if len(best) >= min_count and len({p.participant for p in best}) >= min_count:
            found.append(
                Campaign(
                    references=tuple(p.reference for p in best),
                    participants=len({p.participant for p in best}),
                    first=best[0].created_at,
                    last=best[-1].created_at,
                    territories=tuple(sorted({p.territory for p in best})),
                    text=best[0].text,
                )
            )
    found.sort(key=lambda c: (-c.count, c.first, c.references[0]))
    return found


def _busiest_window(ordered: list[Posting], window: timedelta) -> list[Posting]:
    """The longest run of ``ordered`` (by time) spanning at most ``window`` (earliest wins)."""
    best: tuple[int, int] = (0, 0)
    start = 0
    for end in range(len(ordered)):
        while ordered[end].created_at - ordered[start].created_at > window:
            start += 1
        if end + 1 - start > best[1] - best[0]:
            best = (start, end + 1)
    return ordered[best[0] : best[1]]
