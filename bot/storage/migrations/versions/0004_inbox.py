"""The inbox: every Telegram update is stored here before Telegram is told it arrived.

Revision ID: 0004_inbox
Revises: 0002
Create Date: 2026-11-25

A killed process used to lose the updates long polling had already confirmed; now they wait
here until handled (bot/storage/inbox.py). Hand-written; tests/test_storage.py checks that the
schema matches bot/storage/models.py.

Also: settings, reminders and data rights are now for private chats only (bot/handlers/guard.py),
so what a group had stored (negative chat ids are groups and channels) can no longer be seen,
changed or erased by anyone, and its reminders could not be stopped from the group. It is
deleted here; a group that wants reminders is pointed to private chats. Not restored by the
downgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_inbox"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "done", "failed")


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbox")),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")",
            name=op.f("ck_inbox_status"),
        ),
    )
    op.create_index(op.f("ix_inbox_chat_id"), "inbox", ["chat_id"])
    op.create_index(op.f("ix_inbox_processed_at"), "inbox", ["processed_at"])
    op.create_index(op.f("ix_inbox_status_update_id"), "inbox", ["status", "update_id"])
    # Children first: no reliance on ON DELETE CASCADE being enforced by the connection.
    for table in ("deliveries", "reminders", "people"):
        op.execute(sa.text(f"DELETE FROM {table} WHERE chat_id < 0"))  # noqa: S608 (constant)


def downgrade() -> None:
    op.drop_table("inbox")
