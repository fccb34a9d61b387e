"""The morning check-in's rules: which night it asks about, the pre-filled habit toggles, and
when to offer to stop asking.

Pure: the handler passes in what the store knows (the reminders marked "Done ✅", past
check-ins and whether each was answered) and renders what comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from itertools import pairwise
from typing import Final

from bot.diary.models import HABIT_FOR_REMINDER, Habit

UNANSWERED_BEFORE_ASKING: Final = 3
"""After this many unanswered check-ins in a row, the next morning asks whether to stop."""


def night_to_log(moment: datetime, tz: tzinfo) -> date:
    """The night a check-in at ``moment`` asks about: the evening before the local date.

    At 07:00 that is last night (as ``schedule.night_of`` would say); at 15:00 or 23:00 it is
    still last night, not the evening in progress, because /checkin can be used any time of day.
    """
    if moment.utcoffset() is None:
        raise ValueError(f"moment must be an aware datetime, got {moment!r}")
    return moment.astimezone(tz).date() - timedelta(days=1)


def prefill_habits(done_reminder_kinds: Iterable[str]) -> frozenset[Habit]:
    """The habits to show switched on: one for each reminder of that night marked "Done ✅".

    meal → B12-rich dinner, exercise → no intense exercise, wind_down → dimmed the lights.
    Kinds without a habit are ignored, so a future reminder kind cannot break the check-in.
    """
    return frozenset(
        HABIT_FOR_REMINDER[kind] for kind in done_reminder_kinds if kind in HABIT_FOR_REMINDER
    )


def toggle_habit(habits: frozenset[Habit], habit: Habit) -> frozenset[Habit]:
    """The selection after tapping ``habit``: on becomes off and off becomes on."""
    return habits - {habit} if habit in habits else habits | {habit}


def parse_habit(token: str) -> Habit | None:
    """A habit from callback data (untrusted): its stable id, or None if there is no such habit."""
    try:
        return Habit(token)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class CheckinFact:
    """One morning a check-in was sent, and whether the person logged that night."""

    morning: date
    answered: bool


class MorningAction(StrEnum):
    """What this morning's one message is."""

    CHECK_IN = "check_in"
    ASK_TO_STOP = "ask_to_stop"


def unanswered_streak(history: Iterable[CheckinFact]) -> int:
    """How many of the most recent check-ins in a row went unanswered.

    "In a row" means consecutive check-ins that were sent: a morning without one (paused,
    check-ins off) neither breaks nor extends the streak.
    """
    facts = _by_morning(history)
    streak = 0
    for fact in reversed(facts):
        if fact.answered:
            break
        streak += 1
    return streak


def morning_action(
    history: Iterable[CheckinFact], *, asked_to_stop_on: date | None
) -> MorningAction:
    """Whether this morning sends the check-in or, once, the "turn check-ins off?" question.

    ``history`` is every check-in sent before this morning; ``asked_to_stop_on`` the morning
    the question was last sent (None: never). After three unanswered check-ins in a row the
    next morning asks instead of checking in, so the person still gets one message a day at
    most. It asks once per streak: if the question goes unanswered too, check-ins carry on
    silently, and only a new streak (after an answered one) can bring the question back.
    """
    facts = _by_morning(history)
    streak = unanswered_streak(facts)
    if streak < UNANSWERED_BEFORE_ASKING:
        return MorningAction.CHECK_IN
    streak_began = facts[-streak].morning
    if asked_to_stop_on is not None and asked_to_stop_on >= streak_began:
        return MorningAction.CHECK_IN
    return MorningAction.ASK_TO_STOP


def _by_morning(history: Iterable[CheckinFact]) -> Sequence[CheckinFact]:
    facts = sorted(history, key=lambda fact: fact.morning)
    for earlier, later in pairwise(facts):
        if earlier.morning == later.morning:
            raise ValueError(f"two check-ins recorded for the morning of {later.morning}")
    return facts
