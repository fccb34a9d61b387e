"""Index deliveries by due time, so old history can be purged without a table scan.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_deliveries_due_at"), "deliveries", ["due_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_due_at"), table_name="deliveries")
