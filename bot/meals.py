"""Which meal idea to suggest tonight: a deterministic rotation that avoids recent repeats.

Pure (no I/O, no randomness), so the choice is reproducible in tests and explainable to a
person: ideas come round in the order the content file lists them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # bot.content renders the evening message with the helpers below
    from bot.content import MealIdea

NO_REPEAT_WITHIN: Final = 7


def choose_meal(ideas: Sequence[MealIdea], diet: str, recent_ids: Sequence[str]) -> MealIdea:
    """Tonight's idea for ``diet``, given the ids suggested before (oldest first).

    The first idea in content order after the most recent one that the diet allows and that
    was not among the last 7 suggestions. With 7 or fewer eligible ideas there may be none:
    then the least recently suggested eligible idea. Raises ValueError if the diet allows no
    idea at all (content validation is meant to rule that out).
    """
    window = list(recent_ids)[-NO_REPEAT_WITHIN:]
    blocked = set(window)

    start = 0
    if recent_ids:
        # Rotate from the last suggestion's place in the full list (it may since have become
        # ineligible after a diet change, so look it up among all ideas, not just eligible).
        positions = {idea.id: index for index, idea in enumerate(ideas)}
        last = positions.get(recent_ids[-1])
        if last is not None:
            start = last + 1
    for step in range(len(ideas)):
        idea = ideas[(start + step) % len(ideas)]
        if diet in idea.diets and idea.id not in blocked:
            return idea

    # Everything eligible was suggested within the window: the one suggested longest ago.
    # (Only here is the eligible list needed: the rotation above finds most nights' idea.)
    eligible = [idea for idea in ideas if diet in idea.diets]
    if not eligible:
        raise ValueError(f"no meal idea for diet {diet!r}")
    last_seen = {meal_id: index for index, meal_id in enumerate(window)}
    return min(eligible, key=lambda idea: last_seen.get(idea.id, -1))


# --- the one evening message (issue 11, 3b) ------------------------------------------------
# "Evening" as in the planner's MERGED_KIND (bot.capacity): the same merge, chosen by the person.
# A person in evening mode gets tonight's meal idea inside the exercise note, one message at
# the exercise reminder's time. The delivery keeps kind "exercise" (its buttons, "Turn this
# off" and the diary's habit work as they do) and carries the meal id: that pair *is* an
# evening message, so nothing else needs to remember it.
MEAL_KIND: Final = "meal"
EXERCISE_KIND: Final = "exercise"  # the reminder that carries the meal idea in evening mode


def meal_rides_with_exercise(evening_message: bool, enabled: Mapping[str, bool]) -> bool:
    """Whether tonight's meal idea goes inside the exercise note instead of on its own.

    Only when the person chose the one evening message and both reminders are on: with the
    exercise note off the meal idea goes alone as before; with the meal idea off there is
    nothing to carry.
    """
    return evening_message and enabled.get(MEAL_KIND, False) and enabled.get(EXERCISE_KIND, False)


def is_evening_message(kind: str, meal_id: str | None) -> bool:
    """A delivery is the one evening message when the exercise note carries a meal idea."""
    return kind == EXERCISE_KIND and meal_id is not None


def kinds_covered(kind: str, meal_id: str | None) -> tuple[str, ...]:
    """The reminder kinds one delivery stands for (Done on an evening message means both)."""
    return (MEAL_KIND, EXERCISE_KIND) if is_evening_message(kind, meal_id) else (kind,)
