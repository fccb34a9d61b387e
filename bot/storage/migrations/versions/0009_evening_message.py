"""The "one evening message" setting: the meal idea rides with the exercise note.

Revision ID: 0009_evening_message
Revises: 0008_diary
Create Date: 2026-11-30

``people.evening_message`` is the person's choice in /settings (issue 11, item 3b): when true
and both the meal idea and the exercise note are on, the meal reminder is not scheduled
(``next_fire_at`` NULL) and the exercise delivery carries tonight's meal id, so one message
goes out instead of two. Everyone starts with two messages, as before this change.
Hand-written; tests/test_storage.py checks that the schema matches bot/storage/models.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_evening_message"
down_revision: str | Sequence[str] | None = "0008_diary"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "people",
        sa.Column("evening_message", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    # A meal reminder left unscheduled by evening mode (next_fire_at NULL while enabled) gets
    # its time back at the person's next change of any setting: computing it needs the
    # schedule's Python, which a migration must not import.
    with op.batch_alter_table("people") as batch:
        batch.drop_column("evening_message")
