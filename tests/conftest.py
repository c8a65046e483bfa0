"""Shared fixtures: real databases.

``db_settings`` is parametrised over a real SQLite file and a real PostgreSQL (each test gets
its own schema in the database named by ``CNR_TEST_POSTGRES_URL``; ``.ci/run`` creates that
database). Where no PostgreSQL is configured or reachable, the PostgreSQL variant is skipped
with the reason.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine, upgrade
from storage.settings import Settings

PG_ENV = "CNR_TEST_POSTGRES_URL"
_pg_problem: str | None = None
_pg_checked = False


def postgres_url() -> str:
    """The PostgreSQL URL for tests, or skip the calling test with the reason."""
    global _pg_checked, _pg_problem
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1/x)"
        )
    if not _pg_checked:
        _pg_checked = True
        _pg_problem = asyncio.run(_probe(url))
    if _pg_problem:
        pytest.skip(f"PostgreSQL at {PG_ENV} is not reachable: {_pg_problem}")
    return url


async def _probe(url: str) -> str | None:
    import sqlalchemy as sa

    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("select 1"))
        return None
    except Exception as exc:  # any failure means: skip, saying why
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


def _base_settings(tmp_path: Path, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "secret_key": "test-secret-not-for-production",
        "secret_file": tmp_path / "secret.key",
    }
    values.update(overrides)
    return values


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings pointing at a fresh, empty database of the current backend (not migrated)."""
    if backend == "sqlite":
        yield Settings(
            **_base_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/cnr.db")
        )
        return
    yield from _postgres_settings(tmp_path)


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh PostgreSQL schema only (for what only PostgreSQL does)."""
    yield from _postgres_settings(tmp_path)


def _postgres_settings(tmp_path: Path) -> Iterator[Settings]:
    url = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(_pg_schema(url, f'CREATE SCHEMA "{schema}"'))
    try:
        yield Settings(**_base_settings(tmp_path, database_url=url, database_schema=schema))
    finally:
        asyncio.run(_pg_schema(url, f'DROP SCHEMA "{schema}" CASCADE'))


async def _pg_schema(url: str, statement: str) -> None:
    import sqlalchemy as sa

    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite file only (for tests about channels, not storage)."""
    return Settings(
        **_base_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/cnr.db")
    )


@pytest.fixture
async def engine(db_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A migrated database on the current backend."""
    eng = create_engine(db_settings)
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def pg_engine(pg_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A migrated PostgreSQL database (for what only PostgreSQL does)."""
    eng = create_engine(pg_settings)
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()
