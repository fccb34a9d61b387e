"""Parsing what people type in the settings conversation, and describing their schedule."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import load_catalogue
from bot.onboarding import (
    BEDTIME_CHOICES,
    InputProblem,
    clamp_offset,
    parse_clock_time,
    parse_nights,
    pause_until,
    split_lines,
    upcoming_lines,
)

EN: Final = load_catalogue(Path(__file__).resolve().parent.parent / "content", "en")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("22:30", time(22, 30)),
        ("22.30", time(22, 30)),
        ("2230", time(22, 30)),
        ("22h30", time(22, 30)),
        ("0:05", time(0, 5)),
        ("23", time(23, 0)),
        ("10:30pm", time(22, 30)),
        ("10 PM", time(22, 0)),
        ("12am", time(0, 0)),
        ("12:15 a.m.", time(0, 15)),
    ],
)
def test_clock_times_people_type(typed: str, expected: time) -> None:
    assert parse_clock_time(typed) == expected


@pytest.mark.parametrize("typed", ["25:99", "24:00", "22:60", "", "soon", "13pm", "22:3", "-1:00"])
def test_impossible_times_are_refused_with_an_example(typed: str) -> None:
    with pytest.raises(InputProblem) as caught:
        parse_clock_time(typed)
    assert "22:30" in caught.value.describe(EN)


def test_bedtime_buttons_cover_21_to_01_in_half_hours() -> None:
    assert [t.strftime("%H:%M") for t in BEDTIME_CHOICES] == [
        "21:00", "21:30", "22:00", "22:30", "23:00", "23:30", "00:00", "00:30", "01:00",
    ]  # fmt: skip


def test_pause_nights_bounds() -> None:
    assert parse_nights("") == 1
    assert parse_nights("3") == 3
    for bad in ["0", "61", "-2", "two", "1.5"]:
        with pytest.raises(InputProblem):
            parse_nights(bad)


def test_pause_covers_whole_nights_until_local_noon() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    evening = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 18:00 in Berlin
    until = pause_until(evening, berlin, 2)
    assert until.astimezone(berlin).replace(tzinfo=None) == datetime(2026, 11, 26, 12, 0)
    small_hours = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 02:00 in Berlin: tonight is ahead
    assert pause_until(small_hours, berlin, 1).astimezone(berlin).day == 25


def test_offsets_read_naturally_and_stay_in_range() -> None:
    assert EN.offset(240) == "4 h before bedtime"
    assert EN.offset(90) == "1 h 30 min before bedtime"
    assert EN.offset(45) == "45 min before bedtime"
    assert EN.offset(0) == "at bedtime"
    assert clamp_offset(-15) == 0
    assert clamp_offset(735) == 720


def test_upcoming_lines_are_local_sorted_and_skip_unscheduled() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    lines = upcoming_lines(
        [
            ("Dim the lights", datetime(2026, 11, 24, 20, 30, tzinfo=UTC)),
            ("Meal idea", datetime(2026, 11, 24, 17, 30, tzinfo=UTC)),
            ("Off", None),
            ("Next week", datetime(2026, 11, 27, 17, 30, tzinfo=UTC)),
        ],
        berlin,
        now,
        EN,
    )
    assert lines == [
        "today 18:30 — Meal idea",
        "today 21:30 — Dim the lights",
        "Fri 27 Nov 18:30 — Next week",
    ]


def test_split_lines_keeps_everything_and_respects_the_limit() -> None:
    text = "\n".join(f"line {i:03d}" for i in range(100))  # 8 characters + newline each
    chunks = split_lines(text, 50)
    assert all(len(chunk) <= 50 for chunk in chunks)
    assert "\n".join(chunks) == text
    assert split_lines("x" * 120, 50) == ["x" * 50, "x" * 50, "x" * 20]
    assert split_lines("", 50) == [""]
