"""Index only the deliveries that are snoozes: ``ix_deliveries_snoozed_from`` becomes partial.

Revision ID: 0010_partial_snooze_index
Revises: 0009_evening_message
Create Date: 2026-11-30

The index serves the self-referencing foreign key (ON DELETE SET NULL looks up
``snoozed_from = ?``) and the lookup of a delivery's snoozes. Almost no row is a snooze, yet
every nightly delivery inserted a NULL entry into it (issue 11 item 4: materialising a
reminder, bench/materialize.py). ``WHERE snoozed_from IS NOT NULL`` is implied by
``snoozed_from = ?``, so SQLite and PostgreSQL use the partial index for those lookups
(tests/test_storage.py checks the plans). Hand-written; tests/test_storage.py checks that the
schema matches bot/storage/models.py.

Rebuilding the index reads the table once, and on PostgreSQL holds off writes to it
meanwhile (inside the start-up's migration transaction, so not CONCURRENTLY). The table is
the last ``DELIVERY_HISTORY_DAYS`` (30) of deliveries: about 90 million rows at a million
people, read once at the first start-up of this version, before the bot serves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_partial_snooze_index"
down_revision: str | Sequence[str] | None = "0009_evening_message"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_deliveries_snoozed_from"
_SNOOZES = "snoozed_from IS NOT NULL"


def upgrade() -> None:
    op.drop_index(_NAME, table_name="deliveries")
    op.create_index(
        _NAME,
        "deliveries",
        ["snoozed_from"],
        sqlite_where=sa.text(_SNOOZES),
        postgresql_where=sa.text(_SNOOZES),
    )


def downgrade() -> None:
    op.drop_index(_NAME, table_name="deliveries")
    op.create_index(_NAME, "deliveries", ["snoozed_from"])
