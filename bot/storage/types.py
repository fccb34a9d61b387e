"""Column types that make SQLite and PostgreSQL hand back the same Python values."""

from __future__ import annotations

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


def _sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as the naive-UTC text SQLite keeps ("YYYY-MM-DD HH:MM:SS.ffffff",
    the format of ``sqlalchemy.dialects.sqlite.DATETIME``); naive input is refused."""
    if value is None:
        return None
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"refusing to store a naive datetime: {value!r}")
    return (value.replace(tzinfo=None) - offset).isoformat(" ", "microseconds")


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
        if value is None:
            return None
        hour, minute = value.split(":")
        return time(int(hour), int(minute))


class JSONStringList(TypeDecorator[list[str]]):
    """A short list of strings as JSON text: same bytes on every backend, no JSON operators."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str] | None:
        if value is None:
            return None
        loaded = json.loads(value)
        return [str(item) for item in loaded] if isinstance(loaded, list) else []
