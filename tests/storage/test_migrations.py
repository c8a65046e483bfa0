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


async def test_the_inbox_migration_carries_unfinished_updates_and_goes_back(
    db_settings: object,
) -> None:
    """0003 -> 0004 turns Telegram's inbound_updates into inbound_messages: an update in flight
    during the upgrade is kept (pending, with its payload, in order); downgrade and upgrade
    again keep it too."""
    import sqlalchemy as sa

    from storage.db import create_engine, upgrade
    from storage.settings import Settings

    assert isinstance(db_settings, Settings)
    engine = create_engine(db_settings)
    try:
        await upgrade(engine, "0003")
        async with engine.begin() as conn:
            for uid, status, payload in ((42, "pending", b"p42"), (41, "done", None)):
                await conn.execute(
                    sa.text(
                        "INSERT INTO inbound_updates (update_id, participant_key, payload, "
                        "status, attempts, received_at) "
                        "VALUES (:u, :k, :p, :s, 0, CURRENT_TIMESTAMP)"
                    ),
                    {"u": uid, "k": "k" * 64, "p": payload, "s": status},
                )
        await upgrade(engine, "0004")
        query = sa.text(
            "SELECT channel, message_id, seq, status, payload FROM inbound_messages ORDER BY seq"
        )
        async with engine.connect() as conn:
            rows = [tuple(r) for r in await conn.execute(query)]
        assert rows == [
            ("telegram", "41", 41, "done", None),
            ("telegram", "42", 42, "pending", b"p42"),
        ]

        def down(conn: Connection) -> None:
            from alembic import command

            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")

        async with engine.begin() as conn:
            await conn.run_sync(down)
        async with engine.connect() as conn:
            back = await conn.execute(
                sa.text("SELECT update_id, status, payload FROM inbound_updates ORDER BY 1")
            )
            assert [tuple(r) for r in back] == [(41, "done", None), (42, "pending", b"p42")]
        await upgrade(engine)
        async with engine.connect() as conn:
            assert [tuple(r) for r in await conn.execute(query)] == rows
    finally:
        await engine.dispose()
