"""The diary's rows on SQLite and PostgreSQL: one entry per night (replaced, not duplicated),
exported, erased with the person; the check-in scheduled like a reminder at the wake time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from bot.diary import callbacks
from bot.diary.models import DiaryEntry, Habit, OnsetBucket
from tests.pg import TestDatabase

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NIGHT = date(2026, 11, 23)


async def test_entries_replace_export_and_erase(db: TestDatabase) -> None:
    store = await db.open_store()
    try:
        first = DiaryEntry(NIGHT, 2, NOW, frozenset({Habit.B12_DINNER}), OnsetBucket.OVER_60)
        assert await store.save_diary_entry(7, first) is False
        second = DiaryEntry(NIGHT, 4, NOW, frozenset({Habit.DIMMED_LIGHTS}), None)
        assert await store.save_diary_entry(7, second) is True
        assert await store.diary(7) == [second]
        assert await store.diary_entry(7, NIGHT) == second
        exported = await store.export_person(7)
        assert exported is not None
        assert exported["diary"] == [
            {
                "night": "2026-11-23",
                "rating": 4,
                "dimmed_lights": True,
                "no_intense_exercise": False,
                "b12_dinner": False,
                "onset": None,
                "created_at": NOW.isoformat(),
                "updated_at": NOW.isoformat(),
            }
        ]
        assert await store.delete_person(7)
        assert await store.diary(7) == []
    finally:
        await store.close()


async def test_the_checkin_is_scheduled_at_bedtime_plus_eight_hours(db: TestDatabase) -> None:
    store = await db.open_store()
    try:
        await store.set_timezone(7, "Europe/Berlin", NOW)
        await store.set_bedtime(7, time(22, 30), NOW)
        await store.subscribe(7, NOW)
        person = await store.set_checkin(7, NOW, enabled=True)
        assert person.checkin is not None
        assert person.checkin.next_fire_at == datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
        assert [r.kind for r in person.reminders] == ["meal", "exercise", "wind_down"]
        person = await store.set_checkin(7, NOW, wake_time=time(7, 0))
        assert person.checkin is not None
        assert person.checkin.next_fire_at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
        person = await store.set_checkin(7, NOW, enabled=False)
        assert person.checkin is not None and person.checkin.next_fire_at is None
    finally:
        await store.close()


def test_callback_data_round_trips_and_stays_small() -> None:
    draft = callbacks.Draft(NIGHT, 5, frozenset(Habit), OnsetBucket.FROM_30_TO_60)
    for op in ("e", "s"):
        data = callbacks.draft_data(op, draft)
        assert len(data.encode()) <= 64
        parsed = callbacks.parse(data)
        assert parsed is not None and parsed.draft == draft
    assert callbacks.parse("dy:e:20261123:6:0:n") is None
    assert callbacks.parse("dy:e:20261123:5:8:n") is None
    assert callbacks.parse("rem:done:1") is None
