"""What to answer to free text, decided without Telegram: the handler only sends the result.

Keeping the decision here (pure, given the verdict and what we know of the person) is what lets
the tests prove the rules for every phrase in the labelled set: crisis gets the crisis message
and nothing else, and the generic "didn't understand" reply is reachable only from "other".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from bot.content import Content
from bot.triage import Kind, Triage


class Page(StrEnum):
    """Which buttons go with the reply (none for crisis: nothing may distract from it)."""

    NONE = "none"
    FOODS = "foods"
    MECHANISM = "mechanism"
    MECHANISM_INDEX = "mechanism_index"


@dataclass(frozen=True)
class PlannedReply:
    kind: Kind
    html: str
    page: Page = Page.NONE
    mechanism: int | None = None
    diet: str | None = None
    meal_index: int = 0


def plan_reply(
    verdict: Triage,
    content: Content,
    *,
    country: str | None = None,
    diet: str | None = None,
    meal_index: int = 0,
) -> PlannedReply:
    """The answer to a triaged message for a person in `country` who eats `diet`."""
    kind = verdict.kind
    if kind is Kind.CRISIS:
        return PlannedReply(kind, content.render_crisis(country))
    if kind is Kind.RED_FLAG:
        with_dose = Kind.DOSE in verdict.also
        return PlannedReply(kind, content.render_red_flag(verdict.rule, with_dose=with_dose))
    if kind is Kind.DOSE:
        return PlannedReply(kind, content.render_dose())
    if kind is Kind.FOOD:
        shown = content.known_diet(verdict.diet or diet)
        html = content.render_food_reply(shown, meal_index)
        index = meal_index % len(content.meals_for(shown))
        return PlannedReply(kind, html, Page.FOODS, diet=shown, meal_index=index)
    if kind is Kind.SLEEP:
        html = content.render_sleep_reply(verdict.rule)
        page = content.safety.sleep_topic(verdict.rule).page
        if page == "mechanisms":
            return PlannedReply(kind, html, Page.MECHANISM_INDEX)
        if page == "tips":
            return PlannedReply(kind, html)
        number = content.sleep_mechanism(verdict.rule)
        return PlannedReply(kind, html, Page.MECHANISM, mechanism=number)
    if kind is Kind.OTHER:
        return PlannedReply(kind, content.render_unknown(verdict))
    assert_never(kind)


def prompt_yields_to_triage(verdict: Triage) -> bool:
    """An open prompt (timezone, bedtime, diet) that can't use the text lets triage answer it,
    unless it is just noise: then the prompt's own "I couldn't find that" is more helpful."""
    return verdict.kind is not Kind.OTHER
