"""The PostgreSQL pool notices a connection that died while idle (server restart, cut link) and
replaces it before use, without pinging connections in steady use."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import db
from storage.settings import Settings


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _kill(settings: Settings, pid: int) -> None:
    """Terminate a server process from another engine (as a server restart would)."""
    killer = db.create_engine(settings)
    try:
        async with killer.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        await killer.dispose()


async def test_connection_killed_while_idle_is_replaced(
    pg_engine: AsyncEngine, pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, db_settings = pg_engine, pg_settings  # SQLite has no server to lose
    first = await _backend_pid(engine)
    assert await _backend_pid(engine) == first  # the pool hands the same connection back
    await _kill(db_settings, first)
    # the killed connection is back in the pool; "idle long enough" to be pinged at checkout
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)
    second = await _backend_pid(engine)
    assert second != first


async def test_connection_in_steady_use_is_not_pinged(
    pg_engine: AsyncEngine, pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, db_settings = pg_engine, pg_settings  # SQLite has no server to lose
    first = await _backend_pid(engine)
    await _kill(db_settings, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 3600.0)
    # not pinged: the dead connection is used and fails (the caller retries), then replaced
    with pytest.raises(Exception):  # noqa: B017 - the driver's own disconnect error
        await _backend_pid(engine)
    assert await _backend_pid(engine) != first
