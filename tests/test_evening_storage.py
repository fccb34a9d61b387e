"""The one evening message in the store, on both backends: migration 0009 on a database of the
previous schema, the meal reminder unscheduled while it rides with the exercise note, the meal
chosen for the exercise delivery, the cases that leave two messages (or one) as before, the
export and the diary's "Done" for both habits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import text

from bot.levelling import Release
from bot.storage import Person, SendOutcome, Store, create_engine, upgrade_to_head
from tests.pg import TestDatabase, down_and_up, person_at_revision

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ADA = 4242
# Bedtime 22:30 UTC: the meal idea at 18:30, the exercise note at 19:30.
MEAL_AT = datetime(2026, 11, 24, 18, 30, tzinfo=UTC)
EXERCISE_AT = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)
GRACE = timedelta(minutes=30)


def _rotation(diet: str, recent: Sequence[str]) -> str | None:
    """A stand-in for bot.meals.choose_meal: the next of three ids, so repeats show."""
    return f"idea-{len(recent) + 1}"


async def _ready(store: Store) -> None:
    await store.set_timezone(ADA, "UTC", NOW)
    await store.set_bedtime(ADA, time(22, 30), NOW)
    await store.subscribe(ADA, NOW)


async def _due(store: Store, now: datetime) -> dict[str, str | None]:
    """Materialise and claim what is due at ``now``: kind → meal id."""
    await store.materialize_due(now, grace=GRACE, limit=100, choose_meal=_rotation)
    claim = await store.claim_deliveries(now, owner="t", grace=GRACE, limit=100)
    await store.record_outcomes(
        "t", [SendOutcome(d.id, "sent", now, telegram_message_id=d.id) for d in claim.claimed]
    )
    return {d.kind: d.meal_id for d in claim.claimed}


def _next(person: Person, kind: str) -> datetime | None:
    setting = person.reminder(kind)
    assert setting is not None
    return setting.next_fire_at


async def test_migration_0009_adds_the_switch_off_for_existing_people(db: TestDatabase) -> None:
    engine = create_engine(db.url, schema=db.schema)
    try:
        await person_at_revision(engine, "0008_diary", ADA, NOW)
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            row = (
                await connection.execute(text("SELECT chat_id, evening_message FROM people"))
            ).one()
            assert (row[0], bool(row[1])) == (ADA, False)  # everyone keeps two messages
        assert "evening_message" not in await down_and_up(engine, "0008_diary")
    finally:
        await engine.dispose()


async def test_the_exercise_note_carries_the_meal_idea_while_the_switch_is_on(
    db: TestDatabase,
) -> None:
    store = await db.open_store()
    try:
        await _ready(store)
        await store.heartbeat("t", NOW)
        person = await store.set_evening_message(ADA, True, NOW)
        assert person.evening_message and person.evening_merged
        assert _next(person, "meal") is None  # no meal reminder of its own
        assert _next(person, "exercise") == EXERCISE_AT
        assert _next(person, "wind_down") is not None

        assert await _due(store, MEAL_AT) == {}
        assert await _due(store, EXERCISE_AT) == {"exercise": "idea-1"}
        export = await store.export_person(ADA)
        assert export is not None
        assert export["person"]["evening_message"] is True
        assert export["person"]["recent_meals"] == ["idea-1"]  # the rotation moves on

        # Done on the evening message counts both habits for that night's check-in.
        [delivery] = [d for d in export["deliveries"] if d["kind"] == "exercise"]
        assert await store.mark_done(delivery["id"], ADA, EXERCISE_AT + timedelta(minutes=1))
        night = date(2026, 11, 24)
        assert await store.done_reminder_kinds(ADA, night, UTC) == {"meal", "exercise"}

        # Switched off: tomorrow two messages again, each at its own time.
        person = await store.set_evening_message(ADA, False, EXERCISE_AT + timedelta(hours=1))
        assert not person.evening_merged
        assert await _due(store, MEAL_AT + timedelta(days=1)) == {"meal": "idea-2"}
        assert await _due(store, EXERCISE_AT + timedelta(days=1)) == {"exercise": None}
    finally:
        await store.close()


async def test_with_one_of_the_two_off_nothing_is_merged(db: TestDatabase) -> None:
    store = await db.open_store()
    try:
        await _ready(store)
        await store.heartbeat("t", NOW)
        await store.set_evening_message(ADA, True, NOW)
        # The exercise note off: the meal idea goes alone, at its own time, as before.
        person = await store.set_reminder(ADA, "exercise", NOW, enabled=False)
        assert person.evening_message and not person.evening_merged
        assert _next(person, "meal") == MEAL_AT
        assert await _due(store, MEAL_AT) == {"meal": "idea-1"}
        assert await _due(store, EXERCISE_AT) == {}

        # The meal idea off (the exercise note back on): the exercise note alone, no meal.
        later = EXERCISE_AT + timedelta(hours=1)
        await store.set_reminder(ADA, "exercise", later, enabled=True)
        person = await store.set_reminder(ADA, "meal", later, enabled=False)
        assert not person.evening_merged
        assert await _due(store, EXERCISE_AT + timedelta(days=1)) == {"exercise": None}
    finally:
        await store.close()


async def test_an_early_release_of_the_exercise_note_carries_the_meal_too(
    db: TestDatabase,
) -> None:
    """Levelling (bot/levelling.py) may release the exercise note minutes early: in evening
    mode that delivery carries tonight's meal idea like the one made at its minute."""
    store = await db.open_store()
    try:
        await _ready(store)
        await store.set_evening_message(ADA, True, NOW)
        early = EXERCISE_AT - timedelta(minutes=10)
        release = Release("exercise", int(EXERCISE_AT.timestamp()), 1)
        assert await store.materialize_early(early, [release], choose_meal=_rotation) == [1]
        export = await store.export_person(ADA)
        assert export is not None
        [delivery] = export["deliveries"]
        assert (delivery["kind"], delivery["meal_id"]) == ("exercise", "idea-1")
    finally:
        await store.close()
