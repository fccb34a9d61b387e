"""Run storage tests against SQLite always and against PostgreSQL when TEST_DATABASE_URL is set.

Each PostgreSQL test gets its own schema (via ``search_path``), created before and dropped
after, so tests never see each other's rows and may share one database with other users.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import Store, create_engine, open_store
from bot.storage.migrate import alembic_config

ENV_VAR: Final = "TEST_DATABASE_URL"
SKIP_REASON: Final = f"{ENV_VAR} not set: PostgreSQL tests skipped"

# Use as @pytest.fixture(params=BACKENDS) or @pytest.mark.parametrize("backend", BACKENDS).
BACKENDS: Final[list[Any]] = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_url() -> str | None:
    """The PostgreSQL URL from the environment, or None when PostgreSQL tests are off."""
    url = os.environ.get(ENV_VAR, "").strip()
    return url or None


def require_postgres() -> str:
    """The PostgreSQL URL, or skip the calling test with a visible reason."""
    url = postgres_url()
    if url is None:
        pytest.skip(SKIP_REASON)
    return url


@dataclass(frozen=True)
class TestDatabase:
    """Where one test's data lives: a URL plus, on PostgreSQL, a private schema."""

    __test__ = False  # not a test class, despite the name

    backend: str
    url: str
    schema: str | None

    async def open_store(self, default_offsets: Mapping[str, int] | None = None) -> Store:
        """A Store on this database (migrations applied); call it again for a second process."""
        return await open_store(self.url, default_offsets=default_offsets, schema=self.schema)


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    """A fresh, empty database for one test: a file in tmp_path, or a throw-away PG schema."""
    if backend == "sqlite":
        yield TestDatabase(backend, f"sqlite+aiosqlite:///{tmp_path / 'sleepbot.sqlite3'}", None)
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    url = require_postgres()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield TestDatabase(backend, url, schema)
        finally:
            async with admin.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await admin.dispose()


async def person_at_revision(
    engine: AsyncEngine, revision: str, chat_id: int, now: datetime
) -> None:
    """The schema of an older ``revision`` with one subscribed person (Berlin) in it: what a
    migration test upgrades from."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.upgrade(alembic_config(c), revision))
        await connection.execute(
            text(
                "INSERT INTO people (chat_id, timezone, subscribed, created_at, updated_at) "
                "VALUES (:chat_id, 'Europe/Berlin', true, :now, :now)"
            ),
            {"chat_id": chat_id, "now": now.replace(tzinfo=None)},
        )


async def down_and_up(engine: AsyncEngine, revision: str) -> set[str]:
    """Downgrade to ``revision`` and upgrade to head again (both directions of the migrations
    after it); returns the columns ``people`` had at ``revision``."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), revision))
        columns = await connection.run_sync(
            lambda c: {column["name"] for column in inspect(c).get_columns("people")}
        )
        await connection.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
    return columns
