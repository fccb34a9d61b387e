"""When the weekly summary (the /progress chart, opt-in) goes out: 09:00 local on the person's
chosen morning, wall clock, with the reminders' DST rule (``bot.schedule.local_to_utc``).

Pure. The store keeps the chosen weekday (0 = Monday … 6 = Sunday) in the summary's reminder
row, where nightly reminders keep their offset.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

from bot.schedule import local_to_utc

WEEKLY_KIND: Final = "weekly"
WEEKLY_TIME: Final = time(9, 0)
"""After the morning check-in for most people, so last night can be in the chart."""
DEFAULT_WEEKDAY: Final = 6  # Sunday
WEEKDAYS: Final = range(7)


def check_weekday(weekday: int) -> int:
    if isinstance(weekday, bool) or weekday not in WEEKDAYS:
        raise ValueError(f"weekday must be 0..6 (Monday..Sunday), got {weekday!r}")
    return weekday


def next_weekly_at(weekday: int, *, tz: tzinfo, after: datetime) -> datetime:
    """The first summary instant strictly after ``after``: 09:00 local on ``weekday``."""
    check_weekday(weekday)
    if after.utcoffset() is None:
        raise ValueError(f"after must be an aware datetime, got {after!r}")
    day = after.astimezone(tz).date() - timedelta(days=1)
    while True:
        if day.weekday() == weekday:
            instant = local_to_utc(datetime.combine(day, WEEKLY_TIME), tz)
            if instant > after:
                return instant
        day += timedelta(days=1)


def weekly_last_night(instant: datetime, tz: tzinfo) -> date:
    """The newest night a summary sent at ``instant`` shows: the evening before that morning."""
    return instant.astimezone(tz).date() - timedelta(days=1)
