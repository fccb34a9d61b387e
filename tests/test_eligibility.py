"""The one rule for whether a claimed delivery may still be sent (pure, no database)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot import eligibility
from bot.eligibility import DeliveryState, Recipient, why_not

DUE = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
ME = "dispatcher-a"


def state(**changes: object) -> DeliveryState:
    base = DeliveryState(
        delivery_id=1,
        kind="meal",
        due_at=DUE,
        status="sending",
        claimed_by=ME,
        recipient=Recipient(subscribed=True, blocked=False, paused_until=None),
        kind_enabled=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def person(**changes: object) -> Recipient:
    return replace(Recipient(subscribed=True, blocked=False, paused_until=None), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        (state(), None),
        (None, "erased"),
        (state(recipient=None), "erased"),
        (state(recipient=person(blocked=True)), "blocked"),
        (state(recipient=person(subscribed=False)), "unsubscribed"),
        (state(recipient=person(paused_until=DUE + timedelta(hours=18))), "paused"),
        (state(recipient=person(paused_until=DUE)), None),  # the pause ended at due time
        (state(kind_enabled=False), "turned off"),
        (state(kind_enabled=None), None),  # a kind without a per-person switch
        (state(status="cancelled"), "cancelled"),
        (state(claimed_by="dispatcher-b"), "taken over"),
        (state(status="pending", claimed_by=None), "taken over"),
    ],
)
def test_why_not(current: DeliveryState | None, reason: str | None) -> None:
    assert why_not(current, ME) == reason


def test_what_the_person_did_is_named_before_what_it_did_to_the_row() -> None:
    stopped = state(status="cancelled", recipient=person(subscribed=False))
    assert why_not(stopped, ME) == "unsubscribed"


@pytest.fixture
def weekly_summary_rule() -> Iterator[None]:
    """A later kind plugs in its own rule: a weekly summary ignores pauses of one night."""

    def weekly_summary(current: DeliveryState) -> str | None:
        return "turned off" if current.kind_enabled is False else None

    eligibility.RULES_BY_KIND["weekly_summary"] = weekly_summary
    try:
        yield
    finally:
        del eligibility.RULES_BY_KIND["weekly_summary"]


@pytest.mark.usefixtures("weekly_summary_rule")
def test_a_kind_can_plug_in_its_own_rule_and_keeps_the_common_ones() -> None:
    paused = person(paused_until=DUE + timedelta(hours=18))
    assert why_not(state(kind="weekly_summary", recipient=paused), ME) is None
    assert why_not(state(kind="meal", recipient=paused), ME) == "paused"
    stopped = person(subscribed=False, paused_until=DUE + timedelta(hours=18))
    assert why_not(state(kind="weekly_summary", recipient=stopped), ME) == "unsubscribed"
    assert why_not(state(kind="weekly_summary", claimed_by="other"), ME) == "taken over"
