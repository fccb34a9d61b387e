"""The numbers behind the /progress caption: how many nights, the average, and each habit
compared with its absence.

Only data here, no words: the caption's sentences come from content/diary.toml
(``bot.diary.text``), so another language is a catalogue, not a change to this arithmetic.

Rules, each tested:
- Averages are exact fractions rounded half-up to one decimal (2.25 → 2.3, 1.45 → 1.5), the
  same for every value, unlike ``round()`` on floats (``round(2.25, 1) == 2.2``: ties go to
  even; ``round(1.45, 1) == 1.4``: 1.45 is stored as 1.4499…).
- A habit is compared only when at least ``MIN_NIGHTS_PER_SIDE`` (3) nights were logged with
  it *and* 3 without; otherwise its verdict is ``TOO_LITTLE_DATA``.
- Which side is higher is decided on the rounded averages, the numbers the person sees: equal
  to one decimal is ``ABOUT_THE_SAME``, so "3.4 vs 3.4 — better" can never be said.
- The comparison is an association between nights, never a claim that the habit caused it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Final

from bot.diary.models import DiaryEntry, Habit

MIN_NIGHTS_PER_SIDE: Final = 3
_ONE_DECIMAL: Final = Decimal("0.1")


class Verdict(StrEnum):
    """How the nights with a habit compare with the nights without it."""

    HIGHER_WITH = "higher_with"
    """Rated better on nights with the habit."""
    LOWER_WITH = "lower_with"
    """Rated worse on nights with the habit."""
    ABOUT_THE_SAME = "about_the_same"
    """Equal averages to one decimal."""
    TOO_LITTLE_DATA = "too_little_data"
    """Fewer than 3 nights on one side: nothing is compared."""


@dataclass(frozen=True, slots=True)
class HabitComparison:
    """One habit's nights with vs without; averages are None for a side with no nights."""

    habit: Habit
    nights_with: int
    nights_without: int
    average_with: Decimal | None
    average_without: Decimal | None
    verdict: Verdict

    @property
    def comparable(self) -> bool:
        return self.verdict is not Verdict.TOO_LITTLE_DATA


@dataclass(frozen=True, slots=True)
class Insights:
    """Everything the caption needs; ``average_rating`` is None when no night is logged."""

    nights_logged: int
    average_rating: Decimal | None
    habits: tuple[HabitComparison, ...]

    @property
    def comparisons(self) -> tuple[HabitComparison, ...]:
        """The habits with enough nights on both sides, in check-in order."""
        return tuple(item for item in self.habits if item.comparable)

    @property
    def needs_more_nights(self) -> bool:
        """True while any habit still lacks nights on one side (the "more nights" line)."""
        return any(not item.comparable for item in self.habits)


def round_half_up(value: Fraction) -> Decimal:
    """``value`` to one decimal, halves away from zero: 2.25 → 2.3, 2.35 → 2.4, 2.24 → 2.2."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        _ONE_DECIMAL, rounding=ROUND_HALF_UP
    )


def average_rating(ratings: Sequence[int]) -> Decimal | None:
    """The mean rating rounded half-up to one decimal, or None for no ratings.

    The exact fraction is rounded, never a float: 29/20 = 1.45 must give 1.5, and the decimal
    division of two small integers is exact to 28 digits before the quantize.
    """
    if not ratings:
        return None
    return round_half_up(Fraction(sum(ratings), len(ratings)))


def compare_habit(entries: Sequence[DiaryEntry], habit: Habit) -> HabitComparison:
    """Average rating on nights with ``habit`` vs without it, and which side is higher."""
    with_habit = [entry.rating for entry in entries if entry.did(habit)]
    without = [entry.rating for entry in entries if not entry.did(habit)]
    average_with = average_rating(with_habit)
    average_without = average_rating(without)
    if min(len(with_habit), len(without)) < MIN_NIGHTS_PER_SIDE:
        verdict = Verdict.TOO_LITTLE_DATA
    else:
        assert average_with is not None and average_without is not None
        if average_with > average_without:
            verdict = Verdict.HIGHER_WITH
        elif average_with < average_without:
            verdict = Verdict.LOWER_WITH
        else:
            verdict = Verdict.ABOUT_THE_SAME
    return HabitComparison(
        habit=habit,
        nights_with=len(with_habit),
        nights_without=len(without),
        average_with=average_with,
        average_without=average_without,
        verdict=verdict,
    )


def diary_insights(entries: Iterable[DiaryEntry]) -> Insights:
    """The caption's numbers for these nights (the caller picks the window, e.g. 4 weeks).

    Each night counts once: pass one entry per night (``models.recent_nights`` does that).
    """
    nights = list(entries)
    if len({entry.night for entry in nights}) != len(nights):
        raise ValueError("one entry per night: deduplicate with recent_nights() first")
    return Insights(
        nights_logged=len(nights),
        average_rating=average_rating([entry.rating for entry in nights]),
        habits=tuple(compare_habit(nights, habit) for habit in Habit),
    )
