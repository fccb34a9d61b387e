"""Alembic, configured in code: works from an installed wheel, no alembic.ini needed.

Alembic itself is imported only when a migration may run: a start on a database already at
``HEAD_REVISION`` (every start but the first after an upgrade) reads one row instead, which
keeps Alembic and Mako (≈ 8 MB of RSS, bench/README.md) out of the running bot (issue 11).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, column, inspect, select, table
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.dialects import lock_for_migration

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# The newest migration in migrations/versions; tests/test_storage.py checks it is Alembic's
# head, so a new migration cannot be forgotten here.
HEAD_REVISION: Final = "0010_partial_snooze_index"
VERSION_TABLE: Final = "alembic_version"  # Alembic's default
_VERSIONS: Final = table(VERSION_TABLE, column("version_num"))


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations, optionally bound to a connection.

    With a connection, env.py migrates through it (inside the caller's transaction) instead of
    building its own engine. ``sqlalchemy.url`` may be set on the result for CLI-style use.
    """
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates "%", so a path containing one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def at_head(connection: Connection) -> bool:
    """Is this database at ``HEAD_REVISION`` already (one version row, the head's)?"""
    if not inspect(connection).has_table(VERSION_TABLE):
        return False
    versions = connection.execute(select(_VERSIONS.c.version_num)).scalars()
    return list(versions) == [HEAD_REVISION]


def _upgrade_head(connection: Connection) -> None:
    from alembic import command

    lock_for_migration(connection)
    command.upgrade(alembic_config(connection), "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every pending migration in one transaction; a no-op when already at head."""
    async with engine.begin() as connection:
        if await connection.run_sync(at_head):
            return
        await connection.run_sync(_upgrade_head)
