"""When the morning check-in goes out: the wake time, its defaults, and its instant in UTC.

Same model and DST rule as the nightly reminders (``bot.schedule``): the check-in for night D
(named by its evening date) fires at the first wake-time wall clock after that night's
bedtime, in local time; a wake time inside a spring-forward gap fires at the first minute after
the jump, and one that occurs twice fires at the first occurrence.

Defaults: the wake time is bedtime + 8 h. The weekend wake time (the mornings after Friday and
Saturday nights) follows the weekend bedtime: it is the wake time moved by as much as the
weekend bedtime differs from the weekday one, which is weekend bedtime + 8 h for the default
wake time, and keeps a person's own sleep length when they chose their wake time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

from bot.schedule import is_weekend_night, local_to_utc, night_of

DEFAULT_SLEEP: Final = timedelta(hours=8)
_DAY: Final = timedelta(days=1)


def _minutes(moment: time) -> timedelta:
    if moment.tzinfo is not None:
        raise ValueError(f"times must be naive local times, got {moment!r}")
    return timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def _clock(offset: timedelta) -> time:
    """A duration since midnight, wrapped into one day, as a wall-clock time."""
    seconds = int((offset % _DAY).total_seconds())
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60)


def default_wake_time(bedtime: time) -> time:
    """Bedtime + 8 hours, across midnight: 22:30 → 06:30, 00:30 → 08:30."""
    return _clock(_minutes(bedtime) + DEFAULT_SLEEP)


@dataclass(frozen=True, slots=True)
class WakeTimes:
    """The check-in's wall-clock time after weekday nights and after weekend nights."""

    weekday: time
    weekend: time

    def for_night(self, night: date) -> time:
        """The wake time of the morning after ``night`` (an evening date)."""
        return self.weekend if is_weekend_night(night) else self.weekday


def wake_times(
    *, bedtime: time, weekend_bedtime: time | None, wake_time: time | None = None
) -> WakeTimes:
    """The wake times to use, from the bedtimes and the wake time the person chose (if any).

    The weekend wake time moves by as much as the weekend bedtime does, on the clock
    (23:00 → 00:30 moves a 06:00 wake time to 07:30).
    """
    weekday = wake_time if wake_time is not None else default_wake_time(bedtime)
    if weekend_bedtime is None:
        return WakeTimes(weekday=weekday, weekend=weekday)
    shift = _minutes(weekend_bedtime) - _minutes(bedtime)
    return WakeTimes(weekday=weekday, weekend=_clock(_minutes(weekday) + shift))


def checkin_wall_time(
    night: date, *, bedtime: time, weekend_bedtime: time | None, wake: WakeTimes
) -> datetime:
    """The naive local time of the check-in for ``night``: the first wake time after bedtime.

    A bedtime before noon belongs to the evening before (as in ``bot.schedule``), so a 00:30
    bedtime on night D is at 00:30 on D+1 and its 08:30 wake time the same morning.
    """
    chosen_bed = (
        weekend_bedtime if weekend_bedtime is not None and is_weekend_night(night) else bedtime
    )
    bed_date = night if chosen_bed >= time(12) else night + _DAY
    bed = datetime.combine(bed_date, chosen_bed)
    wake_up = datetime.combine(bed_date, wake.for_night(night))
    return wake_up if wake_up > bed else wake_up + _DAY


def checkin_time_on_night(
    night: date, *, bedtime: time, weekend_bedtime: time | None, wake: WakeTimes, tz: tzinfo
) -> datetime:
    """The check-in instant (aware UTC) for ``night``, with the reminders' DST rule."""
    wall = checkin_wall_time(night, bedtime=bedtime, weekend_bedtime=weekend_bedtime, wake=wake)
    return local_to_utc(wall, tz)


def next_checkin_at(
    *, bedtime: time, weekend_bedtime: time | None, wake: WakeTimes, tz: tzinfo, after: datetime
) -> tuple[date, datetime]:
    """The first check-in strictly after ``after``: the night it asks about and its UTC instant.

    Walks nights like ``schedule.next_fire_at`` instead of adding 24 h, so DST and weekend
    wake times can neither skip nor repeat a morning.
    """
    if after.utcoffset() is None:
        raise ValueError(f"after must be an aware datetime, got {after!r}")

    def on(night: date) -> datetime:
        return checkin_time_on_night(
            night, bedtime=bedtime, weekend_bedtime=weekend_bedtime, wake=wake, tz=tz
        )

    night = night_of(after, tz) - 3 * _DAY
    while on(night) > after:
        night -= _DAY
    while True:
        night += _DAY
        instant = on(night)
        if instant > after:
            return night, instant


CHECKIN_KIND: Final = "checkin"
"""The morning check-in's kind in the reminders and deliveries tables (next to meal, ...)."""
DEFAULT_SLEEP_MINUTES: Final = int(DEFAULT_SLEEP.total_seconds()) // 60
MIN_SLEEP_MINUTES: Final = 60
MAX_SLEEP_MINUTES: Final = 16 * 60


def wake_time_after(bedtime: time, sleep_minutes: int) -> time:
    """The wall-clock wake time ``sleep_minutes`` after ``bedtime`` (across midnight).

    The store keeps the check-in's wake time as minutes after the weekday bedtime, so a new
    bedtime moves the wake time with it, as the default (bedtime + 8 h) does.
    """
    return _clock(_minutes(bedtime) + timedelta(minutes=sleep_minutes))


def sleep_minutes_between(bedtime: time, wake_time: time) -> int:
    """The inverse of ``wake_time_after``: minutes from bedtime to the next ``wake_time``."""
    minutes = int(((_minutes(wake_time) - _minutes(bedtime)) % _DAY).total_seconds()) // 60
    return minutes or 24 * 60


def checkin_night(instant: datetime, *, sleep_minutes: int, tz: tzinfo) -> date:
    """The night a check-in sent at ``instant`` asks about: the evening of the bedtime
    ``sleep_minutes`` before it (the bedtime rule of ``bot.schedule``: before noon belongs
    to the evening before). Needs no bedtimes, so it survives a change of bedtime."""
    if instant.utcoffset() is None:
        raise ValueError(f"instant must be an aware datetime, got {instant!r}")
    bed = instant.astimezone(tz).replace(tzinfo=None) - timedelta(minutes=sleep_minutes)
    return bed.date() if bed.time() >= time(12) else bed.date() - _DAY
