"""One inbox for every channel: inbound_messages

The Telegram-only ``inbound_updates`` (keyed by Telegram's update_id) becomes
``inbound_messages``: a row per message of any channel, unique by (channel, message id), ordered
per participant key by ``seq``, with the encrypted replies a pulling channel (the web chat)
fetches. Unfinished Telegram updates are carried over, so nothing in flight is lost.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Index names are global on SQLite: the old one goes first.
    with op.batch_alter_table("inbound_updates", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_pending")
    op.create_table(
        "inbound_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("replies", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("channel", "message_id", name=op.f("uq_inbound_messages_channel")),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_pending", ["status", "participant_key", "seq"], unique=False
        )
    op.execute(
        "INSERT INTO inbound_messages (channel, message_id, seq, participant_key, payload, "
        "status, received_at, processed_at) "
        "SELECT 'telegram', CAST(update_id AS VARCHAR(64)), update_id, participant_key, "
        "payload, status, received_at, processed_at "
        "FROM inbound_updates ORDER BY inbound_updates.update_id"
    )
    op.drop_table("inbound_updates")


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_pending")
    op.create_table(
        "inbound_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbound_updates")),
    )
    with op.batch_alter_table("inbound_updates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_pending", ["status", "participant_key", "update_id"], unique=False
        )
    # Only Telegram's updates have a place in the old table (the web chat's messages go).
    op.execute(
        "INSERT INTO inbound_updates (update_id, participant_key, payload, status, attempts, "
        "received_at, processed_at) "
        "SELECT seq, participant_key, payload, status, 0, received_at, processed_at "
        "FROM inbound_messages WHERE channel = 'telegram'"
    )
    op.drop_table("inbound_messages")
