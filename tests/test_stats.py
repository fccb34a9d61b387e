"""`sleepbot stats`: the counts an operator reads, from a database it cannot write to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from bot.storage import DeliveryStatus, Store
from bot.storage.dialects import create_read_only_engine
from bot.storage.models import DELIVERIES
from bot.storage.stats import due_backlog, read_stats
from tests.pg import BACKENDS, TestDatabase, fresh_database
from tests.test_cli import run_cli

OFFSETS: Final = {"meal": 240, "exercise": 180, "wind_down": 60}
BERLIN: Final = ZoneInfo("Europe/Berlin")
NOON: Final = datetime(2025, 3, 10, 12, 0, tzinfo=BERLIN).astimezone(UTC)
# 18:40 in Berlin: the 18:30 meal reminder (bedtime 22:30 - 4 h) is due and not yet turned
# into a delivery; the 19:30 exercise reminder is due within the hour.
NOW: Final = datetime(2025, 3, 10, 18, 40, tzinfo=BERLIN).astimezone(UTC)
ACTIVE, PAUSED, BLOCKED, SILENT = 1001, 1002, 1003, 1004


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with fresh_database(request.param, tmp_path) as database:
        yield database


async def subscribe(store: Store, chat_id: int) -> None:
    await store.set_timezone(chat_id, "Europe/Berlin", NOON)
    await store.set_bedtime(chat_id, time(22, 30), NOON)
    await store.subscribe(chat_id, NOON)


def delivery(status: str, due: timedelta, **values: Any) -> dict[str, Any]:
    """A delivery row for ACTIVE, due `due` before NOW (negative: after)."""
    due_at = NOW - due
    row = {
        "chat_id": ACTIVE,
        "reminder_id": None,
        "kind": "wind_down",
        "due_at": due_at,
        "status": status,
        "attempts": 1,
        "next_attempt_at": due_at,
        "sent_at": None,
        "created_at": due_at,
    }
    return row | values


async def populate(db: TestDatabase) -> None:
    store = await db.open_store(OFFSETS)
    try:
        for chat_id in (ACTIVE, PAUSED, BLOCKED):
            await subscribe(store, chat_id)
        await store.pause(PAUSED, NOW + timedelta(days=3), NOON)
        await store.deactivate(BLOCKED, "Forbidden: bot was blocked by the user", NOON)
        await store.ensure_person(SILENT, NOON)
        hour = timedelta(hours=1)
        rows = [
            delivery(DeliveryStatus.SENT, 2 * hour, sent_at=NOW - 2 * hour),
            delivery(DeliveryStatus.DONE, 30 * hour, sent_at=NOW - 30 * hour),  # too old
            delivery(DeliveryStatus.FAILED, 3 * hour),
            delivery(DeliveryStatus.EXPIRED, 5 * hour),
            delivery(DeliveryStatus.FAILED, 48 * hour),  # too old
            delivery(DeliveryStatus.PENDING, timedelta(minutes=15)),  # backlog, the oldest
            # Snoozed until 20 minutes from now: due within the hour, not backlog.
            delivery(
                DeliveryStatus.PENDING,
                timedelta(minutes=5),
                next_attempt_at=NOW + timedelta(minutes=20),
            ),
        ]
        async with store._transaction() as session:
            await session.execute(insert(DELIVERIES), rows)
    finally:
        await store.close()


async def test_the_counts_follow_their_definitions(db: TestDatabase) -> None:
    await populate(db)
    engine = create_read_only_engine(db.url, schema=db.schema)
    try:
        stats = await read_stats(engine, NOW)
        backlog = await due_backlog(engine, NOW)
    finally:
        await engine.dispose()
    assert (stats.people, stats.active_subscribers, stats.paused, stats.blocked) == (4, 1, 1, 1)
    assert stats.due_next_hour == 2  # ACTIVE's 19:30 reminder and the snoozed delivery
    assert (stats.sent_last_24h, stats.failed_last_24h) == (1, 2)
    assert stats.backlog == backlog == 2  # the 18:30 reminder and the pending delivery
    assert stats.backlog_oldest == timedelta(minutes=15)


async def test_the_engine_cannot_write(db: TestDatabase) -> None:
    await populate(db)
    engine = create_read_only_engine(db.url, schema=db.schema)
    try:
        with pytest.raises(DBAPIError, match=r"(?i)read-?only"):
            async with engine.begin() as connection:
                await connection.execute(text("DELETE FROM people"))
    finally:
        await engine.dispose()


def test_sleepbot_stats_prints_the_counts_as_text_and_json(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    asyncio.run(populate(TestDatabase("sqlite", url, None)))
    before = database.stat().st_mtime_ns
    result = run_cli("stats", cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["people", "4"]
    # Run today, the pause that ended in March 2025 is over: two active subscribers.
    assert lines[1].split() == ["active", "subscribers", "2", "(paused", "0,", "blocked", "1)"]
    as_json = run_cli("stats", "--json", cwd=tmp_path, DATABASE_URL=url)
    counts = json.loads(as_json.stdout)
    assert counts["people"] == 4 and counts["sent_last_24h"] == 0  # NOW was long ago
    assert database.stat().st_mtime_ns == before  # read-only


def test_sleepbot_stats_without_a_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "data" / "bot.sqlite3"
    result = run_cli("stats", cwd=tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{missing}")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "sleepbot run" in result.stderr
    assert not missing.parent.exists()


def test_sleepbot_stats_hides_the_password_when_the_server_is_down(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://sleepbot:hunter2@127.0.0.1:1/sleepbot"
    result = run_cli("stats", cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 2
    assert "hunter2" not in result.stderr and "***" in result.stderr
    assert result.stderr.count("\n") == 1
