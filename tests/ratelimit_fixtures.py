"""Fixtures shared by the tests of the rate limits and of the web chat's guard: a counter of
each kind, the memory one and the database one on a real SQLite file and a real PostgreSQL.

The conftest.py of the folders that use them (tests/storage/ratelimit/, tests/web/guard/)
imports them, so that ``backend`` follows ``kind`` there only.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.ratelimit import DatabaseRateLimiter, MemoryRateLimiter, RateLimiter

KEY = b"k" * 32


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(kind: str) -> str:
    """The database under the counter (conftest's ``engine`` follows it; the memory counter
    gets an unused SQLite file)."""
    return "postgres" if kind == "postgres" else "sqlite"


@pytest.fixture
def limiter(kind: str, engine: AsyncEngine) -> RateLimiter:
    if kind == "memory":
        return MemoryRateLimiter(KEY)
    return DatabaseRateLimiter(KEY, engine)
