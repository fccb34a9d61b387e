"""Pure pieces of the diary's wiring: which night a sent check-in names, the wake time kept as
minutes after bedtime, the check-in's eligibility rule, /diary's text and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import eligibility
from bot.content import load_content
from bot.diary.models import DiaryEntry, Habit, OnsetBucket
from bot.diary.wake import checkin_night, sleep_minutes_between, wake_time_after
from bot.diary.weekly import next_weekly_at
from bot.handlers.diary import diary_listing, export_csv
from bot.telegram_html import visible_text

CONTENT = Path(__file__).resolve().parent.parent / "content"
BERLIN = ZoneInfo("Europe/Berlin")
LOGGED = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def test_wake_time_is_kept_as_minutes_after_bedtime() -> None:
    assert wake_time_after(time(22, 30), 480) == time(6, 30)
    assert wake_time_after(time(0, 30), 480) == time(8, 30)
    assert sleep_minutes_between(time(22, 30), time(6, 30)) == 480
    assert sleep_minutes_between(time(23, 0), time(7, 30)) == 510
    assert sleep_minutes_between(time(1, 0), time(9, 0)) == 480


def test_a_sent_checkin_names_the_night_of_its_bedtime() -> None:
    # 06:30 CET on Wed 25 Nov, 8 h after a 22:30 bedtime: the night of Tue 24 Nov.
    assert checkin_night(
        datetime(2026, 11, 25, 5, 30, tzinfo=UTC), sleep_minutes=480, tz=BERLIN
    ) == date(2026, 11, 24)
    # A 00:30 bedtime belongs to the evening before: 08:30 on the 25th is still the 24th.
    assert checkin_night(
        datetime(2026, 11, 25, 7, 30, tzinfo=UTC), sleep_minutes=480, tz=BERLIN
    ) == date(2026, 11, 24)
    # Across the spring-forward night in Berlin (28 Mar 2027): 06:30 CEST → night of the 27th.
    assert checkin_night(
        datetime(2027, 3, 28, 4, 30, tzinfo=UTC), sleep_minutes=480, tz=BERLIN
    ) == date(2027, 3, 27)


def _state(enabled: bool | None, paused_until: datetime | None = None) -> eligibility.DeliveryState:
    return eligibility.DeliveryState(
        delivery_id=1,
        kind="checkin",
        due_at=datetime(2026, 11, 25, 5, 30, tzinfo=UTC),
        status="sending",
        claimed_by="me",
        recipient=eligibility.Recipient(subscribed=True, blocked=False, paused_until=paused_until),
        kind_enabled=enabled,
    )


def test_the_checkin_has_its_own_eligibility_rule() -> None:
    assert eligibility.why_not(_state(True), "me") is None
    assert eligibility.why_not(_state(False), "me") == eligibility.TURNED_OFF
    assert eligibility.why_not(_state(None), "me") == eligibility.TURNED_OFF
    paused = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert eligibility.why_not(_state(True, paused), "me") == eligibility.PAUSED


def test_diary_lists_fourteen_nights_newest_first_with_gaps() -> None:
    words = load_content(CONTENT).diary
    entries = [
        DiaryEntry(date(2026, 11, 23), 4, LOGGED, frozenset({Habit.DIMMED_LIGHTS}), None),
        DiaryEntry(date(2026, 11, 20), 2, LOGGED, frozenset(), OnsetBucket.OVER_60),
        DiaryEntry(date(2026, 11, 1), 5, LOGGED),  # outside the 14 nights
    ]
    lines = visible_text(diary_listing(entries, date(2026, 11, 23), words)).splitlines()
    assert lines[0] == "Your last 14 nights (2 nights logged):"
    assert lines[1] == "Mon 23 Nov: 4/5 · Dimmed the lights"
    assert lines[2] == "Sun 22 Nov: —"
    assert lines[4] == "Fri 20 Nov: 2/5 · no habits ticked · > 60 min to fall asleep"
    assert len(lines) == 15 and lines[-1] == "Tue 10 Nov: —"
    assert "No nights logged yet" in diary_listing([], date(2026, 11, 23), words)


def test_diary_in_chinese_uses_its_own_separator_and_dates() -> None:
    words = load_content(CONTENT / "zh").diary
    entry = DiaryEntry(
        date(2026, 11, 23), 3, LOGGED, frozenset({Habit.DIMMED_LIGHTS, Habit.B12_DINNER}), None
    )
    lines = visible_text(diary_listing([entry], date(2026, 11, 23), words)).splitlines()
    assert lines[1] == "11月23日（周一）：3/5 · 调暗了灯光、晚餐富含 B12"


def test_the_export_is_one_csv_row_per_night() -> None:
    entry = DiaryEntry(
        date(2026, 11, 23), 4, LOGGED, frozenset({Habit.B12_DINNER}), OnsetBucket.UNDER_15
    )
    rows = list(csv.DictReader(io.StringIO(export_csv([entry]).decode())))
    assert rows == [
        {
            "night": "2026-11-23",
            "rating": "4",
            "dimmed_lights": "0",
            "no_intense_exercise": "0",
            "b12_dinner": "1",
            "onset": "lt15",
            "logged_at": "2026-11-24T06:00:00+00:00",
        }
    ]


def test_the_weekly_chart_is_at_nine_local_on_its_day_across_dst() -> None:
    # Sunday 28 Mar 2027, Berlin springs forward at 02:00: 09:00 CEST = 07:00 UTC.
    after = datetime(2027, 3, 22, 12, 0, tzinfo=UTC)
    assert next_weekly_at(6, tz=BERLIN, after=after) == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    # The Sunday before, still CET: 08:00 UTC; strictly after the instant itself.
    sunday = datetime(2027, 3, 21, 8, 0, tzinfo=UTC)
    assert next_weekly_at(6, tz=BERLIN, after=sunday - timedelta(seconds=1)) == sunday
    assert next_weekly_at(6, tz=BERLIN, after=sunday) == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    assert next_weekly_at(0, tz=BERLIN, after=sunday) == datetime(2027, 3, 22, 8, 0, tzinfo=UTC)
