"""Database outages for tests: a SQLite file whose write lock another writer holds, and a TCP
relay to PostgreSQL that the test can cut (a network failure, a database restart)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

from storage.settings import Settings


@contextlib.asynccontextmanager
async def sqlite_locked(settings: Settings) -> AsyncIterator[sqlite3.Connection]:
    """Another process-like writer holds the database's write lock (as a stuck migration or
    backup would): every write of the bot fails with "database is locked".

    The lock is taken in a thread: a transaction of the bot that is about to commit must be
    able to (taking it on the event loop's thread would stop the loop, and that commit, for
    the whole busy timeout)."""
    path = settings.database_url.split("///", 1)[1]
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    await asyncio.to_thread(conn.execute, "BEGIN EXCLUSIVE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


class TcpProxy:
    """A TCP relay to PostgreSQL that the test can cut (as a network failure or a database
    restart would): listening socket closed, every open connection reset."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
