"""UTCDateTime's one-step SQLite processors do exactly what the generic chain did.

The chain is ``TypeDecorator.bind_processor``: ``process_bind_param`` (to naive UTC), then
SQLAlchemy's SQLite DATETIME formatting; and ``result_processor``: the dialect's parsing, then
``process_result_value``. Stored text is compared as text by SQLite (``<=`` in every due
query), so the binds must agree to the character, not just as instants.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from bot.storage.types import ClockTime, UTCDateTime

SQLITE = SQLiteDialect_aiosqlite()
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def processors(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(what the type binds with, the generic TypeDecorator chain) on ``dialect``."""
    impl = UTCDateTime().dialect_impl(dialect)
    assert isinstance(impl, UTCDateTime)
    used = impl.bind_processor(dialect)
    chain = TypeDecorator.bind_processor(impl, dialect)
    assert used is not None and chain is not None
    return used, chain


def outcome(process: Callable[[Any], Any], value: Any) -> object:
    try:
        return process(value)
    except Exception as error:  # the same refusal, not just any failure
        return type(error), str(error)


def values() -> list[datetime]:
    """UTC, fixed offsets, both folds of a repeated hour, a 30-minute DST zone, microseconds,
    and the ends of the datetime range."""
    moments = [
        datetime(2026, 1, 15, 13, 0, tzinfo=UTC),
        datetime(2026, 1, 15, 13, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 1, 15, 13, 0, 0, 999_999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=3))),
        datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=3))),  # before year 1 in UTC
        datetime(9999, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-3))),  # past year 9999
        datetime(2026, 6, 1, 0, 0, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    ]
    for tz in (NEW_YORK, LORD_HOWE):
        start = datetime(2026, 11, 1, 0, 0) if tz is NEW_YORK else datetime(2026, 4, 5, 0, 0)
        for minutes in range(0, 4 * 60, 7):
            wall = start + timedelta(minutes=minutes, microseconds=minutes)
            moments += [wall.replace(tzinfo=tz), wall.replace(tzinfo=tz, fold=1)]
    return moments


def test_sqlite_binds_the_text_the_generic_chain_binds() -> None:
    used, chain = processors(SQLITE)
    assert used is not chain
    checked = values()
    for value in [*checked, None, *checked]:  # twice: the second time from _utc_text's memo
        assert outcome(used, value) == outcome(chain, value), value
    # Both folds of New York's repeated 01:30 are stored an hour apart, although they are
    # equal (and hash equal) as datetimes: no memo may conflate them.
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)
    assert used(first) == "2026-11-01 05:30:00.000000"
    assert used(first.replace(fold=1)) == "2026-11-01 06:30:00.000000"


def test_sqlite_refuses_naive_datetimes_as_before() -> None:
    used, chain = processors(SQLITE)
    naive = datetime(2026, 1, 15, 13, 0)
    with pytest.raises(ValueError, match="naive"):
        used(naive)
    assert outcome(used, naive) == outcome(chain, naive)


def test_postgresql_keeps_the_chain() -> None:
    dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
    used, _ = processors(dialect)
    value = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK, fold=1)
    assert used(value) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert used(value).tzinfo is UTC


def test_sqlite_reads_what_the_generic_chain_reads() -> None:
    impl = UTCDateTime().dialect_impl(SQLITE)
    assert isinstance(impl, UTCDateTime)
    used = impl.result_processor(SQLITE, None)
    chain = TypeDecorator.result_processor(impl, SQLITE, None)
    assert used is not None and chain is not None and used is not chain
    bind, _ = processors(SQLITE)
    stored = [
        text for text in (outcome(bind, value) for value in values()) if isinstance(text, str)
    ]
    others = [
        None,
        "2026-01-15 13:00:00",  # no microseconds (text written by hand)
        "2026-01-15 13:00",
        "2026-01-15",
        "2026-01-15T13:00:00.250000",
        "2026-01-15 13:00:00+02:00",  # an offset in the text: converted, not replaced
        "not a date",
    ]
    for text_value in [*stored, *others]:
        assert outcome(used, text_value) == outcome(chain, text_value), text_value
        got = outcome(used, text_value)
        assert not isinstance(got, datetime) or got.tzinfo is UTC


def test_clock_times_read_as_before_from_the_memo() -> None:
    """Every minute of the day, twice (the second time from the memo), and bad text fails
    the same way as the old split-and-int parsing."""
    impl = ClockTime().dialect_impl(SQLITE)
    used = impl.result_processor(SQLITE, None)
    assert used is not None
    for _ in range(2):
        for minute in range(24 * 60):
            text_value = f"{minute // 60:02d}:{minute % 60:02d}"
            assert used(text_value) == time(minute // 60, minute % 60)
    assert used(None) is None
    for bad in ("24:00", "7", "ab:cd"):
        with pytest.raises(ValueError):
            used(bad)
