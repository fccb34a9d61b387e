"""People, their reminders, and every delivery.

Revision ID: 0001
Revises:
Create Date: 2025-11-24

Hand-written; tests/test_storage.py checks that it matches bot/storage/models.py exactly.
Datetimes go through bot.storage.types.UTCDateTime: timestamptz on PostgreSQL, naive UTC text on
SQLite. Bedtimes are "HH:MM" strings, recent meals a JSON list in text: portable on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "pending",
    "sending",
    "sent",
    "done",
    "snoozed",
    "skipped",
    "expired",
    "failed",
    "cancelled",
)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("bedtime", sa.String(5), nullable=True),
        sa.Column("weekend_bedtime", sa.String(5), nullable=True),
        sa.Column("diet", sa.String(16), server_default="omnivore", nullable=False),
        sa.Column("subscribed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("paused_until", _utc(), nullable=True),
        sa.Column("blocked_at", _utc(), nullable=True),
        sa.Column("blocked_reason", sa.String(200), nullable=True),
        sa.Column("recent_meals", sa.Text(), server_default="[]", nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_people")),
    )

    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=False),
        sa.Column("next_fire_at", _utc(), nullable=True),
        sa.Column("last_due_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["people.chat_id"],
            name=op.f("fk_reminders_chat_id_people"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("chat_id", "kind", name=op.f("uq_reminders_chat_id_kind")),
    )
    op.create_index(op.f("ix_reminders_next_fire_at"), "reminders", ["next_fire_at"])

    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "deliveries",
        sa.Column("id", big_id, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("reminder_id", sa.Integer(), nullable=True),
        sa.Column("snoozed_from", big_id, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("due_at", _utc(), nullable=False),
        sa.Column("meal_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("lease_until", _utc(), nullable=True),
        sa.Column("sent_at", _utc(), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["people.chat_id"],
            name=op.f("fk_deliveries_chat_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reminder_id"],
            ["reminders.id"],
            name=op.f("fk_deliveries_reminder_id_reminders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["snoozed_from"],
            ["deliveries.id"],
            name=op.f("fk_deliveries_snoozed_from_deliveries"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("reminder_id", "due_at", name=op.f("uq_deliveries_reminder_id_due_at")),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")",
            name=op.f("ck_deliveries_status"),
        ),
    )
    op.create_index(op.f("ix_deliveries_chat_id"), "deliveries", ["chat_id"])
    op.create_index(op.f("ix_deliveries_snoozed_from"), "deliveries", ["snoozed_from"])
    op.create_index(
        op.f("ix_deliveries_status_next_attempt_at"), "deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("reminders")
    op.drop_table("people")
