"""Realistic subscribers, bulk-loaded straight into the schema the real migrations created.

Start-up and tick costs only mean something on a database that looks like production: people
all over the world, bedtimes clustered around 23:00 on quarter hours, some weekend bedtimes and
custom offsets, so that ``next_fire_at`` spreads over the whole day in minute-sized clumps.

Going through ``Store.subscribe`` would take hours for a million people, so rows are generated
here and inserted with ``sqlite3.executemany`` in one transaction, secondary indexes dropped
first and re-created from their own DDL afterwards (the schema stays exactly what Alembic made).
Every value is encoded by the models' own SQLAlchemy types and every ``next_fire_at`` comes from
``bot.schedule.next_fire_at``; ``self_check`` then asks the real Store to recompute a sample and
compares, so a drift between this loader and the bot fails loudly instead of skewing numbers.
"""

from __future__ import annotations

import bisect
import itertools
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import insert
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeEngine

from bot import schedule
from bot.storage import Store
from bot.storage.models import PEOPLE, REMINDERS
from bot.timezones import tzinfo_for

FIRST_CHAT_ID: Final = 1_000_000_000
CHAT_ID_STEP: Final = 7  # ids are sparse and increasing, like real ones, and PK inserts append
BATCH_PEOPLE: Final = 50_000

# Roughly where Telegram's users are (weights are shares, not exact statistics). The spread
# over UTC offsets is what matters: it puts somebody's reminder in almost every minute.
TIMEZONES: Final[tuple[tuple[str, float], ...]] = (
    ("Asia/Kolkata", 12),
    ("Europe/Moscow", 9),
    ("Asia/Jakarta", 7),
    ("America/Sao_Paulo", 7),
    ("Asia/Tehran", 4),
    ("Europe/Kyiv", 4),
    ("Europe/Berlin", 4),
    ("America/New_York", 5),
    ("America/Chicago", 3),
    ("America/Los_Angeles", 3),
    ("America/Denver", 1),
    ("Europe/Istanbul", 3),
    ("Asia/Tashkent", 3),
    ("Asia/Yekaterinburg", 2),
    ("Asia/Novosibirsk", 1),
    ("Asia/Almaty", 2),
    ("Europe/London", 2),
    ("Europe/Madrid", 2),
    ("Europe/Rome", 2),
    ("Europe/Paris", 2),
    ("Africa/Cairo", 2),
    ("Africa/Lagos", 2),
    ("Africa/Nairobi", 1),
    ("Asia/Riyadh", 2),
    ("Asia/Dubai", 1),
    ("Asia/Karachi", 1),
    ("Asia/Dhaka", 1),
    ("Asia/Kathmandu", 0.3),
    ("Asia/Manila", 2),
    ("Asia/Ho_Chi_Minh", 2),
    ("Asia/Shanghai", 1),
    ("Asia/Seoul", 1),
    ("Asia/Tokyo", 1),
    ("Australia/Sydney", 1),
    ("Pacific/Auckland", 0.5),
    ("America/Mexico_City", 2),
    ("America/Bogota", 1),
    ("America/Argentina/Buenos_Aires", 2),
    ("America/Halifax", 0.3),
    ("Pacific/Honolulu", 0.2),
    ("UTC+03:00", 0.5),  # people who typed an offset instead of a city
    ("UTC", 0.5),
)
DIETS: Final = (("omnivore", 70), ("vegetarian", 20), ("pescatarian", 10))
CUSTOM_OFFSETS: Final = (30, 45, 90, 120, 150, 300)


@dataclass(frozen=True)
class PersonSpec:
    chat_id: int
    timezone: str
    bedtime: clock_time
    weekend_bedtime: clock_time | None
    diet: str
    offsets: tuple[int, ...]  # one per reminder kind, in kind order


@dataclass(frozen=True)
class Population:
    """What was loaded, for the scenarios that use the database afterwards."""

    people: int
    reminders_scheduled: int
    now: datetime  # population "now": every next_fire_at is after it, so nothing is due yet
    generate_insert_s: float
    index_s: float
    checkpoint_s: float
    total_s: float
    db_mb: float


def chat_id(index: int) -> int:
    return FIRST_CHAT_ID + index * CHAT_ID_STEP


class _Weighted:
    """Fast weighted choice from a fixed table (random.choices re-sums weights every call)."""

    def __init__(self, table: Sequence[tuple[str, float]]) -> None:
        self._values = [value for value, _ in table]
        self._cumulative = list(itertools.accumulate(weight for _, weight in table))

    def pick(self, rng: random.Random) -> str:
        point = rng.random() * self._cumulative[-1]
        return self._values[bisect.bisect_right(self._cumulative, point)]


def _minutes_to_time(minutes: int) -> clock_time:
    minutes %= 24 * 60
    return clock_time(minutes // 60, minutes % 60)


def people(
    count: int, kinds: Sequence[tuple[str, int]], *, seed: int = 20251124
) -> Iterator[PersonSpec]:
    """``count`` deterministic people: bedtimes ~N(23:00, 55 min) on 15/5-minute marks."""
    rng = random.Random(seed)
    zones = _Weighted(TIMEZONES)
    diets = _Weighted(DIETS)
    for index in range(count):
        evening = int(rng.gauss(23 * 60, 55))
        evening = min(max(evening, 20 * 60 + 30), 26 * 60 + 30)  # 20:30 .. 02:30
        step = 15 if rng.random() < 0.8 else 5
        evening = round(evening / step) * step
        weekend = None
        if rng.random() < 0.35:
            later = min(evening + rng.choice((30, 45, 60, 90)), 27 * 60)
            weekend = _minutes_to_time(later)
        offsets = tuple(
            rng.choice(CUSTOM_OFFSETS) if rng.random() < 0.1 else default for _, default in kinds
        )
        yield PersonSpec(
            chat_id=chat_id(index),
            timezone=zones.pick(rng),
            bedtime=_minutes_to_time(evening),
            weekend_bedtime=weekend,
            diet=diets.pick(rng),
            offsets=offsets,
        )


def _encoder(column_type: TypeEngine[Any]) -> Callable[[Any], Any]:
    """The exact bind-side encoding the bot's column types produce on SQLite (aiosqlite)."""
    dialect = SQLiteDialect_aiosqlite()
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return lambda value: value
    return processor


def populate(
    db_path: Path,
    count: int,
    kinds: Sequence[tuple[str, int]],
    now: datetime,
    *,
    due_at: datetime | None = None,
    due_kind: str | None = None,
) -> Population:
    """Bulk-load ``count`` subscribed people with every reminder kind into a migrated DB.

    Normally every reminder is scheduled at its real next fire time after ``now``. With
    ``due_at``, only ``due_kind`` is enabled and it is due at ``due_at`` for everybody: the
    send benchmarks want N distinct chats due in the same minute.
    """
    started = time.perf_counter()
    encode_dt = _encoder(REMINDERS.c.next_fire_at.type)
    encode_clock = _encoder(PEOPLE.c.bedtime.type)
    encode_list = _encoder(PEOPLE.c.recent_meals.type)
    now_text = encode_dt(now)
    empty_list = encode_list([])
    due_text = encode_dt(due_at) if due_at is not None else None
    fire_cache: dict[tuple[str, clock_time, clock_time | None, int], str] = {}

    def fire_text(spec: PersonSpec, offset: int) -> str:
        key = (spec.timezone, spec.bedtime, spec.weekend_bedtime, offset)
        text = fire_cache.get(key)
        if text is None:
            instant = schedule.next_fire_at(
                bedtime=spec.bedtime,
                weekend_bedtime=spec.weekend_bedtime,
                offset_minutes=offset,
                tz=tzinfo_for(spec.timezone),
                after=now,
            )
            text = fire_cache[key] = encode_dt(instant)
        return text

    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=OFF")  # a throw-away file: no journal at all
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('people', 'reminders')"
        ).fetchall()
        connection.execute("BEGIN")
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        scheduled = 0
        generator = people(count, kinds)
        while batch := list(itertools.islice(generator, BATCH_PEOPLE)):
            person_rows = [
                (
                    spec.chat_id,
                    spec.timezone,
                    encode_clock(spec.bedtime),
                    encode_clock(spec.weekend_bedtime),
                    spec.diet,
                    1,
                    empty_list,
                    now_text,
                    now_text,
                )
                for spec in batch
            ]
            reminder_rows: list[tuple[int, str, int, int, str | None]] = []
            for spec in batch:
                for (kind, _), offset in zip(kinds, spec.offsets, strict=True):
                    if due_text is None:
                        reminder_rows.append(
                            (spec.chat_id, kind, 1, offset, fire_text(spec, offset))
                        )
                    elif kind == due_kind:
                        reminder_rows.append((spec.chat_id, kind, 1, offset, due_text))
                    else:
                        reminder_rows.append((spec.chat_id, kind, 0, offset, None))
            scheduled += sum(1 for row in reminder_rows if row[4] is not None)
            connection.executemany(
                "INSERT INTO people (chat_id, timezone, bedtime, weekend_bedtime, diet, "
                "subscribed, recent_meals, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                person_rows,
            )
            connection.executemany(
                "INSERT INTO reminders (chat_id, kind, enabled, offset_minutes, next_fire_at) "
                "VALUES (?, ?, ?, ?, ?)",
                reminder_rows,
            )
        inserted = time.perf_counter()
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        indexed = time.perf_counter()
        connection.execute("PRAGMA journal_mode=WAL")  # what the bot's engine sets anyway
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    finished = time.perf_counter()
    return Population(
        people=count,
        reminders_scheduled=scheduled,
        now=now,
        generate_insert_s=inserted - started,
        index_s=indexed - inserted,
        checkpoint_s=finished - indexed,
        total_s=finished - started,
        db_mb=db_path.stat().st_size / 2**20,
    )


def quantile_instant(db_path: Path, fraction: float) -> tuple[datetime, int, list[int]]:
    """The next_fire_at below which ``fraction`` of scheduled reminders lie, how many are due
    at that instant (whole minute clumps are included) and their distinct chat ids."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        (total,) = connection.execute(
            "SELECT count(*) FROM reminders WHERE next_fire_at IS NOT NULL"
        ).fetchone()
        (text,) = connection.execute(
            "SELECT next_fire_at FROM reminders WHERE next_fire_at IS NOT NULL "
            "ORDER BY next_fire_at LIMIT 1 OFFSET ?",
            (max(int(total * fraction) - 1, 0),),
        ).fetchone()
        chats = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT chat_id FROM reminders WHERE next_fire_at <= ?", (text,)
            )
        ]
        (due,) = connection.execute(
            "SELECT count(*) FROM reminders WHERE next_fire_at <= ?", (text,)
        ).fetchone()
    finally:
        connection.close()
    instant = datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
    return instant, int(due), chats


async def self_check(store: Store, count: int, now: datetime, *, samples: int = 25) -> int:
    """Recompute a sample of people through the real Store and compare with what was loaded.

    ``set_bedtime`` to the same bedtime reschedules every reminder exactly as the bot would;
    any difference means this loader no longer matches the bot. Returns the number checked.
    """
    rng = random.Random(7)
    for index in sorted(rng.sample(range(count), min(samples, count))):
        loaded = await store.get_person(chat_id(index))
        if loaded is None or loaded.bedtime is None:
            raise AssertionError(f"person #{index} was not loaded")
        recomputed = await store.set_bedtime(loaded.chat_id, loaded.bedtime, now + timedelta(0))
        before = [(r.kind, r.next_fire_at) for r in loaded.reminders]
        after = [(r.kind, r.next_fire_at) for r in recomputed.reminders]
        if before != after:
            raise AssertionError(
                f"loader and Store disagree for chat {loaded.chat_id}: {before} != {after}"
            )
    return min(samples, count)


async def insert_due_people(engine: AsyncEngine, chat_ids: Sequence[int], due: datetime) -> None:
    """People in UTC with a 22:00 bedtime whose wind-down reminder is due at ``due``.

    For crash and stop drills on any backend (SQLAlchemy Core, not sqlite3): the rows are
    exactly what ``Store.subscribe`` would leave, minus the computed first fire time.
    """
    async with engine.begin() as connection:
        for start in range(0, len(chat_ids), 5_000):
            batch = chat_ids[start : start + 5_000]
            await connection.execute(
                insert(PEOPLE),
                [
                    {
                        "chat_id": chat,
                        "timezone": "UTC",
                        "bedtime": clock_time(22, 0),
                        "diet": "omnivore",
                        "subscribed": True,
                        "recent_meals": [],
                        "created_at": due,
                        "updated_at": due,
                    }
                    for chat in batch
                ],
            )
            await connection.execute(
                insert(REMINDERS),
                [
                    {
                        "chat_id": chat,
                        "kind": "wind_down",
                        "enabled": True,
                        "offset_minutes": 60,
                        "next_fire_at": due,
                    }
                    for chat in batch
                ],
            )
