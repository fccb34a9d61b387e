"""Measuring helpers: memory, where the database time goes, and a clock that moves with the wall.

Everything here observes the bot from outside (SQLAlchemy events, a Store subclass), so the
numbers come from the same code paths production runs.
"""

from __future__ import annotations

import importlib
import re
import resource
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import (
    ClaimResult,
    MaterializeResult,
    MealChooser,
    RecordedOutcome,
    SendOutcome,
    Store,
)

# psutil ships no type hints (and types-psutil is not a dev dependency): keep the Any in here.
_psutil: Any = importlib.import_module("psutil")
MB: Final = 2**20


def rss_mb() -> float:
    """Resident set size of this process now."""
    return float(_psutil.Process().memory_info().rss) / MB


def peak_rss_mb() -> float:
    """High-water mark of this process's RSS (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class WallClock:
    """``now()`` = ``start`` + real elapsed time, so due times (clock) map to wall seconds.

    ``started_monotonic`` is the ``time.monotonic()`` reading at which the clock read
    ``start``; CLOCK_MONOTONIC is system-wide on Linux, so it compares directly with the
    ``ApiCall.at`` stamps the fake Telegram server records in its own process.
    """

    def __init__(self, start: datetime) -> None:
        self._start = start
        self.started_monotonic = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self.started_monotonic)


# --- where the store's time goes ---------------------------------------------------------


def _accept_all(chat_id: int) -> bool:
    return True


class TimedStore(Store):
    """The real Store, plus wall time spent inside each dispatcher-facing method.

    Checks and records overlap with other sends (each send's own check and record run while
    other sends are on the wire), so their sum is database work done, not time the tick
    waited for it.
    """

    def __init__(self, engine: AsyncEngine, *, default_offsets: dict[str, int]) -> None:
        super().__init__(engine, default_offsets=default_offsets)
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.recorded = 0  # outcomes written (record_outcomes may write several per call)
        self.chat_of: dict[int, int] = {}  # delivery id → chat id, for claimed deliveries
        self.checked_at: dict[int, float] = {}  # delivery id → monotonic start of its check

    def _add(self, name: str, started: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        self.calls[name] = self.calls.get(name, 0) + 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.recorded = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    async def materialize_due(
        self, now: datetime, *, grace: timedelta, limit: int, choose_meal: MealChooser
    ) -> MaterializeResult:
        started = time.perf_counter()
        try:
            return await super().materialize_due(
                now, grace=grace, limit=limit, choose_meal=choose_meal
            )
        finally:
            self._add("materialize_due", started)

    async def claim_deliveries(
        self,
        now: datetime,
        *,
        owner: str,
        grace: timedelta,
        limit: int,
        accept: Callable[[int], bool] = _accept_all,
        defer: timedelta = timedelta(seconds=1),
    ) -> ClaimResult:
        started = time.perf_counter()
        try:
            claim = await super().claim_deliveries(
                now, owner=owner, grace=grace, limit=limit, accept=accept, defer=defer
            )
        finally:
            self._add("claim_deliveries", started)
        for delivery in claim.claimed:
            self.chat_of[delivery.id] = delivery.chat_id
        return claim

    async def check_deliveries(
        self, owner: str, delivery_ids: Sequence[int]
    ) -> dict[int, str | None]:
        """The last-moment check; also stamps when each delivery's check began
        (``time.monotonic()``, comparable with the fake server's arrival times)."""
        started = time.perf_counter()
        stamp = time.monotonic()
        for delivery_id in delivery_ids:
            self.checked_at[delivery_id] = stamp
        try:
            return await self._check(owner, delivery_ids)
        finally:
            self._add("check_deliveries", started)

    async def _check(self, owner: str, delivery_ids: Sequence[int]) -> dict[int, str | None]:
        return await super().check_deliveries(owner, delivery_ids)

    async def settle(
        self, owner: str, check_ids: Sequence[int], outcomes: Sequence[SendOutcome]
    ) -> tuple[dict[int, str | None], list[RecordedOutcome]]:
        """The dispatcher's rounds: checks and records, together when both are waiting
        (a round with one kind goes through the timed method of that kind)."""
        if not outcomes:
            return await self.check_deliveries(owner, check_ids), []
        if not check_ids:
            return {}, await self.record_outcomes(owner, outcomes)
        started = time.perf_counter()
        stamp = time.monotonic()
        for delivery_id in check_ids:
            self.checked_at[delivery_id] = stamp
        try:
            return await self._settle(owner, check_ids, outcomes)
        finally:
            self._add("settle", started)
            self.recorded += len(outcomes)

    async def _settle(
        self, owner: str, check_ids: Sequence[int], outcomes: Sequence[SendOutcome]
    ) -> tuple[dict[int, str | None], list[RecordedOutcome]]:
        return await super().settle(owner, check_ids, outcomes)

    async def record_outcomes(
        self, owner: str, outcomes: Sequence[SendOutcome]
    ) -> list[RecordedOutcome]:
        started = time.perf_counter()
        try:
            return await super().record_outcomes(owner, outcomes)
        finally:
            self._add("record_outcomes", started)
            self.recorded += len(outcomes)

    async def deactivate(self, chat_id: int, reason: str, now: datetime) -> None:
        started = time.perf_counter()
        try:
            await super().deactivate(chat_id, reason, now)
        finally:
            self._add("deactivate", started)


class UncheckedStore(TimedStore):
    """The send path without the last-moment eligibility check (every delivery may go):
    only to measure, in the same run, what the check costs."""

    async def _check(self, owner: str, delivery_ids: Sequence[int]) -> dict[int, str | None]:
        return dict.fromkeys(delivery_ids)

    async def _settle(
        self, owner: str, check_ids: Sequence[int], outcomes: Sequence[SendOutcome]
    ) -> tuple[dict[int, str | None], list[RecordedOutcome]]:
        return dict.fromkeys(check_ids), await Store.record_outcomes(self, owner, outcomes)


# --- per-statement SQL profile ---------------------------------------------------------------

_PLACEHOLDERS: Final = re.compile(r"\?(?:, \?)+")
_VALUE_GROUPS: Final = re.compile(r"(\(\?…\))(?:, \(\?…\))+")


def normalise_sql(statement: str) -> str:
    """One key per statement shape: expanded IN lists and multi-row VALUES collapse to ``?…``."""
    collapsed = _VALUE_GROUPS.sub(r"\1…", _PLACEHOLDERS.sub("?…", statement))
    return " ".join(collapsed.split())


@dataclass
class StatementStats:
    sql: str
    calls: int = 0
    seconds: float = 0.0
    sample_parameters: Any = None  # from a single (not executemany) execution, for EXPLAIN
    sample_sql: str = ""
    plan: list[str] = field(default_factory=list)


class SqlProfile:
    """Counts and times every statement the engine runs (SQLAlchemy cursor events).

    With aiosqlite the measured span is the await on the driver thread, i.e. SQLite's own time
    plus the thread hop, without the ORM work around it.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.sync_engine
        self.statements: dict[str, StatementStats] = {}
        self.enabled = True
        event.listen(self._engine, "before_cursor_execute", self._before)
        event.listen(self._engine, "after_cursor_execute", self._after)

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        self.statements.clear()

    def _before(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        started = conn.info["bench_started"].pop()
        if not self.enabled:
            return
        key = normalise_sql(statement)
        stats = self.statements.get(key)
        if stats is None:
            stats = self.statements[key] = StatementStats(key)
        stats.calls += 1
        stats.seconds += time.perf_counter() - started
        if not executemany and stats.sample_parameters is None:
            stats.sample_parameters = parameters
            stats.sample_sql = statement

    def top(self, count: int = 8) -> list[StatementStats]:
        interesting = [s for s in self.statements.values() if not s.sql.startswith("BEGIN")]
        return sorted(interesting, key=lambda s: s.seconds, reverse=True)[:count]

    def explain(self, db_path: Path, stats: Sequence[StatementStats]) -> None:
        """Fill in ``plan`` (EXPLAIN QUERY PLAN) for SELECTs, with their sampled parameters."""
        connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            for item in stats:
                if not item.sample_sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                    continue
                try:
                    rows = connection.execute(
                        "EXPLAIN QUERY PLAN " + item.sample_sql, tuple(item.sample_parameters or ())
                    ).fetchall()
                except sqlite3.Error as error:
                    item.plan = [f"(could not explain: {error})"]
                    continue
                item.plan = [str(row[-1]) for row in rows]
        finally:
            connection.close()


def as_jsonable(stats: Sequence[StatementStats]) -> list[dict[str, Any]]:
    return [
        {"sql": s.sql, "calls": s.calls, "seconds": round(s.seconds, 4), "plan": s.plan}
        for s in stats
    ]
