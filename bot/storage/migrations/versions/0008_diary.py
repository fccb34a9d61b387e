"""The sleep diary: one row per person per night, and the check-in's "stop asking?" memory.

Revision ID: 0008_diary
Revises: 0007_inbox_owner
Create Date: 2026-11-29

``diary_entries`` holds what the morning check-in and /checkin log (issue 9): a rating 1–5,
the three evening habits as yes/no, and an optional sleep-onset bucket. Rows go with their
person (ON DELETE CASCADE, /deletedata) and are never purged. ``people.checkin_stop_asked_on``
is the morning the bot last asked whether to turn check-ins off, so it asks once per streak.
The morning check-in itself is a ``reminders`` row of kind "checkin": no schema change there.
Hand-written; tests/test_storage.py checks that the schema matches bot/storage/models.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_diary"
down_revision: str | Sequence[str] | None = "0007_inbox_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "diary_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("dimmed_lights", sa.Boolean(), nullable=False),
        sa.Column("no_intense_exercise", sa.Boolean(), nullable=False),
        sa.Column("b12_dinner", sa.Boolean(), nullable=False),
        sa.Column("onset", sa.String(8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diary_entries")),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["people.chat_id"],
            name=op.f("fk_diary_entries_chat_id_people"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("chat_id", "night", name=op.f("uq_diary_entries_chat_id_night")),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_diary_entries_rating")),
        sa.CheckConstraint(
            "onset IS NULL OR onset IN ('lt15', '15to30', '30to60', 'gt60')",
            name=op.f("ck_diary_entries_onset"),
        ),
    )
    op.add_column("people", sa.Column("checkin_stop_asked_on", sa.Date(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a plain column in place (no index or constraint uses it).
    op.drop_column("people", "checkin_stop_asked_on")
    op.drop_table("diary_entries")
