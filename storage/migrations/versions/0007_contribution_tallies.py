"""contribution_tallies: the dashboard's counts, kept by triggers as deltas

Every insert or delete of a contribution, and every change of its campaign, territory, theme,
status or reception time, appends deltas (+1 / -1) to ``contribution_tallies``: a "cell" row
(territory, theme, status) and a "reception" row (territory, UTC hour). Appending never waits
on another transaction (no counter row is updated in place). The dashboard sums the rows of
its campaign; the maintenance folds them into one row per group (``storage.tallies``). The
table is filled from the existing contributions.

On SQLite, a later migration that rebuilds ``contributions`` (batch "move and copy") drops
these triggers: it must run ``create_sqlite_triggers`` again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = "campaign_id, territory_id, theme_id, status, hour, n"
WATCHED = ("campaign_id", "territory_id", "theme_id", "status", "created_at")

PG_FUNCTION = f"""
CREATE FUNCTION cnr_tally_contributions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO contribution_tallies ({COLUMNS}) VALUES
            (OLD.campaign_id, OLD.territory_id, OLD.theme_id, OLD.status, NULL, -1),
            (OLD.campaign_id, OLD.territory_id, NULL, NULL,
             date_trunc('hour', OLD.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO contribution_tallies ({COLUMNS}) VALUES
            (NEW.campaign_id, NEW.territory_id, NEW.theme_id, NEW.status, NULL, 1),
            (NEW.campaign_id, NEW.territory_id, NULL, NULL,
             date_trunc('hour', NEW.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1);
    END IF;
    RETURN NULL;
END
$$
"""  # noqa: S608 (constants only)
_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
PG_TRIGGERS = (
    "CREATE TRIGGER contributions_tally AFTER INSERT OR DELETE ON contributions "
    "FOR EACH ROW EXECUTE FUNCTION cnr_tally_contributions()",
    f"CREATE TRIGGER contributions_tally_update AFTER UPDATE OF {', '.join(WATCHED)} "
    f"ON contributions FOR EACH ROW WHEN ({_CHANGED}) "
    "EXECUTE FUNCTION cnr_tally_contributions()",
)


def _sqlite_rows(row: str, sign: int) -> str:
    # created_at is stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) by storage.models.UTCDateTime
    return (
        f"INSERT INTO contribution_tallies ({COLUMNS}) VALUES "  # noqa: S608
        f"({row}.campaign_id, {row}.territory_id, {row}.theme_id, {row}.status, NULL, {sign}), "
        f"({row}.campaign_id, {row}.territory_id, NULL, NULL, "
        f"substr({row}.created_at, 1, 13) || ':00:00.000000', {sign});"
    )


_SQLITE_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER contributions_tally_insert AFTER INSERT ON contributions "
    f"BEGIN {_sqlite_rows('NEW', 1)} END",
    "CREATE TRIGGER contributions_tally_delete AFTER DELETE ON contributions "
    f"BEGIN {_sqlite_rows('OLD', -1)} END",
    f"CREATE TRIGGER contributions_tally_update AFTER UPDATE OF {', '.join(WATCHED)} "
    f"ON contributions FOR EACH ROW WHEN {_SQLITE_CHANGED} "
    f"BEGIN {_sqlite_rows('OLD', -1)} {_sqlite_rows('NEW', 1)} END",
)
SQLITE_TRIGGER_NAMES = (
    "contributions_tally_insert",
    "contributions_tally_delete",
    "contributions_tally_update",
)


def create_sqlite_triggers() -> None:
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "contribution_tallies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("territory_id", sa.Integer(), nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contribution_tallies")),
    )
    with op.batch_alter_table("contribution_tallies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contribution_tallies_campaign",
            ["campaign_id", "territory_id", "status"],
            unique=False,
        )
    postgres = op.get_bind().dialect.name == "postgresql"
    hour = (
        "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        if postgres
        else "substr(created_at, 1, 13) || ':00:00.000000'"
    )
    op.execute(
        f"INSERT INTO contribution_tallies ({COLUMNS}) "  # noqa: S608
        "SELECT campaign_id, territory_id, theme_id, status, NULL, count(*) FROM contributions "
        "GROUP BY campaign_id, territory_id, theme_id, status"
    )
    op.execute(
        f"INSERT INTO contribution_tallies ({COLUMNS}) "  # noqa: S608
        f"SELECT campaign_id, territory_id, NULL, NULL, {hour}, count(*) FROM contributions "
        f"GROUP BY campaign_id, territory_id, {hour}"
    )
    if postgres:
        op.execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        create_sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS contributions_tally_update ON contributions")
        op.execute("DROP TRIGGER IF EXISTS contributions_tally ON contributions")
        op.execute("DROP FUNCTION IF EXISTS cnr_tally_contributions()")
    else:
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("contribution_tallies", schema=None) as batch_op:
        batch_op.drop_index("ix_contribution_tallies_campaign")
    op.drop_table("contribution_tallies")
