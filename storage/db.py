"""Engine, sessions and migrations.

SQLite runs in WAL mode with ``synchronous=NORMAL``, a busy timeout and foreign keys on, through
aiosqlite with one thread hop per statement (:mod:`storage.sqlite_driver`);
PostgreSQL uses asyncpg with a bounded pool. Migrations are Alembic's, run programmatically
(``cnrbot db upgrade``, and on first run of ``cnrbot chat``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import sqlite_driver
from storage.settings import Settings

if TYPE_CHECKING:  # Alembic is imported only when a migration has to run
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(settings: Settings) -> AsyncEngine:
    """The async engine for ``settings.database_url``, tuned per backend."""
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        timeout = settings.sqlite_busy_timeout_ms / 1000
        if url.get_driver_name() == "aiosqlite" and not url.query and sqlite_driver.supported():
            # one thread hop per statement, not three or four (storage.sqlite_driver)
            kwargs["async_creator"] = sqlite_driver.connector(
                url.database or ":memory:", timeout=timeout
            )
        else:
            kwargs["connect_args"] = {"timeout": timeout}
    else:
        kwargs["pool_size"] = settings.database_pool_size
        kwargs["max_overflow"] = settings.database_pool_size
        if settings.database_schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": settings.database_schema}}
    # A database error's message never carries the statement's parameters (the texts of
    # contributions, pseudonymous keys): it may end up in a log line or a traceback.
    engine = create_async_engine(url, hide_parameters=True, **kwargs)
    if url.get_backend_name() != "sqlite":
        _ping_when_idle(engine)
    if url.get_backend_name() == "sqlite":
        busy = settings.sqlite_busy_timeout_ms

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


#: A pooled PostgreSQL connection idle longer than this is pinged before use (a server restart
#: or a cut connection is then noticed and the connection replaced, as ``pool_pre_ping`` does);
#: one in steady use is not, which saves a round trip per transaction under load.
PING_AFTER_IDLE = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:
            # the pool discards this connection and checks out (or opens) another one
            raise DisconnectionError("connection lost while idle") from exc


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine for reads that need no transaction of their own (what a page shows): in
    autocommit on PostgreSQL, which spares the BEGIN and ROLLBACK round trips around them (each
    statement sees the data committed when it runs); the engine itself on SQLite, where a
    read opens no transaction anyway."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_REVISION_LINE = re.compile(r"""^revision\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def head_revision() -> str:
    """The newest migration's revision, read from the highest-numbered file of
    ``migrations/versions`` (files are ``NNNN_name.py``, chained in that order: a test checks
    it is Alembic's own head) without importing Alembic."""
    newest = max((MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    found = _REVISION_LINE.search(newest.read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError(f"no revision in {newest.name}")
    return found.group(1)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (creating the database file if needed). A database
    already at the head costs one query (Alembic is not even imported: a start-up matters)."""
    if revision == "head":
        try:
            async with engine.connect() as conn:
                current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except Exception:  # no table yet (a new database): migrate
            current = None
        if current is not None and current == head_revision():
            return

    def _run(conn: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _get(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_get)


async def discard_connection(conn: AsyncConnection | None) -> None:
    """Drop a dedicated connection (a lock holder, a listener) without returning it to the
    pool: invalidated, then closed, whatever state it is in."""
    if conn is None:
        return
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it is over."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
