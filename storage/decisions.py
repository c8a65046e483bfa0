"""An event's decision on its way to the database (:class:`storage.service.DialogService`):
the dialog's plan for it, the writes its effects make, and what is left to save.

The service decides the events of a group (or a single event) together: their submissions
checked in one query, their new contributions numbered and inserted together
(:func:`store_contributions`), then each event's other effects (:func:`apply_effect`), then
their participants and conversations saved in one statement of each kind (:func:`save`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialogs import flow
from dialogs.model import (
    CampaignView,
    Context,
    Conversation,
    Event,
    ListContributions,
    Outcome,
    RecordConsent,
    Reply,
    SendMyData,
    SetLanguage,
    SubmitContribution,
    WithdrawContribution,
)
from storage import campaigns_db, daily_cap, repository
from storage.access import participant_data
from storage.my_data import Attachment, my_data_file, my_data_summary
from storage.withdraw import withdraw_contribution

if TYPE_CHECKING:
    from storage.service import HandleResult, Participation

log = logging.getLogger(__name__)

#: The dialog's state while the privacy notice waits for an answer: kept without consent.
AWAITING_CONSENT = "consent"


@dataclass(frozen=True)
class Item:
    """One event to decide, with its citizen's state as read."""

    key: str
    event: Event
    lang_hint: str | None
    now: datetime
    state: repository.ParticipantState | None


@dataclass(eq=False)
class Plan:
    """An event as the dialog decided it (``DialogService._plan``), on its way to being
    written."""

    item: Item
    participant: repository.ParticipantRow | None
    conv: Conversation
    campaign: campaigns_db.CurrentCampaign
    view: CampaignView
    ctx: Context
    outcome: Outcome
    #: Nothing is to remain of the citizen (deleted their data, or declined: ``declined``).
    erase: bool = False
    declined: bool = False
    #: Their conversation is kept (consent given or awaited).
    keeps: bool = False
    #: Drafts this event submits.
    drafts: list[int] = field(default_factory=list)
    new: Conversation = field(init=False)
    replies: list[Reply] = field(init=False)
    effects: list[object] = field(init=False)
    #: Contribution references by draft id (stored already, or stored by this event).
    references: dict[int, str] = field(default_factory=dict)
    #: References of the contributions this event created.
    submitted: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.new = self.outcome.conversation
        self.replies = list(self.outcome.replies)
        self.effects = list(self.outcome.effects)

    @property
    def participant_id(self) -> int:
        assert self.participant is not None
        return self.participant.id


@dataclass(eq=False)
class Decided:
    """An event decided (``DialogService._conclude``): its result, what its channel's hook
    learns, and what is left to save."""

    result: HandleResult = field(init=False)
    participation: Participation = field(init=False)
    #: The participant, when the event changed their language or consent.
    participant: repository.ParticipantRow | None = None
    #: The conversation to insert, or to update (``repository.conversation_row``).
    insert: dict[str, Any] | None = None
    update: dict[str, Any] | None = None


async def check_submissions(db: AsyncConnection, plans: Sequence[Plan], cap: int) -> None:
    """The submissions of ``plans`` checked together: those stored already (a draft sent
    again) and those beyond the daily cap (not stored: the draft stays at the review step,
    the citizen told why)."""
    checks = await daily_cap.check_many(
        db,
        [
            (p.participant_id, p.drafts, daily_cap.local_midnight(p.item.now, p.view.timezone))
            for p in plans
        ],
        cap=cap,
    )
    for plan, submission in zip(plans, checks, strict=True):
        plan.references.update(submission.stored)
        if submission.refused:
            conv = plan.conv
            plan.new = conv
            plan.replies = [daily_cap.refusal(conv.lang, cap), *flow.current(conv, plan.ctx)]
            plan.effects = [e for e in plan.effects if not isinstance(e, SubmitContribution)]


async def store_contributions(
    db: AsyncConnection,
    channel: str,
    plans: Sequence[Plan],
    theme_id: Callable[[AsyncConnection, campaigns_db.CurrentCampaign, str], Awaitable[int]],
) -> None:
    """The new contributions of ``plans``: numbered per territory (one statement for each
    territory, numbers in the events' order) and inserted together; ``theme_id`` looks a
    theme's id up."""
    new = [
        (p, e)
        for p in plans
        for e in p.effects
        if isinstance(e, SubmitContribution) and e.draft_id not in p.references
    ]
    if not new:
        return
    wanted: dict[tuple[int, str], int] = {}
    for p, e in new:
        wanted[(p.campaign.id, e.territory)] = wanted.get((p.campaign.id, e.territory), 0) + 1
    numbers: dict[tuple[int, str], tuple[int, int]] = {}  # territory id, next number
    for (campaign_id, code), n in wanted.items():
        territory_id, last = await repository.next_numbers(db, campaign_id, code, n)
        numbers[(campaign_id, code)] = (territory_id, last - n + 1)
    rows = []
    for p, e in new:
        territory_id, number = numbers[(p.campaign.id, e.territory)]
        numbers[(p.campaign.id, e.territory)] = (territory_id, number + 1)
        reference = repository.make_reference(p.campaign.ref_prefix, e.territory, number)
        rows.append(
            repository.contribution_row(
                reference=reference,
                participant_id=p.participant_id,
                campaign_id=p.campaign.id,
                territory_id=territory_id,
                theme_id=await theme_id(db, p.campaign, e.theme),
                channel=channel,
                effect=e,
                now=p.item.now,
            )
        )
        p.references[e.draft_id] = reference
        p.submitted.append(reference)
    await repository.insert_contributions(db, rows)


async def save(db: AsyncConnection, decided: Sequence[Decided]) -> None:
    """Save what events left to save: their participants, then their conversations (one
    statement of each kind; an update only if the conversation is still the one read)."""
    await repository.update_participants(
        db, [d.participant for d in decided if d.participant is not None]
    )
    await repository.insert_conversations(db, [d.insert for d in decided if d.insert is not None])
    updates = [d.update for d in decided if d.update is not None]
    if len(updates) == 1:
        row = updates[0]
        await repository.update_conversation_row(db, row)
    else:
        await repository.update_conversations(db, updates)


def keeps(
    participant: repository.ParticipantRow | None, new: Conversation, outcome: Outcome
) -> bool:
    """Whether this person's conversation is to be stored after the event."""
    if new.consent_version is not None:
        return True
    if participant is not None and participant.consent_version is not None:
        return True
    if any(isinstance(e, RecordConsent) for e in outcome.effects):
        return True
    return new.state == AWAITING_CONSENT


async def apply_effect(
    db: AsyncConnection,
    effect: object,
    participant: repository.ParticipantRow,
    campaign: campaigns_db.CurrentCampaign,
    conv: Conversation,
    ctx: Context,
    now: datetime,
    replies: list[Reply],
    attachments: list[Attachment],
    references: dict[int, str],
) -> None:
    """One effect of an event (but a new contribution's storing: :func:`store_contributions`),
    its replies added to ``replies``."""
    if isinstance(effect, RecordConsent):
        participant.consent_version = effect.version
        participant.consent_at = now
    elif isinstance(effect, SubmitContribution):
        # stored by store_contributions, or found there already (sent again)
        reference = references[effect.draft_id]
        replies.extend(flow.render_submitted(conv, [reference], ctx))
    elif isinstance(effect, ListContributions):
        items = await repository.list_contributions(db, participant.id, conv.lang)
        replies.extend(flow.render_contributions(conv, items, ctx))
    elif isinstance(effect, SendMyData):
        data = await participant_data(db, participant.id, now=now)
        if data is None:
            replies.extend(flow.render_my_data(conv, None, ctx))
        else:
            replies.extend(flow.render_my_data(conv, my_data_summary(data), ctx))
            attachments.append(my_data_file(data))
    elif isinstance(effect, WithdrawContribution):
        outcome = await withdraw_contribution(db, participant.id, effect.reference, now)
        log.info("withdrawal at a participant's request: %s", outcome)
        replies.extend(flow.render_withdrawal(conv, effect.reference, outcome, ctx))
    elif isinstance(effect, SetLanguage):
        participant.lang = effect.lang
    else:
        raise TypeError(f"unknown effect {type(effect).__name__}")
