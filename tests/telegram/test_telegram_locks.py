"""Citizen locks of the webhook workers (storage/locks.py) on a real PostgreSQL: one
holder at a time, requests batched into few round trips, nothing leaked by a waiter that gives
up, and a lost connection reported as a database error, then replaced."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.locks import CitizenLocks

pytestmark = pytest.mark.postgres


@pytest.fixture
async def workers(pg_engine: AsyncEngine) -> AsyncIterator[tuple[CitizenLocks, CitizenLocks]]:
    """The locks of two workers on one database."""
    first, second = CitizenLocks(pg_engine), CitizenLocks(pg_engine)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def some_keys(n: int) -> list[int]:
    # advisory locks are database-wide: keys of their own for each test
    return [int.from_bytes(os.urandom(8), "big", signed=True) for _ in range(n)]


async def test_one_holder_at_a_time(workers: tuple[CitizenLocks, CitizenLocks]) -> None:
    first, second = workers
    (key,) = some_keys(1)
    assert await first.try_lock(key) is True
    assert await second.try_lock(key) is False  # another worker holds this citizen
    await first.unlock(key)
    assert await second.try_lock(key) is True
    assert await first.try_lock(key) is False


async def test_requests_made_together_share_round_trips(
    workers: tuple[CitizenLocks, CitizenLocks],
) -> None:
    first, second = workers
    keys = some_keys(50)
    got = await asyncio.gather(*(first.try_lock(k) for k in keys))
    assert got == [True] * 50
    assert first.round_trips <= 3  # 50 requests, a handful of statements
    assert await asyncio.gather(*(second.try_lock(k) for k in keys)) == [False] * 50
    await asyncio.gather(*(first.unlock(k) for k in keys))
    assert await asyncio.gather(*(second.try_lock(k) for k in keys)) == [True] * 50


async def test_a_key_asked_twice_at_once_keeps_its_order(
    workers: tuple[CitizenLocks, CitizenLocks],
) -> None:
    first, second = workers
    (key,) = some_keys(1)
    assert await first.try_lock(key)
    # release then take again, in one burst: they must run in that order
    await asyncio.gather(first.unlock(key), first.try_lock(key))
    assert await second.try_lock(key) is False
    await first.unlock(key)
    assert await second.try_lock(key) is True  # held once, released once


async def test_a_release_needs_no_waiting_and_keeps_its_place(
    workers: tuple[CitizenLocks, CitizenLocks],
) -> None:
    first, second = workers
    key, other = some_keys(2)
    assert await first.try_lock(key)
    first.release(key)  # (a drain that ends does not wait for its unlock)
    assert await first.try_lock(key) is True  # after the release, not before it
    first.release(key)
    assert await first.try_lock(other)  # its round trip comes after the release's
    assert await second.try_lock(key) is True


async def test_a_waiter_that_gives_up_leaks_no_lock(
    workers: tuple[CitizenLocks, CitizenLocks],
) -> None:
    first, second = workers
    key, other = some_keys(2)
    waiter = asyncio.ensure_future(first.try_lock(key))
    await asyncio.sleep(0)  # the request is queued and its round trip under way
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await first.try_lock(other)  # runs after the release of the orphan lock
    assert await second.try_lock(key) is True


async def test_a_cut_connection_is_replaced_and_its_locks_are_free(
    pg_engine: AsyncEngine,
    workers: tuple[CitizenLocks, CitizenLocks],
) -> None:
    first, second = workers
    key, other = some_keys(2)
    assert await first.try_lock(key)
    pid = first._raw.get_server_pid()
    async with pg_engine.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # its locks went with the connection (another worker may take the citizen: the
    # inbox's "applied" guard keeps the order); the next request opens another one
    assert await second.try_lock(key) is True
    assert await first.try_lock(other) is True
    assert first._raw.get_server_pid() != pid


async def test_an_unreachable_database_is_a_database_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none")
    locks = CitizenLocks(engine)
    try:
        locks.release(2)  # fails with nobody waiting: nothing raised anywhere
        for _ in range(2):  # and again: nothing left half-open
            with pytest.raises(SQLAlchemyError):
                await locks.try_lock(1)
    finally:
        await locks.close()
        await engine.dispose()


async def test_closing_does_not_wait_for_a_database_that_never_answers() -> None:
    """A server that accepts connections and says nothing (a hung database): closing gives up
    after its grace, and the waiters get a database error instead of waiting for ever."""
    accepted: list[asyncio.StreamWriter] = []
    connected = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        connected.set()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none")
    locks = CitizenLocks(engine)
    try:
        waiter = asyncio.ensure_future(locks.try_lock(1))
        async with asyncio.timeout(10):
            await connected.wait()  # the connection attempt is under way
            await locks.close(grace=0.1)
            with pytest.raises(SQLAlchemyError):
                await waiter
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await engine.dispose()


async def test_closing_releases_every_lock(workers: tuple[CitizenLocks, CitizenLocks]) -> None:
    first, second = workers
    keys = some_keys(3)
    assert await asyncio.gather(*(first.try_lock(k) for k in keys)) == [True] * 3
    await first.close()  # (a worker stopping with citizens still locked)
    assert await asyncio.gather(*(second.try_lock(k) for k in keys)) == [True] * 3
