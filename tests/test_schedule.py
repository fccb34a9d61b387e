"""Reminder scheduling across DST, odd offsets, weekend bedtimes and after-midnight bedtimes.

Expected instants are worked out by hand from the tz rules quoted next to them, never produced by
the code under test. Weekdays used: 2026-03-27 Fri, 2026-03-28 Sat, 2026-06-10 Wed,
2026-06-12 Fri, 2026-06-13 Sat, 2026-10-03 Sat, 2026-10-24 Sat, 2026-10-31 Sat.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import cache, partial
from zoneinfo import ZoneInfo, available_timezones

import pytest

from bot.schedule import (
    ReminderState,
    _next_fire_memo,
    local_to_utc,
    next_fire_at,
    next_occurrence,
    night_of,
    reminder_night,
    reminder_time_on_night,
    reminder_wall_time,
    upcoming,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
CHATHAM = ZoneInfo("Pacific/Chatham")
JERUSALEM = ZoneInfo("Asia/Jerusalem")
APIA = ZoneInfo("Pacific/Apia")
MINUS_0330 = timezone(timedelta(hours=-3, minutes=-30))
ONE_US = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute)


# --- the tz data behaves the way the expectations below assume ---------------------------------


@pytest.mark.parametrize(
    ("tz", "before", "offset_before", "offset_after"),
    [
        # Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET (01:00Z).
        (BERLIN, utc(2026, 3, 29, 1), timedelta(hours=1), timedelta(hours=2)),
        (BERLIN, utc(2026, 10, 25, 1), timedelta(hours=2), timedelta(hours=1)),
        # New York: 2026-03-08 02:00 EST → 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT → 01:00 EST.
        (NEW_YORK, utc(2026, 3, 8, 7), timedelta(hours=-5), timedelta(hours=-4)),
        (NEW_YORK, utc(2026, 11, 1, 6), timedelta(hours=-4), timedelta(hours=-5)),
        # Lord Howe: 2026-04-05 02:00 +11 → 01:30 +10:30; 2026-10-04 02:00 +10:30 → 02:30 +11.
        (LORD_HOWE, utc(2026, 4, 4, 15), timedelta(hours=11), timedelta(hours=10, minutes=30)),
        (LORD_HOWE, utc(2026, 10, 3, 15, 30), timedelta(hours=10, minutes=30), timedelta(hours=11)),
        # Chatham: 2026-04-05 03:45 +13:45 → 02:45 +12:45; 2026-09-27 02:45 +12:45 → 03:45 +13:45.
        (
            CHATHAM,
            utc(2026, 4, 4, 14),
            timedelta(hours=13, minutes=45),
            timedelta(hours=12, minutes=45),
        ),
        (
            CHATHAM,
            utc(2026, 9, 26, 14),
            timedelta(hours=12, minutes=45),
            timedelta(hours=13, minutes=45),
        ),
        # Jerusalem: Friday 2026-03-27 02:00 IST (+2) → 03:00 IDT (+3), i.e. at 00:00Z.
        (JERUSALEM, utc(2026, 3, 27, 0), timedelta(hours=2), timedelta(hours=3)),
    ],
)
def test_transition_dates_match_tzdata(
    tz: ZoneInfo, before: datetime, offset_before: timedelta, offset_after: timedelta
) -> None:
    assert (before - ONE_US).astimezone(tz).utcoffset() == offset_before
    assert before.astimezone(tz).utcoffset() == offset_after


def test_zoneinfo_gap_semantics_are_neither_fold_so_we_bisect() -> None:
    """PEP 495 in a gap: fold=0 uses the old offset, fold=1 the new; neither gives 03:00."""
    gap = local(2026, 3, 29, 2, 30)
    fold0 = gap.replace(tzinfo=BERLIN, fold=0).astimezone(UTC)
    fold1 = gap.replace(tzinfo=BERLIN, fold=1).astimezone(UTC)
    assert fold0 == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert fold1 == utc(2026, 3, 29, 0, 30)  # 01:30 CET
    assert local_to_utc(gap, BERLIN) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST


# --- local_to_utc: valid, gap and fold ----------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "wall", "expected"),
    [
        # Berlin spring gap 02:00–02:59 → 03:00 CEST = 01:00Z.
        (BERLIN, local(2026, 3, 29, 1, 59), utc(2026, 3, 29, 0, 59)),
        (BERLIN, local(2026, 3, 29, 2, 0), utc(2026, 3, 29, 1, 0)),
        (BERLIN, local(2026, 3, 29, 2, 30), utc(2026, 3, 29, 1, 0)),
        (BERLIN, local(2026, 3, 29, 2, 59), utc(2026, 3, 29, 1, 0)),
        (BERLIN, local(2026, 3, 29, 3, 0), utc(2026, 3, 29, 1, 0)),
        (BERLIN, local(2026, 3, 29, 3, 30), utc(2026, 3, 29, 1, 30)),
        # Berlin fall: 02:00–02:59 happens twice; first occurrence is CEST (+2).
        (BERLIN, local(2026, 10, 25, 1, 59), utc(2026, 10, 24, 23, 59)),
        (BERLIN, local(2026, 10, 25, 2, 0), utc(2026, 10, 25, 0, 0)),
        (BERLIN, local(2026, 10, 25, 2, 30), utc(2026, 10, 25, 0, 30)),
        (BERLIN, local(2026, 10, 25, 3, 0), utc(2026, 10, 25, 2, 0)),
        # New York spring gap 02:00–02:59 → 03:00 EDT = 07:00Z.
        (NEW_YORK, local(2026, 3, 8, 1, 59), utc(2026, 3, 8, 6, 59)),
        (NEW_YORK, local(2026, 3, 8, 2, 30), utc(2026, 3, 8, 7, 0)),
        (NEW_YORK, local(2026, 3, 8, 3, 0), utc(2026, 3, 8, 7, 0)),
        # New York fall: 01:00–01:59 twice; first is EDT (−4).
        (NEW_YORK, local(2026, 11, 1, 0, 59), utc(2026, 11, 1, 4, 59)),
        (NEW_YORK, local(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30)),
        (NEW_YORK, local(2026, 11, 1, 2, 0), utc(2026, 11, 1, 7, 0)),
        # Lord Howe spring gap 02:00–02:29 → 02:30 +11 = 15:30Z the day before.
        (LORD_HOWE, local(2026, 10, 4, 1, 59), utc(2026, 10, 3, 15, 29)),
        (LORD_HOWE, local(2026, 10, 4, 2, 0), utc(2026, 10, 3, 15, 30)),
        (LORD_HOWE, local(2026, 10, 4, 2, 15), utc(2026, 10, 3, 15, 30)),
        (LORD_HOWE, local(2026, 10, 4, 2, 30), utc(2026, 10, 3, 15, 30)),
        # Lord Howe fall: 01:30–01:59 twice; first is +11.
        (LORD_HOWE, local(2026, 4, 5, 1, 30), utc(2026, 4, 4, 14, 30)),
        (LORD_HOWE, local(2026, 4, 5, 1, 45), utc(2026, 4, 4, 14, 45)),
        (LORD_HOWE, local(2026, 4, 5, 2, 0), utc(2026, 4, 4, 15, 30)),
        # Chatham spring gap 02:45–03:44 → 03:45 +13:45 = 14:00Z; fall 02:45–03:44 twice.
        (CHATHAM, local(2026, 9, 27, 2, 44), utc(2026, 9, 26, 13, 59)),
        (CHATHAM, local(2026, 9, 27, 3, 0), utc(2026, 9, 26, 14, 0)),
        (CHATHAM, local(2026, 4, 5, 3, 0), utc(2026, 4, 4, 13, 15)),
        (CHATHAM, local(2026, 4, 5, 3, 45), utc(2026, 4, 4, 15, 0)),
        # Apia skipped all of 2011-12-30 (−10 → +14); anything that day → 2011-12-31 00:00 +14.
        (APIA, local(2011, 12, 30, 21, 0), utc(2011, 12, 30, 10, 0)),
        # No DST at all.
        (KATHMANDU, local(2026, 6, 10, 21, 45), utc(2026, 6, 10, 16, 0)),
        (MINUS_0330, local(2026, 6, 10, 22, 45), utc(2026, 6, 11, 2, 15)),
        (UTC, local(2026, 6, 10, 22, 45), utc(2026, 6, 10, 22, 45)),
    ],
)
def test_local_to_utc(tz: tzinfo, wall: datetime, expected: datetime) -> None:
    got = local_to_utc(wall, tz)
    assert got == expected
    assert got.tzinfo is UTC


def test_local_to_utc_ignores_fold_1_and_takes_first_occurrence() -> None:
    assert local_to_utc(local(2026, 10, 25, 2, 30).replace(fold=1), BERLIN) == utc(
        2026, 10, 25, 0, 30
    )


def test_local_to_utc_rejects_aware_input() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_to_utc(utc(2026, 1, 1), BERLIN)


# --- nights, bedtimes after midnight, weekends -------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 6, 10, 23, 0, tzinfo=BERLIN), date(2026, 6, 10)),
        (datetime(2026, 6, 11, 3, 0, tzinfo=BERLIN), date(2026, 6, 10)),
        (datetime(2026, 6, 11, 11, 59, tzinfo=BERLIN), date(2026, 6, 10)),
        (datetime(2026, 6, 11, 12, 0, tzinfo=BERLIN), date(2026, 6, 11)),
        (utc(2026, 6, 10, 22, 30), date(2026, 6, 10)),  # 00:30 CEST on the 11th
    ],
)
def test_night_of(moment: datetime, expected: date) -> None:
    assert night_of(moment, BERLIN) == expected


@pytest.mark.parametrize(
    ("offset", "expected_wall", "expected_utc"),
    [
        # Bedtime 00:30 on night Wed 2026-06-10 is Thu 00:30; reminders land on Wednesday evening.
        (0, local(2026, 6, 11, 0, 30), utc(2026, 6, 10, 22, 30)),
        (60, local(2026, 6, 10, 23, 30), utc(2026, 6, 10, 21, 30)),
        (240, local(2026, 6, 10, 20, 30), utc(2026, 6, 10, 18, 30)),
        (720, local(2026, 6, 10, 12, 30), utc(2026, 6, 10, 10, 30)),
    ],
)
def test_after_midnight_bedtime(
    offset: int, expected_wall: datetime, expected_utc: datetime
) -> None:
    night = date(2026, 6, 10)
    wall = reminder_wall_time(
        night, bedtime=time(0, 30), weekend_bedtime=None, offset_minutes=offset
    )
    assert wall == expected_wall
    got = reminder_time_on_night(
        night, bedtime=time(0, 30), weekend_bedtime=None, offset_minutes=offset, tz=BERLIN
    )
    assert got == expected_utc


@pytest.mark.parametrize(
    ("weekend_bedtime", "expected"),
    [
        # Weekday 22:30, offset 30 → 22:00 CEST = 20:00Z. Weekend 23:45 → 23:15 CEST = 21:15Z.
        (
            time(23, 45),
            [
                utc(2026, 6, 11, 20),
                utc(2026, 6, 12, 21, 15),
                utc(2026, 6, 13, 21, 15),
                utc(2026, 6, 14, 20),
            ],
        ),
        # Weekend 01:00 (after midnight) → 00:30 CEST next day = 22:30Z on the evening date.
        (
            time(1, 0),
            [
                utc(2026, 6, 11, 20),
                utc(2026, 6, 12, 22, 30),
                utc(2026, 6, 13, 22, 30),
                utc(2026, 6, 14, 20),
            ],
        ),
        (
            None,
            [
                utc(2026, 6, 11, 20),
                utc(2026, 6, 12, 20),
                utc(2026, 6, 13, 20),
                utc(2026, 6, 14, 20),
            ],
        ),
    ],
)
def test_weekend_bedtime_on_friday_and_saturday_nights(
    weekend_bedtime: time | None, expected: list[datetime]
) -> None:
    nights = [date(2026, 6, 11) + timedelta(days=i) for i in range(4)]  # Thu, Fri, Sat, Sun
    got = [
        reminder_time_on_night(
            night,
            bedtime=time(22, 30),
            weekend_bedtime=weekend_bedtime,
            offset_minutes=30,
            tz=BERLIN,
        )
        for night in nights
    ]
    assert got == expected
    first = upcoming(
        bedtime=time(22, 30),
        weekend_bedtime=weekend_bedtime,
        offset_minutes=30,
        tz=BERLIN,
        after=utc(2026, 6, 11, 12),
        count=4,
    )
    assert first == expected


@pytest.mark.parametrize(
    ("tz", "night", "bedtime", "offset", "expected"),
    [
        (KATHMANDU, date(2026, 6, 10), time(22, 30), 45, utc(2026, 6, 10, 16, 0)),  # 21:45 +05:45
        (CHATHAM, date(2026, 1, 14), time(22, 0), 0, utc(2026, 1, 14, 8, 15)),  # +13:45 summer
        (CHATHAM, date(2026, 7, 15), time(22, 0), 0, utc(2026, 7, 15, 9, 15)),  # +12:45 winter
        (MINUS_0330, date(2026, 6, 10), time(23, 0), 15, utc(2026, 6, 11, 2, 15)),  # 22:45 −03:30
        (
            MINUS_0330,
            date(2026, 6, 10),
            time(0, 30),
            0,
            utc(2026, 6, 11, 4, 0),
        ),  # 00:30 on the 11th
    ],
)
def test_odd_and_fixed_offsets(
    tz: tzinfo, night: date, bedtime: time, offset: int, expected: datetime
) -> None:
    got = reminder_time_on_night(
        night, bedtime=bedtime, weekend_bedtime=None, offset_minutes=offset, tz=tz
    )
    assert got == expected
    assert (
        next_fire_at(
            bedtime=bedtime,
            weekend_bedtime=None,
            offset_minutes=offset,
            tz=tz,
            after=expected - ONE_US,
        )
        == expected
    )


def test_reminder_night_is_the_bedtime_evening_not_the_fire_time_evening() -> None:
    """Bedtime 23:30 weekdays / 00:30 weekends with a 12-hour reminder (Berlin, CEST):
    Sat 13 night → bed Sun 00:30 → fires Sat 12:30; Sun 14 night → bed Sun 23:30 → fires
    Sun 11:30. night_of() files both under Saturday; reminder_night() tells them apart."""
    saturday_fire = utc(2026, 6, 13, 10, 30)  # Sat 12:30 CEST
    sunday_fire = utc(2026, 6, 14, 9, 30)  # Sun 11:30 CEST
    got = upcoming(
        bedtime=time(23, 30),
        weekend_bedtime=time(0, 30),
        offset_minutes=720,
        tz=BERLIN,
        after=utc(2026, 6, 13, 0),
        count=2,
    )
    assert got == [saturday_fire, sunday_fire]
    assert night_of(saturday_fire, BERLIN) == night_of(sunday_fire, BERLIN) == date(2026, 6, 13)
    assert reminder_night(saturday_fire, offset_minutes=720, tz=BERLIN) == date(2026, 6, 13)
    assert reminder_night(sunday_fire, offset_minutes=720, tz=BERLIN) == date(2026, 6, 14)


@pytest.mark.parametrize(
    ("fire", "offset", "night"),
    [
        (utc(2026, 6, 10, 22, 30), 0, date(2026, 6, 10)),  # 00:30 CEST Thu, bedtime 00:30
        (utc(2026, 6, 10, 21, 30), 60, date(2026, 6, 10)),  # 23:30 CEST, bedtime 00:30
        (utc(2026, 6, 9, 22, 0), 720, date(2026, 6, 10)),  # Wed 00:00 CEST, bedtime 12:00 Wed
        (utc(2026, 3, 29, 1, 0), 30, date(2026, 3, 28)),  # gap-shifted 03:00 CEST, bed 03:30
    ],
)
def test_reminder_night(fire: datetime, offset: int, night: date) -> None:
    assert reminder_night(fire, offset_minutes=offset, tz=BERLIN) == night


# --- next_fire_at across DST nights -------------------------------------------------------------


def fires(
    tz: tzinfo,
    bedtime: time,
    offset: int,
    start: datetime,
    end: datetime,
    weekend_bedtime: time | None = None,
) -> list[datetime]:
    """Every instant next_fire_at yields in (start, end], by iterating it one step at a time."""
    out: list[datetime] = []
    cursor = start
    while True:
        cursor = next_fire_at(
            bedtime=bedtime,
            weekend_bedtime=weekend_bedtime,
            offset_minutes=offset,
            tz=tz,
            after=cursor,
        )
        if cursor > end:
            return out
        out.append(cursor)


@pytest.mark.parametrize(
    ("tz", "bedtime", "offset", "start", "expected"),
    [
        # Berlin spring: 02:30 target. Sat 28 CET → 01:30Z; Sun 29 gap → 03:00 CEST = 01:00Z;
        # Mon 30 CEST → 00:30Z.
        (
            BERLIN,
            time(3, 0),
            30,
            utc(2026, 3, 27, 12),
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        ),
        # Berlin fall: 02:30 twice on Oct 25 (00:30Z CEST, 01:30Z CET) → only the first.
        (
            BERLIN,
            time(3, 0),
            30,
            utc(2026, 10, 23, 12),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        # New York spring: 02:30 target; Mar 8 gap → 03:00 EDT = 07:00Z.
        (
            NEW_YORK,
            time(3, 0),
            30,
            utc(2026, 3, 6, 12),
            [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
        ),
        # New York fall: 01:30 twice on Nov 1 (05:30Z EDT, 06:30Z EST) → only the first.
        (
            NEW_YORK,
            time(2, 0),
            30,
            utc(2026, 10, 30, 12),
            [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        ),
        # Lord Howe spring: 02:15 target; Oct 4 gap 02:00–02:29 → 02:30 +11 = 15:30Z Oct 3.
        (
            LORD_HOWE,
            time(2, 45),
            30,
            utc(2026, 10, 2, 0),
            [utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)],
        ),
        # Lord Howe fall: 01:45 twice on Apr 5 (14:45Z at +11, 15:15Z at +10:30) → first only.
        (
            LORD_HOWE,
            time(2, 15),
            30,
            utc(2026, 4, 3, 0),
            [utc(2026, 4, 3, 14, 45), utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15)],
        ),
    ],
)
def test_dst_nights_fire_exactly_once(
    tz: ZoneInfo, bedtime: time, offset: int, start: datetime, expected: list[datetime]
) -> None:
    assert fires(tz, bedtime, offset, start, start + timedelta(days=3)) == expected


def test_next_fire_at_between_the_two_occurrences_skips_the_repeat() -> None:
    fire = partial(
        next_fire_at, bedtime=time(2, 0), weekend_bedtime=None, offset_minutes=30, tz=NEW_YORK
    )
    # Fired at 01:30 EDT (05:30Z); at 01:10 EST (06:10Z) the wall clock is about to show 01:30
    # again, but the next reminder is the following night's 01:30 EST.
    assert fire(after=utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)
    assert fire(after=utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 30)


def test_next_fire_at_is_strictly_after_and_accepts_any_zone() -> None:
    fire = partial(
        next_fire_at, bedtime=time(23, 0), weekend_bedtime=None, offset_minutes=60, tz=BERLIN
    )
    # 22:00 CEST = 20:00Z.
    assert fire(after=utc(2026, 6, 10, 20)) == utc(2026, 6, 11, 20)
    assert fire(after=utc(2026, 6, 10, 20) - ONE_US) == utc(2026, 6, 10, 20)
    tokyo_5am = datetime(2026, 6, 11, 5, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 20:00Z on the 10th
    assert fire(after=tokyo_5am) == utc(2026, 6, 11, 20)
    with pytest.raises(ValueError, match="aware"):
        fire(after=local(2026, 6, 10, 20))


def test_weekend_bedtime_across_noon_with_12h_offset_stays_strictly_increasing() -> None:
    # Weekday bedtime 11:00 (night D → D+1 11:00), weekend 12:00 (night D → D 12:00), offset 12 h.
    # Wed 10 → Wed 23:00 CEST; Thu 11 → Thu 23:00; Fri 12 → Fri 00:00; Sat 13 → Sat 00:00;
    # Sun 14 → Sun 23:00. CEST = UTC+2.
    got = upcoming(
        bedtime=time(11, 0),
        weekend_bedtime=time(12, 0),
        offset_minutes=720,
        tz=BERLIN,
        after=utc(2026, 6, 10, 0),
        count=5,
    )
    assert got == [
        utc(2026, 6, 10, 21),
        utc(2026, 6, 11, 21),
        utc(2026, 6, 11, 22),
        utc(2026, 6, 12, 22),
        utc(2026, 6, 14, 21),
    ]


def test_two_nights_in_one_gap_share_one_instant() -> None:
    """The documented corner case: Thu 11:59 and Fri 12:00 bedtimes minus 9h29 fall in the
    Friday 02:00–03:00 gap in Jerusalem (02:30 and 02:31) → both 03:00 IDT = 00:00Z."""
    on_night = partial(
        reminder_time_on_night,
        bedtime=time(11, 59),
        weekend_bedtime=time(12, 0),
        offset_minutes=569,
        tz=JERUSALEM,
    )
    assert on_night(date(2026, 3, 26)) == on_night(date(2026, 3, 27)) == utc(2026, 3, 27, 0)
    # Wed 25 → 02:30 IST Thu 26 = 00:30Z (before `after`); Thu 26 + Fri 27 share 00:00Z;
    # Sat 28 → 12:00 − 9h29 = 02:31 IDT Sat 28 = 23:31Z Fri 27.
    got = upcoming(
        bedtime=time(11, 59),
        weekend_bedtime=time(12, 0),
        offset_minutes=569,
        tz=JERUSALEM,
        after=utc(2026, 3, 26, 1),
        count=2,
    )
    assert got == [utc(2026, 3, 27, 0), utc(2026, 3, 27, 23, 31)]


@pytest.mark.parametrize(
    ("bedtime", "offset", "message"),
    [
        (time(22, 0), -1, "offset_minutes"),
        (time(22, 0), 721, "offset_minutes"),
        (time(22, 0, tzinfo=UTC), 30, "naive"),
    ],
)
def test_invalid_settings_are_rejected(bedtime: time, offset: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_fire_at(
            bedtime=bedtime,
            weekend_bedtime=None,
            offset_minutes=offset,
            tz=BERLIN,
            after=utc(2026, 1, 1),
        )


def test_upcoming_count() -> None:
    soon = partial(upcoming, bedtime=time(22, 0), weekend_bedtime=None, offset_minutes=0, tz=UTC)
    assert soon(after=utc(2026, 1, 1), count=0) == []
    assert soon(after=utc(2026, 1, 1), count=2) == [utc(2026, 1, 1, 22), utc(2026, 1, 2, 22)]
    with pytest.raises(ValueError, match="count"):
        soon(after=utc(2026, 1, 1), count=-1)


# --- a year of nights in many zones -------------------------------------------------------------


def exists(wall: datetime, tz: tzinfo) -> bool:
    """A wall time exists iff some fold round-trips (the definition, not the implementation)."""
    return any(
        wall.replace(tzinfo=tz, fold=fold).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        == wall
        for fold in (0, 1)
    )


def occurs_twice(wall: datetime, tz: tzinfo) -> bool:
    instants = {wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)}
    return len(instants) == 2 and exists(wall, tz)


def evening_of(bed: datetime) -> date:
    """Noon rule on a naive bedtime: before 12:00 it belongs to the previous evening."""
    return bed.date() if bed.time() >= time(12, 0) else bed.date() - timedelta(days=1)


YEAR_CASES = [
    # zone, weekday bedtime, weekend bedtime, offset, whether some night's target is in a gap
    (BERLIN, time(3, 0), None, 30, True),  # 02:30 target
    (BERLIN, time(23, 0), time(0, 30), 720, False),
    (NEW_YORK, time(22, 0), time(3, 0), 30, True),  # Saturday 02:30 target, gap on Mar 8
    (NEW_YORK, time(3, 0), time(2, 0), 30, False),  # Saturday 01:30 target, repeats on Nov 1
    (LORD_HOWE, time(2, 45), None, 30, True),  # 02:15 target in the 30-minute gap
    (LORD_HOWE, time(22, 15), time(1, 45), 15, False),
    (CHATHAM, time(3, 30), None, 30, True),  # 03:00 target in the 02:45–03:44 gap
    (KATHMANDU, time(0, 30), time(23, 15), 45, False),
    (MINUS_0330, time(23, 0), None, 15, False),
    (ZoneInfo("America/St_Johns"), time(2, 30), None, 0, True),  # 02:00–02:59 gap at −03:30
    (ZoneInfo("America/Santiago"), time(0, 30), None, 0, True),  # clocks change at midnight
    (ZoneInfo("Antarctica/Troll"), time(1, 30), None, 0, True),  # 2-hour DST shift at 01:00Z
]


@pytest.mark.parametrize(("tz", "bedtime", "weekend", "offset", "hits_gap"), YEAR_CASES)
def test_a_year_of_nights(
    tz: tzinfo, bedtime: time, weekend: time | None, offset: int, hits_gap: bool
) -> None:
    cursor = utc(2026, 1, 1)
    instants: list[datetime] = []
    for _ in range(400):
        cursor = next_fire_at(
            bedtime=bedtime, weekend_bedtime=weekend, offset_minutes=offset, tz=tz, after=cursor
        )
        instants.append(cursor)

    def target_on(night: date) -> datetime:
        """Independent wall target: the chosen bedtime on its date (noon rule) minus offset."""
        chosen = weekend if weekend is not None and night.weekday() in (4, 5) else bedtime
        bed_date = night if chosen >= time(12, 0) else night + timedelta(days=1)
        return datetime.combine(bed_date, chosen) - timedelta(minutes=offset)

    # The first instant's night, from its wall time (no DST change near Jan 1 in these zones),
    # and the night before it must already have fired by the start.
    first_wall = instants[0].astimezone(tz).replace(tzinfo=None)
    first_night = evening_of(first_wall + timedelta(minutes=offset))
    assert target_on(first_night - timedelta(days=1)).replace(tzinfo=tz) <= utc(2026, 1, 1)
    gaps = 0
    for index, instant in enumerate(instants):
        assert instant.tzinfo is UTC
        if index:
            assert instant > instants[index - 1]
        # Exactly one per night: the k-th instant is night (first + k)'s reminder.
        target = target_on(first_night + timedelta(days=index))
        local_now = instant.astimezone(tz)
        wall = local_now.replace(tzinfo=None)
        if exists(target, tz):
            assert wall == target
            if occurs_twice(target, tz):
                assert local_now.fold == 0  # the first of the two occurrences
        else:
            gaps += 1
            # Fired at the end of the gap: a transition instant, wall time just past the target.
            just_before = (instant - ONE_US).astimezone(tz)
            assert just_before.utcoffset() != local_now.utcoffset()
            assert just_before.replace(tzinfo=None) < target < wall
    assert gaps == (1 if hits_gap else 0)


def test_ambiguous_target_fires_at_first_occurrence() -> None:
    # Saturday 2026-10-31 night in New York, weekend bedtime 02:00 − 30 → 01:30 EDT = 05:30Z.
    instants = upcoming(
        bedtime=time(3, 0),
        weekend_bedtime=time(2, 0),
        offset_minutes=30,
        tz=NEW_YORK,
        after=utc(2026, 10, 31, 0),
        count=3,
    )
    # Fri night → Sat 01:30 EDT = 05:30Z; Sat night → Sun 01:30 EDT (first) = 05:30Z;
    # Sun night (weekday bedtime 03:00) → Mon 02:30 EST = 07:30Z.
    assert instants == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 7, 30)]


# --- property-style checks over every zone with a 2026 transition -------------------------------


@cache
def transitions(tz: ZoneInfo, year: int) -> tuple[datetime, ...]:
    """UTC instants in ``year`` where the offset changes: a 6-hour scan, then minute by minute
    (test-side, deliberately not the bisection the module uses)."""
    found: list[datetime] = []
    step = timedelta(hours=6)
    moment = utc(year, 1, 1)
    while moment.year == year:
        following = moment + step
        offset = following.astimezone(tz).utcoffset()
        if moment.astimezone(tz).utcoffset() != offset:
            minute = moment
            while minute.astimezone(tz).utcoffset() != offset:
                minute += timedelta(minutes=1)
            found.append(minute)
        moment = following
    return tuple(found)


def _changes_offset(key: str) -> bool:
    tz = ZoneInfo(key)
    return len({utc(2026, month, 1).astimezone(tz).utcoffset() for month in range(1, 13)}) > 1


ZONES_WITH_DST = [
    ZoneInfo(key)
    for key in sorted(available_timezones() - {"Factory", "localtime"})
    if _changes_offset(key)
]


def test_there_are_many_zones_to_check() -> None:
    assert len(ZONES_WITH_DST) > 50


@pytest.mark.parametrize("tz", ZONES_WITH_DST, ids=str)
def test_local_to_utc_properties_around_every_2026_transition(tz: ZoneInfo) -> None:
    for transition in transitions(tz, 2026):
        before = (transition - ONE_US).astimezone(tz).utcoffset()
        after = transition.astimezone(tz).utcoffset()
        assert before is not None and after is not None
        shift = abs(after - before)
        start = (transition + min(before, after)).replace(tzinfo=None) - timedelta(hours=3)
        previous: datetime | None = None
        for step in range(4 * 6 + int(shift / timedelta(minutes=15))):
            wall = start + timedelta(minutes=15 * step)
            got = local_to_utc(wall, tz)
            if exists(wall, tz):
                assert got.astimezone(tz).replace(tzinfo=None) == wall
                # First occurrence: the instant one shift earlier shows a different wall time.
                assert (got - shift).astimezone(tz).replace(tzinfo=None) != wall
            else:
                assert got == transition
                assert got.astimezone(tz).replace(tzinfo=None) > wall
            if previous is not None:
                assert got >= previous
            previous = got


def test_next_fire_at_random_properties() -> None:
    rng = random.Random(20260329)
    zones: list[tzinfo] = [*ZONES_WITH_DST, MINUS_0330, KATHMANDU, UTC]
    for _ in range(500):
        tz = rng.choice(zones)
        bedtime = time(rng.randrange(24), rng.randrange(60))
        weekend = rng.choice([None, time(rng.randrange(24), rng.randrange(60))])
        offset = rng.randrange(721)
        after = utc(2026, 1, 1) + timedelta(minutes=rng.randrange(366 * 24 * 60))
        got = next_fire_at(
            bedtime=bedtime, weekend_bedtime=weekend, offset_minutes=offset, tz=tz, after=after
        )
        assert got > after
        nearby = [
            reminder_time_on_night(
                night_of(after, tz) + timedelta(days=delta),
                bedtime=bedtime,
                weekend_bedtime=weekend,
                offset_minutes=offset,
                tz=tz,
            )
            for delta in range(-3, 4)
        ]
        assert nearby == sorted(nearby)
        assert got in nearby
        assert not any(after < instant < got for instant in nearby)


def _next_fire_at_unmemoised(
    *, bedtime: time, weekend_bedtime: time | None, offset_minutes: int, tz: tzinfo, after: datetime
) -> datetime:
    """``next_fire_at`` as it was before the memo: the night walk over the public
    ``reminder_time_on_night``, evaluated afresh on every call (the reference)."""

    def on(night: date) -> datetime:
        return reminder_time_on_night(
            night,
            bedtime=bedtime,
            weekend_bedtime=weekend_bedtime,
            offset_minutes=offset_minutes,
            tz=tz,
        )

    night = night_of(after, tz) - timedelta(days=1)
    while on(night) > after:
        night -= timedelta(days=1)
    while True:
        night += timedelta(days=1)
        instant = on(night)
        if instant > after:
            return instant


# Bedtimes and offsets that put the reminder near local midnight, in DST transition hours and
# across noon; with and without a weekend bedtime on the other side of midnight.
_MEMO_SCHEDULES: list[tuple[time, time | None, int]] = [
    (time(23, 30), None, 0),
    (time(0, 0), None, 0),
    (time(0, 30), None, 60),
    (time(1, 40), None, 0),
    (time(2, 40), None, 60),
    (time(3, 0), time(2, 0), 30),
    (time(23, 45), time(0, 45), 15),
    (time(1, 15), time(23, 15), 720),
    (time(12, 0), None, 720),
    (time(2, 30), None, 0),
]


@pytest.mark.parametrize(
    "tz",
    [ZoneInfo("Europe/London"), NEW_YORK, LORD_HOWE, JERUSALEM, MINUS_0330],
    ids=str,
)
def test_memoised_next_fire_at_matches_the_unmemoised_walk_around_dst(tz: tzinfo) -> None:
    """Every ``after`` 24 h either side of each 2026 transition, every 10 min, given in UTC,
    in the zone itself (the right fold) and with the other fold: the memo must answer what
    the walk answers, also when it answers from an entry another call made. Schedules
    sharing a wall time (00:30-60 and 23:30-0, 02:40-60 and 01:40-0) share entries."""
    _next_fire_memo.cache_clear()
    found = transitions(tz, 2026) if isinstance(tz, ZoneInfo) else (utc(2026, 3, 29, 1),)
    assert found  # a fixed offset has none: one sweep anyway, as the control
    for transition in found:
        for step in range(-144, 145):
            instant = transition + timedelta(minutes=10 * step)
            own = instant.astimezone(tz)
            for after in (instant, own, own.replace(fold=1 - own.fold)):
                for bedtime, weekend, offset in _MEMO_SCHEDULES:
                    memoised = next_fire_at(
                        bedtime=bedtime,
                        weekend_bedtime=weekend,
                        offset_minutes=offset,
                        tz=tz,
                        after=after,
                    )
                    walked = _next_fire_at_unmemoised(
                        bedtime=bedtime,
                        weekend_bedtime=weekend,
                        offset_minutes=offset,
                        tz=tz,
                        after=after,
                    )
                    assert memoised == walked, (after, bedtime, weekend, offset)
    assert _next_fire_memo.cache_info().hits > _next_fire_memo.cache_info().misses


def test_memo_tells_the_two_occurrences_of_a_repeated_hour_apart() -> None:
    """New York 2026-11-01: 01:30 EDT (05:30Z, fold=0) and 01:30 EST (06:30Z, fold=1) are
    equal as datetimes in one zone (PEP 495), but a 01:40 reminder's next instant differs:
    05:40Z (first 01:40) after the first, Mon 01:40 EST = 06:40Z after the second."""
    _next_fire_memo.cache_clear()
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)
    second = first.replace(fold=1)
    assert first == second and (first - second) == timedelta(0)  # why the key is UTC
    at_0140 = partial(
        next_fire_at, bedtime=time(1, 40), weekend_bedtime=None, offset_minutes=0, tz=NEW_YORK
    )
    assert at_0140(after=first) == utc(2026, 11, 1, 5, 40)
    assert at_0140(after=second) == utc(2026, 11, 2, 6, 40)


# --- the scheduling policy: next_occurrence (pause, keep-due, never the same night twice) ---


def berlin_state(**changes: object) -> ReminderState:
    values: dict[str, object] = {
        "bedtime": time(23, 0),
        "weekend_bedtime": None,
        "offset_minutes": 60,
        "tz": BERLIN,
    }
    values.update(changes)
    return ReminderState(**values)  # type: ignore[arg-type]


def at_berlin(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BERLIN).astimezone(UTC)


def test_next_occurrence_is_tonight_before_the_time_and_tomorrow_after_it() -> None:
    assert next_occurrence(berlin_state(), at_berlin(2026, 1, 14, 21, 0)) == at_berlin(
        2026, 1, 14, 22, 0
    )
    assert next_occurrence(berlin_state(), at_berlin(2026, 1, 14, 22, 1)) == at_berlin(
        2026, 1, 15, 22, 0
    )


def test_a_night_already_delivered_is_not_delivered_again_after_a_later_bedtime() -> None:
    """22:00 went out; at 22:10 the person moves bedtime to 23:30 (reminder 22:30 tonight)."""
    delivered = at_berlin(2026, 1, 14, 22, 0)
    moved = berlin_state(bedtime=time(23, 30), last_due_at=delivered)
    assert next_occurrence(moved, at_berlin(2026, 1, 14, 22, 10)) == at_berlin(2026, 1, 15, 22, 30)
    # Without that night's delivery, tonight's 22:30 is still ahead and is the answer.
    assert next_occurrence(
        berlin_state(bedtime=time(23, 30)), at_berlin(2026, 1, 14, 22, 10)
    ) == at_berlin(2026, 1, 14, 22, 30)


def test_a_pause_starts_the_search_at_its_end() -> None:
    until = at_berlin(2026, 1, 16, 12, 0)
    assert next_occurrence(
        berlin_state(paused_until=until), at_berlin(2026, 1, 14, 9, 0)
    ) == at_berlin(2026, 1, 16, 22, 0)


def test_keep_due_keeps_an_occurrence_that_is_due_but_not_handed_over() -> None:
    due = at_berlin(2026, 1, 14, 22, 0)
    now = due + timedelta(seconds=30)
    state = berlin_state(next_fire_at=due)
    assert next_occurrence(state, now, keep_due=True) == due
    assert next_occurrence(state, now) == at_berlin(2026, 1, 15, 22, 0)


def test_after_pushes_past_a_given_instant() -> None:
    due = at_berlin(2026, 1, 14, 22, 0)
    assert next_occurrence(berlin_state(), at_berlin(2026, 1, 14, 9, 0), after=due) == (
        at_berlin(2026, 1, 15, 22, 0)
    )
