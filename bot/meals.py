"""Which meal idea to suggest tonight: a deterministic rotation that avoids recent repeats.

Pure (no I/O, no randomness), so the choice is reproducible in tests and explainable to a
person: ideas come round in the order the content file lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.content import MealIdea

NO_REPEAT_WITHIN: Final = 7


def choose_meal(ideas: Sequence[MealIdea], diet: str, recent_ids: Sequence[str]) -> MealIdea:
    """Tonight's idea for ``diet``, given the ids suggested before (oldest first).

    The first idea in content order after the most recent one that the diet allows and that
    was not among the last 7 suggestions. With 7 or fewer eligible ideas there may be none:
    then the least recently suggested eligible idea. Raises ValueError if the diet allows no
    idea at all (content validation is meant to rule that out).
    """
    eligible = [idea for idea in ideas if diet in idea.diets]
    if not eligible:
        raise ValueError(f"no meal idea for diet {diet!r}")
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
    last_seen = {meal_id: index for index, meal_id in enumerate(window)}
    return min(eligible, key=lambda idea: last_seen.get(idea.id, -1))
