"""Column types that make SQLite and PostgreSQL hand back the same Python values."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import DateTime, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, whatever the database keeps.

    PostgreSQL gets ``timestamp with time zone``. SQLite has no time zones and would silently
    hand back naive values (or compare mixed offsets as strings), so there the value is stored as
    naive UTC and the zone is put back on the way out. Naive input is a bug and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store a naive datetime: {value!r}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """SQLite: ``process_bind_param`` and the SQLite dialect's DATETIME text in one step.

        materialize_due binds several datetimes per reminder, and the chain (TypeDecorator's
        wrapper, this class's conversion, the dialect's ``%``-formatting of a dict) cost about
        twice this. Same text (tests/test_storage_types.py); other dialects keep the chain.
        """
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        """SQLite: the dialect's parsing and ``process_result_value`` in one step (every due
        row reads four of these, mostly NULL, which the chain passed through three calls)."""
        if dialect.name == "sqlite":
            return _sqlite_utc
        return super().result_processor(dialect, coltype)


def _sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as the naive-UTC text SQLite keeps ("YYYY-MM-DD HH:MM:SS.ffffff",
    the format of ``sqlalchemy.dialects.sqlite.DATETIME``); naive input is refused."""
    if value is None:
        return None
    if value.tzinfo is UTC:
        return _utc_text(value)
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"refusing to store a naive datetime: {value!r}")
    return (value.replace(tzinfo=None) - offset).isoformat(" ", "microseconds")


@functools.lru_cache(maxsize=1024)
def _utc_text(value: datetime) -> str:
    """``_sqlite_text`` of a UTC datetime, remembered: a batch of deliveries binds the same
    few instants over and over (everyone's ``created_at``, the fire minutes). Only for UTC,
    where equal datetimes are equal instants (in a zone with a repeated hour they need not
    be: PEP 495 compares wall times there, ignoring ``fold``)."""
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_utc(value: str | None) -> datetime | None:
    """SQLite's text back to an aware UTC datetime (``_sqlite_text`` inverted)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class ClockTime(TypeDecorator[time]):
    """A local wall-clock time stored as "HH:MM": portable, readable in dumps, minute precision."""

    impl = String(5)
    cache_ok = True

    def process_bind_param(self, value: time | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is not None or value.second or value.microsecond:
            raise ValueError(f"bedtimes are naive whole minutes, got {value!r}")
        return value.strftime("%H:%M")

    def process_result_value(self, value: str | None, dialect: Dialect) -> time | None:
        return _clock_time(value)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[str | None], time | None] | None:
        """``process_result_value`` without TypeDecorator's wrapper: materialize_due reads two
        of these per due row."""
        return _clock_time


def _clock_time(value: str | None) -> time | None:
    """ClockTime's result processor (NULL stays None)."""
    return None if value is None else _parse_clock(value)


@functools.lru_cache(maxsize=1024)
def _parse_clock(value: str) -> time:
    """Parse "HH:MM", remembered: bedtimes cluster on a few dozen quarter hours."""
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


class JSONStringList(TypeDecorator[list[str]]):
    """A short list of strings as JSON text: same bytes on every backend, no JSON operators."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str] | None:
        return string_list(value)


def string_list(value: str | None) -> list[str] | None:
    """JSONStringList's text back to the list (NULL stays None; anything but a list is []).

    Also for a query that selects the text as it is and decodes only the rows it needs
    (materialize_due: the recent meals of a meal reminder only)."""
    if value is None:
        return None
    loaded = json.loads(value)
    return [str(item) for item in loaded] if isinstance(loaded, list) else []
