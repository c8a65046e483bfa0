"""Every migration goes up, down and up again on SQLite and PostgreSQL, and the schema at the
end is the models' one: a release can always be rolled back and forward."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import alembic_config, create_engine, current_revision
from storage.models import Base
from storage.settings import Settings


def _revisions() -> list[str]:
    """Revisions from the first to the head."""
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


async def _alembic(engine: AsyncEngine, verb: str, revision: str) -> None:
    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def _tables(engine: AsyncEngine) -> set[str]:
    def names(conn: Connection) -> set[str]:
        return set(sa.inspect(conn).get_table_names()) - {"alembic_version"}

    async with engine.connect() as conn:
        return await conn.run_sync(names)


async def test_each_migration_goes_up_down_and_up_again(db_settings: Settings) -> None:
    revisions = _revisions()
    assert len(revisions) >= 4
    engine = create_engine(db_settings)
    try:
        previous = "base"
        seen: dict[str, set[str]] = {"base": set()}
        for revision in revisions:
            await _alembic(engine, "upgrade", revision)
            seen[revision] = await _tables(engine)
            await _alembic(engine, "downgrade", previous)
            assert await current_revision(engine) == (None if previous == "base" else previous)
            assert await _tables(engine) == seen[previous], f"{revision} did not go back"
            await _alembic(engine, "upgrade", revision)
            assert await _tables(engine) == seen[revision]
            previous = revision

        # All the way down, and up again: the models' schema.
        await _alembic(engine, "downgrade", "base")
        assert await _tables(engine) == set()
        await _alembic(engine, "upgrade", "head")

        def diff(conn: Connection) -> list[object]:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            return list(compare_metadata(ctx, Base.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    """``storage.db.head_revision`` (read without Alembic, for a fast start-up) is the head."""
    from storage.db import head_revision

    script = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == script.get_current_head()
    assert _revisions()[-1] == head_revision()
