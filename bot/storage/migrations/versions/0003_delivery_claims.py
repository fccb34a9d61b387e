"""Claims carry their owner, owners carry a heartbeat: takeover in seconds, not a 5-minute lease.

Revision ID: 0003_delivery_claims
Revises: 0004_inbox
Create Date: 2026-11-25

A ``sending`` delivery belongs to ``claimed_by`` for as long as that dispatcher's row in
``dispatchers`` keeps a fresh ``heartbeat_at``; ``lease_until`` is gone. Rows claimed under the
old scheme (``sending`` with no owner) count as a dead owner's and are taken over at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_delivery_claims"
down_revision: str | Sequence[str] | None = "0004_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dispatchers",
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("heartbeat_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_dispatchers")),
    )
    op.add_column("deliveries", sa.Column("claimed_by", sa.String(64), nullable=True))
    # SQLite >= 3.35 drops a plain column in place (no index or constraint uses it).
    op.drop_column("deliveries", "lease_until")


def downgrade() -> None:
    op.add_column("deliveries", sa.Column("lease_until", _utc(), nullable=True))
    op.drop_column("deliveries", "claimed_by")
    op.drop_table("dispatchers")
