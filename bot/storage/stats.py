"""Read-only counts for operators: ``sleepbot stats`` and the due-backlog gauge of /metrics.

Every query only reads, on an engine that cannot write (``create_read_only_engine``), inside
one transaction, so the numbers are one consistent snapshot and a report beside a running bot
never waits for its writers. The definitions, in the words the report prints:

* **people**: everyone who ever wrote to the bot and was not erased;
* **active subscribers**: subscribed, not blocked, not paused now;
* **due in the next hour**: scheduled reminders and pending deliveries (snoozes, retries)
  whose time falls within the coming hour;
* **sent in the last 24 h**: deliveries Telegram accepted in that time (whatever happened to
  them after: Done, Snooze);
* **failed in the last 24 h**: deliveries due in that time that ended ``failed`` or
  ``expired`` (past the grace period);
* **backlog**: due now and not sent yet — reminders not yet turned into deliveries, plus
  deliveries pending or being sent — and how late the oldest of them is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage.models import DELIVERIES, PEOPLE, REMINDERS, DeliveryStatus

_P, _R, _D = PEOPLE.c, REMINDERS.c, DELIVERIES.c
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
ENDED_BADLY = (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED)
HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class OperatorStats:
    people: int
    active_subscribers: int
    paused: int
    blocked: int
    due_next_hour: int
    sent_last_24h: int
    failed_last_24h: int
    backlog: int
    backlog_oldest: timedelta | None  # how late the oldest unsent due item is


async def read_stats(engine: AsyncEngine, now: datetime) -> OperatorStats:
    """All the counts, in one read-only snapshot."""
    async with engine.begin() as connection:
        people, active, paused, blocked = (
            await connection.execute(
                select(
                    func.count(),
                    func.count().filter(
                        _P.subscribed.is_(True),
                        _P.blocked_at.is_(None),
                        or_(_P.paused_until.is_(None), _P.paused_until <= now),
                    ),
                    func.count().filter(_P.paused_until > now, _P.blocked_at.is_(None)),
                    func.count().filter(_P.blocked_at.is_not(None)),
                ).select_from(PEOPLE)
            )
        ).one()
        upcoming = await _count(
            connection,
            select(func.count())
            .select_from(REMINDERS)
            .where(_R.next_fire_at > now, _R.next_fire_at <= now + HOUR),
        ) + await _count(
            connection,
            select(func.count())
            .select_from(DELIVERIES)
            .where(
                _D.status == DeliveryStatus.PENDING,
                _D.next_attempt_at > now,
                _D.next_attempt_at <= now + HOUR,
            ),
        )
        sent = await _count(
            connection,
            select(func.count()).select_from(DELIVERIES).where(_D.sent_at > now - DAY),
        )
        failed = await _count(
            connection,
            select(func.count())
            .select_from(DELIVERIES)
            .where(_D.status.in_(ENDED_BADLY), _D.due_at > now - DAY, _D.due_at <= now),
        )
        backlog, oldest = await _backlog(connection, now)
    return OperatorStats(
        people=int(people),
        active_subscribers=int(active),
        paused=int(paused),
        blocked=int(blocked),
        due_next_hour=upcoming,
        sent_last_24h=sent,
        failed_last_24h=failed,
        backlog=backlog,
        backlog_oldest=None if oldest is None else now - oldest,
    )


async def due_backlog(engine: AsyncEngine, now: datetime) -> int:
    """Just the backlog, for the /metrics gauge (two indexed counts)."""
    async with engine.begin() as connection:
        count, _ = await _backlog(connection, now)
    return count


async def _count(connection: AsyncConnection, statement: Select[int]) -> int:
    return int(await connection.scalar(statement) or 0)


async def _backlog(connection: AsyncConnection, now: datetime) -> tuple[int, datetime | None]:
    reminders_count, reminders_oldest = (
        await connection.execute(
            select(func.count(), func.min(_R.next_fire_at)).where(_R.next_fire_at <= now)
        )
    ).one()
    deliveries_count, deliveries_oldest = (
        await connection.execute(
            select(func.count(), func.min(_D.due_at)).where(
                and_(_D.status.in_(UNSENT), _D.next_attempt_at <= now)
            )
        )
    ).one()
    oldest = [moment for moment in (reminders_oldest, deliveries_oldest) if moment is not None]
    return int(reminders_count) + int(deliveries_count), min(oldest, default=None)
