"""Group commit: the events several citizens submit at the same moment applied together.

The web chat's citizens wait for their answer; under a crowd, one transaction per message
spends most of its time committing. :class:`GroupCommit` gathers the events submitted within
one turn of the event loop (and those arriving while a group is being applied) and applies
them with :meth:`DialogService.handle_many`: one transaction, one statement of each kind for
all of them, their inbox rows with their replies in one INSERT. All or nothing: on any error
each event is applied on its own, as without grouping (:class:`bot.core.processor.Processor`
owns that path), with its own retries and its own failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from dialogs.model import Event, Reply
from storage.inbox import JSON, Inbox, Keyed
from storage.service import GroupEvent, HandleResult, Participation

if TYPE_CHECKING:
    from bot.core.processor import DialogHandler, Envelope

log = logging.getLogger(__name__)

#: Most events applied in one group (one transaction).
GROUP_MAX = 128

Env = TypeVar("Env", bound="Envelope")


@dataclass(eq=False)
class _Waiting(Generic[Env]):
    """An event waiting for its group."""

    env: Env
    event: Event
    now: datetime
    future: asyncio.Future[HandleResult]


class GroupCommit(Generic[Env]):
    """Events of several citizens applied in one transaction (see the module's docstring).

    ``alone(env, event, now)`` applies one event in its own transaction (holding a database
    slot itself); ``slot`` is the database slot a group holds; ``width`` how many groups may
    be applied at once (one on SQLite: one writer); ``spawn`` runs a coroutine on the side,
    kept referenced by the caller."""

    def __init__(
        self,
        service: DialogHandler,
        inbox: Inbox,
        channel: str,
        *,
        slot: asyncio.Semaphore,
        width: int,
        alone: Callable[[Env, Event, datetime], Awaitable[HandleResult]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.service = service
        self.inbox = inbox
        self.channel = channel
        self.slot = slot
        self.width = width
        self.alone = alone
        self.spawn = spawn
        self._waiting: list[_Waiting[Env]] = []
        self._soon = False
        self._running = 0

    async def apply(self, env: Env, event: Event, now: datetime) -> HandleResult:
        """Wait for the event to be applied in the next group."""
        waiting: _Waiting[Env] = _Waiting(
            env, event, now, asyncio.get_running_loop().create_future()
        )
        self._waiting.append(waiting)
        if not self._soon:
            # after the callbacks of this turn of the loop: what they submit joins the group
            self._soon = True
            asyncio.get_running_loop().call_soon(self._start)
        return await waiting.future

    def _start(self) -> None:
        self._soon = False
        while self._waiting and self._running < self.width:
            batch, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
            self._running += 1
            self.spawn(self._apply_group(batch))

    async def _apply_group(self, batch: list[_Waiting[Env]]) -> None:
        """The events waiting at the same moment (one per citizen: a citizen's next message
        is submitted only once this one is applied, so their order holds) in one transaction.
        All or nothing: on any error (a message recorded already, a conversation changed
        meanwhile, the dialog failing on one event, the database away) nothing is stored and
        each event is applied on its own. While a group is being applied (on SQLite, the one
        writer) the next events gather into the next group."""
        try:
            live = [w for w in batch if not w.future.done()]
            if len(live) > 1:
                try:
                    async with self.slot:
                        results = await self.service.handle_many(
                            self.channel,
                            [GroupEvent(w.env.key, w.event, w.env.lang_hint, w.now) for w in live],
                            also=partial(self._record, live),
                        )
                except Exception as exc:
                    log.debug("%d events applied one by one: %s", len(live), type(exc).__name__)
                else:
                    for w, result in zip(live, results, strict=True):
                        if not w.future.done():
                            w.future.set_result(result)
                    return
            await asyncio.gather(*(self._apply_alone(w) for w in live))
        finally:
            self._running -= 1
            if self._waiting and not self._soon:
                self._start()

    async def _record(
        self, live: list[_Waiting[Env]], db: AsyncConnection, who: Sequence[Participation]
    ) -> None:
        items: list[tuple[Keyed, JSON]] = [
            (w.env, stored(p)) for w, p in zip(live, who, strict=True)
        ]
        await self.inbox.record_applied_many(db, items, datetime.now(UTC))

    async def _apply_alone(self, waiting: _Waiting[Env]) -> None:
        try:
            result = await self.alone(waiting.env, waiting.event, waiting.now)
        except Exception as exc:
            if not waiting.future.done():
                waiting.future.set_exception(exc)
        else:
            if not waiting.future.done():
                waiting.future.set_result(result)


def stored(who: Participation) -> JSON:
    """What the web chat stores of a message applied: the step it led to and its replies."""
    return {
        "version": who.conversation.version,
        "state": who.conversation.state,
        "lang": who.conversation.lang,
        "replies": [_reply_json(r) for r in who.replies],
    }


def _reply_json(reply: Reply) -> JSON:
    out: JSON = {"text": reply.text, "choices": [[c.id, c.label] for c in reply.choices]}
    if reply.draft:  # the answer to rewrite, back in the text box
        out["draft"] = reply.draft
    return out
