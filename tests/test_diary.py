"""The sleep diary's pure rules: entries, insight arithmetic, the caption, the check-in's
pre-fill, toggles and "three unanswered mornings", and wake-time defaults across DST."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.content import REMINDER_KINDS
from bot.content_schema import ContentError
from bot.diary.checkin import (
    CheckinFact,
    MorningAction,
    morning_action,
    night_to_log,
    parse_habit,
    prefill_habits,
    toggle_habit,
    unanswered_streak,
)
from bot.diary.insights import (
    MIN_NIGHTS_PER_SIDE,
    Verdict,
    average_rating,
    compare_habit,
    diary_insights,
    round_half_up,
)
from bot.diary.models import (
    HABIT_FOR_REMINDER,
    DiaryEntry,
    Habit,
    OnsetBucket,
    habits_from_flags,
    recent_nights,
)
from bot.diary.text import (
    MAX_CAPTION_LENGTH,
    DiaryText,
    load_diary_text,
    render_caption,
)
from bot.diary.wake import (
    WakeTimes,
    checkin_time_on_night,
    checkin_wall_time,
    default_wake_time,
    next_checkin_at,
    wake_times,
)
from bot.schedule import local_to_utc
from bot.telegram_html import check_telegram_html, telegram_length, visible_text

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LOGGED = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
LIGHTS = Habit.DIMMED_LIGHTS
EXERCISE = Habit.NO_INTENSE_EXERCISE
DINNER = Habit.B12_DINNER


def nights(ratings_and_habits: Sequence[tuple[int, Iterable[Habit]]]) -> list[DiaryEntry]:
    """Entries on consecutive nights from 1 Nov 2026, in the order given."""
    start = date(2026, 11, 1)
    return [
        DiaryEntry(start + timedelta(days=index), rating, LOGGED, frozenset(habits))
        for index, (rating, habits) in enumerate(ratings_and_habits)
    ]


@pytest.fixture(scope="module")
def text() -> DiaryText:
    return load_diary_text(CONTENT_DIR)


# --------------------------------------------------------------------------------------------
# models


def test_entry_refuses_what_storage_or_callback_data_could_get_wrong() -> None:
    for rating in (0, 6, -1, True, 3.0):
        with pytest.raises(ValueError, match="rating"):
            DiaryEntry(date(2026, 11, 1), rating, LOGGED)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        DiaryEntry(date(2026, 11, 1), 3, datetime(2026, 11, 2, 7, 0))
    with pytest.raises(ValueError, match="date"):
        DiaryEntry(LOGGED, 3, LOGGED)
    with pytest.raises(ValueError, match="habits"):
        DiaryEntry(date(2026, 11, 1), 3, LOGGED, frozenset({"dimmed_lights"}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="onset"):
        DiaryEntry(date(2026, 11, 1), 3, LOGGED, onset="lt15")  # type: ignore[arg-type]


def test_habits_and_onsets_have_stable_ids_in_checkin_order() -> None:
    # These strings are stored and sent as callback data: changing one needs a migration.
    assert [habit.value for habit in Habit] == [
        "dimmed_lights",
        "no_intense_exercise",
        "b12_dinner",
    ]
    assert [bucket.value for bucket in OnsetBucket] == ["lt15", "15to30", "30to60", "gt60"]
    assert [bucket.minutes for bucket in OnsetBucket] == [(0, 15), (15, 30), (30, 60), (60, None)]
    assert all(habit.value.isidentifier() for habit in Habit)  # usable as column names


def test_habit_flags_round_trip_for_boolean_columns() -> None:
    entry = DiaryEntry(date(2026, 11, 1), 4, LOGGED, frozenset({LIGHTS, DINNER}))
    flags = entry.habit_flags()
    assert flags == {LIGHTS: True, EXERCISE: False, DINNER: True}
    assert habits_from_flags(flags) == entry.habits
    assert habits_from_flags({"dimmed_lights": True, "b12_dinner": False}) == {LIGHTS}


def test_recent_nights_keeps_the_window_and_the_later_entry_for_a_night() -> None:
    first = DiaryEntry(date(2026, 11, 28), 2, LOGGED)
    replaced = DiaryEntry(date(2026, 11, 28), 5, LOGGED + timedelta(hours=1))
    too_old = DiaryEntry(date(2026, 11, 1), 3, LOGGED)
    future = DiaryEntry(date(2026, 11, 30), 3, LOGGED)
    edge = DiaryEntry(date(2026, 11, 2), 1, LOGGED)
    kept = recent_nights(
        [replaced, too_old, first, future, edge], last_night=date(2026, 11, 29), count=28
    )
    assert kept == [edge, replaced]


# --------------------------------------------------------------------------------------------
# insights: arithmetic


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(9, 4), "2.3"),  # 2.25: half-up, where round() gives 2.2 (ties to even)
        (Fraction(29, 20), "1.5"),  # 1.45: exact, where round(1.45, 1) gives 1.4 (binary)
        (Fraction(47, 20), "2.4"),  # 2.35
        (Fraction(449, 100), "4.5"),  # 4.49 -> 4.5 (one step, not 4.49 -> 4.5 -> 5)
        (Fraction(224, 100), "2.2"),
        (Fraction(10, 3), "3.3"),
        (Fraction(11, 3), "3.7"),
        (Fraction(5), "5.0"),
    ],
)
def test_averages_round_half_up_to_one_decimal(value: Fraction, expected: str) -> None:
    assert str(round_half_up(value)) == expected


def test_average_rating_of_actual_ratings() -> None:
    assert average_rating([]) is None
    assert average_rating([4]) == Decimal("4.0")
    assert average_rating([1, 2]) == Decimal("1.5")
    assert average_rating([2, 2, 3, 2]) == Decimal("2.3")  # 2.25
    # 1.45 exactly: 20 ratings summing to 29 (float arithmetic would say 1.4).
    assert average_rating([1] * 11 + [2] * 9) == Decimal("1.5")


def test_no_nights_means_no_numbers() -> None:
    insights = diary_insights([])
    assert insights.nights_logged == 0
    assert insights.average_rating is None
    assert [item.verdict for item in insights.habits] == [Verdict.TOO_LITTLE_DATA] * 3
    assert all(
        item.average_with is None and item.average_without is None for item in insights.habits
    )
    assert insights.comparisons == ()
    assert insights.needs_more_nights


def test_too_little_data_until_three_nights_on_each_side() -> None:
    # 2 with, 3 without: one side short.
    entries = nights([(5, {LIGHTS}), (5, {LIGHTS}), (1, set()), (1, set()), (1, set())])
    item = compare_habit(entries, LIGHTS)
    assert (item.nights_with, item.nights_without) == (2, 3)
    assert item.verdict is Verdict.TOO_LITTLE_DATA
    assert not item.comparable
    # The averages are still there for whoever wants them; only the verdict is withheld.
    assert (item.average_with, item.average_without) == (Decimal("5.0"), Decimal("1.0"))


def test_exactly_three_against_three_is_compared() -> None:
    entries = nights(
        [(4, {LIGHTS}), (4, {LIGHTS}), (3, {LIGHTS}), (2, set()), (3, set()), (3, set())]
    )
    item = compare_habit(entries, LIGHTS)
    assert (item.nights_with, item.nights_without) == (MIN_NIGHTS_PER_SIDE, MIN_NIGHTS_PER_SIDE)
    assert (item.average_with, item.average_without) == (Decimal("3.7"), Decimal("2.7"))
    assert item.verdict is Verdict.HIGHER_WITH
    assert compare_habit(entries, EXERCISE).verdict is Verdict.TOO_LITTLE_DATA  # 0 vs 6


def test_lower_with_the_habit_is_reported_as_lower() -> None:
    entries = nights([(2, {DINNER})] * 3 + [(4, set())] * 3)
    item = compare_habit(entries, DINNER)
    assert item.verdict is Verdict.LOWER_WITH
    assert (item.average_with, item.average_without) == (Decimal("2.0"), Decimal("4.0"))


def test_tie_means_equal_to_one_decimal() -> None:
    # 10/3 = 3.33… and 23/7 = 3.29…: different fractions, both shown as 3.3 -> about the same.
    with_: Sequence[tuple[int, Iterable[Habit]]] = [(4, {LIGHTS}), (3, {LIGHTS}), (3, {LIGHTS})]
    without: Sequence[tuple[int, Iterable[Habit]]] = [(4, ())] * 2 + [(3, ())] * 5
    item = compare_habit(nights([*with_, *without]), LIGHTS)
    assert item.average_with == item.average_without == Decimal("3.3")
    assert item.verdict is Verdict.ABOUT_THE_SAME
    # One step apart after rounding is a difference: 3.3 (10/3) vs 3.4 (17/5).
    without = [(4, ())] * 2 + [(3, ())] * 3
    item = compare_habit(nights([*with_, *without]), LIGHTS)
    assert (item.average_with, item.average_without) == (Decimal("3.3"), Decimal("3.4"))
    assert item.verdict is Verdict.LOWER_WITH


def test_a_habit_done_every_night_cannot_be_compared() -> None:
    entries = nights([(rating, {LIGHTS, EXERCISE, DINNER}) for rating in (1, 2, 3, 4, 5, 5, 4)])
    insights = diary_insights(entries)
    assert insights.nights_logged == 7
    assert insights.average_rating == Decimal("3.4")  # 24/7 = 3.43
    for item in insights.habits:
        assert (item.nights_with, item.nights_without) == (7, 0)
        assert item.average_without is None
        assert item.verdict is Verdict.TOO_LITTLE_DATA


def test_insights_cover_every_habit_in_order_and_refuse_duplicate_nights() -> None:
    entries = nights([(5, {LIGHTS, DINNER})] * 3 + [(2, {DINNER})] * 3)
    insights = diary_insights(entries)
    assert [item.habit for item in insights.habits] == list(Habit)
    assert [item.verdict for item in insights.habits] == [
        Verdict.HIGHER_WITH,
        Verdict.TOO_LITTLE_DATA,
        Verdict.TOO_LITTLE_DATA,
    ]
    with pytest.raises(ValueError, match="one entry per night"):
        diary_insights([*entries, entries[0]])


# --------------------------------------------------------------------------------------------
# insights: the caption


def test_caption_words_an_association_with_the_numbers(text: DiaryText) -> None:
    entries = nights([(4, {LIGHTS})] * 5 + [(5, {LIGHTS})] * 4 + [(3, set())] * 4 + [(1, set())])
    caption = render_caption(diary_insights(entries), text)
    check_telegram_html(caption)
    shown = visible_text(caption)
    assert "14 nights logged, average rating 3.8 of 5." in shown  # 53/14 = 3.79
    assert "You slept better on nights you dimmed the lights: 4.4 vs 2.6, 9 vs 5 nights." in shown
    assert "not what caused them" in shown
    # Exercise and dinner are 0 vs 14: no comparison, but the "more nights" line.
    assert "exercise" not in shown and "dinner" not in shown
    assert "More nights will tell more" in shown
    assert not any(word in shown.lower() for word in ("because", "improves", "causes "))


def test_caption_says_about_the_same_and_less_well(text: DiaryText) -> None:
    entries = nights(
        [(3, {LIGHTS, DINNER})] * 3 + [(3, {DINNER})] * 3 + [(4, {EXERCISE})] * 3 + [(4, set())]
    )
    shown = visible_text(render_caption(diary_insights(entries), text))
    assert (
        "You slept less well on nights you dimmed the lights: 3.0 vs 3.6, 3 vs 7 nights." in shown
    )
    assert (
        "You slept better on nights you skipped intense exercise: 4.0 vs 3.1, 3 vs 7 nights."
        in shown
    )
    assert (
        "You slept less well on nights you had a B12-rich dinner: 3.0 vs 4.0, 6 vs 4 nights."
        in shown
    )
    assert "More nights will tell more" not in shown
    tie = nights([(3, {LIGHTS})] * 3 + [(3, set())] * 3)
    shown = visible_text(render_caption(diary_insights(tie), text))
    assert (
        "Your sleep was about the same on nights you dimmed the lights and nights you didn't: "
        "3.0 vs 3.0, 3 vs 3 nights." in shown
    )


def test_caption_from_the_first_night_and_for_none(text: DiaryText) -> None:
    one = render_caption(diary_insights(nights([(4, {LIGHTS})])), text)
    shown = visible_text(one)
    assert "1 night logged, average rating 4.0 of 5." in shown  # singular
    assert "More nights will tell more" in shown
    assert "not what caused them" not in shown  # nothing compared, nothing to qualify
    none = render_caption(diary_insights([]), text)
    assert "no nights logged yet" in visible_text(none)
    assert "/checkin" in none


def test_every_caption_fits_a_photo(text: DiaryText) -> None:
    # The longest shape: every habit compared, three-digit counts.
    entries = [
        DiaryEntry(
            date(2020, 1, 1) + timedelta(days=index),
            1 + index % 5,
            LOGGED,
            frozenset(Habit) if index % 2 else frozenset(),
        )
        for index in range(400)
    ]
    caption = render_caption(diary_insights(entries), text)
    assert len(diary_insights(entries).comparisons) == 3
    assert telegram_length(caption) <= MAX_CAPTION_LENGTH


def test_plural_forms(text: DiaryText) -> None:
    assert [text.nights.format(count) for count in (0, 1, 2, 21)] == [
        "0 nights",
        "1 night",
        "2 nights",
        "21 nights",
    ]


# --------------------------------------------------------------------------------------------
# content/diary.toml


@pytest.fixture
def broken_diary(tmp_path: Path) -> Callable[[str, str], str]:
    """Replace `old` by `new` in a copy of content/diary.toml; return the ContentError."""
    directory = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, directory)
    path = directory / "diary.toml"

    def breaker(old: str, new: str) -> str:
        source = path.read_text(encoding="utf-8")
        assert old in source, f"test setup: {old!r} not in diary.toml"
        path.write_text(source.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ContentError) as caught:
            load_diary_text(directory)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(f"{path}: "), message
        return message

    return breaker


def test_diary_text_covers_every_habit_and_onset(text: DiaryText) -> None:
    assert [text.habit_label(habit) for habit in Habit] == [
        "Dimmed the lights",
        "No intense exercise",
        "B12-rich dinner",
    ]
    assert [text.onset_label(bucket) for bucket in OnsetBucket] == [
        "< 15 min",
        "15–30 min",
        "30–60 min",
        "> 60 min",
    ]
    labels = text.chart_labels()
    assert labels.tick(date(2026, 11, 3)) == "3 Nov"
    assert [label for _, label in labels.habits] == [text.habit_label(habit) for habit in Habit]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "{average_with} vs {average_without}",
            "{avg_with} vs {average_without}",
            "caption higher_html: unknown placeholder {avg_with}",
        ),
        (
            '[habit.b12_dinner]\nlabel = "B12-rich dinner"\nphrase = "had a B12-rich dinner"\n',
            "",
            "[habit] is missing 'b12_dinner'",
        ),
        ("gt60 = ", "gt90 = ", "onset"),
        (
            "<b>Your last 4 weeks</b>: {nights",
            "<b>Your last 4 weeks: {nights",
            "caption summary_html",
        ),
        ('other = "{count} nights"', 'other = "nights"', "nights other: must contain {count}"),
        (
            'night_tick = "{day} {month}"',
            'night_tick = "{weekday}"',
            "unknown placeholder {weekday}",
        ),
        ('"Nov", "Dec"]', '"Nov"]', "months"),
        ('phrase = "dimmed the lights"', 'phrase = "<b>dimmed</b>"', "plain text only"),
        (
            "not what caused them:",
            "not what caused them" + " and so on" * 100 + ":",
            "over Telegram's caption limit of 1024",
        ),
    ],
)
def test_broken_diary_text_is_named_in_one_line(
    broken_diary: Callable[[str, str], str], old: str, new: str, expected: str
) -> None:
    assert expected in broken_diary(old, new)


# --------------------------------------------------------------------------------------------
# check-in


def test_prefill_maps_each_done_reminder_to_its_habit() -> None:
    assert set(HABIT_FOR_REMINDER) == REMINDER_KINDS  # one habit per reminder kind, no more
    assert prefill_habits([]) == frozenset()
    assert prefill_habits(["meal"]) == {DINNER}
    assert prefill_habits(["exercise"]) == {EXERCISE}
    assert prefill_habits(["wind_down"]) == {LIGHTS}
    assert prefill_habits({"meal", "exercise", "wind_down"}) == set(Habit)
    assert prefill_habits(["meal", "meal", "stretching"]) == {DINNER}  # unknown kinds ignored


def test_toggling_switches_one_habit_and_twice_restores() -> None:
    start = prefill_habits(["meal"])
    once = toggle_habit(start, LIGHTS)
    assert once == {DINNER, LIGHTS}
    assert toggle_habit(once, DINNER) == {LIGHTS}
    assert toggle_habit(once, LIGHTS) == start
    assert parse_habit("no_intense_exercise") is EXERCISE
    assert parse_habit("sudo") is None


def test_night_to_log_is_the_evening_before_at_any_hour() -> None:
    # Berlin, 29 Mar 2026 (spring forward): 07:00, 15:00 and 23:30 local all log the 28th.
    for hour, minute in ((7, 0), (15, 0), (23, 30)):
        moment = local_to_utc(datetime(2026, 3, 29, hour, minute), BERLIN)
        assert night_to_log(moment, BERLIN) == date(2026, 3, 28)
    # The same instant is a different local date in New York.
    moment = datetime(2026, 3, 29, 3, 0, tzinfo=UTC)  # 05:00 Berlin, 23:00 New York (28th)
    assert night_to_log(moment, BERLIN) == date(2026, 3, 28)
    assert night_to_log(moment, NEW_YORK) == date(2026, 3, 27)
    with pytest.raises(ValueError, match="aware"):
        night_to_log(datetime(2026, 3, 29, 7, 0), BERLIN)


def facts(*answered: bool, start: date = date(2026, 11, 1)) -> list[CheckinFact]:
    return [CheckinFact(start + timedelta(days=index), flag) for index, flag in enumerate(answered)]


def test_three_unanswered_mornings_ask_once() -> None:
    assert morning_action([], asked_to_stop_on=None) is MorningAction.CHECK_IN
    assert morning_action(facts(False, False), asked_to_stop_on=None) is MorningAction.CHECK_IN
    three = facts(True, False, False, False)
    assert unanswered_streak(three) == 3
    assert morning_action(three, asked_to_stop_on=None) is MorningAction.ASK_TO_STOP
    # Asked on the 5th: the 6th checks in again, silently, however long the streak goes on.
    asked = date(2026, 11, 5)
    assert morning_action(three, asked_to_stop_on=asked) is MorningAction.CHECK_IN
    longer = facts(True, False, False, False, False, False, False)
    assert morning_action(longer, asked_to_stop_on=asked) is MorningAction.CHECK_IN


def test_an_answer_ends_the_streak_and_a_new_streak_may_ask_again() -> None:
    history = facts(False, False, True, False, False)
    assert unanswered_streak(history) == 2
    assert morning_action(history, asked_to_stop_on=None) is MorningAction.CHECK_IN
    history = facts(False, False, False, True, False, False, False)
    # Asked on the 4th morning about the first streak; the streak starting on the 5th is new.
    assert morning_action(history, asked_to_stop_on=date(2026, 11, 4)) is MorningAction.ASK_TO_STOP
    assert morning_action(history, asked_to_stop_on=date(2026, 11, 8)) is MorningAction.CHECK_IN


def test_streak_counts_sent_checkins_in_order_not_calendar_days() -> None:
    # Unordered input, with a paused week between two unanswered check-ins.
    history = [
        CheckinFact(date(2026, 11, 20), False),
        CheckinFact(date(2026, 11, 1), True),
        CheckinFact(date(2026, 11, 2), False),
        CheckinFact(date(2026, 11, 12), False),
    ]
    assert unanswered_streak(history) == 3
    assert morning_action(history, asked_to_stop_on=None) is MorningAction.ASK_TO_STOP
    with pytest.raises(ValueError, match="two check-ins"):
        unanswered_streak([*history, CheckinFact(date(2026, 11, 2), True)])


# --------------------------------------------------------------------------------------------
# wake time


def test_default_wake_time_is_eight_hours_after_bedtime() -> None:
    assert default_wake_time(time(22, 30)) == time(6, 30)
    assert default_wake_time(time(0, 30)) == time(8, 30)
    assert default_wake_time(time(16, 0)) == time(0, 0)
    assert default_wake_time(time(23, 59)) == time(7, 59)


def test_weekend_wake_time_follows_the_weekend_bedtime() -> None:
    assert wake_times(bedtime=time(22, 30), weekend_bedtime=None) == WakeTimes(
        time(6, 30), time(6, 30)
    )
    # Default wake time: weekend bedtime + 8 h, also across midnight.
    assert wake_times(bedtime=time(22, 30), weekend_bedtime=time(0, 30)) == WakeTimes(
        time(6, 30), time(8, 30)
    )
    assert wake_times(bedtime=time(0, 30), weekend_bedtime=time(23, 0)) == WakeTimes(
        time(8, 30), time(7, 0)
    )
    # A chosen wake time keeps its sleep length at the weekend (7 h here).
    assert wake_times(
        bedtime=time(23, 0), weekend_bedtime=time(0, 30), wake_time=time(6, 0)
    ) == WakeTimes(time(6, 0), time(7, 30))
    # Without a weekend bedtime, the chosen time holds every morning.
    assert wake_times(bedtime=time(23, 0), weekend_bedtime=None, wake_time=time(6, 0)) == WakeTimes(
        time(6, 0), time(6, 0)
    )


def test_checkin_comes_the_morning_after_its_night() -> None:
    wake = wake_times(bedtime=time(22, 30), weekend_bedtime=time(0, 30))
    thursday, friday = date(2026, 11, 26), date(2026, 11, 27)
    assert checkin_wall_time(
        thursday, bedtime=time(22, 30), weekend_bedtime=time(0, 30), wake=wake
    ) == (datetime(2026, 11, 27, 6, 30))
    # Friday night (weekend bedtime 00:30 on Saturday) -> Saturday 08:30.
    assert checkin_wall_time(
        friday, bedtime=time(22, 30), weekend_bedtime=time(0, 30), wake=wake
    ) == (datetime(2026, 11, 28, 8, 30))
    # A wake time earlier than bedtime on the clock is still the next morning.
    late = wake_times(bedtime=time(1, 0), weekend_bedtime=None)
    assert checkin_wall_time(thursday, bedtime=time(1, 0), weekend_bedtime=None, wake=late) == (
        datetime(2026, 11, 27, 9, 0)
    )


@pytest.mark.parametrize(
    ("tz", "night", "wake", "expected_utc"),
    [
        # Berlin springs forward at 02:00 on 29 Mar 2026: 02:30 does not exist -> 03:00 CEST.
        (BERLIN, date(2026, 3, 28), time(2, 30), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        (BERLIN, date(2026, 3, 28), time(7, 0), datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),
        (BERLIN, date(2026, 3, 27), time(7, 0), datetime(2026, 3, 28, 6, 0, tzinfo=UTC)),
        # Berlin falls back at 03:00 on 25 Oct 2026: 02:30 happens twice -> the first (CEST).
        (BERLIN, date(2026, 10, 24), time(2, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        # New York springs forward at 02:00 on 8 Mar 2026 and falls back on 1 Nov 2026.
        (NEW_YORK, date(2026, 3, 7), time(2, 15), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        (NEW_YORK, date(2026, 3, 7), time(7, 0), datetime(2026, 3, 8, 11, 0, tzinfo=UTC)),
        (NEW_YORK, date(2026, 10, 31), time(1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        (NEW_YORK, date(2026, 10, 31), time(7, 0), datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_checkin_instant_follows_the_reminders_dst_rule(
    tz: ZoneInfo, night: date, wake: time, expected_utc: datetime
) -> None:
    wakes = WakeTimes(wake, wake)
    instant = checkin_time_on_night(
        night, bedtime=time(22, 0), weekend_bedtime=None, wake=wakes, tz=tz
    )
    assert instant == expected_utc


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
def test_next_checkin_walks_every_morning_once_across_dst(tz: ZoneInfo) -> None:
    wake = wake_times(bedtime=time(22, 30), weekend_bedtime=time(23, 30))  # 06:30 / 07:30
    after = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    seen: list[tuple[date, datetime]] = []
    for _ in range(70):  # through March's and into April: both DST changes of the spring
        night, instant = next_checkin_at(
            bedtime=time(22, 30), weekend_bedtime=time(23, 30), wake=wake, tz=tz, after=after
        )
        seen.append((night, instant))
        after = instant
    nights_seen = [night for night, _ in seen]
    assert nights_seen == [nights_seen[0] + timedelta(days=index) for index in range(70)]
    for night, instant in seen:
        local = instant.astimezone(tz)
        assert local.date() == night + timedelta(days=1)
        expected = time(7, 30) if night.weekday() in (4, 5) else time(6, 30)
        assert local.time() == expected, (night, local)
    # Asking at the exact instant moves on to the next morning; just before it does not.
    night, instant = seen[10]
    assert next_checkin_at(
        bedtime=time(22, 30),
        weekend_bedtime=time(23, 30),
        wake=wake,
        tz=tz,
        after=instant - timedelta(microseconds=1),
    ) == (night, instant)
