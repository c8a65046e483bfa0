"""SQLite through aiosqlite with one thread hop per statement.

aiosqlite runs each SQLite call in its connection's thread and hands the result back to the
event loop: one "hop" (a queue put, a thread wake-up, a loop wake-up through its self-pipe).
SQLAlchemy's aiosqlite dialect makes four hops for a query (create a cursor, execute, fetch
all, close the cursor) and three for a write, and a rollback hop when a connection goes back
to the pool even when nothing is in progress. Under load each hop also waits for its turn in
a busy event loop, and on SQLite the writes take turns (one writer): a dialog's transaction
of three statements took 13 hops, most of the web chat's CPU and of the time the writer slot
is held (``bench/web_load.py``).

:class:`OneHopConnection` is an aiosqlite connection whose cursors do the whole statement in
one hop (create, execute, fetch the rows, close), whose commit and rollback make no hop when
no transaction is open, and which SQLAlchemy's dialect uses unchanged (``async_creator``). A
large result (the exporter's ``yield_per`` stream) is fetched by pages of
:data:`FIRST_PAGE` rows and more hops, as before: memory stays bounded.

**Inline statements.** A hop costs more than most statements of the dialog (a few
microseconds each on a small indexed table), and under load its completion waits for its turn
in the event loop behind every other ready callback: a group of events applied together
(``bot.core.processor``) made one hop per statement and spent most of its time waiting. While a
connection is *inline* (:func:`inline`, around the dialog's transactions and the web chat's
reads), its statements run on the calling thread, at once, with the busy timeout at zero so
that none can wait for a lock there: a statement that meets one (another process writing) is
run again in the connection's thread, where waiting is harmless, as any statement was before.
The commit still takes a hop (a WAL checkpoint may write and sync the database file then).
Readers never wait in WAL mode; a writer waits only for another writer's lock.

It relies on aiosqlite's ``_execute`` (run a function in the connection's thread) and
``_conn`` (the ``sqlite3`` connection, used only in that thread), stable since aiosqlite 0.17;
``in_transaction`` is read from the event loop's thread (CPython reads it without the
same-thread check, and no statement of this connection runs meanwhile: SQLAlchemy uses a
connection for one thing at a time).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from functools import partial
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.ext.asyncio import AsyncConnection

#: Rows fetched with the statement, in the same hop; a larger result is fetched in more hops.
FIRST_PAGE = 1000
#: SQLite's primary result code of a lock held by another connection.
SQLITE_BUSY = 5

Row = tuple[Any, ...]
T = TypeVar("T")


class OneHopCursor:
    """What SQLAlchemy's aiosqlite dialect needs of an aiosqlite cursor, one hop a statement."""

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = None  # open while rows remain to fetch
        self._rows: deque[Row] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    # aiosqlite's cursor() is awaited or entered; this one is ready at once
    def __await__(self) -> Generator[Any, None, OneHopCursor]:
        return self._ready().__await__()

    async def _ready(self) -> OneHopCursor:
        return self

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneHopCursor:
        args = () if parameters is None else parameters
        await self._run(lambda c: c.execute(sql, args))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneHopCursor:
        await self._run(lambda c: c.executemany(sql, parameters))
        return self

    async def _run(self, statement: Callable[[sqlite3.Cursor], object]) -> None:
        await self.close()
        connection = self._connection
        sqlite = connection._conn

        def run() -> tuple[sqlite3.Cursor | None, Any, list[Row], int, int | None]:
            cursor = sqlite.cursor()
            try:
                statement(cursor)
                rows: list[Row] = []
                if cursor.description is not None:
                    rows = cursor.fetchmany(FIRST_PAGE)
                done = len(rows) < FIRST_PAGE
                result = (
                    None if done else cursor,
                    cursor.description,
                    rows,
                    cursor.rowcount,
                    cursor.lastrowid,
                )
            except BaseException:
                cursor.close()
                raise
            if done:
                cursor.close()
            return result

        if connection.inline:
            try:
                outcome = run()
            except sqlite3.OperationalError as exc:
                if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) != SQLITE_BUSY:
                    raise
                # a lock to wait for: in the connection's thread, with the busy timeout
                outcome = await connection.call(partial(connection.waiting, run))
        else:
            outcome = await connection.call(run)
        cursor, self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = deque(rows)
        self._cursor = cursor

    async def _more(self, size: int | None) -> None:
        """Fetch more rows from the open cursor (``None``: all of them)."""
        cursor = self._cursor
        if cursor is None:
            return

        def fetch() -> tuple[list[Row], bool, int]:
            rows = cursor.fetchall() if size is None else cursor.fetchmany(size)
            done = size is None or len(rows) < size
            if done:
                cursor.close()
            return rows, done, cursor.rowcount

        rows, done, self.rowcount = await self._connection.call(fetch)
        self._rows.extend(rows)
        if done:
            self._cursor = None

    async def fetchone(self) -> Row | None:
        if not self._rows:
            await self._more(FIRST_PAGE)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        size = size or self.arraysize
        if len(self._rows) < size:
            await self._more(max(size, FIRST_PAGE))
        rows = self._rows
        return [rows.popleft() for _ in range(min(size, len(rows)))]

    async def fetchall(self) -> list[Row]:
        await self._more(None)
        rows, self._rows = list(self._rows), deque()
        return rows

    async def close(self) -> None:
        self._rows = deque()
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            await self._connection.call(cursor.close)

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None


class OneHopConnection(aiosqlite.Connection):
    """An aiosqlite connection with :class:`OneHopCursor` cursors (see the module)."""

    #: Statements run on the calling thread (:func:`inline`).
    inline = False
    #: The busy timeout (ms) given at connection, restored outside inline statements.
    busy_timeout_ms = 0

    def set_inline(self, inline: bool) -> None:
        """Run statements on the calling thread (True), or in the connection's thread."""
        if inline == self.inline or self._connection is None:
            return
        self._connection.execute(f"PRAGMA busy_timeout={0 if inline else self.busy_timeout_ms}")
        self.inline = inline

    def waiting(self, fn: Callable[[], T]) -> T:
        """``fn()`` with the busy timeout (in the connection's thread, while inline)."""
        sqlite = self._conn
        sqlite.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        try:
            return fn()
        finally:
            sqlite.execute("PRAGMA busy_timeout=0")

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` in the connection's thread (one hop)."""
        result: T = await self._execute(fn)  # type: ignore[no-untyped-call]
        return result

    async def commit(self) -> None:
        if self._connection is not None and self._connection.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._connection is not None and self._connection.in_transaction:
            await super().rollback()


@contextlib.asynccontextmanager
async def inline(db: AsyncConnection) -> AsyncIterator[None]:
    """The statements of ``db`` within run inline (see the module), when it is one of this
    module's connections; nothing changes on any other."""
    raw = (await db.get_raw_connection()).driver_connection
    if not isinstance(raw, OneHopConnection) or raw.inline:
        yield
        return
    raw.set_inline(True)
    try:
        yield
    finally:
        raw.set_inline(False)


def supported() -> bool:
    """Whether the installed aiosqlite still has what this module relies on (its private
    ``_execute``); if not, ``storage.db`` uses the stock driver."""
    return callable(getattr(aiosqlite.Connection, "_execute", None))


def connector(database: str, **kwargs: Any) -> Callable[[], Any]:
    """``async_creator`` for SQLAlchemy's ``create_async_engine``: a new connection to
    ``database`` (``sqlite3.connect``'s keyword arguments in ``kwargs``)."""

    # the calling thread too may use the connection (inline), never at the same time
    kwargs["check_same_thread"] = False

    async def connect() -> OneHopConnection:
        connection = OneHopConnection(partial(sqlite3.connect, database, **kwargs), 64)
        connection._thread.daemon = True  # as SQLAlchemy's dialect does
        connection.busy_timeout_ms = int(kwargs.get("timeout", 5.0) * 1000)
        await connection
        return connection

    return connect


__all__ = ["FIRST_PAGE", "OneHopConnection", "OneHopCursor", "connector", "inline", "supported"]
