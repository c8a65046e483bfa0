"""The dialog service: one dialog event, one database transaction.

For each event: load (or start) the citizen's conversation, let the pure dialog
(:mod:`dialogs.flow`) decide, apply its effects (consent, contribution, deletion...), save the
new state with an optimistic version check, run the channel's ``also`` hook, and commit, all
together or not at all. A concurrent change of the same conversation (stale version, twin
insert, SQLite busy snapshot) rolls back and re-runs the event, a bounded number of times.

Nothing is stored about someone who has not accepted the privacy notice, except while the
notice is waiting for their answer; declining erases that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from dialogs import flow
from dialogs.model import (
    CampaignView,
    Context,
    Conversation,
    DeleteMyData,
    Event,
    ListContributions,
    Reply,
    SendMyData,
    SubmitContribution,
    WithdrawContribution,
)
from storage import campaigns_db, keys, repository
from storage.access import participant_data
from storage.db import create_engine, reader, session_factory, upgrade
from storage.decisions import (
    Decided,
    Item,
    Plan,
    apply_effect,
    check_submissions,
    keeps,
    save,
    store_contributions,
)
from storage.identity import Pseudonymiser
from storage.my_data import Attachment, my_data_file
from storage.settings import Settings
from storage.sqlite_driver import inline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Participation:
    """What the channel's ``also`` hook learns of the event: its participant, the new
    conversation and the replies (a channel that stores them does so in the same
    transaction)."""

    #: 0 when no participant remains (declined, erased).
    participant_id: int
    #: The participant's chat identity: None when none is stored, else whether the channel
    #: marked it unreachable (read with the conversation: no query of its own).
    chat_blocked: bool | None
    conversation: Conversation
    replies: Sequence[Reply] = ()


Also = Callable[[AsyncConnection, Participation], Awaitable[None]]
#: ``also`` of a group of events (:meth:`DialogService.handle_many`): their participations, in
#: the events' order.
AlsoMany = Callable[[AsyncConnection, Sequence[Participation]], Awaitable[None]]


@dataclass(frozen=True)
class GroupEvent:
    """One event of a group handled together (:meth:`DialogService.handle_many`)."""

    key: str
    event: Event
    lang_hint: str | None
    now: datetime


class NotGrouped(RuntimeError):
    """These events cannot be handled as a group (handle them one by one)."""


#: How long the campaign offered to newcomers is taken as known (a campaign loaded or changed
#: reaches new visitors within this many seconds; a conversation's own campaign is read with
#: it, always current).
CURRENT_CAMPAIGN_TTL = 5.0
#: A group's work gives the event loop a turn every so many events (see _decide_all).
YIELD_EVERY = 16
#: Attempts at one event when its conversation keeps changing under it.
MAX_ATTEMPTS = 5
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock (PostgreSQL)


@dataclass
class HandleResult:
    replies: list[Reply]
    conversation: Conversation
    participant_id: int | None
    participant_key: str
    #: References of the contributions created by this event.
    submitted: list[str] = field(default_factory=list)
    #: Whether the event changed the conversation (a text refused, or typed at a step left
    #: meanwhile, changes nothing: a channel may give it back to the citizen).
    changed: bool = True
    #: Files to give the citizen after the replies ("my data").
    attachments: list[Attachment] = field(default_factory=list)
    #: Whether the citizen has sent a contribution, this event's included (None: not known,
    #: after a withdrawal).
    contributed: bool | None = None


class NoCampaign(RuntimeError):
    """The database holds no campaign to offer (load one with ``cnrbot campaign load``)."""


def _is_transient(exc: DBAPIError) -> bool:
    """Errors of concurrency that re-running the transaction settles."""
    if isinstance(exc, IntegrityError):
        return True  # a twin event inserted the same participant or contribution first
    orig = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if getattr(candidate, "sqlstate", None) in _RETRY_SQLSTATES:
            return True
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text


class DialogService:
    def __init__(self, settings: Settings, engine: AsyncEngine, *, owns_engine: bool) -> None:
        self.settings = settings
        self.engine = engine
        self._owns_engine = owns_engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        #: For what only reads (a page shown): no BEGIN/ROLLBACK round trips on PostgreSQL.
        self.reader = reader(engine)
        self.pseudonymiser = Pseudonymiser(settings)
        self.limits = settings.dialog_limits()
        self._views: dict[int, tuple[str, CampaignView]] = {}
        self._current: tuple[float, campaigns_db.CurrentCampaign] | None = None
        self._theme_ids: dict[tuple[int, str, str], int] = {}

    @classmethod
    async def open(cls, settings: Settings, *, engine: AsyncEngine | None = None) -> DialogService:
        """Connect, migrate, and load the default campaign file into an empty database."""
        owns = engine is None
        engine = engine or create_engine(settings)
        try:
            await upgrade(engine)
            service = cls(settings, engine, owns_engine=owns)
            await service.ensure_default_campaign()
        except BaseException:
            if owns:
                await engine.dispose()
            raise
        return service

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    async def ensure_default_campaign(self) -> None:
        """Load ``settings.default_campaign_file`` when the database holds no campaign."""
        from storage.campaign_file import read_campaign_file

        async with self.sessions() as session:
            if await campaigns_db.has_campaign(session):
                return
        path = campaigns_db.resolve_campaign_file(self.settings.default_campaign_file)
        spec = read_campaign_file(path)
        try:
            async with self.sessions() as session, session.begin():
                result = await campaigns_db.load_campaign(session, spec)
        except IntegrityError:
            # another process opening the same new database loaded it first
            async with self.sessions() as session:
                if not await campaigns_db.has_campaign(session):
                    raise
            return
        log.info("loaded default campaign %s from %s", result.code, path.name)

    # --- campaign view cache ------------------------------------------------------------------

    async def _campaign(
        self, session: AsyncSession | AsyncConnection, known: campaigns_db.CurrentCampaign | None
    ) -> tuple[campaigns_db.CurrentCampaign, CampaignView]:
        """The conversation's campaign (``known``, read with it) or the current one, and its
        view, built once per campaign version (``spec_hash``) and kept."""
        current = known or await self._current_campaign(session)
        if current is None:
            raise NoCampaign(
                f"no campaign {self.settings.campaign!r}"
                if self.settings.campaign
                else "no campaign"
            )
        cached = self._views.get(current.id)
        if cached is None or cached[0] != current.spec_hash:
            view = await campaigns_db.campaign_view(session, current.id)
            self._views[current.id] = (current.spec_hash, view)
            return current, view
        return current, cached[1]

    async def _theme_id(
        self, db: AsyncConnection, campaign: campaigns_db.CurrentCampaign, code: str
    ) -> int:
        """The id of a theme of ``campaign``, looked up once per campaign version."""
        key = (campaign.id, campaign.spec_hash, code)
        theme_id = self._theme_ids.get(key)
        if theme_id is None:
            theme_id = await repository.find_theme_id(db, campaign.id, code)
            self._theme_ids[key] = theme_id
        return theme_id

    def _known_view(self) -> CampaignView | None:
        """The view of the campaign offered now, when known without a query (else None)."""
        cached = self._current
        if cached is None or time.monotonic() - cached[0] >= CURRENT_CAMPAIGN_TTL:
            return None
        view = self._views.get(cached[1].id)
        return view[1] if view is not None and view[0] == cached[1].spec_hash else None

    async def _current_campaign(
        self, session: AsyncSession | AsyncConnection
    ) -> campaigns_db.CurrentCampaign | None:
        """The campaign offered to a citizen without a conversation, looked up at most every
        :data:`CURRENT_CAMPAIGN_TTL` seconds (every new visitor's first event needs it)."""
        cached = self._current
        if cached is not None and time.monotonic() - cached[0] < CURRENT_CAMPAIGN_TTL:
            return cached[1]
        current = await campaigns_db.current_campaign(session, self.settings.campaign)
        self._current = (time.monotonic(), current) if current is not None else None
        return current

    async def campaign_view(self) -> CampaignView:
        """The campaign offered now, as the dialog sees it."""
        async with self.engine.connect() as db:
            return (await self._campaign(db, None))[1]

    # --- events ---------------------------------------------------------------------------------

    async def handle(
        self,
        channel: str,
        user_id: str,
        event: Event,
        *,
        lang_hint: str | None = None,
        now: datetime | None = None,
        also: Also | None = None,
        key: str | None = None,
    ) -> HandleResult:
        """Handle one event of ``user_id`` on ``channel`` in one transaction.

        ``also(connection, participation)`` runs inside that transaction (on its
        connection), after the dialog's changes; if it raises, nothing of the event is
        stored. The event may run more than once when
        the conversation changes concurrently, so ``also`` must be repeatable. ``key``: the
        participant's pseudonymous key when the channel computed it already.
        """
        key = key or self.pseudonymiser.key(channel, user_id)
        await self._adopt_previous_key(channel, user_id, key)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await self._handle_once(
                    key, channel, event, lang_hint, now or datetime.now(UTC), also
                )
            except repository.StaleConversation as exc:
                reason = type(exc).__name__
            except DBAPIError as exc:
                if not _is_transient(exc) or attempt == MAX_ATTEMPTS:
                    raise
                reason = type(exc).__name__
            log.info("event re-run (attempt %d): %s", attempt, reason)
        raise repository.StaleConversation(f"conversation kept changing ({MAX_ATTEMPTS} attempts)")

    async def _handle_once(
        self,
        key: str,
        channel: str,
        event: Event,
        lang_hint: str | None,
        now: datetime,
        also: Also | None,
    ) -> HandleResult:
        # Core statements on the transaction's connection (no ORM unit of work on this path).
        async with self.engine.connect() as db, db.begin(), inline(db):
            state = await repository.load_state(db, key)
            item = Item(key, event, lang_hint, now, state)
            (decided,) = await self._decide_all(db, channel, [item])
            await save(db, [decided])
            if also is not None:
                await also(db, decided.participation)
        return decided.result

    async def handle_many(
        self, channel: str, events: Sequence[GroupEvent], also: AlsoMany | None = None
    ) -> list[HandleResult]:
        """Handle the events of several citizens (one each: the keys are distinct) in one
        transaction: one statement of each kind for all of them where :meth:`handle` makes one
        each (their states read together, their conversations saved together), then
        ``also(connection, participations)`` (in the events' order), and one commit.

        All or nothing, and never re-run: any error (a conversation changed meanwhile, a twin
        insert, the dialog failing on one event, ``also`` refusing) rolls every event back and
        is raised; the caller then handles them one by one with :meth:`handle`, which retries
        and fails each on its own (:class:`Grouped` first, when grouping does not apply).
        """
        if self.pseudonymiser.rotating:
            raise NotGrouped("citizens may need re-keying (a secret being rotated out)")
        keys = [e.key for e in events]
        if len(set(keys)) != len(keys):
            raise NotGrouped("one citizen twice in a group")
        async with self.engine.connect() as db, db.begin(), inline(db):
            states = await repository.load_states(db, keys)
            items = [Item(e.key, e.event, e.lang_hint, e.now, states.get(e.key)) for e in events]
            decided = await self._decide_all(db, channel, items)
            await save(db, decided)
            if also is not None:
                await also(db, [d.participation for d in decided])
        return [d.result for d in decided]

    async def _decide_all(
        self, db: AsyncConnection, channel: str, items: Sequence[Item]
    ) -> list[Decided]:
        """Events of distinct citizens (a group, or one) on their states: the dialog's
        decisions and their effects, written at once, and what is left to save (participants,
        conversations). What every event of a group needs is written for all of them together:
        their new participants (first consents) in one statement, their submissions checked
        in one query (sent already? beyond the daily cap?) and their new contributions
        numbered per territory and inserted together; then each event's other effects, in
        order."""
        plans = []
        for n, item in enumerate(items, 1):
            plans.append(await self._plan(db, item))
            if n % YIELD_EVERY == 0:
                # SQLite's statements run on the event loop's thread (inline): a large group
                # lets the other requests (pages, answers) through every few events
                await asyncio.sleep(0)
        newcomers = [p for p in plans if p.keeps and p.participant is None]
        if newcomers:
            rows = [(p.item.key, channel, p.new.lang, p.item.now) for p in newcomers]
            inserted = await repository.insert_participants(db, rows)
            for p in newcomers:
                p.participant = inserted[p.item.key]
        submitting = [p for p in plans if p.keeps and p.drafts]
        if submitting:
            await check_submissions(db, submitting, self.settings.daily_contribution_cap)
            await store_contributions(db, channel, submitting, self._theme_id)
        decided = []
        for n, plan in enumerate(plans, 1):
            decided.append(await self._conclude(db, channel, plan))
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return decided

    async def _plan(self, db: AsyncConnection, item: Item) -> Plan:
        """The dialog's decision on one event (pure, but for the campaign when not known)."""
        state = item.state
        participant = state.participant if state else None
        stored = state.stored if state else None
        if stored is not None:
            conv = stored.conversation
            idle: timedelta | None = item.now - stored.updated_at
        else:
            conv = flow.new_conversation(item.lang_hint)
            if participant is not None:
                conv.lang = participant.lang
            idle = None
        campaign, view = await self._campaign(db, state.campaign if state else None)
        ctx = Context(campaign=view, now=item.now, limits=self.limits)
        outcome = flow.handle(conv, item.event, ctx, idle=idle)
        plan = Plan(item, participant, conv, campaign, view, ctx, outcome)
        if any(isinstance(e, DeleteMyData) for e in outcome.effects):
            plan.erase = True
        elif not keeps(participant, outcome.conversation, outcome):
            plan.erase = True  # declined (or left) before consenting
            plan.declined = True
        else:
            plan.keeps = True
            plan.drafts = [e.draft_id for e in outcome.effects if isinstance(e, SubmitContribution)]
        return plan

    async def _conclude(self, db: AsyncConnection, channel: str, plan: Plan) -> Decided:
        """The rest of one event: its other effects, in order, and what is left to save."""
        item, participant, conv, new = plan.item, plan.participant, plan.conv, plan.new
        ctx = plan.ctx
        state, replies, now = item.state, plan.replies, item.now
        decided = Decided()
        if plan.erase:
            if participant is not None:
                await repository.delete_participant(db, participant.id)
            participant_id = None
            for effect in plan.effects if plan.declined else ():
                # nothing remains of this person, who therefore has no contributions to list
                if isinstance(effect, ListContributions):
                    replies.extend(flow.render_contributions(new, [], ctx))
                elif isinstance(effect, SendMyData):
                    replies.extend(flow.render_my_data(new, None, ctx))
                elif isinstance(effect, WithdrawContribution):
                    replies.extend(flow.render_withdrawal(new, effect.reference, "unknown", ctx))
        else:
            assert participant is not None
            participant_id = participant.id
            before = (participant.lang, participant.consent_version, participant.consent_at)
            for effect in plan.effects:
                await apply_effect(
                    db, effect, participant, plan.campaign, new, ctx, item.now,
                    replies, plan.attachments, plan.references,
                )  # fmt: skip
            participant.lang = new.lang
            if (participant.lang, participant.consent_version, participant.consent_at) != before:
                decided.participant = participant
            stored, campaign_id = state.stored if state else None, plan.campaign.id
            if stored is None:
                decided.insert = repository.conversation_row(participant.id, campaign_id, new, now)
            elif new.version != conv.version or stored.campaign_id != campaign_id:
                decided.update = repository.conversation_row(
                    participant.id, campaign_id, new, now, expected_version=conv.version
                )
        blocked = state.chat_blocked if state is not None and participant_id else None
        decided.participation = Participation(participant_id or 0, blocked, new, replies)
        contributed: bool | None = participant_id is not None and (
            bool(plan.submitted) or (state is not None and state.contributed)
        )
        if any(isinstance(e, WithdrawContribution) for e in plan.outcome.effects):
            contributed = None  # a contribution withdrawn unread is deleted
        decided.result = HandleResult(
            replies,
            new,
            participant_id,
            item.key,
            plan.submitted,
            changed=new.version != conv.version,
            attachments=plan.attachments,
            contributed=contributed,
        )
        return decided

    async def _adopt_previous_key(self, channel: str, user_id: str, key: str) -> None:
        """While a secret is being rotated out: a citizen known under their older key is
        re-keyed before anything else reads them (see storage.keys)."""
        if self.pseudonymiser.rotating:
            async with self.engine.begin() as db:
                await keys.adopt_previous_key(db, self.pseudonymiser, channel, user_id, key)

    async def peek(
        self,
        channel: str,
        user_id: str,
        *,
        lang_hint: str | None = None,
        now: datetime | None = None,
        key: str | None = None,
        new: bool = False,
    ) -> HandleResult:
        """What the citizen's conversation shows now, reading only (a page displayed, a
        conversation resumed): nothing is stored, not even for a new visitor. ``new``: the
        channel knows nothing can be stored for this citizen yet (an identity it has just
        made up): their state is not even looked for."""
        key = key or self.pseudonymiser.key(channel, user_id)
        now = now or datetime.now(UTC)
        view = self._known_view() if new else None
        if view is not None:  # nothing to read: a newcomer's welcome
            conv = flow.new_conversation(lang_hint)
            ctx = Context(campaign=view, now=now, limits=self.limits)
            return HandleResult(flow.current(conv, ctx), conv, None, key, contributed=False)
        if not new:
            await self._adopt_previous_key(channel, user_id, key)
        async with self.reader.connect() as db, inline(db):
            state = None if new else await repository.load_state(db, key)
            participant = state.participant if state else None
            if state is not None and state.stored is not None:
                conv = state.stored.conversation
            else:
                conv = flow.new_conversation(lang_hint)
                if participant is not None:
                    conv.lang = participant.lang
            _campaign, view = await self._campaign(db, state.campaign if state else None)
        ctx = Context(campaign=view, now=now, limits=self.limits)
        replies = flow.current(conv, ctx)
        return HandleResult(
            replies,
            conv,
            participant.id if participant else None,
            key,
            contributed=state is not None and state.contributed,
        )

    async def my_data(
        self,
        channel: str,
        user_id: str,
        *,
        key: str | None = None,
        now: datetime | None = None,
    ) -> Attachment | None:
        """Everything stored about this citizen as the "my data" file, computed now (reading
        only); None when nothing is stored about them."""
        key = key or self.pseudonymiser.key(channel, user_id)
        await self._adopt_previous_key(channel, user_id, key)
        async with self.reader.connect() as db:
            state = await repository.load_state(db, key)
            if state is None or state.participant is None:
                return None
            data = await participant_data(db, state.participant.id, now=now or datetime.now(UTC))
        return my_data_file(data) if data is not None else None
