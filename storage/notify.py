"""Notices reach the citizen within seconds: PostgreSQL ``LISTEN``/``NOTIFY`` on the outbox.

Whoever queues a notice (the console's moderation decision) calls :func:`outbox_queued` in
the transaction that writes the outbox row: PostgreSQL delivers the notification when, and
only if, that transaction commits, to every connection listening on the database's outbox
channel. Each worker's notifier keeps one :class:`OutboxListener`: a dedicated connection (not
one of the pool's) that wakes the notifier on each notification, reconnects after a loss
(database restart, network cut) and then wakes the notifier once, for what was queued while it
was away. The periodic poll (``settings.notify_poll_interval``) stays as the safety net, and is
the only way on SQLite, which has no notifications.

The channel name carries the schema (``cnr_outbox:<schema>``): several installations (or the
tests' schemas) on one database do not wake each other. The payload is empty: a notification
says "look at the outbox", never what is in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.db import cancel_task, discard_connection

log = logging.getLogger(__name__)

#: Channel name before the schema.
CHANNEL_PREFIX = "cnr_outbox:"
#: The outbox channel of the current schema (the session's or connection's search_path).
_CHANNEL_SQL = f"SELECT '{CHANNEL_PREFIX}' || current_schema()"


async def outbox_queued(session: AsyncSession) -> None:
    """Tell the listening workers, when the caller's transaction commits, that a notice is
    waiting (PostgreSQL; nothing elsewhere: the notifier's poll finds it)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(text(f"SELECT pg_notify(({_CHANNEL_SQL}), '')"))


class OutboxListener:
    """Calls ``wake`` on each notification of the outbox channel (PostgreSQL), on a dedicated
    connection, re-established after a loss with a back-off (``retry`` doubling up to
    ``retry_cap`` seconds). Every ``check`` seconds an idle connection is pinged, so that a
    silently dropped one is noticed too."""

    def __init__(
        self,
        engine: AsyncEngine,
        wake: Callable[[], None],
        *,
        check: float = 30.0,
        retry: float = 0.5,
        retry_cap: float = 10.0,
    ) -> None:
        self.engine = engine
        self.wake = wake
        self.check = check
        self.retry = retry
        self.retry_cap = retry_cap
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        #: Times a listening connection was set up (1 at start; more after losses).
        self.connections = 0
        #: Notifications received.
        self.received = 0
        self._listening = False
        self._changed = asyncio.Condition()

    @property
    def listening(self) -> bool:
        return self._listening

    async def wait_listening(self, connections: int = 1) -> None:
        """Until it listens on its ``connections``-th connection (tests: after a loss)."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._listening and self.connections >= connections
            )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)
        await self._discard()

    async def _run(self) -> None:
        delay = self.retry
        while True:
            try:
                await self._listen()
                delay = self.retry  # it was up, then lost: reconnect at once-ish
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: try again later, logged
                log.warning("outbox listener: %s; reconnecting", type(exc).__name__)
            self._listening = False
            await self._discard()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_cap)

    async def _listen(self) -> None:
        lost = asyncio.Event()
        conn = await self.engine.connect()
        self._conn = conn
        fairy = await conn.get_raw_connection()
        raw: Any = fairy.driver_connection
        channel = str(await raw.fetchval(_CHANNEL_SQL))

        def on_notification(*_args: Any) -> None:
            self.received += 1
            self.wake()

        raw.add_termination_listener(lambda *_: lost.set())
        await raw.add_listener(channel, on_notification)
        async with self._changed:
            self.connections += 1
            self._listening = True
            self._changed.notify_all()
        self.wake()  # what was queued while nobody listened
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check):
                    await lost.wait()
            if lost.is_set() or raw.is_closed():
                break
            await asyncio.wait_for(raw.fetchval("SELECT 1"), timeout=10)
        raise ConnectionError("listening connection lost")

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        await discard_connection(conn)  # not returned to the pool: it still listens
