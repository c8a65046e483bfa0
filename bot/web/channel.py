"""The web chat's channel on the core: a citizen's message, submitted by an HTTP request that
waits for the answer, applied once, in order, with its replies stored in the same transaction.

Flow of one message (``bot.web.app`` calls :meth:`WebChannel.send`)::

    browser --POST (client message id, the step's version and state)--> rate limits, proof
    core processor: per citizen, in arrival order
       adapter -> core.apply(event, record=True): one transaction with the conversation, its
          effects, and the inbox row (done, with the encrypted replies)
    <-- the replies (JSON), or 303 to the page that shows them (no JavaScript)

A message sent twice (double click, resubmitted form, retried request) carries the same client
id: in flight, the second waits for the first's answer; recorded, its stored replies are given
back and nothing is applied again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from bot.core.notifier import notices_for
from bot.core.processor import DB_ERRORS, AlreadyRecorded, DialogHandler, Processor
from dialogs.model import Choice as DialogChoice
from dialogs.model import ChoiceEvent, CommandEvent, Conversation, Event, Reply, TextEvent
from storage.contacts import Contacts
from storage.identity import Pseudonymiser
from storage.inbox import JSON, Inbox
from storage.maintenance import MaintenanceLoop
from storage.my_data import Attachment
from storage.outbox import OutboxStore
from storage.service import DialogService
from storage.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "web"
#: Citizens remembered as having no contribution yet (``WebChannel.first_contribution``).
NONE_YET_MAX = 100_000
#: How long a form's answer is kept for the page its redirect shows (a browser follows a
#: redirect at once; a page reloaded later reads the stored replies), and how many at most.
PAGE_TTL = 30.0
PAGE_MAX = 10_000
#: How long a request waits for its message to be applied before saying "try again".
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True)
class WebEnvelope:
    message_id: str
    seq: int
    key: str
    #: The citizen's cookie token (the pseudonymous key is derived from it; never stored).
    user: str
    lang_hint: str | None


@dataclass
class Answer:
    """What the citizen is shown after a message (or on a page): replies, and the step they
    belong to. ``status``: ``ok``, ``error`` (the program failed: nothing stored),
    ``unavailable`` (the database is out of reach: nothing stored, try again)."""

    status: str
    replies: list[Reply] = field(default_factory=list)
    version: int = 0
    state: str = "new"
    lang: str = "fr"
    #: Whether the message changed the conversation (False: a text refused or out of date).
    changed: bool = True
    #: Whether the citizen has sent a contribution (None: not known).
    contributed: bool | None = None

    @classmethod
    def of(
        cls,
        replies: list[Reply],
        conv: Conversation,
        changed: bool = True,
        contributed: bool | None = None,
    ) -> Answer:
        return cls("ok", replies, conv.version, conv.state, conv.lang, changed, contributed)

    @classmethod
    def stored(cls, data: JSON) -> Answer:
        replies = [
            Reply(
                str(r.get("text", "")),
                tuple(DialogChoice(str(c[0]), str(c[1])) for c in r.get("choices", [])),
                str(r.get("draft", "")),
            )
            for r in data.get("replies", [])
        ]
        return cls(
            "ok",
            replies,
            int(data.get("version", 0)),
            str(data.get("state", "new")),
            str(data.get("lang", "fr")),
        )


def event_of(payload: JSON) -> Event:
    """The dialog event of a web message (built by ``bot.web.app`` from the form)."""
    kind = payload.get("kind")
    if kind == "choice":
        version = payload.get("version")
        return ChoiceEvent(
            str(payload.get("value", "")), version if isinstance(version, int) else None
        )
    if kind == "command":
        return CommandEvent(str(payload.get("value", "")), str(payload.get("arg", "")))
    state = payload.get("state")
    return TextEvent(str(payload.get("value", "")), state if isinstance(state, str) else None)


async def _within(shared: asyncio.Future[Answer], seconds: float) -> Answer | None:
    """The answer of ``shared`` (a message's, which its twins may await too), or None after
    ``seconds``; the request giving up or being cancelled leaves ``shared`` alone (as
    ``asyncio.shield`` inside ``asyncio.timeout``, with one future and one timer)."""
    loop = asyncio.get_running_loop()
    mine: asyncio.Future[Answer | None] = loop.create_future()

    def answered(future: asyncio.Future[Answer]) -> None:
        if not mine.done():
            if future.cancelled():
                mine.cancel()
            elif future.exception() is not None:
                mine.set_exception(future.exception())  # type: ignore[arg-type]
            else:
                mine.set_result(future.result())

    def late() -> None:
        if not mine.done():
            mine.set_result(None)

    timer = loop.call_later(seconds, late)
    shared.add_done_callback(answered)
    try:
        return await mine
    finally:
        timer.cancel()
        shared.remove_done_callback(answered)


class WebAdapter:
    name = CHANNEL
    unreachable: tuple[type[BaseException], ...] = ()

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.core: Processor[WebEnvelope]
        #: Requests waiting for their message, by client id.
        self.waiting: dict[str, asyncio.Future[Answer]] = {}

    def envelope(self, payload: JSON) -> WebEnvelope:  # never read back: recorded when applied
        raise NotImplementedError("web messages are recorded with their effects")

    def describe(self, env: WebEnvelope) -> str:
        return f"web message {env.message_id[:12]}"

    async def process(self, env: WebEnvelope, payload: JSON) -> None:
        try:
            result = await self.core.apply(env, event_of(payload), record=True, now=self.clock())
        except AlreadyRecorded:
            self._answer(env, Answer("recorded"))
            return
        self._answer(
            env,
            Answer.of(
                list(result.replies), result.conversation, result.changed, result.contributed
            ),
        )

    async def resume(self, env: WebEnvelope, payload: JSON) -> None:
        raise NotImplementedError("web messages are never left applied")

    async def failed(self, env: WebEnvelope, payload: JSON, exc: BaseException) -> None:
        self._answer(env, Answer("error"))

    def dropped(self, env: WebEnvelope, exc: BaseException) -> None:
        self._answer(env, Answer("unavailable"))

    def _answer(self, env: WebEnvelope, answer: Answer) -> None:
        future = self.waiting.get(env.message_id)
        if future is not None and not future.done():
            future.set_result(answer)


class WebChannel:
    """The web chat's side of the core: submits messages and fetches what a page shows."""

    def __init__(
        self,
        settings: Settings,
        service: DialogService,
        *,
        maintenance_interval: float | None = None,
        today: date | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        #: ``today``: the conversation acts as on that day (to try a campaign whose dates are
        #: past or to come, as ``cnrbot chat --date``), at the current time of day.
        self.today = today
        engine = service.engine
        self.pseudonymiser = Pseudonymiser(settings)
        self.inbox = Inbox(settings, engine, CHANNEL)
        self.adapter = WebAdapter(self.now)
        handler: DialogHandler = service
        self.processor: Processor[WebEnvelope] = Processor(
            settings, self.inbox, handler, self.adapter, locks=False, group=True
        )
        self.adapter.core = self.processor
        self.contacts = Contacts(settings, engine)
        self.outbox = OutboxStore(engine)
        self.maintenance = MaintenanceLoop(
            settings, engine, interval=maintenance_interval, clock=self.now
        )
        self._last_seq = 0
        #: Keys of citizens this worker last answered without any contribution (bounded).
        self._none_yet: dict[str, None] = {}
        #: Answers of forms kept for their redirect's page: message id -> (key, until, answer).
        self._pages: dict[str, tuple[str, float, Answer]] = {}

    async def start(self) -> None:
        self.maintenance.start()

    async def stop(self) -> None:
        await self.maintenance.stop()
        await self.processor.drain()

    def now(self) -> datetime:
        now = datetime.now(UTC)
        return now if self.today is None else datetime.combine(self.today, now.timetz())

    def key(self, token: str) -> str:
        return self.pseudonymiser.key(CHANNEL, token)

    def _seq(self) -> int:
        """Arrival order (microseconds), strictly increasing in this process."""
        self._last_seq = max(self._last_seq + 1, time.time_ns() // 1000)
        return self._last_seq

    async def send(
        self, token: str, message_id: str, payload: JSON, lang_hint: str | None
    ) -> Answer:
        """Apply one message of the citizen ``token`` (once, whatever how often it is sent)
        and return what they are to be shown."""
        key = self.key(token)
        waiting = self.adapter.waiting.get(message_id)
        if waiting is None:
            env = WebEnvelope(message_id, self._seq(), key, token, lang_hint)
            waiting = asyncio.get_running_loop().create_future()
            self.adapter.waiting[message_id] = waiting
            self.processor.submit(env, payload)
            waiting.add_done_callback(lambda _f: self.adapter.waiting.pop(message_id, None))
        answer = await _within(waiting, ANSWER_TIMEOUT)
        if answer is None:
            log.warning("a web message waited %ss without an answer", ANSWER_TIMEOUT)
            return Answer("unavailable")
        if answer.status == "recorded":
            return await self.recorded(token, message_id, lang_hint)
        return self._noted(key, answer)

    def keep_for_page(self, token: str, message_id: str, answer: Answer) -> None:
        """Keep a form's answer for the page its redirect shows next (POST, redirect, GET):
        that page then needs no query (taken once; see :data:`PAGE_TTL`)."""
        pages = self._pages
        pages[message_id] = (self.key(token), time.monotonic() + PAGE_TTL, answer)
        if len(pages) > PAGE_MAX:
            del pages[next(iter(pages))]

    async def recorded(self, token: str, message_id: str, lang_hint: str | None) -> Answer:
        """What a message already applied showed (its stored replies), or, once they are
        erased (or for an unknown or someone else's id), the current step."""
        key = self.key(token)
        kept = self._pages.pop(message_id, None)
        if kept is not None and kept[0] == key and kept[1] > time.monotonic():
            return kept[2]
        stored = await self.inbox.stored(message_id, key)
        if stored is not None and stored.replies is not None:
            return Answer.stored(self.inbox.decode_replies(stored.replies))
        return await self.current(token, lang_hint)

    async def current(self, token: str, lang_hint: str | None, *, new: bool = False) -> Answer:
        """The current step, changing nothing (nothing is stored for a new visitor; ``new``:
        the token was just made, nothing can be stored for it yet)."""
        key = self.key(token)
        result = await self.service.peek(
            CHANNEL, token, lang_hint=lang_hint, now=self.now(), key=key, new=new
        )
        return self._noted(
            key, Answer.of(result.replies, result.conversation, True, result.contributed)
        )

    async def notices(self, token: str, lang: str) -> list[str]:
        """Moderation news waiting for the citizen (shown once)."""
        with contextlib.suppress(*DB_ERRORS):
            return await notices_for(self.outbox, self.key(token), lang)
        return []

    async def my_data(self, token: str) -> Attachment | None:
        """Everything stored about the citizen, as the "my data" file (None: nothing is)."""
        return await self.service.my_data(CHANNEL, token, key=self.key(token), now=self.now())

    async def contributions(self, token: str) -> int:
        """How many contributions the citizen has sent (0 for a new visitor)."""
        return await self.contacts.contributions(self.key(token))

    async def first_contribution(self, token: str) -> bool:
        """Whether the citizen has sent no contribution yet: known without a query when this
        worker's last answer to them said so (their contributions since, through another
        worker, can only make this stricter: the proof-of-work asked again), else counted."""
        key = self.key(token)
        if key in self._none_yet:
            return True
        return await self.contacts.contributions(key) == 0

    def _noted(self, key: str, answer: Answer) -> Answer:
        """Remember whether the answer says the citizen has no contribution yet."""
        none_yet = self._none_yet
        if answer.contributed is False:
            none_yet.pop(key, None)  # kept in the order last seen: the oldest are forgotten
            none_yet[key] = None
            if len(none_yet) > NONE_YET_MAX:
                del none_yet[next(iter(none_yet))]
        elif key in none_yet:
            del none_yet[key]
        return answer
