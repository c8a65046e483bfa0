"""Shared fixtures: real databases, and a test run that does not depend on the shell.

``db_settings`` is parametrised over a real SQLite file and a real PostgreSQL (each test gets
its own schema in the database named by ``CNR_TEST_POSTGRES_URL``; ``.ci/run`` creates that
database). When the variable is not set and a PostgreSQL server answers at the default local
address (``postgres@127.0.0.1:5432``, trust auth), the run creates a database of its own and
drops it at the end, so a newcomer's plain ``pytest`` skips nothing; ``CNR_TEST_POSTGRES_URL=off``
turns PostgreSQL off. Where no PostgreSQL is configured or reachable, the PostgreSQL variant is
skipped with the reason.

The application reads its settings from ``CNR_*`` variables: every one of them that the shell
running the tests happens to export is removed before any test runs (only the test run's own
``CNR_TEST_*`` and ``CNR_SCREENSHOT_DIR`` are kept), so the result is the same whatever the
shell holds (``tests/project/test_suite_environment.py`` proves it).
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
#: Variables of the test run itself (not application settings): kept.
TEST_VARIABLES = ("CNR_TEST_", "CNR_SCREENSHOT_DIR")
#: Where a local PostgreSQL is looked for when ``CNR_TEST_POSTGRES_URL`` is not set.
LOCAL_POSTGRES = ("127.0.0.1", 5432, "postgres")
_pg_problem: str | None = None
_pg_checked = False
_created_database: str | None = None
_local_problem = f"{PG_ENV}=off"


def pytest_configure(config: pytest.Config) -> None:
    for name in list(os.environ):
        if name.startswith("CNR_") and not name.startswith(TEST_VARIABLES):
            del os.environ[name]
    if PG_ENV not in os.environ:
        _create_local_database()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _created_database
    if _created_database is not None:
        name, _created_database = _created_database, None
        asyncio.run(_local_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if os.environ.get(PG_ENV, "").endswith(f"/{name}"):
            del os.environ[PG_ENV]


def _create_local_database() -> None:
    """A database of this run's own on a local PostgreSQL, if one answers (else nothing)."""
    global _created_database, _local_problem
    host, port, user = LOCAL_POSTGRES
    name = f"cnr_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_local_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # refused, timed out, auth, permissions: no local database; say why
        _local_problem = f"none at the default address: {type(exc).__name__}: {exc}"
        return
    _created_database = name
    os.environ[PG_ENV] = f"postgresql+asyncpg://{user}@{host}:{port}/{name}"


async def _local_admin(statement: str) -> None:
    import asyncpg

    host, port, user = LOCAL_POSTGRES
    conn = await asyncpg.connect(host=host, port=port, user=user, database="postgres", timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postgres_url() -> str:
    """The PostgreSQL URL for tests, or skip the calling test with the reason."""
    global _pg_checked, _pg_problem
    url = os.environ.get(PG_ENV)
    if not url or url == "off":
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1/x)"
            f" or a server at {LOCAL_POSTGRES[0]}:{LOCAL_POSTGRES[1]} ({_local_problem})"
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


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters in tests (the hash records them, so verify stays cheap too)."""
    from argon2 import PasswordHasher

    from moderation import security

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(security, "_hasher", cheap)
    monkeypatch.setattr(security, "_DUMMY_HASH", cheap.hash("dummy password"))
