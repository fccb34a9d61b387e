"""`sleepbot capacity`: the schedule counted per kind and minute in SQL, projected, a verdict."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from bot import schedule
from bot.storage import Store
from bot.storage.dialects import create_read_only_engine
from bot.storage.models import DELIVERIES, DeliveryStatus
from bot.storage.send_load import MinuteLoad, read_send_load
from tests.pg import BACKENDS, TestDatabase, fresh_database
from tests.test_cli import run_cli

OFFSETS: Final = {"meal": 240, "exercise": 180, "wind_down": 60}
BERLIN: Final = ZoneInfo("Europe/Berlin")
NOON: Final = datetime(2025, 3, 10, 12, 0, tzinfo=BERLIN).astimezone(UTC)
PEOPLE: Final = 120
EARLY_BIRDS: Final = 30  # bedtime 21:00 instead of 22:30


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with fresh_database(request.param, tmp_path) as database:
        yield database


async def populate(db: TestDatabase) -> None:
    """PEOPLE in Berlin, most going to bed at 22:30, some at 21:00; one snoozed delivery."""
    store: Store = await db.open_store(OFFSETS)
    try:
        for chat_id in range(1, PEOPLE + 1):
            await store.set_timezone(chat_id, "Europe/Berlin", NOON)
            bedtime = time(21, 0) if chat_id <= EARLY_BIRDS else time(22, 30)
            await store.set_bedtime(chat_id, bedtime, NOON)
            await store.subscribe(chat_id, NOON)
        snoozed_until = NOON + timedelta(hours=2, seconds=20)
        async with store._transaction() as session:
            await session.execute(
                insert(DELIVERIES),
                [
                    {
                        "chat_id": 1,
                        "reminder_id": None,
                        "kind": "wind_down",
                        "due_at": NOON,
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": snoozed_until,
                        "created_at": NOON,
                    }
                ],
            )
    finally:
        await store.close()


def expected_loads() -> list[MinuteLoad]:
    counts: dict[tuple[str, int], int] = {}
    for bedtime, people in ((time(21, 0), EARLY_BIRDS), (time(22, 30), PEOPLE - EARLY_BIRDS)):
        for kind, offset in OFFSETS.items():
            instant = schedule.next_fire_at(
                bedtime=bedtime, weekend_bedtime=None, offset_minutes=offset, tz=BERLIN, after=NOON
            )
            key = (kind, int(instant.timestamp()) // 60)
            counts[key] = counts.get(key, 0) + people
    snooze = ("wind_down", int((NOON + timedelta(hours=2)).timestamp()) // 60)
    counts[snooze] = counts.get(snooze, 0) + 1
    return [MinuteLoad(kind, minute, n) for (kind, minute), n in sorted(counts.items())]


async def test_the_load_is_counted_per_kind_and_minute_in_sql(db: TestDatabase) -> None:
    await populate(db)
    engine = create_read_only_engine(db.url, schema=db.schema)
    try:
        loads = await read_send_load(engine, NOON, NOON + timedelta(hours=24))
        later = await read_send_load(engine, NOON + timedelta(hours=10), NOON + timedelta(hours=24))
    finally:
        await engine.dispose()
    assert loads == expected_loads()
    assert later == []  # from 22:00 Berlin: every reminder of the night is before it


def _sqlite(tmp_path: Path) -> str:
    database = tmp_path / "bot.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    asyncio.run(populate(TestDatabase("sqlite", url, None)))
    return url


def test_sleepbot_capacity_ok_at_the_default_rate(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    before = (tmp_path / "bot.sqlite3").stat().st_mtime_ns
    result = run_cli("capacity", "--at", NOON.isoformat(), cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    total = PEOPLE * 3 + 1
    assert out.splitlines()[0] == (
        f"next 24 h from 2025-03-10 11:00 UTC: {total} messages "
        f"(exercise {PEOPLE}, meal {PEOPLE}, wind_down {PEOPLE + 1})"
    )
    assert "rate 30 msg/s = 1,800 a minute = 2,592,000 in 24 h" in out
    # 90 reminders of each kind in the 22:30 people's minutes: the worst minutes
    assert "2025-03-10 17:30         90         0.1            3s" in out
    assert out.strip().splitlines()[-1].startswith("verdict: OK")
    assert (tmp_path / "bot.sqlite3").stat().st_mtime_ns == before  # read-only


def test_sleepbot_capacity_flags_a_day_over_capacity(tmp_path: Path) -> None:
    """At 1 message a minute, 90 in one minute cannot all go within 30 minutes + windows."""
    url = _sqlite(tmp_path)
    env = {"DATABASE_URL": url, "SEND_RATE_PER_SECOND": str(1 / 60)}
    result = run_cli("capacity", "--at", NOON.isoformat(), cwd=tmp_path, **env)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("verdict: OVER CAPACITY: ")
    today = next(line for line in lines if line.startswith("as today"))
    levelled = next(line for line in lines if line.startswith("levelled within"))
    expired_today, expired_levelled = int(today.split()[-1]), int(levelled.split()[-1])
    assert expired_levelled < expired_today
    paid = run_cli(
        "capacity", "--at", NOON.isoformat(), cwd=tmp_path, ALLOW_PAID_BROADCAST="true", **env
    )
    # SEND_RATE_PER_SECOND is the total: at or below the free rate it leaves no paid lane,
    # so nothing would go paid (the projection with a paid lane: test_capacity_watch.py).
    assert paid.returncode == 1, paid.stderr
    assert "levelled, paid broadcast" not in paid.stdout
    assert paid.stdout.strip().splitlines()[-1].startswith("verdict: OVER CAPACITY")


def test_sleepbot_capacity_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    missing = run_cli(
        "capacity", cwd=tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    )
    assert missing.returncode == 2 and "no database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    hours = run_cli("capacity", "--hours", "48", cwd=tmp_path)
    assert hours.returncode == 2 and "must be 1 to 24" in hours.stderr
    at = run_cli("capacity", "--at", "yesterday", cwd=tmp_path)
    assert at.returncode == 2 and "ISO 8601" in at.stderr
