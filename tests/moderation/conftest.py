"""Fixtures of the console tests: a seeded campaign, staff accounts, signed-in consoles, and
cheap password hashing for every test of this folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import session_factory
from storage.settings import Settings
from tests.moderation_helpers import (
    Console,
    World,
    _logged_in,
    add_account,
    seed_world,
    start_console,
)


@pytest.fixture(autouse=True)
def _cheap_hashing(fast_hashing: None) -> None:
    """Every console test hashes with cheap argon2 parameters (tests/conftest.py)."""


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    return await seed_world(sessions)


@pytest.fixture
async def staff_ids(sessions: async_sessionmaker[AsyncSession], world: World) -> dict[str, int]:
    return {
        "admin": await add_account(sessions, "admin@ars.test", "admin", []),
        "oise": await add_account(
            sessions, "oise@ars.test", "moderator", [world.territories["OISE"]]
        ),
        "somme": await add_account(
            sessions, "somme@ars.test", "moderator", [world.territories["SOMME"]]
        ),
    }


@pytest.fixture
async def client(db_settings: Settings, engine: AsyncEngine) -> AsyncIterator[TestClient]:
    c = await start_console(db_settings, engine)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def admin(
    db_settings: Settings, engine: AsyncEngine, staff_ids: dict[str, int]
) -> AsyncIterator[Console]:
    """A console signed in as the regional administrator."""
    async for con in _logged_in(db_settings, engine, "admin@ars.test"):
        yield con


@pytest.fixture
async def oise(
    db_settings: Settings, engine: AsyncEngine, staff_ids: dict[str, int]
) -> AsyncIterator[Console]:
    """A console signed in as the Oise moderator."""
    async for con in _logged_in(db_settings, engine, "oise@ars.test"):
        yield con
