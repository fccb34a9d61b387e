"""The daily capacity check in the sender: a WARNING before an over-capacity day, gauges for
/metrics, at most once a day (bot/capacity_plan.py CapacityWatch, bot/dispatch.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Final

import pytest

from bot.capacity import Window
from bot.capacity_plan import CapacityFigures, CapacityWatch
from bot.metrics import Metrics
from bot.storage.send_load import MinuteLoad
from tests.test_dispatch import Harness, content, h  # noqa: F401  (the dispatcher's fixtures)

START: Final = datetime(2025, 3, 10, 11, 0, tzinfo=UTC)
WINDOWS: Final = {"wind_down": Window.minutes(5, 5), "meal": Window.minutes(30, 10)}


def loads_of(count: int) -> object:
    """A load of ``count`` wind-down reminders in one minute, three hours after START."""

    async def loads(start: datetime, end: datetime) -> list[MinuteLoad]:
        assert (start, end) == (START, START + timedelta(hours=24))
        minute = int((START + timedelta(hours=3)).timestamp()) // 60
        return [MinuteLoad("wind_down", minute, count)]

    return loads


def watch(count: int, reported: list[CapacityFigures], *, paid: bool = False) -> CapacityWatch:
    return CapacityWatch(
        loads_of(count),  # type: ignore[arg-type]
        WINDOWS,
        rate=1.0,
        grace_minutes=30,
        allow_paid_broadcast=paid,
        paid_rate=1000.0,
        report_to=reported.append,
    )


async def test_an_over_capacity_day_is_one_warning_and_gauges(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # At 1 msg/s the 5 minutes of window, the minute's own second and 30 minutes of grace
    # hold 2,101 sends: 899 of 3,000 expire even levelled.
    reported: list[CapacityFigures] = []
    with caplog.at_level(logging.INFO, logger="bot.capacity_plan"):
        await watch(3000, reported).check(START)
    [record] = [r for r in caplog.records if r.name == "bot.capacity_plan"]
    assert record.levelno == logging.WARNING
    assert "OVER CAPACITY" in record.getMessage()
    [figures] = reported
    assert figures.over_capacity and figures.messages == 3000 and figures.busiest_minute == 3000
    assert figures.expired["levelled"] == 899 and figures.expired["as_today"] > 900

    metrics = Metrics()
    metrics.capacity_checked(
        messages=figures.messages,
        busiest_minute=figures.busiest_minute,
        expired=figures.expired,
        over=figures.over_capacity,
    )
    text = metrics.exposition().decode()
    assert "sleepbot_capacity_over 1.0" in text
    assert 'sleepbot_capacity_projected_expired{projection="levelled"} 899.0' in text
    assert "sleepbot_capacity_busiest_minute_messages 3000.0" in text


async def test_a_day_that_fits_is_an_info_line(caplog: pytest.LogCaptureFixture) -> None:
    reported: list[CapacityFigures] = []
    with caplog.at_level(logging.INFO, logger="bot.capacity_plan"):
        await watch(200, reported).check(START)
    [record] = [r for r in caplog.records if r.name == "bot.capacity_plan"]
    assert record.levelno == logging.INFO and "verdict: OK" in record.getMessage()
    assert not reported[0].over_capacity and reported[0].expired["levelled"] == 0


async def test_the_sender_checks_capacity_once_a_day(h: Harness) -> None:  # noqa: F811
    checks: list[datetime] = []

    async def check(now: datetime) -> None:
        checks.append(now)

    dispatcher = h.new_dispatcher(capacity_check=check)
    for hours in (0, 1, 23, 24, 25, 48):
        h.clock.set(START + timedelta(hours=hours))
        await dispatcher.tick()
        if dispatcher._capacity_task is not None:
            await dispatcher._capacity_task
    assert checks == [START, START + timedelta(hours=24), START + timedelta(hours=48)]


async def test_with_a_paid_lane_only_the_overflow_is_projected_paid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same 3,000 at a free 1 msg/s with a paid lane up to 1,000: nothing expires, and only
    what the free lane cannot carry within the window goes paid."""
    reported: list[CapacityFigures] = []
    with caplog.at_level(logging.INFO, logger="bot.capacity_plan"):
        report = await watch(3000, reported, paid=True).check(START)
    [record] = [r for r in caplog.records if r.name == "bot.capacity_plan"]
    message = record.getMessage()
    assert "OVER THE FREE RATE, covered by paid broadcast" in message
    assert "the overflow only" in message and "every reminder" not in message
    assert report.paid_sends is not None and 0 < report.paid_sends < 3000
    assert reported[0].expired["paid"] == 0
