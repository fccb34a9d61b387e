"""Levelling's release quotas (bot/levelling.py): pure, no database, no Telegram."""

from __future__ import annotations

from bot.capacity import Window
from bot.levelling import Load, Release, ReleasePlan, horizon_seconds, plan_releases

MINUTE = 60
WINDOWS = {
    "meal": Window.minutes(30, 10),
    "exercise": Window.minutes(20, 10),
    "wind_down": Window.minutes(5, 5),
}
NOW = 1_000_000 * MINUTE  # a whole minute, like every bedtime


def test_a_quiet_evening_releases_nothing_early() -> None:
    # 1,500 at one minute take 50 s at 30 msg/s: they queue within their minute.
    loads = [Load("meal", NOW + 10 * MINUTE, 100), Load("wind_down", NOW + 20 * MINUTE, 1500)]
    plan = plan_releases(loads, WINDOWS, now=NOW, rate=30, grace=30 * MINUTE)
    assert not plan
    assert plan.due(NOW + 20 * MINUTE) == []


def test_a_clump_is_released_early_but_never_before_its_window_opens() -> None:
    due = NOW + 60 * MINUTE
    plan = plan_releases([Load("meal", due, 6000)], WINDOWS, now=NOW, rate=30, grace=30 * MINUTE)
    # 30 msg/s leaves 1,800 a minute: 6,000 at one minute need 200 s, borrowed before it;
    # the sends planned in its last minute are left to its own minute (MIN_EARLY).
    assert 4200 - 30 <= plan.total <= 4200 + 30
    opens = due - 30 * MINUTE
    assert plan.due(opens - 1) == []
    assert plan.due(due - 200) == []  # as late as possible: the clump's last 200 seconds
    released = plan.due(due - 100)
    assert released and released[0].kind == "meal" and released[0].at == due
    assert 2900 <= released[0].count <= 3100  # 100 s at 30 msg/s
    # Cumulative: after acting on the first release only the rest is asked for.
    plan.released(released[0])
    again = plan.due(due - 1)
    assert sum(r.count for r in released + again) == plan.total
    plan.released(again[0])
    assert plan.due(due - 1) == []
    assert plan.due(due) == []  # at its minute the rest is materialised as always


def test_a_window_that_opened_in_the_past_opens_now() -> None:
    due = NOW + 2 * MINUTE  # the meal window opened 28 minutes ago
    plan = plan_releases([Load("meal", due, 9000)], WINDOWS, now=NOW, rate=30, grace=30 * MINUTE)
    assert plan.total == 1800 + 30  # every second from now to a minute before its time
    assert sum(r.count for r in plan.due(NOW)) == 30  # the first second's sends, not before


def test_pending_deliveries_are_never_released_early_but_take_their_share() -> None:
    due = NOW + 4 * MINUTE
    meals = Load("meal", due, 3000)
    alone = plan_releases([meals], WINDOWS, now=NOW, rate=30, grace=1800)
    # 4,500 overdue wind-downs (retries, a restart) go first: their deadline is earlier.
    backlog = Load("wind_down", NOW - MINUTE, 4500, scheduled=False)
    shared = plan_releases([meals, backlog], WINDOWS, now=NOW, rate=30, grace=1800)
    assert {r.kind for r in shared.due(due - 1)} == {"meal"}
    assert alone.total == 1200  # 100 s needed; the last minute is left to its minute
    assert shared.total == 930  # the backlog holds the seconds until now + 150 s


def test_earliest_deadline_first_between_two_clumps() -> None:
    # 4,000 wind-downs at T (window -5/+5) and 4,000 meal ideas a minute later (-30/+10):
    # 267 s of sends for one 60 s minute each. Both borrow the minutes before; neither
    # starts before its window opens, and everything early leaves at least a minute early.
    wind_down, meal = NOW + 30 * MINUTE, NOW + 31 * MINUTE
    plan = plan_releases(
        [Load("wind_down", wind_down, 4000), Load("meal", meal, 4000)],
        WINDOWS,
        now=NOW,
        rate=30,
        grace=1800,
    )
    assert plan.due(wind_down - 5 * MINUTE) == []
    by_kind = {r.kind: r.count for r in plan.due(wind_down - MINUTE)}
    assert by_kind["wind_down"] > 2000 and by_kind["meal"] > 2000
    # At no second is more released than the rate allows since now.
    for second in range(wind_down - 5 * MINUTE, wind_down, 10):
        released = sum(r.count for r in plan.due(second))
        assert released <= (second - (wind_down - 5 * MINUTE) + 1) * 30


def test_release_is_acted_on_once_even_when_the_database_found_fewer() -> None:
    plan = plan_releases(
        [Load("wind_down", NOW + 5 * MINUTE, 20000)], WINDOWS, now=NOW, rate=30, grace=1800
    )
    [release] = plan.due(NOW + MINUTE)
    plan.released(Release(release.kind, release.at, release.count))
    assert plan.due(NOW + MINUTE) == []


def test_the_horizon_is_two_widest_windows() -> None:
    assert horizon_seconds(WINDOWS) == 60 * MINUTE
    assert horizon_seconds({}) == 0
    assert horizon_seconds({"meal": Window(0, 600)}) == 0


def overloaded_hour_plan(due: int) -> ReleasePlan:
    """3,000 wind-downs and meal ideas at ``due``, 3,000 exercise notes a minute later, 1 msg/s."""
    loads = [
        Load("wind_down", due, 3000),
        Load("meal", due, 3000),
        Load("exercise", due + MINUTE, 3000),
    ]
    return plan_releases(loads, WINDOWS, now=NOW, rate=1, grace=1800)


def test_an_hour_levelling_cannot_carry_drops_meal_ideas_first() -> None:
    # 3,000 each of wind-downs and meal ideas at T and exercise notes a minute later, at
    # 1 msg/s: from now (the meal window opens) to the exercise notes' grace end is 3,661
    # seconds for 9,000 sends. What would expire is dropped instead, meal ideas first, then
    # exercise notes; no wind-down.
    due = NOW + 30 * MINUTE
    plan = overloaded_hour_plan(due)
    assert plan.dropping == 9000 - 3661
    assert plan.drops_due(due - 1) == []  # a group's drops wait until it falls due
    assert plan.drops_due(due) == [Release("meal", due, 3000)]
    assert plan.drops_due(due) == []  # asked once
    assert plan.drops_due(due + MINUTE) == [Release("exercise", due + MINUTE, 2339)]


def test_no_drops_when_levelling_carries_the_hour() -> None:
    due = NOW + 30 * MINUTE
    plan = plan_releases([Load("meal", due, 6000)], WINDOWS, now=NOW, rate=30, grace=1800)
    assert plan.dropping == 0 and plan.drops_due(due + 3600) == []


def test_a_backlog_already_due_expires_at_its_own_time_not_from_now() -> None:
    # 3,000 wind-downs due 25 minutes ago, still pending, at 1 msg/s: 5 minutes of grace
    # left, so the plan sees 2,699 of them expire (seconds now .. now + 300 send 301).
    backlog = Load("wind_down", NOW - 25 * MINUTE, 3000, scheduled=False)
    plan = plan_releases([backlog], WINDOWS, now=NOW, rate=1, grace=1800)
    assert plan.expiring == 3000 - 301
    assert plan.dropping == 0  # nothing scheduled in the stretch to drop instead


def test_drops_go_to_the_soonest_groups_so_a_receding_horizon_carries_them_out() -> None:
    # Meal ideas every minute for an hour at 1 msg/s, 150 a minute: far over. Each plan acts
    # only on groups falling due before the next one, so its drops must be there, not at the
    # horizon's end (which the next plan, a minute later, would replan again).
    loads = [Load("meal", NOW + 60 + minute * MINUTE, 150) for minute in range(60)]
    plan = plan_releases(loads, WINDOWS, now=NOW, rate=1, grace=1800)
    assert plan.dropping > 0
    first = plan.drops_due(NOW + 60)
    assert first == [Release("meal", NOW + 60, 150)]  # the first group goes now, all of it


# The morning check-in and weekly chart as content/diary.toml sets them: never early.
MORNING = {**WINDOWS, "checkin": Window.minutes(0, 15), "weekly": Window.minutes(0, 30)}


def test_a_check_in_clump_is_never_released_before_its_time() -> None:
    # 6,000 check-ins and 6,000 wind-downs at one minute: 400 s of sends. The wind-downs
    # borrow the minutes before (their window opens 5 minutes early); the check-ins, whose
    # window opens at their time, are never released early, and nothing is dropped for them.
    due = NOW + 30 * MINUTE
    loads = [Load("checkin", due, 6000), Load("wind_down", due, 6000), Load("weekly", due, 500)]
    plan = plan_releases(loads, MORNING, now=NOW, rate=30, grace=1800)
    assert plan.total > 0  # the clump is levelled
    for second in range(NOW, due + MINUTE, 10):
        assert {r.kind for r in plan.due(second)} <= {"wind_down"}
    assert plan.dropping == 0


def test_morning_kinds_never_widen_the_horizon() -> None:
    assert horizon_seconds(MORNING) == horizon_seconds(WINDOWS)


def test_what_the_plan_drops_it_does_not_also_release_early() -> None:
    # The overloaded hour of the drop test: every meal idea is dropped, so none may go early
    # (released, it would be pending and out of the drop's reach); the rest still levels.
    due = NOW + 30 * MINUTE
    plan = overloaded_hour_plan(due)
    assert plan.dropping == 9000 - 3661
    early = plan.due(due - 1)
    assert early and all(release.kind != "meal" for release in early)
    exercise_early = sum(r.count for r in early if r.kind == "exercise")
    assert exercise_early + (9000 - 3661 - 3000) <= 3000  # early + dropped never exceed the group
