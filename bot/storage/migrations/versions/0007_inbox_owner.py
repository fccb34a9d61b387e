"""The inbox row's owner: with several replicas, one worker begins each stored update.

Revision ID: 0007_inbox_owner
Revises: 0006_conversation
Create Date: 2026-11-29

Every replica's inbox worker scans the one inbox in the database; without an owner, two
workers could both begin the same pending update and answer it twice. A worker now claims
what it begins (``owner``), and takes over a pending update only from an owner whose
dispatcher heartbeat has stopped (bot/storage/inbox.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_inbox_owner"
down_revision: str | Sequence[str] | None = "0006_conversation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("owner")
