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

It relies on aiosqlite's ``_execute`` (run a function in the connection's thread) and
``_conn`` (the ``sqlite3`` connection, used only in that thread), stable since aiosqlite 0.17;
``in_transaction`` is read from the event loop's thread (CPython reads it without the
same-thread check, and no statement of this connection runs meanwhile: SQLAlchemy uses a
connection for one thing at a time).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Generator, Iterable
from functools import partial
from typing import Any, TypeVar

import aiosqlite

#: Rows fetched with the statement, in the same hop; a larger result is fetched in more hops.
FIRST_PAGE = 1000

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
        sqlite = self._connection._conn

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

        cursor, self.description, rows, self.rowcount, self.lastrowid = await self._connection.call(
            run
        )
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


def supported() -> bool:
    """Whether the installed aiosqlite still has what this module relies on (its private
    ``_execute``); if not, ``storage.db`` uses the stock driver."""
    return callable(getattr(aiosqlite.Connection, "_execute", None))


def connector(database: str, **kwargs: Any) -> Callable[[], Any]:
    """``async_creator`` for SQLAlchemy's ``create_async_engine``: a new connection to
    ``database`` (``sqlite3.connect``'s keyword arguments in ``kwargs``)."""

    async def connect() -> OneHopConnection:
        connection = OneHopConnection(partial(sqlite3.connect, database, **kwargs), 64)
        connection._thread.daemon = True  # as SQLAlchemy's dialect does
        await connection
        return connection

    return connect


__all__ = ["FIRST_PAGE", "OneHopConnection", "OneHopCursor", "connector", "supported"]
