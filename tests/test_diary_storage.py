"""The diary's rows on SQLite and PostgreSQL: one entry per night (replaced, not duplicated),
exported, erased with the person; the check-in scheduled like a reminder at the wake time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot import callback_data
from bot.diary.models import DiaryEntry, Habit, OnsetBucket
from bot.storage import SendOutcome, Store
from tests.pg import TestDatabase

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NIGHT = date(2026, 11, 23)
BERLIN = ZoneInfo("Europe/Berlin")


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
        # The weekly chart: Sunday 29 Nov 09:00 CET, then Mondays.
        person = await store.set_weekly(7, NOW, enabled=True)
        assert person.weekly is not None
        assert person.weekly.next_fire_at == datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
        person = await store.set_weekly(7, NOW, weekday=0)
        assert person.weekly is not None
        assert person.weekly.next_fire_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        assert [r.kind for r in person.reminders] == ["meal", "exercise", "wind_down"]
    finally:
        await store.close()


def test_callback_data_round_trips_and_stays_small() -> None:
    draft = callback_data.Draft(NIGHT, 5, frozenset(Habit), OnsetBucket.FROM_30_TO_60)
    for op in ("e", "s"):
        data = callback_data.encode(callback_data.DiaryDraftButton(op, draft))
        assert len(data.encode()) <= 64
        parsed = callback_data.decode_as(data, callback_data.DiaryDraftButton)
        assert parsed is not None and parsed.draft == draft
    assert callback_data.decode_as("dy:e:20261123:6:0:n", callback_data.DiaryDraftButton) is None
    assert callback_data.decode_as("dy:e:20261123:5:8:n", callback_data.DiaryDraftButton) is None
    assert callback_data.decode_as("rem:done:1", callback_data.DiaryDraftButton) is None


async def _send_due(store: Store, now: datetime) -> dict[str, int]:
    """Materialise, claim and record as sent what is due at ``now``: kind → delivery id."""
    await store.materialize_due(now, grace=timedelta(minutes=30), limit=100, choose_meal=_no_meal)
    claim = await store.claim_deliveries(now, owner="t", grace=timedelta(minutes=30), limit=100)
    await store.record_outcomes(
        "t", [SendOutcome(d.id, "sent", now, telegram_message_id=d.id) for d in claim.claimed]
    )
    return {d.kind: d.id for d in claim.claimed}


def _no_meal(diet: str, recent: Sequence[str]) -> str | None:
    return None


async def test_checkin_morning_history_and_done_taps(db: TestDatabase) -> None:
    """The queries behind the check-in, on both backends: the night's "Done ✅" kinds, the
    check-ins sent (answered or not) and the "stop asking?" morning."""
    store = await db.open_store()
    try:
        await store.set_timezone(7, "Europe/Berlin", NOW)
        await store.set_bedtime(7, time(22, 30), NOW)
        await store.subscribe(7, NOW)
        await store.heartbeat("t", NOW)
        await store.set_checkin(7, NOW, enabled=True)
        # Tue 24 Nov: the wind-down reminder at 21:30 CET, marked done.
        sent = await _send_due(store, datetime(2026, 11, 24, 20, 30, tzinfo=UTC))
        await store.mark_done(sent["wind_down"], 7, datetime(2026, 11, 24, 20, 31, tzinfo=UTC))
        assert await store.done_reminder_kinds(7, date(2026, 11, 24), BERLIN) == {"wind_down"}
        assert await store.done_reminder_kinds(7, date(2026, 11, 23), BERLIN) == set()
        # Three mornings of check-ins (06:30 CET); the first one answered.
        mornings = [datetime(2026, 11, 25 + n, 5, 30, tzinfo=UTC) for n in range(3)]
        for moment in mornings:
            assert "checkin" in await _send_due(store, moment)
        entry = DiaryEntry(date(2026, 11, 24), 3, mornings[0], frozenset(), None)
        await store.save_diary_entry(7, entry)
        morning = await store.checkin_morning(7, datetime(2026, 11, 28, 5, 30, tzinfo=UTC))
        assert morning is not None
        assert morning.night == date(2026, 11, 27) and morning.morning == date(2026, 11, 28)
        assert [(f.morning.day, f.answered) for f in morning.history] == [
            (25, True),
            (26, False),
            (27, False),
        ]
        assert morning.asked_to_stop_on is None
        await store.mark_checkin_stop_asked(7, date(2026, 11, 28))
        again = await store.checkin_morning(7, datetime(2026, 11, 28, 5, 30, tzinfo=UTC))
        assert again is not None and again.asked_to_stop_on == date(2026, 11, 28)
        # Switched off and on again, the question is remembered: no second one this streak.
        await store.set_checkin(7, NOW, enabled=False)
        await store.set_checkin(7, NOW, enabled=True)
        after = await store.checkin_morning(7, datetime(2026, 11, 29, 5, 30, tzinfo=UTC))
        assert after is not None and after.asked_to_stop_on == date(2026, 11, 28)
    finally:
        await store.close()
