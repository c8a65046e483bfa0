"""A rejection's reason written for the citizen: contributions.citizen_reason

A contribution rejected as "other" carries a short reason a moderator wrote for the citizen,
sent in the citizen's notice; the moderator's note (``reject_note``) stays in the console.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contributions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("citizen_reason", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contributions", schema=None) as batch_op:
        batch_op.drop_column("citizen_reason")
