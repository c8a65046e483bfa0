"""The console at the scale of a national consultation: indexes for the queue, its keyset
pages, the dashboard and the text search

The queue is read in its order (created_at, id) through an index that starts with the status
(everyone) or the territory and the status (a moderator); the dashboard counts from one covering
index; the languages filter probes an index; on PostgreSQL the text search uses a trigram index
(pg_trgm, ``ILIKE '%...%'``). The extension is created when it is missing and the role may do it
(in ``public`` when that schema exists, so that dropping an application schema never drops it);
when it cannot be, the search works without the index (a warning says so). SQLite keeps its
LIKE over the rows: its ``ix_contributions_search`` is partial on a false condition (empty).
``ix_contributions_territory_status`` is a prefix of the new territory index: it goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SEARCH_COLUMNS = ("reference", "need", "solution", "levers", "custom_theme")
BTREE = (
    ("ix_contributions_status_order", ["status", "created_at", "id"]),
    ("ix_contributions_territory_order", ["territory_id", "status", "created_at", "id"]),
    ("ix_contributions_order", ["created_at", "id"]),
    (
        "ix_contributions_dashboard",
        ["campaign_id", "territory_id", "theme_id", "status", "created_at"],
    ),
    ("ix_contributions_language", ["language", "territory_id"]),
    ("ix_contributions_moderated", ["campaign_id", "moderated_at"]),
)


def _trigram_schema(conn: sa.Connection) -> str | None:
    """The schema holding pg_trgm, created if missing and allowed (else None)."""
    find = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    found = conn.scalar(find)
    if found is not None:
        return str(found)
    has_public = conn.scalar(sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"))
    attempts = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
    if has_public:
        attempts.insert(0, "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    for statement in attempts:
        savepoint = conn.begin_nested()
        try:
            conn.execute(sa.text(statement))
        except sa.exc.DBAPIError as exc:  # no permission, not installed, created meanwhile
            savepoint.rollback()
            log.info("pg_trgm: %s failed (%s)", statement, type(exc.orig).__name__)
        else:
            savepoint.commit()
            break
    found = conn.scalar(find)
    return None if found is None else str(found)


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("contributions", schema=None) as batch_op:
        batch_op.drop_index("ix_contributions_territory_status")
        for name, columns in BTREE:
            batch_op.create_index(name, columns, unique=False)
    if conn.dialect.name == "postgresql":
        schema = _trigram_schema(conn)
        if schema is None:
            log.warning(
                "pg_trgm is not available to this role: the console's text search works "
                "without its index (slower on a large consultation); ask the database "
                "administrator to run CREATE EXTENSION pg_trgm, then downgrade to 0005 and "
                "upgrade again"
            )
            return
        opclass = f'"{schema}".gin_trgm_ops'
        columns = ", ".join(f"{c} {opclass}" for c in SEARCH_COLUMNS)
        op.execute(f"CREATE INDEX ix_contributions_search ON contributions USING gin ({columns})")
    else:
        op.execute(
            "CREATE INDEX ix_contributions_search ON contributions "
            f"({', '.join(SEARCH_COLUMNS)}) WHERE 0"
        )


def downgrade() -> None:
    # The extension stays: other objects of the database may use it.
    op.execute("DROP INDEX IF EXISTS ix_contributions_search")
    with op.batch_alter_table("contributions", schema=None) as batch_op:
        for name, _columns in reversed(BTREE):
            batch_op.drop_index(name)
        batch_op.create_index(
            "ix_contributions_territory_status", ["territory_id", "status"], unique=False
        )
