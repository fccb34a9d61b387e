"""The send-window rules and the overload policy of bot/capacity.py (pure, no Telegram)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import schedule
from bot.capacity import (
    DROPPED,
    EXPIRED,
    MERGED,
    MERGED_KIND,
    PAID,
    Leveller,
    Plan,
    PolicyOutcome,
    Reminder,
    TokenBudget,
    Window,
    apply_overload_policy,
    figures,
)

MEAL = Window.minutes(30, 10)
EXERCISE = Window.minutes(20, 10)
WIND_DOWN = Window.minutes(5, 5)
WINDOWS = {"meal": MEAL, "exercise": EXERCISE, "wind_down": WIND_DOWN}
GRACE = 30 * 60


def clumped_evening(people: int, seed: int = 3) -> list[Reminder]:
    """Bedtimes on quarter hours, three reminders each, in clumps far above 1 msg/s."""
    rng = random.Random(seed)
    reminders = []
    for person in range(people):
        bedtime = 10_000 + 900 * rng.randrange(8)
        for kind, offset in (("meal", 240), ("exercise", 180), ("wind_down", 60)):
            reminders.append(Reminder(person, kind, bedtime - offset * 60, WINDOWS[kind]))
    return reminders


def sends(plan: Plan) -> dict[int, int]:
    return plan.first_send()


def test_token_budget_is_exact_over_time() -> None:
    half = TokenBudget(0.5)
    assert sum(half.slots(s) for s in range(10)) == 5
    thirty = TokenBudget(30)
    assert {thirty.slots(s) for s in range(100)} == {30}
    odd = TokenBudget(2.5)
    assert sum(odd.slots(s) for s in range(1_000, 1_100)) == 250
    with pytest.raises(ValueError):
        TokenBudget(0)


def test_a_quiet_reminder_goes_at_its_time_not_early() -> None:
    reminders = [
        Reminder(1, "meal", 1_000, MEAL),
        Reminder(2, "wind_down", 5_000, WIND_DOWN),
    ]
    plan = Leveller(TokenBudget(30), GRACE).plan(reminders)
    assert sends(plan) == {0: 1_000, 1: 5_000}


def test_never_earlier_than_the_window_opens_and_never_past_the_grace() -> None:
    reminders = clumped_evening(600)
    plan = Leveller(TokenBudget(1), GRACE).plan(reminders)
    sent = sends(plan)
    assert len(sent) + plan.expired_count == len(reminders)
    for index, second in sent.items():
        reminder = reminders[index]
        assert second >= reminder.intended - reminder.window.before, reminder
        assert second <= reminder.intended + GRACE, reminder
    # the clumps really needed levelling: something went early
    assert any(second < reminders[i].intended for i, second in sent.items())


def test_the_rate_is_never_exceeded() -> None:
    budget = TokenBudget(2.5)
    plan = Leveller(budget, GRACE).plan(clumped_evening(500))
    for second, count in plan.sends_per_second().items():
        assert count <= budget.slots(second)


def test_earliest_deadline_first() -> None:
    """Released together, the reminder whose window closes first goes first."""
    reminders = [
        Reminder(1, "meal", 100, Window(0, 50)),
        Reminder(2, "meal", 100, Window(0, 10)),
        Reminder(3, "meal", 100, Window(0, 30)),
    ]
    plan = Leveller(TokenBudget(1), GRACE).plan(reminders)
    assert sends(plan) == {1: 100, 2: 101, 0: 102}


def test_levelling_spreads_lateness_instead_of_piling_it_on_the_minute() -> None:
    reminders = clumped_evening(900)
    current = figures(Leveller(TokenBudget(1), GRACE, levelled=False).plan(reminders))
    levelled = figures(Leveller(TokenBudget(1), GRACE).plan(reminders))
    for kind in ("meal", "exercise", "wind_down"):
        assert current[kind].earliness_max == 0  # the dispatcher as it is never sends early
        assert levelled[kind].lateness_p99 < current[kind].lateness_p99, kind
        assert levelled[kind].earliness_max <= WINDOWS[kind].before
    assert sum(f.expired for f in levelled.values()) <= sum(f.expired for f in current.values())


def test_a_persons_own_reminders_are_never_reordered() -> None:
    """Person 0's meal idea (wide window) comes just before their wind-down (narrow window),
    both in a clump that pushes everything early: still meal first, then wind-down."""
    reminders = [
        Reminder(0, "wind_down", 2_010, WIND_DOWN),
        Reminder(0, "meal", 2_000, Window(0, 600)),
        Reminder(0, "exercise", 2_005, EXERCISE),
    ]
    reminders += [Reminder(p, "wind_down", 2_010, WIND_DOWN) for p in range(1, 400)]
    reminders += [Reminder(p, "meal", 2_000, MEAL) for p in range(400, 800)]
    plan = Leveller(TokenBudget(1), GRACE).plan(reminders)
    sent = sends(plan)
    assert sent[1] <= sent[2] <= sent[0], (sent[1], sent[2], sent[0])
    # and across a random crowd with custom offsets, for everybody
    rng = random.Random(11)
    crowd = []
    for person in range(1_500):
        base = 10_000 + 60 * rng.randrange(40)
        for kind in ("meal", "exercise", "wind_down"):
            crowd.append(Reminder(person, kind, base + 60 * rng.randrange(0, 3), WINDOWS[kind]))
    plan = Leveller(TokenBudget(3), GRACE).plan(crowd)
    sent = sends(plan)
    by_person: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    rank = {"meal": 0, "exercise": 1, "wind_down": 2}
    for index, reminder in enumerate(crowd):
        if index in sent:
            key = (reminder.intended, rank[reminder.kind], sent[index])
            by_person[reminder.person or 0].append(key)
    for person, items in by_person.items():
        in_order = [second for *_, second in sorted(items)]
        assert in_order == sorted(in_order), person


@pytest.mark.parametrize(
    ("night", "bedtime", "expected_utc"),
    [
        # spring forward: 02:30 does not exist, the wind-down fires at 03:00 CEST (01:00 UTC)
        (datetime(2026, 3, 28, 12, tzinfo=UTC), time(3, 30), datetime(2026, 3, 29, 1, tzinfo=UTC)),
        # fall back: 02:10 happens twice, it fires at the first (CEST, 00:10 UTC)
        (
            datetime(2026, 10, 24, 12, tzinfo=UTC),
            time(3, 10),
            datetime(2026, 10, 25, 0, 10, tzinfo=UTC),
        ),
    ],
)
def test_windows_are_real_minutes_on_dst_nights(
    night: datetime, bedtime: time, expected_utc: datetime
) -> None:
    """Windows are absolute seconds around the UTC instant: 5 real minutes, even across a gap
    or a repeated hour; never earlier than that, however crowded the night."""
    berlin = ZoneInfo("Europe/Berlin")
    instant = schedule.next_fire_at(
        bedtime=bedtime, weekend_bedtime=None, offset_minutes=60, tz=berlin, after=night
    )
    assert instant == expected_utc
    reminders = [Reminder.at(p, "wind_down", instant, WIND_DOWN) for p in range(1_000)]
    plan = Leveller(TokenBudget(1), GRACE).plan(reminders)
    first = min(plan.piece_second)
    assert first == int((instant - timedelta(minutes=5)).timestamp())
    assert all(second >= first for second in plan.piece_second)


def test_aggregates_plan_like_the_people_they_stand_for() -> None:
    """What `sleepbot capacity` reads (counts per instant) gives the same figures."""
    people = clumped_evening(300)
    counts = Counter((r.kind, r.intended) for r in people)
    aggregate = [
        Reminder(None, kind, at, WINDOWS[kind], count) for (kind, at), count in counts.items()
    ]
    by_person = Leveller(TokenBudget(1), GRACE).plan(people)
    by_count = Leveller(TokenBudget(1), GRACE).plan(aggregate)
    assert by_count.sent_count == by_person.sent_count
    assert by_count.expired_count == by_person.expired_count
    assert by_count.sends_per_second() == by_person.sends_per_second()


def one_busy_evening(people: int) -> list[Reminder]:
    """Everybody's meal idea, exercise note and wind-down a minute apart: one busy stretch."""
    reminders = []
    for person in range(people):
        reminders += [
            Reminder(person, "meal", 1_000, MEAL),
            Reminder(person, "exercise", 1_060, EXERCISE),
            Reminder(person, "wind_down", 1_120, WIND_DOWN),
        ]
    return reminders


def _removed(outcome: PolicyOutcome, reason: str) -> Counter[str]:
    return Counter({kind: n for (kind, why), n in outcome.reasons.items() if why == reason})


def _accounted(outcome: PolicyOutcome, reminders: list[Reminder]) -> None:
    """Every reminder is sent, merged (two became one) or dropped; none silently lost."""
    dropped = sum(_removed(outcome, DROPPED).values())
    sent = outcome.plan.sent_count
    merged_away = outcome.merged_people
    assert outcome.plan.expired_count == 0 and outcome.count(EXPIRED) == 0
    assert sent + merged_away + dropped == len(reminders)
    assert outcome.count(MERGED) == 2 * merged_away
    assert sum(1 for r in outcome.kept if r.kind == MERGED_KIND) <= merged_away


def test_a_moderate_overload_is_absorbed_by_merging_alone() -> None:
    reminders = one_busy_evening(300)
    leveller = Leveller(TokenBudget(0.2), GRACE)
    assert leveller.plan(reminders).expired_count > 0  # levelling alone cannot absorb it
    outcome = apply_overload_policy(reminders, leveller)
    _accounted(outcome, reminders)
    assert 0 < outcome.merged_people < 300
    assert outcome.count(DROPPED) == 0
    assert Counter(r.kind for r in outcome.kept)["wind_down"] == 300


def test_a_heavy_overload_drops_meal_ideas_and_exercise_before_wind_downs() -> None:
    reminders = one_busy_evening(300)
    outcome = apply_overload_policy(reminders, Leveller(TokenBudget(0.05), GRACE))
    _accounted(outcome, reminders)
    dropped = _removed(outcome, DROPPED)
    assert dropped["meal"] == dropped["exercise"] == 300  # all of them, before any wind-down
    assert 0 < dropped["wind_down"] < 300  # and only as many wind-downs as needed
    assert {r.kind for r in outcome.kept} == {"wind_down"}


def test_overload_over_a_day_of_clumps_expires_nothing() -> None:
    reminders = clumped_evening(4_000)
    outcome = apply_overload_policy(reminders, Leveller(TokenBudget(0.2), GRACE))
    _accounted(outcome, reminders)
    assert outcome.merged_people > 0


def test_overload_with_paid_broadcast_merges_nothing() -> None:
    reminders = clumped_evening(4_000)
    outcome = apply_overload_policy(
        reminders,
        Leveller(TokenBudget(0.5), GRACE),
        paid=TokenBudget(1000),
    )
    assert outcome.count(MERGED) == 0 and outcome.count(DROPPED) == 0
    assert outcome.plan.expired_count == 0
    assert outcome.paid_sends > 0 and outcome.reasons["all", PAID] == outcome.paid_sends
    # paid only for what would have left its window: the rest still goes at the free rate
    assert outcome.paid_sends < len(reminders) // 2
    assert all(f.outside_window == 0 for f in figures(outcome.plan).values())


def test_no_overload_no_policy() -> None:
    reminders = clumped_evening(50)
    outcome = apply_overload_policy(reminders, Leveller(TokenBudget(30), GRACE))
    assert outcome.merged_people == 0 and outcome.count(DROPPED) == 0
    assert outcome.plan.sent_count == len(reminders)
