"""Conversation state: the open prompt and whatever else handlers keep between updates.

Revision ID: 0006_conversation
Revises: 0003_delivery_claims
Create Date: 2026-11-29

PTB kept ``user_data``/``chat_data`` in process memory: a restart forgot that the bot had just
asked for a timezone, and with several replicas the next message could land on a process that
never asked. Hand-written; tests/test_storage.py checks that the schema matches
bot/storage/models.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_conversation"
down_revision: str | Sequence[str] | None = "0005_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "owner_id", name=op.f("pk_conversations")),
        sa.CheckConstraint("scope IN ('user', 'chat')", name=op.f("ck_conversations_scope")),
    )


def downgrade() -> None:
    op.drop_table("conversations")
