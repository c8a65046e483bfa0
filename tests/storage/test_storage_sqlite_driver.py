"""The SQLite driver's one-hop cursors (storage.sqlite_driver), through SQLAlchemy as the app uses
them: results small and large (the exporter's stream), writes, errors, and the hops counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import sqlite_driver
from storage.db import create_engine
from storage.settings import Settings

ROWS = sqlite_driver.FIRST_PAGE * 2 + 7  # more than one page, not a multiple of it


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/driver.db",
        secret_key="test-secret-not-for-production",
    )
    eng = create_engine(settings)
    async with eng.begin() as db:
        await db.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made in the connections' threads (one hop each)."""
    seen: list[str] = []
    original = sqlite_driver.OneHopConnection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", type(fn).__name__))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(sqlite_driver.OneHopConnection, "_execute", counted)
    return seen


async def _fill(engine: AsyncEngine, n: int = ROWS) -> None:
    async with engine.begin() as db:
        await db.execute(
            sa.text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"v{i}"} for i in range(n)]
        )


async def test_the_engine_uses_one_hop_connections(engine: AsyncEngine) -> None:
    async with engine.connect() as db:
        raw = await db.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.OneHopConnection)
        assert await db.scalar(sa.text("PRAGMA journal_mode")) == "wal"
        assert await db.scalar(sa.text("PRAGMA foreign_keys")) == 1


async def test_a_query_and_a_transaction_take_one_hop_a_statement(
    engine: AsyncEngine, hops: list[str]
) -> None:
    async with engine.connect() as db:  # warm: the pool's first connection
        await db.execute(sa.text("SELECT 1"))
    hops.clear()
    async with engine.connect() as db:
        assert (await db.execute(sa.text("SELECT 42"))).scalar() == 42
    assert len(hops) == 1  # no cursor, fetch, close nor rollback hop
    hops.clear()
    async with engine.begin() as db:
        await db.execute(sa.text("INSERT INTO t (v) VALUES ('a')"))
        await db.execute(sa.text("UPDATE t SET v = 'b' WHERE v = 'a'"))
    assert len(hops) == 3  # two statements and the commit


async def test_large_results_whole_and_streamed(engine: AsyncEngine, hops: list[str]) -> None:
    await _fill(engine)
    async with engine.connect() as db:
        rows = (await db.execute(sa.text("SELECT id, v FROM t ORDER BY id"))).all()
        assert [r.v for r in rows] == [f"v{i}" for i in range(ROWS)]
        # streamed (a server-side cursor): fetched by pages, in several hops
        hops.clear()
        streamed = []
        result = await db.stream(sa.text("SELECT v FROM t ORDER BY id"))
        async for partition in result.partitions(100):
            assert len(partition) <= 100
            streamed.extend(r.v for r in partition)
        assert streamed == [f"v{i}" for i in range(ROWS)]
        assert hops == ["run", "fetch", "fetch"]  # pages of FIRST_PAGE rows, the last short
        # a stream left early closes its cursor; the connection goes on
        result = await db.stream(sa.text("SELECT v FROM t ORDER BY id"))
        assert (await result.fetchmany(3)) == [("v0",), ("v1",), ("v2",)]
        await result.close()
        assert await db.scalar(sa.text("SELECT count(*) FROM t")) == ROWS


async def test_rowcount_lastrowid_returning(engine: AsyncEngine) -> None:
    await _fill(engine, 5)
    async with engine.begin() as db:
        result = await db.execute(sa.text("UPDATE t SET v = v || '!' WHERE id <= 3"))
        assert result.rowcount == 3
        result = await db.execute(sa.text("INSERT INTO t (v) VALUES ('new')"))
        assert result.lastrowid == 6
        returned = await db.execute(sa.text("DELETE FROM t WHERE id > 4 RETURNING id"))
        assert sorted(returned.scalars()) == [5, 6]


async def test_errors_and_rollback(engine: AsyncEngine) -> None:
    await _fill(engine, 2)
    with pytest.raises(IntegrityError):
        async with engine.begin() as db:
            await db.execute(sa.text("INSERT INTO t (v) VALUES ('x')"))
            await db.execute(sa.text("INSERT INTO t (v) VALUES ('v0')"))  # duplicate
    async with engine.connect() as db:
        assert await db.scalar(sa.text("SELECT count(*) FROM t")) == 2  # 'x' rolled back
        with pytest.raises(sa.exc.OperationalError):
            await db.execute(sa.text("SELECT nope FROM t"))
        assert await db.scalar(sa.text("SELECT count(*) FROM t")) == 2


async def test_inline_statements_take_no_hop(engine: AsyncEngine, hops: list[str]) -> None:
    """Within ``inline``, statements run on the calling thread: only the commit takes a hop;
    the busy timeout is back after it."""
    async with engine.connect() as db:
        await db.execute(sa.text("SELECT 1"))  # warm: the pool's first connection
    hops.clear()
    async with engine.begin() as db:
        async with sqlite_driver.inline(db):
            await db.execute(sa.text("INSERT INTO t (v) VALUES ('a')"))
            assert (await db.execute(sa.text("SELECT v FROM t"))).scalar() == "a"
            await db.execute(sa.text("UPDATE t SET v = 'b'"))
            assert hops == []
        assert await db.scalar(sa.text("PRAGMA busy_timeout")) == 10_000  # the default
    assert len(hops) == 2  # the busy timeout's PRAGMA just above, and the commit
    async with engine.connect() as db:
        assert await db.scalar(sa.text("SELECT v FROM t")) == "b"


async def test_an_inline_statement_that_meets_a_lock_waits_in_the_thread(
    tmp_path: Path, engine: AsyncEngine
) -> None:
    """Another connection (another process) holds the write lock: an inline write does not
    wait on the event loop's thread (busy timeout zero there); it runs again in its
    connection's thread, which waits for the lock with the busy timeout, and succeeds once the
    other commits. Meanwhile the event loop goes on."""
    import asyncio
    import sqlite3

    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('other')")
    ticks = 0

    async def release_later() -> None:
        nonlocal ticks
        for _ in range(20):
            await asyncio.sleep(0.01)  # the loop runs while the write waits
            ticks += 1
        other.execute("COMMIT")

    releasing = asyncio.create_task(release_later())
    async with engine.begin() as db, sqlite_driver.inline(db):
        await db.execute(sa.text("INSERT INTO t (v) VALUES ('inline')"))
    await releasing
    other.close()
    assert ticks == 20
    async with engine.connect() as db:
        assert sorted(await db.scalars(sa.text("SELECT v FROM t"))) == ["inline", "other"]
