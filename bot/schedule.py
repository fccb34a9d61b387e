"""When a "remind me N minutes before bedtime" reminder fires, as an aware UTC instant.

Pure functions only (no I/O, no clock, no Telegram, no DB), so every DST corner case can be
tested directly and the scheduler only ever stores and compares UTC instants.

Model
-----
A *night* is named by its evening date D. A bedtime at or after 12:00 is on D; a bedtime before
12:00 (e.g. 00:30) is on D+1. Friday and Saturday nights (the nights before a day off) use the
weekend bedtime when one is set. The reminder's wall-clock time is the naive local bedtime minus
the offset (0..720 minutes) in naive local arithmetic, so with a 00:30 bedtime a 60-minute
reminder is at 23:30 on D and a 4-hour one at 20:30 on D.

DST rule
--------
Reminders fire at local wall-clock time. If that time does not exist on a given night because
the clocks jump forward, the reminder fires at the first minute after the jump (a 02:30 reminder
in Europe/Berlin on spring-forward day fires at 03:00 CEST). If the time occurs twice because the
clocks go back, it fires once, at the first occurrence. So every night yields exactly one instant
per reminder: nothing is sent twice and nothing is skipped.

Fixed-offset zones (``datetime.timezone``) have no gaps or repeats, so the rule never applies.
One corner case: the reminder instants of consecutive nights are non-decreasing, and strictly
increasing unless both land in the *same* gap. That needs a weekday and a weekend bedtime on
either side of noon plus a Friday transition (e.g. Asia/Jerusalem) and then yields one shared
instant; ``next_fire_at`` and ``upcoming`` report it once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

_NOON: Final = time(12, 0)
_MIDNIGHT: Final = time(0, 0)
MAX_OFFSET_MINUTES: Final = 720
_WEEKEND_EVENINGS: Final = frozenset({4, 5})  # Friday and Saturday evenings (date.weekday())
_ONE_DAY: Final = timedelta(days=1)
_MINUTES_PER_DAY: Final = 24 * 60
_RESOLUTION: Final = timedelta(microseconds=1)
# Entries of next_fire_at's memo: a few hundred schedules fire in any one minute, and
# materialize_due reads due reminders in fire-time order, so equal keys come together.
_MEMO_SIZE: Final = 4096


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {moment!r}")


def _validate(bedtime: time, weekend_bedtime: time | None, offset_minutes: int) -> None:
    """Reject inputs that would silently produce a wrong night rather than fail loudly."""
    for label, value in (("bedtime", bedtime), ("weekend_bedtime", weekend_bedtime)):
        if value is not None and value.tzinfo is not None:
            raise ValueError(f"{label} must be a naive local time, got {value!r}")
    if isinstance(offset_minutes, bool) or not 0 <= offset_minutes <= MAX_OFFSET_MINUTES:
        raise ValueError(f"offset_minutes must be 0..{MAX_OFFSET_MINUTES}, got {offset_minutes!r}")


def _wall(instant: datetime, tz: tzinfo) -> datetime:
    """The naive local wall-clock reading of an instant in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None)


def night_of(moment: datetime, tz: tzinfo) -> date:
    """The evening date of the night ``moment`` belongs to (before local noon → previous date)."""
    _require_aware(moment, "moment")
    local = moment.astimezone(tz)
    return local.date() if local.time() >= _NOON else local.date() - _ONE_DAY


def reminder_night(instant: datetime, *, offset_minutes: int, tz: tzinfo) -> date:
    """The night a reminder fired at ``instant`` belongs to: the evening date of its bedtime.

    Use this, not ``night_of(instant)``, to ask "did this night's reminder already go out?":
    with large offsets the fire time itself can sit on the other side of noon (a 12-hour
    reminder for a 23:30 bedtime fires at 11:30, which ``night_of`` files under the previous
    night). It needs no bedtimes, so it still works after the person changes them. Only when
    the fire time was moved by a DST gap and the bedtime is within the gap's length of noon
    could it name a neighbouring night.
    """
    _require_aware(instant, "instant")
    if isinstance(offset_minutes, bool) or not 0 <= offset_minutes <= MAX_OFFSET_MINUTES:
        raise ValueError(f"offset_minutes must be 0..{MAX_OFFSET_MINUTES}, got {offset_minutes!r}")
    bed = _wall(instant, tz) + timedelta(minutes=offset_minutes)
    return bed.date() if bed.time() >= _NOON else bed.date() - _ONE_DAY


def is_weekend_night(night: date) -> bool:
    """Friday and Saturday evenings precede a day off, so they get the weekend bedtime."""
    return night.weekday() in _WEEKEND_EVENINGS


def reminder_wall_time(
    night: date, *, bedtime: time, weekend_bedtime: time | None, offset_minutes: int
) -> datetime:
    """The naive local wall-clock time the reminder targets on ``night`` (before any DST rule)."""
    _validate(bedtime, weekend_bedtime, offset_minutes)
    chosen = weekend_bedtime if weekend_bedtime is not None and is_weekend_night(night) else bedtime
    bed_date = night if chosen >= _NOON else night + _ONE_DAY
    return datetime.combine(bed_date, chosen) - timedelta(minutes=offset_minutes)


def local_to_utc(naive_local: datetime, tz: tzinfo) -> datetime:
    """Convert a naive wall-clock time in ``tz`` to aware UTC, applying the DST rule.

    Valid time → its instant. Repeated time (fall-back) → the first occurrence, whatever ``fold``
    says. Nonexistent time (spring-forward gap) → the transition instant, whose wall time is the
    first valid time after the gap. zoneinfo gives neither directly (PEP 495: in a gap fold=0 uses
    the pre-transition offset → Berlin 02:30 becomes 03:30 CEST; fold=1 the post-transition one
    → 01:30 CET), but the transition lies between those two instants, so it is bisected there.
    Needs a PEP 495 tzinfo (zoneinfo, datetime.timezone); pytz-style zones are not supported.
    """
    if naive_local.tzinfo is not None:
        raise ValueError(f"naive_local must be naive, got {naive_local!r}")
    plain = naive_local.replace(fold=0)
    first = plain.replace(tzinfo=tz)
    if first.utcoffset() == first.replace(fold=1).utcoffset():
        # Neither repeated nor skipped (PEP 495: fold changes the offset only there): the
        # common case, without the four conversions below.
        return first.astimezone(UTC)
    both = [plain.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)]
    exists = [instant for instant in both if _wall(instant, tz) == plain]
    if exists:
        return min(exists)
    return _transition_between(min(both), max(both), tz)


def _transition_between(lo: datetime, hi: datetime, tz: tzinfo) -> datetime:
    """First instant in (lo, hi] whose UTC offset equals hi's, by bisection to the microsecond."""
    target = hi.astimezone(tz).utcoffset()
    if lo.astimezone(tz).utcoffset() == target:
        raise ValueError(f"{tz!r} reports a nonexistent local time but no transition around {lo}")
    while hi - lo > _RESOLUTION:
        mid = lo + (hi - lo) // 2
        if mid.astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


def reminder_time_on_night(
    night: date,
    *,
    bedtime: time,
    weekend_bedtime: time | None,
    offset_minutes: int,
    tz: tzinfo,
) -> datetime:
    """The reminder instant (aware UTC) for the night whose evening date is ``night``."""
    wall = reminder_wall_time(
        night, bedtime=bedtime, weekend_bedtime=weekend_bedtime, offset_minutes=offset_minutes
    )
    return local_to_utc(wall, tz)


def next_fire_at(
    *,
    bedtime: time,
    weekend_bedtime: time | None,
    offset_minutes: int,
    tz: tzinfo,
    after: datetime,
) -> datetime:
    """The first reminder instant strictly after ``after`` (aware, any zone), as aware UTC.

    Walks nights rather than adding 24 h, so DST, weekend bedtimes and 12-hour offsets cannot
    make it skip or repeat a night. Night instants never decrease, so the first night past
    ``after`` is the answer; the start is pushed back until it is not past ``after`` yet.

    Memoised (``_next_fire_memo``): the dispatcher asks this for every reminder every night,
    and the people due in one minute mostly share a zone and a wall-clock schedule.
    """
    _require_aware(after, "after")
    _validate(bedtime, weekend_bedtime, offset_minutes)
    weekday = _wall_delta(bedtime, offset_minutes)
    weekend = weekday if weekend_bedtime is None else _wall_delta(weekend_bedtime, offset_minutes)
    # The key is the instant in UTC: two aware datetimes in one zone that differ only by
    # ``fold`` compare (and hash) equal although they are an hour apart (PEP 495).
    instant = after.astimezone(UTC)
    if type(tz).__hash__ is None:  # a tzinfo subclass with __eq__ but no __hash__
        return _next_fire_walk(tz, weekday, weekend, instant)
    return _next_fire_memo(tz, weekday, weekend, instant)


def _wall_delta(bedtime: time, offset_minutes: int) -> timedelta:
    """Where a night's reminder sits on the wall clock, from the night's (evening date's)
    local midnight: ``reminder_wall_time`` as one number, so that schedules that differ in
    bedtime and offset but not in wall time share ``_next_fire_memo``'s entries."""
    minutes = bedtime.hour * 60 + bedtime.minute - offset_minutes
    if bedtime < _NOON:  # the bedtime is on the next day's date
        minutes += _MINUTES_PER_DAY
    return timedelta(minutes=minutes, seconds=bedtime.second, microseconds=bedtime.microsecond)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _next_fire_memo(
    tz: tzinfo, weekday: timedelta, weekend: timedelta, after: datetime
) -> datetime:
    """``_next_fire_walk``, remembered: its result depends on nothing but these arguments
    (``after`` in UTC, so equal keys are equal instants) and the zone's rules."""
    return _next_fire_walk(tz, weekday, weekend, after)


def _next_fire_walk(
    tz: tzinfo, weekday: timedelta, weekend: timedelta, after: datetime
) -> datetime:
    """``next_fire_at``'s night walk; ``weekday``/``weekend``: ``_wall_delta`` of the bedtime
    used on weekday and on weekend nights (the same when there is no weekend bedtime)."""

    def on(night: date) -> datetime:
        delta = weekend if night.weekday() in _WEEKEND_EVENINGS else weekday
        return local_to_utc(datetime.combine(night, _MIDNIGHT) + delta, tz)

    # Start one night before ``after``'s own: that night's bedtime is before noon of the
    # next day, which ``after`` is past, so it rarely needs pushing back; two evaluations
    # are the common case (the loops, not this guess, make the answer right).
    night = night_of(after, tz) - _ONE_DAY
    while on(night) > after:
        night -= _ONE_DAY
    while True:
        night += _ONE_DAY
        instant = on(night)
        if instant > after:
            return instant


def upcoming(
    *,
    bedtime: time,
    weekend_bedtime: time | None,
    offset_minutes: int,
    tz: tzinfo,
    after: datetime,
    count: int,
) -> list[datetime]:
    """The next ``count`` reminder instants after ``after``, strictly increasing, aware UTC."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    instants: list[datetime] = []
    cursor = after
    for _ in range(count):
        cursor = next_fire_at(
            bedtime=bedtime,
            weekend_bedtime=weekend_bedtime,
            offset_minutes=offset_minutes,
            tz=tz,
            after=cursor,
        )
        instants.append(cursor)
    return instants


@dataclass(frozen=True, slots=True)
class ReminderState:
    """What the scheduling policy reads about one person's reminder (no rows, no Telegram)."""

    bedtime: time
    weekend_bedtime: time | None
    offset_minutes: int
    tz: tzinfo
    next_fire_at: datetime | None = None  # the occurrence currently stored, if any
    last_due_at: datetime | None = None  # the last occurrence handed to the dispatcher
    paused_until: datetime | None = None


def next_occurrence(
    state: ReminderState,
    now: datetime,
    *,
    after: datetime | None = None,
    keep_due: bool = False,
) -> datetime:
    """The next instant a nightly reminder should fire (see ``next_occurrence_of``)."""

    def following(moment: datetime) -> datetime:
        return next_fire_at(
            bedtime=state.bedtime,
            weekend_bedtime=state.weekend_bedtime,
            offset_minutes=state.offset_minutes,
            tz=state.tz,
            after=moment,
        )

    def night(moment: datetime) -> object:
        return reminder_night(moment, offset_minutes=state.offset_minutes, tz=state.tz)

    return next_occurrence_of(following, night, state, now, after=after, keep_due=keep_due)


def next_occurrence_of(
    following: Callable[[datetime], datetime],
    night: Callable[[datetime], object],
    state: ReminderState,
    now: datetime,
    *,
    after: datetime | None = None,
    keep_due: bool = False,
) -> datetime:
    """The scheduling policy in one place, for any kind: ``following(t)`` is the kind's first
    instant after t, ``night(t)`` names the night an instant belongs to.

    Starts strictly after max(now, paused_until, after). With ``keep_due`` (a settings change),
    an occurrence already due but not yet handed to the dispatcher is kept rather than lost:
    the search starts just before it instead of at ``now``. A night that already produced a
    delivery (``last_due_at``) is never produced again, even if the bedtime or timezone moved
    later that same evening. Whether the person wants it at all (subscribed, blocked, kind
    enabled) is the caller's question: this answers only *when*.
    """
    start = now
    current = state.next_fire_at
    if keep_due and current is not None and current <= now:
        start = current - _RESOLUTION
    if state.paused_until is not None:
        start = max(start, state.paused_until)
    if after is not None:
        start = max(start, after)
    candidate = following(start)
    last = state.last_due_at
    for _ in range(3):  # at most one night is ever skipped; the bound is defensive
        if last is None or not (candidate <= last or night(candidate) == night(last)):
            break
        candidate = following(candidate)
    return candidate


def same_night(a: datetime, b: datetime, offset_minutes: int, tz: tzinfo) -> bool:
    """Nights are named by their bedtime's evening, not the fire time's (which may cross noon)."""
    return reminder_night(a, offset_minutes=offset_minutes, tz=tz) == reminder_night(
        b, offset_minutes=offset_minutes, tz=tz
    )
