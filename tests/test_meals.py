"""The meal rotation: diet-aware, no repeat within 7 suggestions, deterministic."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bot.content import MealIdea, default_content_dir, load_content
from bot.meals import (
    NO_REPEAT_WITHIN,
    choose_meal,
    is_evening_message,
    kinds_covered,
    meal_rides_with_exercise,
)

ALL = frozenset({"omnivore", "pescatarian", "vegetarian"})
FISH = frozenset({"omnivore", "pescatarian"})
MEAT = frozenset({"omnivore"})


def idea(meal_id: str, diets: frozenset[str]) -> MealIdea:
    return MealIdea.model_validate(
        {
            "id": meal_id,
            "name": meal_id.title(),
            "diets": diets,
            "text_html": "A meal.",
            "b12": "two eggs",
            "b12_daily_value_percent": 38,
        }
    )


def rotate(
    ideas: Sequence[MealIdea], diet: str, nights: int, recent: Sequence[str] = ()
) -> list[str]:
    """Simulate the dispatcher: choose, remember (last 7), repeat."""
    history = list(recent)
    chosen = []
    for _ in range(nights):
        meal = choose_meal(ideas, diet, history)
        chosen.append(meal.id)
        history = [*history, meal.id][-NO_REPEAT_WITHIN:]
    return chosen


IDEAS = [idea(f"m{i}", ALL if i % 3 == 0 else FISH if i % 3 == 1 else MEAT) for i in range(30)]


def test_first_choice_is_the_first_eligible_in_content_order() -> None:
    assert choose_meal(IDEAS, "omnivore", []).id == "m0"
    assert choose_meal(IDEAS, "pescatarian", []).id == "m0"
    assert choose_meal(IDEAS[1:], "vegetarian", []).id == "m3"


def test_rotation_continues_after_the_most_recent_in_content_order() -> None:
    assert choose_meal(IDEAS, "omnivore", ["m4"]).id == "m5"
    # Vegetarian: only every third idea; the next after m4 is m6.
    assert choose_meal(IDEAS, "vegetarian", ["m4"]).id == "m6"
    # Wraps around at the end of the list.
    assert choose_meal(IDEAS, "omnivore", ["m29"]).id == "m0"


def test_unknown_recent_id_starts_from_the_top() -> None:
    assert choose_meal(IDEAS, "omnivore", ["removed-from-content"]).id == "m0"


@pytest.mark.parametrize("diet", ["omnivore", "pescatarian", "vegetarian"])
def test_never_repeats_within_seven_and_respects_the_diet(diet: str) -> None:
    chosen = rotate(IDEAS, diet, 60)
    allowed = {i.id for i in IDEAS if diet in i.diets}
    assert set(chosen) <= allowed
    for start in range(len(chosen) - NO_REPEAT_WITHIN):
        window = chosen[start : start + NO_REPEAT_WITHIN + 1]
        assert len(set(window)) == len(window), window


def test_recent_ideas_are_skipped_even_out_of_order() -> None:
    recent = ["m1", "m2", "m3", "m0"]  # m0 most recent → next would be m1.. but those are recent
    assert choose_meal(IDEAS, "omnivore", recent).id == "m4"


def test_only_the_last_seven_count() -> None:
    recent = ["m5", "m10", "m11", "m12", "m13", "m14", "m15", "m4"]  # m5 is 8th-most-recent
    assert choose_meal(IDEAS, "omnivore", recent).id == "m5"


def test_falls_back_to_least_recently_used_with_few_eligible() -> None:
    few = [idea("a", ALL), idea("b", MEAT), idea("c", ALL), idea("d", ALL)]
    # Vegetarian can eat a, c, d; all three were suggested recently.
    assert choose_meal(few, "vegetarian", ["c", "a", "d"]).id == "c"
    assert choose_meal(few, "vegetarian", ["a", "c", "d"]).id == "a"
    # Over many nights it cycles through all of them evenly, in content order.
    assert rotate(few, "vegetarian", 7) == ["a", "c", "d", "a", "c", "d", "a"]


def test_single_eligible_idea_repeats() -> None:
    assert rotate([idea("x", MEAT), idea("y", ALL)], "vegetarian", 3) == ["y", "y", "y"]


def test_diet_change_follows_new_diet() -> None:
    # The last suggestion (m2, meat) is no longer allowed after switching to vegetarian.
    assert choose_meal(IDEAS, "vegetarian", ["m0", "m2"]).id == "m3"


def test_no_eligible_idea_raises() -> None:
    with pytest.raises(ValueError, match="no meal idea"):
        choose_meal([idea("b", MEAT)], "vegetarian", [])


def test_deterministic() -> None:
    assert rotate(IDEAS, "pescatarian", 20) == rotate(IDEAS, "pescatarian", 20)


@pytest.mark.parametrize("diet", ["omnivore", "pescatarian", "vegetarian", "vegan"])
def test_shipped_content_gives_a_week_without_repeats(diet: str) -> None:
    content = load_content(default_content_dir())
    week = rotate(content.meal_ideas, diet, 7)
    assert len(set(week)) == 7
    for meal_id in week:
        meal = content.meal(meal_id)
        assert meal is not None and diet in meal.diets


# --- the one evening message ---------------------------------------------------------------

ON, OFF = True, False


@pytest.mark.parametrize(
    ("evening", "meal", "exercise", "rides"),
    [
        (ON, ON, ON, True),  # chosen, both on: one message
        (ON, ON, OFF, False),  # the exercise note off: the meal idea goes alone
        (ON, OFF, ON, False),  # the meal idea off: nothing to carry
        (OFF, ON, ON, False),  # not chosen: two messages
    ],
)
def test_the_meal_idea_rides_with_the_exercise_note_only_when_chosen_and_both_are_on(
    evening: bool, meal: bool, exercise: bool, rides: bool
) -> None:
    enabled = {"meal": meal, "exercise": exercise, "wind_down": True}
    assert meal_rides_with_exercise(evening, enabled) is rides


def test_a_kind_missing_from_the_rows_counts_as_off() -> None:
    assert not meal_rides_with_exercise(True, {"exercise": True})


def test_an_exercise_delivery_with_a_meal_is_the_evening_message_and_covers_both() -> None:
    assert is_evening_message("exercise", "salmon-rice")
    assert kinds_covered("exercise", "salmon-rice") == ("meal", "exercise")
    assert not is_evening_message("exercise", None)
    assert kinds_covered("exercise", None) == ("exercise",)
    assert not is_evening_message("meal", "salmon-rice")  # the meal idea on its own
    assert kinds_covered("meal", "salmon-rice") == ("meal",)


def test_the_evening_message_holds_both_texts_the_meal_and_both_why_passages() -> None:
    for locale_dir in (default_content_dir(), default_content_dir() / "zh"):
        content = load_content(locale_dir)
        meal = content.meal_ideas[0]
        evening = content.render_delivery("exercise", meal.id)
        assert evening.startswith(f"<b>{content.evening.title}</b>")
        alone = {kind: content.render_reminder(kind, meal) for kind in ("meal", "exercise")}
        for kind, message in alone.items():
            body = message.split("\n\n", 1)[1]  # the reminder without its title
            assert body in evening, (locale_dir, kind)
        assert meal.name in evening
        assert content.render_delivery("exercise", None) == alone["exercise"]
        assert content.render_delivery("meal", meal.id) == alone["meal"]
        why = content.render_reminder_why("exercise", meal.id)
        for kind in ("meal", "exercise"):
            passage = content.render_reminder_why(kind).split("\n\n", 1)[1]
            assert passage in why
        assert content.render_reminder_why("exercise") != why  # alone: its own passage only
