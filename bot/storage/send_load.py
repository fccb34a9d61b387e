"""The coming send load, per kind and minute, for ``sleepbot capacity`` (one aggregate query).

A million people have three million reminder rows; loading them row by row through the ORM
would take minutes. The database counts them instead: reminders by ``next_fire_at`` and
pending deliveries (snoozes, retries) by ``next_attempt_at``, grouped by kind and by minute
(as whole minutes since the Unix epoch, computed in SQL on either backend), so what comes
back is a few thousand rows whatever the population. Read-only, one snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    cast,
    extract,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage.models import DELIVERIES, REMINDERS, DeliveryStatus

_R, _D = REMINDERS.c, DELIVERIES.c


@dataclass(frozen=True, slots=True)
class MinuteLoad:
    """``count`` messages of ``kind`` due in the minute starting at ``minute`` x 60 (epoch s)."""

    kind: str
    minute: int
    count: int


def _epoch_minute(column: ColumnElement[datetime], dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":  # stored as naive UTC text: strftime reads it as UTC
        return cast(cast(func.strftime("%s", column), Integer) // 60, Integer)
    return cast(func.floor(extract("epoch", column) / 60), BigInteger)


async def read_send_load(engine: AsyncEngine, start: datetime, end: datetime) -> list[MinuteLoad]:
    """Everything due in [start, end): scheduled reminders and pending deliveries."""
    async with engine.begin() as connection:
        return await read_send_load_in(connection, start, end)


async def read_send_load_in(
    connection: AsyncConnection, start: datetime, end: datetime
) -> list[MinuteLoad]:
    scheduled, pending = await read_split(connection, start, end)
    return _summed([*scheduled, *pending])


async def read_split(
    connection: AsyncConnection, start: datetime, end: datetime, *, now: datetime | None = None
) -> tuple[list[MinuteLoad], list[MinuteLoad]]:
    """(scheduled reminders, pending deliveries) due in [start, end), apart: the dispatcher's
    levelling may release the first early, never the second (bot/levelling.py). With ``now``,
    a delivery made ahead for a later minute and never tried (a meal idea merged into its
    person's exercise note, which waits for the note's time) counts as scheduled: it may be
    released early like the reminder it stands for."""
    dialect = connection.dialect.name
    reminder_minute = _epoch_minute(_R.next_fire_at, dialect).label("minute")
    reminders = (
        select(_R.kind, reminder_minute, func.count())
        .where(_R.next_fire_at >= start, _R.next_fire_at < end)
        .group_by(_R.kind, reminder_minute)
    )
    delivery_minute = _epoch_minute(_D.next_attempt_at, dialect).label("minute")
    deliveries = (
        select(_D.kind, delivery_minute, func.count())
        .where(
            _D.status == DeliveryStatus.PENDING,
            _D.next_attempt_at >= start,
            _D.next_attempt_at < end,
        )
        .group_by(_D.kind, delivery_minute)
    )
    if now is None:
        return await _counted(connection, reminders), await _counted(connection, deliveries)
    waiting = and_(_D.attempts == 0, _D.next_attempt_at > now)
    scheduled = _summed(
        [
            *await _counted(connection, reminders),
            *await _counted(connection, deliveries.where(waiting)),
        ]
    )
    return scheduled, await _counted(connection, deliveries.where(~waiting))


def _summed(loads: list[MinuteLoad]) -> list[MinuteLoad]:
    counts: dict[tuple[str, int], int] = {}
    for load in loads:
        counts[load.kind, load.minute] = counts.get((load.kind, load.minute), 0) + load.count
    return [MinuteLoad(kind, minute, count) for (kind, minute), count in sorted(counts.items())]


async def _counted(connection: AsyncConnection, statement: Select[Any]) -> list[MinuteLoad]:
    rows = (await connection.execute(statement)).all()
    return [MinuteLoad(str(kind), int(minute), int(count)) for kind, minute, count in rows]
