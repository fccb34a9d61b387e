"""What one night's diary entry holds, with the habits and sleep-onset buckets defined once.

The enum values are the stable ids: they go into the database, into callback data and into
content/diary.toml, so renaming a member is fine but changing a value needs a migration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

MIN_RATING: Final = 1
MAX_RATING: Final = 5
RATINGS: Final = tuple(range(MIN_RATING, MAX_RATING + 1))
# The /progress and weekly chart's span. Here, not in bot.diary.chart, so the bot process
# can know it without importing matplotlib (the chart renders in its own process).
CHART_NIGHTS: Final = 28
"""1 = very badly … 5 = very well, the order of the check-in's buttons."""


class Habit(StrEnum):
    """An evening habit from the article's advice, in the order the check-in lists them.

    Each value is a valid column name and callback token, so storage can keep one boolean
    column per habit under the same name.
    """

    DIMMED_LIGHTS = "dimmed_lights"
    NO_INTENSE_EXERCISE = "no_intense_exercise"
    B12_DINNER = "b12_dinner"


HABIT_FOR_REMINDER: Final[Mapping[str, Habit]] = {
    "meal": Habit.B12_DINNER,
    "exercise": Habit.NO_INTENSE_EXERCISE,
    "wind_down": Habit.DIMMED_LIGHTS,
}
"""Which habit a "Done ✅" tap on each nightly reminder kind (``bot.content.REMINDER_KINDS``)
stands for."""


class OnsetBucket(StrEnum):
    """Roughly how long it took to fall asleep (optional in the check-in)."""

    UNDER_15 = "lt15"
    FROM_15_TO_30 = "15to30"
    FROM_30_TO_60 = "30to60"
    OVER_60 = "gt60"

    @property
    def minutes(self) -> tuple[int, int | None]:
        """The bucket's bounds in minutes, [low, high); high is None for "more than an hour"."""
        return _ONSET_MINUTES[self]


_ONSET_MINUTES: Final[Mapping[OnsetBucket, tuple[int, int | None]]] = {
    OnsetBucket.UNDER_15: (0, 15),
    OnsetBucket.FROM_15_TO_30: (15, 30),
    OnsetBucket.FROM_30_TO_60: (30, 60),
    OnsetBucket.OVER_60: (60, None),
}


def check_rating(rating: int) -> int:
    """Ratings come from callback data (untrusted), so anything outside 1–5 is refused."""
    if isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS:
        raise ValueError(f"rating must be {MIN_RATING}..{MAX_RATING}, got {rating!r}")
    return rating


@dataclass(frozen=True, slots=True)
class DiaryEntry:
    """One night as the person logged it.

    ``night`` is the evening date the night began, the same naming ``bot.schedule`` uses for
    reminders, so a night's "Done" taps and its entry share one key. ``habits`` holds the
    habits practised that evening (each habit is a yes/no: in the set or not).
    """

    night: date
    rating: int
    logged_at: datetime
    habits: frozenset[Habit] = field(default_factory=frozenset)
    onset: OnsetBucket | None = None

    def __post_init__(self) -> None:
        check_rating(self.rating)
        if isinstance(self.night, datetime) or not isinstance(self.night, date):
            raise ValueError(f"night must be a date, got {self.night!r}")
        unknown = [habit for habit in self.habits if not isinstance(habit, Habit)]
        if unknown:
            raise ValueError(f"unknown habits {unknown!r}")
        if self.onset is not None and not isinstance(self.onset, OnsetBucket):
            raise ValueError(f"onset must be an OnsetBucket, got {self.onset!r}")
        if self.logged_at.utcoffset() is None:
            raise ValueError(f"logged_at must be an aware datetime, got {self.logged_at!r}")

    def did(self, habit: Habit) -> bool:
        return habit in self.habits

    def habit_flags(self) -> dict[Habit, bool]:
        """Every habit with a yes/no, in check-in order (for storage columns and exports)."""
        return {habit: habit in self.habits for habit in Habit}


def habits_from_flags(flags: Mapping[Habit, bool] | Mapping[str, bool]) -> frozenset[Habit]:
    """The inverse of ``DiaryEntry.habit_flags``; accepts enum members or their string ids."""
    return frozenset(Habit(key) for key, done in flags.items() if done)


def recent_nights(
    entries: Iterable[DiaryEntry], *, last_night: date, count: int
) -> list[DiaryEntry]:
    """The entries for the ``count`` nights ending with ``last_night``, oldest first.

    One entry per night: if a caller passes two for the same night, the later-logged one wins
    (a second check-in for a night replaces the first).
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    first = last_night - timedelta(days=count - 1)
    by_night: dict[date, DiaryEntry] = {}
    for entry in entries:
        if not first <= entry.night <= last_night:
            continue
        kept = by_night.get(entry.night)
        if kept is None or entry.logged_at >= kept.logged_at:
            by_night[entry.night] = entry
    return [by_night[night] for night in sorted(by_night)]
