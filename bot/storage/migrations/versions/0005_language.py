"""Each person's language: the one they chose with /language, and the one Telegram reports.

Revision ID: 0005_language
Revises: 0003_delivery_claims
Create Date: 2026-11-29

``language`` is the person's choice ("en", "zh"); NULL means "follow Telegram". Reminders are
sent without an incoming update to read Telegram's ``language_code`` from, so the locale it
resolved to when the person last wrote is kept in ``telegram_language``. Both start NULL:
everyone keeps English reminders until they next write to the bot, as before this change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_language"
down_revision: str | Sequence[str] | None = "0003_delivery_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("people", sa.Column("language", sa.String(8), nullable=True))
    op.add_column("people", sa.Column("telegram_language", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("telegram_language")
        batch.drop_column("language")
