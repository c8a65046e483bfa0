"""Citizen locks for several workers on one PostgreSQL database.

A worker drains a citizen's updates only while it holds a PostgreSQL advisory lock on the
citizen's key, so that two workers never answer one citizen at once (and replies keep their
order). All the locks of a worker live on one dedicated connection, not one pool connection
per citizen.

Taking and releasing a lock is one tiny statement, but under load a worker does it twice per
update: requests made while a round trip is in flight go together in the next one (a single
statement over arrays), and they run on the driver's own connection (asyncpg) rather than
through SQLAlchemy's execution machinery, which costs more than the statement here. The
connection is still checked out of the engine's pool (same settings, same accounting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.db import discard_connection

log = logging.getLogger(__name__)

#: One statement for a whole batch: each row takes (true) or releases (false) one lock.
_BATCH = (
    "SELECT t.n, CASE WHEN t.take THEN pg_try_advisory_lock(t.k) "
    "ELSE pg_advisory_unlock(t.k) END "
    "FROM unnest($1::bigint[], $2::boolean[]) WITH ORDINALITY AS t(k, take, n)"
)


class CitizenLocks:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        #: (lock id, take or release, its waiter: None when nobody waits)
        self._pending: list[tuple[int, bool, asyncio.Future[bool] | None]] = []
        self._runner: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self._raw: Any = None
        #: Statements sent (for tests and benchmarks: batches, not requests).
        self.round_trips = 0

    async def try_lock(self, lock_id: int) -> bool:
        """Take the lock if nobody holds it; False when another worker does."""
        return await self._request(lock_id, True)

    async def unlock(self, lock_id: int) -> None:
        await self._request(lock_id, False)

    def release(self, lock_id: int) -> None:
        """Unlock without waiting: it goes with the next round trip, before any later request
        for the same key (a drain that ends need not wait for its unlock)."""
        self._enqueue(lock_id, False, None)

    async def close(self, grace: float = 5.0) -> None:
        """Let the requests under way finish (a few seconds at most: the database may be
        gone), then drop the connection and every lock on it."""
        if self._runner is not None and not self._runner.done():
            _done, pending = await asyncio.wait({self._runner}, timeout=grace)
            for task in pending:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        # Invalidated, not returned: a pooled connection must not carry locks to its next user.
        await self._discard()

    # --- batching --------------------------------------------------------------------------------

    def _request(self, lock_id: int, take: bool) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._enqueue(lock_id, take, future)
        return future

    def _enqueue(self, lock_id: int, take: bool, future: asyncio.Future[bool] | None) -> None:
        self._pending.append((lock_id, take, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="citizen-locks")

    async def _run(self) -> None:
        while self._pending:
            # A key appears once per batch (its requests then run in the order they came).
            batch: list[tuple[int, bool, asyncio.Future[bool] | None]] = []
            later: list[tuple[int, bool, asyncio.Future[bool] | None]] = []
            keys: set[int] = set()
            for item in self._pending:
                (later if item[0] in keys else batch).append(item)
                keys.add(item[0])
            self._pending = later
            try:
                results = await self._execute(batch)
            except asyncio.CancelledError:  # closing: nobody is left waiting for ever
                stopped = OperationalError("advisory locks", None, ConnectionError("closed"))
                for _, _, future in batch + self._pending:
                    if future is not None and not future.done():
                        future.set_exception(stopped)
                self._pending = []
                raise
            except Exception as exc:
                # The connection's locks went with it; the "applied" guard of the inbox
                # still keeps order. Every waiter of the batch learns it (a database error).
                await self._discard()
                error = OperationalError("advisory locks", None, exc)
                for _, _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(error)
                continue
            for (lock_id, take, future), got in zip(batch, results, strict=True):
                if future is None:
                    continue
                if future.done():  # its waiter gave up (cancelled): never leak a lock
                    if take and got:
                        self._pending.append((lock_id, False, None))
                    continue
                future.set_result(got)

    async def _execute(
        self, batch: list[tuple[int, bool, asyncio.Future[bool] | None]]
    ) -> list[bool]:
        raw = await self._connection()
        self.round_trips += 1
        rows = await raw.fetch(_BATCH, [k for k, _, _ in batch], [t for _, t, _ in batch])
        by_n = {int(n): bool(v) for n, v in rows}
        return [by_n[i + 1] for i in range(len(batch))]

    async def _connection(self) -> Any:
        if self._raw is None or self._raw.is_closed():
            await self._discard()
            conn = await self.engine.connect()
            try:
                fairy = await conn.get_raw_connection()
                self._raw = fairy.driver_connection
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._raw

    async def _discard(self) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        await discard_connection(conn)
