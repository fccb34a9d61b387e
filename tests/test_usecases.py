"""The use cases' rules, against a real Store (SQLite and PostgreSQL) and a FakeClock.

The rules that used to sit in handlers: the first complete set-up turns reminders on and no
later change does; a pause lasts until local noon after the last night skipped; there is
nothing to pause or stop for someone who never set up.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

import pytest

from bot import usecases
from bot.clock import FakeClock
from bot.storage import Store
from bot.timezones import UnknownTimezone

ADA: Final = 42
NOW: Final = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)  # 22:30 in Berlin, a Tuesday


async def test_the_first_complete_set_up_subscribes_and_later_changes_never_do(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    step = await usecases.set_bedtime(store, clock, ADA, time(22, 30))
    assert step.first_setup and not step.person.ready and not step.person.subscribed
    step = await usecases.set_timezone(store, clock, ADA, "Europe/Berlin")
    assert step.first_setup and step.person.ready and step.person.subscribed
    assert all(r.next_fire_at is not None for r in step.person.reminders)
    assert await usecases.stop(store, clock, ADA) is not None
    step = await usecases.set_bedtime(store, clock, ADA, time(23, 0))
    assert not step.first_setup and not step.person.subscribed  # stopped stays stopped
    step = await usecases.set_bedtime(store, clock, ADA, time(23, 30), weekend=True)
    assert step.person.weekend_bedtime == time(23, 30) and not step.first_setup
    step = await usecases.clear_weekend_bedtime(store, clock, ADA)
    assert step.person.weekend_bedtime is None


async def test_an_unknown_timezone_stores_nothing(store: Store) -> None:
    with pytest.raises(UnknownTimezone):
        await usecases.set_timezone(store, FakeClock(NOW), ADA, "Mars/Olympus")
    assert await store.get_person(ADA) is None


async def test_subscribe_turns_reminders_on_only_once_set_up(store: Store) -> None:
    clock = FakeClock(NOW)
    step = await usecases.subscribe(store, clock, ADA)
    assert step.first_setup and not step.person.subscribed and step.person.reminders == ()
    await usecases.set_timezone(store, clock, ADA, "Europe/Berlin")
    await usecases.set_bedtime(store, clock, ADA, time(22, 30))
    await usecases.stop(store, clock, ADA)
    step = await usecases.subscribe(store, clock, ADA)
    assert step.person.subscribed and not step.first_setup


async def test_a_pause_lasts_until_local_noon_after_the_last_night(store: Store) -> None:
    clock = FakeClock(NOW)
    assert await usecases.pause(store, clock, ADA, 1) is None  # nobody: nothing created
    assert await store.get_person(ADA) is None
    await usecases.set_timezone(store, clock, ADA, "Europe/Berlin")
    assert await usecases.pause(store, clock, ADA, 1) is None  # not set up
    await usecases.set_bedtime(store, clock, ADA, time(22, 30))
    assert await usecases.pause(store, clock, ADA, 0) is None
    assert await usecases.pause(store, clock, ADA, 61) is None
    paused = await usecases.pause(store, clock, ADA, 3)
    assert paused is not None and paused.paused_until is not None
    berlin = ZoneInfo("Europe/Berlin")
    assert paused.paused_until.astimezone(berlin) == datetime(2026, 11, 27, 12, 0, tzinfo=berlin)
    resumed = await usecases.resume(store, clock, ADA)
    assert resumed is not None and resumed.paused_until is None and resumed.subscribed
    await usecases.stop(store, clock, ADA)
    assert await usecases.pause(store, clock, ADA, 1) is None  # stopped: nothing to pause


async def test_resume_and_stop_before_set_up(store: Store) -> None:
    clock = FakeClock(NOW)
    assert await usecases.stop(store, clock, ADA) is None
    assert await store.get_person(ADA) is None  # /stop stores nothing about a stranger
    assert await usecases.resume(store, clock, ADA) is None  # not set up: the set-up starts
    person = await store.get_person(ADA)
    assert person is not None and not person.subscribed


async def test_reminder_kinds_toggle_and_move_within_bounds(store: Store) -> None:
    clock = FakeClock(NOW)
    await usecases.set_timezone(store, clock, ADA, "Europe/Berlin")
    person = (await usecases.set_bedtime(store, clock, ADA, time(22, 30))).person
    assert await usecases.toggle_reminder(store, clock, person, "nonsense") is None
    toggled = await usecases.toggle_reminder(store, clock, person, "wind_down")
    assert toggled is not None
    setting = toggled.reminder("wind_down")
    assert setting is not None and not setting.enabled and setting.next_fire_at is None
    moved = await usecases.move_reminder(store, clock, toggled, "meal", earlier=True)
    assert moved is not None
    before, after = toggled.reminder("meal"), moved.reminder("meal")
    assert before is not None and after is not None
    assert after.offset_minutes == before.offset_minutes + 15
