"""Alembic environment: uses the connection handed over by ``storage.db.upgrade`` when there
is one, else connects to ``sqlalchemy.url`` (or ``CNR_DATABASE_URL`` through Settings)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from storage.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from storage.db import create_engine
    from storage.settings import Settings

    url = context.config.get_main_option("sqlalchemy.url")
    settings = Settings(database_url=url) if url else Settings()
    engine = create_engine(settings)

    async def _go() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(_go())


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `cnrbot db upgrade`")
run_migrations_online()
