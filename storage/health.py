"""Is the database ready for a worker: reachable, writable, and at the current migration?

``readiness`` answers with ``None`` (ready) or a short reason fit for an unauthenticated
``/readyz`` (no address, no password, no exception message)."""

from __future__ import annotations

import asyncio
import functools
import sqlite3

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import alembic_config, current_revision

UNAVAILABLE = "database unavailable"
NOT_MIGRATED = "database schema not at the current version (run: cnrbot db upgrade)"


@functools.cache
def head_revisions() -> frozenset[str]:
    """The heads of the migrations shipped with this code (read once)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def readiness(engine: AsyncEngine, *, within: float = 3.0) -> str | None:
    """``None`` when the database answers within ``within`` seconds, accepts a writer (on
    SQLite, a file whose write lock another process holds makes every write fail) and its
    schema is at the migrations' head; otherwise why not."""
    try:
        async with asyncio.timeout(within):
            revision = await current_revision(engine)
            path = _sqlite_file(engine)
            if path is not None:
                await asyncio.to_thread(_sqlite_writable, path, min(within, 1.0))
    except (SQLAlchemyError, OSError, TimeoutError, sqlite3.Error):
        return UNAVAILABLE
    if revision is None or revision not in head_revisions():
        return NOT_MIGRATED
    return None


def _sqlite_file(engine: AsyncEngine) -> str | None:
    url = make_url(engine.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return url.database


def _sqlite_writable(path: str, timeout: float) -> None:
    """Take the write lock and let it go at once (no write), on a connection of its own with a
    short wait: the pool's connections wait the whole busy timeout."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()
