from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import alembic_config, current_revision
from storage.models import Base


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}; chain your migration on the head"


async def test_migrations_reach_head_and_match_models(engine: AsyncEngine) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await current_revision(engine) == head

    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], f"models and migrations differ: {changes}"


def test_blank_or_short_secrets_are_refused() -> None:
    import pytest
    from pydantic import ValidationError

    from storage.settings import Settings

    for field in ("secret_key", "webhook_secret", "telegram_token"):
        for bad in ("", "   ", "short"):
            with pytest.raises(ValidationError, match=field):
                Settings(**{field: bad})  # type: ignore[arg-type]
    assert Settings(secret_key="x" * 16).master_secret() == b"x" * 16
