"""Storage: migrations, the Store API and its scheduling rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Integer, MetaData, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import (
    DeliveryStatus,
    Person,
    SendOutcome,
    Store,
    TickCheck,
    create_engine,
    dialects,
    open_store,
    upgrade_to_head,
)
from bot.storage.migrate import HEAD_REVISION, alembic_config, at_head
from bot.storage.models import DELIVERIES, PEOPLE, REMINDERS, Base
from bot.timezones import UnknownTimezone
from tests.pg import TestDatabase

OFFSETS = {"meal": 240, "exercise": 180, "wind_down": 60}
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CHAT = 1001
OTHER = 2002
OWNER = "test-dispatcher"
# Monday 10 March 2025, noon in Berlin (CET, UTC+1).
NOON = datetime(2025, 3, 10, 12, 0, tzinfo=BERLIN).astimezone(UTC)


def berlin(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def never_chosen(diet: str, recent: Any) -> str | None:
    return None


@pytest.fixture
async def store(db: TestDatabase) -> AsyncIterator[Store]:
    opened = await db.open_store(OFFSETS)
    try:
        yield opened
    finally:
        await opened.close()


async def ready_person(
    store: Store, chat_id: int = CHAT, *, tz: str = "Europe/Berlin", now: datetime = NOON
) -> Person:
    await store.ensure_person(chat_id, now)
    await store.set_timezone(chat_id, tz, now)
    await store.set_bedtime(chat_id, time(22, 30), now)
    return await store.subscribe(chat_id, now)


def next_fire(person: Person, kind: str) -> datetime | None:
    setting = person.reminder(kind)
    assert setting is not None
    return setting.next_fire_at


async def sent_delivery(store: Store, now: datetime, chat_id: int = CHAT) -> int:
    """Materialise what is due at ``now`` and pretend Telegram accepted it; the delivery id."""
    await store.materialize_due(
        now, grace=timedelta(minutes=30), limit=100, choose_meal=lambda d, r: "salmon-rice"
    )
    claim = await store.claim_deliveries(now, owner=OWNER, grace=timedelta(minutes=30), limit=100)
    mine = [d for d in claim.claimed if d.chat_id == chat_id]
    assert len(mine) == 1
    await store.record_outcomes(
        OWNER, [SendOutcome(d.id, "sent", now, telegram_message_id=7) for d in claim.claimed]
    )
    return mine[0].id


# --- migrations --------------------------------------------------------------------------


async def test_migrations_create_the_directory_apply_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "not" / "there" / "bot.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    for _ in range(2):  # the second start-up finds everything at head and changes nothing
        store = await open_store(url, default_offsets=OFFSETS)
        try:
            async with store.engine.connect() as connection:
                version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
                journal = await connection.scalar(text("PRAGMA journal_mode"))
                foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
                synchronous = await connection.scalar(text("PRAGMA synchronous"))
            await store.ensure_person(CHAT, NOON)
        finally:
            await store.close()
        assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert journal == "wal"
        assert foreign_keys == 1
        assert synchronous == 1  # NORMAL
    assert path.exists()


def test_the_head_revision_the_start_up_checks_is_alembics_head() -> None:
    # A start on a database at HEAD_REVISION skips Alembic; a migration added without moving
    # HEAD_REVISION would then never run on existing databases.
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


async def test_a_database_behind_head_is_migrated_and_one_at_head_is_only_read(
    db: TestDatabase,
) -> None:
    store = await db.open_store(OFFSETS)
    try:
        async with store.engine.begin() as connection:
            assert await connection.run_sync(at_head)
            await connection.execute(text("UPDATE alembic_version SET version_num = '0008_diary'"))
            assert not await connection.run_sync(at_head)
            await connection.execute(text("DROP TABLE alembic_version"))
            assert not await connection.run_sync(at_head)
    finally:
        await store.close()


async def test_relative_sqlite_path_creates_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite+aiosqlite:///./data/x.sqlite3", default_offsets=OFFSETS)
    await store.close()
    assert (tmp_path / "data" / "x.sqlite3").exists()


async def test_migrations_match_the_models(db: TestDatabase) -> None:
    """Autogenerate finds nothing to do after upgrade head: migrations and models can't drift."""
    store = await db.open_store(OFFSETS)

    def diff(connection: Connection, metadata: MetaData) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    # The comparison is live: a column that only the models have is reported.
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["people"].append_column(Column("shoe_size", Integer))
    try:
        async with store.engine.connect() as connection:
            assert await connection.run_sync(diff, Base.metadata) == []
            drift = await connection.run_sync(diff, drifted)
    finally:
        await store.close()
    assert [entry[0] for entry in drift] == ["add_column"]


async def _snooze_index(connection: AsyncConnection) -> tuple[str, str]:
    """``ix_deliveries_snoozed_from``'s definition, and the plan of the lookup the foreign key
    ``deliveries.snoozed_from`` makes when a delivery is deleted (``snoozed_from = ?``)."""
    lookup = "SELECT id FROM deliveries WHERE snoozed_from = 42"
    if connection.dialect.name == "sqlite":
        definition = await connection.scalar(
            text("SELECT sql FROM sqlite_master WHERE name = 'ix_deliveries_snoozed_from'")
        )
        plan = (await connection.execute(text(f"EXPLAIN QUERY PLAN {lookup}"))).all()
        return str(definition), " ".join(str(row[-1]) for row in plan)
    definition = await connection.scalar(
        text(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexname = 'ix_deliveries_snoozed_from'"
        )
    )  # this test's schema: other tests' schemas on the server may be at other revisions
    await connection.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table
    plan = (await connection.execute(text(f"EXPLAIN {lookup}"))).scalars().all()
    return str(definition), " ".join(str(line) for line in plan)


async def test_migration_0010_makes_the_snooze_index_partial_and_it_still_serves_the_key(
    db: TestDatabase,
) -> None:
    """Only snoozes are indexed (most nightly INSERTs skip that B-tree), and the foreign key's
    ``snoozed_from = ?`` lookup still uses the index on SQLite and PostgreSQL."""
    engine = create_engine(db.url, schema=db.schema)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda c: command.upgrade(alembic_config(c), "0009_evening_message")
            )
            before, _ = await _snooze_index(connection)
        await upgrade_to_head(engine)
        async with engine.begin() as connection:
            after, plan = await _snooze_index(connection)
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda c: command.downgrade(alembic_config(c), "0009_evening_message")
            )
            downgraded, _ = await _snooze_index(connection)
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()
    assert "WHERE" not in before.upper() and "WHERE" not in downgraded.upper()
    assert "snoozed_from IS NOT NULL" in after
    assert "ix_deliveries_snoozed_from" in plan


async def test_two_stores_can_open_the_same_database(db: TestDatabase) -> None:
    first, second = await asyncio.gather(db.open_store(OFFSETS), db.open_store(OFFSETS))
    try:
        await first.ensure_person(CHAT, NOON)
        assert await second.get_person(CHAT) is not None
    finally:
        await first.close()
        await second.close()


# --- people ------------------------------------------------------------------------------


async def test_person_round_trip(store: Store) -> None:
    assert await store.get_person(CHAT) is None
    created = await store.ensure_person(CHAT, NOON)
    assert created == Person(
        chat_id=CHAT,
        timezone=None,
        bedtime=None,
        weekend_bedtime=None,
        diet="omnivore",
        subscribed=False,
        paused_until=None,
        blocked=False,
        created_at=NOON,
        reminders=(),
    )
    assert not created.ready
    later = NOON + timedelta(minutes=5)
    await store.set_timezone(CHAT, "UTC+05:30", later)
    await store.set_bedtime(CHAT, time(23, 15), later)
    await store.set_bedtime(CHAT, time(0, 45), later, weekend=True)
    await store.set_diet(CHAT, "pescatarian", later)
    person = await store.subscribe(CHAT, later)
    assert person == await store.get_person(CHAT)
    assert person.ready and person.subscribed and not person.blocked
    assert (person.timezone, person.bedtime, person.weekend_bedtime, person.diet) == (
        "UTC+05:30",
        time(23, 15),
        time(0, 45),
        "pescatarian",
    )
    assert person.created_at == NOON and person.created_at.tzinfo is UTC
    assert [(r.kind, r.enabled, r.offset_minutes) for r in person.reminders] == [
        ("meal", True, 240),
        ("exercise", True, 180),
        ("wind_down", True, 60),
    ]
    for reminder in person.reminders:
        assert reminder.next_fire_at is not None and reminder.next_fire_at.tzinfo is UTC
    with pytest.raises(FrozenInstanceError):
        person.diet = "vegetarian"  # type: ignore[misc]
    assert (await store.ensure_person(CHAT, later)) == person  # existing: unchanged
    cleared = await store.clear_weekend_bedtime(CHAT, later)
    assert cleared.weekend_bedtime is None


async def test_invalid_settings_are_refused(store: Store) -> None:
    await store.ensure_person(CHAT, NOON)
    with pytest.raises(UnknownTimezone):
        await store.set_timezone(CHAT, "Mars/Olympus_Mons", NOON)
    with pytest.raises(ValueError, match="diet"):
        await store.set_diet(CHAT, "carnivore", NOON)
    with pytest.raises(ValueError, match="kind"):
        await store.set_reminder(CHAT, "yoga", NOON, enabled=True)
    with pytest.raises(ValueError, match="offset"):
        await store.set_reminder(CHAT, "meal", NOON, offset_minutes=721)
    with pytest.raises(ValueError, match="aware"):
        await store.set_diet(CHAT, "vegetarian", NOON.replace(tzinfo=None))
    person = await store.get_person(CHAT)
    assert person is not None and person.timezone is None and person.diet == "omnivore"


async def test_setters_create_unknown_people(store: Store) -> None:
    """A stale settings button after /deletedata must not crash: the person is created."""
    person = await store.clear_weekend_bedtime(OTHER, NOON)
    assert person.chat_id == OTHER and not person.subscribed


async def test_concurrent_first_contact_creates_one_person(store: Store) -> None:
    people = await asyncio.gather(*(store.ensure_person(CHAT, NOON) for _ in range(8)))
    assert {p.chat_id for p in people} == {CHAT}
    assert (await store.stats())["people"] == 1


# --- scheduling --------------------------------------------------------------------------


async def test_subscribing_schedules_tonight_in_local_time(store: Store) -> None:
    person = await ready_person(store)
    assert next_fire(person, "meal") == berlin(10, 18, 30)
    assert next_fire(person, "exercise") == berlin(10, 19, 30)
    assert next_fire(person, "wind_down") == berlin(10, 21, 30)


async def test_nothing_is_scheduled_until_ready_and_subscribed(store: Store) -> None:
    await store.ensure_person(CHAT, NOON)
    person = await store.subscribe(CHAT, NOON)
    assert person.subscribed and not person.ready
    assert all(r.next_fire_at is None for r in person.reminders)
    person = await store.set_timezone(CHAT, "Europe/Berlin", NOON)
    assert all(r.next_fire_at is None for r in person.reminders)
    person = await store.set_bedtime(CHAT, time(22, 30), NOON)
    assert next_fire(person, "meal") == berlin(10, 18, 30)

    await store.ensure_person(OTHER, NOON)
    await store.set_timezone(OTHER, "Europe/Berlin", NOON)
    person = await store.set_bedtime(OTHER, time(22, 30), NOON)
    assert person.ready and not person.subscribed and person.reminders == ()


async def test_settings_changes_reschedule(store: Store) -> None:
    await ready_person(store)
    person = await store.set_timezone(CHAT, "America/New_York", NOON)
    assert next_fire(person, "meal") == datetime(2025, 3, 10, 18, 30, tzinfo=NEW_YORK)

    person = await store.set_bedtime(CHAT, time(23, 0), NOON)
    assert next_fire(person, "wind_down") == datetime(2025, 3, 10, 22, 0, tzinfo=NEW_YORK)

    # Friday night is a weekend night: the weekend bedtime applies.
    friday = datetime(2025, 3, 14, 13, 0, tzinfo=NEW_YORK)
    person = await ready_person(store, OTHER, tz="America/New_York", now=friday)
    assert next_fire(person, "wind_down") == datetime(2025, 3, 14, 21, 30, tzinfo=NEW_YORK)
    person = await store.set_bedtime(OTHER, time(0, 30), friday, weekend=True)
    assert next_fire(person, "wind_down") == datetime(2025, 3, 14, 23, 30, tzinfo=NEW_YORK)

    person = await store.set_reminder(CHAT, "meal", NOON, offset_minutes=120)
    assert next_fire(person, "meal") == datetime(2025, 3, 10, 21, 0, tzinfo=NEW_YORK)
    person = await store.set_reminder(CHAT, "meal", NOON, enabled=False)
    assert next_fire(person, "meal") is None
    person = await store.set_reminder(CHAT, "meal", NOON, enabled=True)
    assert next_fire(person, "meal") == datetime(2025, 3, 10, 21, 0, tzinfo=NEW_YORK)


async def test_pause_resume_and_unsubscribe(store: Store) -> None:
    await ready_person(store)
    until = berlin(13, 12)  # skip the nights of Mon, Tue, Wed
    person = await store.pause(CHAT, until, NOON)
    assert person.paused_until == until
    assert next_fire(person, "meal") == berlin(13, 18, 30)
    assert next_fire(person, "wind_down") == berlin(13, 21, 30)

    person = await store.resume(CHAT, NOON)
    assert person.paused_until is None
    assert next_fire(person, "meal") == berlin(10, 18, 30)

    person = await store.unsubscribe(CHAT, NOON)
    assert not person.subscribed
    assert all(r.next_fire_at is None for r in person.reminders)
    # Changing settings while stopped never schedules anything.
    person = await store.set_bedtime(CHAT, time(21, 0), NOON)
    assert all(r.next_fire_at is None for r in person.reminders)
    person = await store.subscribe(CHAT, NOON)
    assert next_fire(person, "wind_down") == berlin(10, 20, 0)


async def test_stop_and_pause_cancel_pending_deliveries(store: Store) -> None:
    await ready_person(store)
    due = berlin(10, 18, 30)
    await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    await store.unsubscribe(CHAT, due)
    claim = await store.claim_deliveries(due, owner=OWNER, grace=timedelta(minutes=30), limit=10)
    assert claim.claimed == ()
    stats = await store.stats()
    assert stats["deliveries_cancelled"] == 1 and stats["deliveries_pending"] == 0


async def claimed_for(
    store: Store, chats: list[int], due: datetime, owner: str = OWNER
) -> dict[int, int]:
    """Materialise what is due and claim it for ``owner``: chat id → claimed delivery id."""
    await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=100, choose_meal=never_chosen
    )
    claim = await store.claim_deliveries(due, owner=owner, grace=timedelta(minutes=30), limit=100)
    claimed = {d.chat_id: d.id for d in claim.claimed}
    assert sorted(claimed) == sorted(chats)
    return claimed


async def claimed_meals(store: Store, chats: list[int], due: datetime) -> dict[int, int]:
    """People with only the meal idea on (one delivery each, at 18:30), claimed at ``due``."""
    for chat in chats:
        await ready_person(store, chat)
        for kind in ("exercise", "wind_down"):
            await store.set_reminder(chat, kind, NOON, enabled=False)
    return await claimed_for(store, chats, due)


async def statuses(store: Store) -> dict[int, tuple[str, str | None]]:
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(DELIVERIES.c.id, DELIVERIES.c.status, DELIVERIES.c.last_error)
        )
        return {row.id: (row.status, row.last_error) for row in rows}


async def test_every_stopping_action_cancels_claimed_deliveries_and_the_check_says_why(
    store: Store,
) -> None:
    chats = list(range(3001, 3009))
    due = berlin(10, 18, 30)
    ids = await claimed_meals(store, chats, due)
    erased, blocked, stopped, paused, off, taken, fine, gone_quietly = chats
    await store.delete_person(erased)
    await store.deactivate(blocked, "blocked the bot", due)
    await store.unsubscribe(stopped, due)
    await store.pause(paused, berlin(11, 12), due)
    await store.set_reminder(off, "meal", due, enabled=False)
    assert await store.release_claims(OWNER, [ids[taken]]) == 1
    await store.claim_deliveries(due, owner="other", grace=timedelta(minutes=30), limit=10)
    # gone_quietly: the person turned reminders off some way that left the row claimed.
    async with store.engine.begin() as connection:
        await connection.execute(
            text("UPDATE people SET subscribed = false WHERE chat_id = :c"), {"c": gone_quietly}
        )

    verdicts = await store.check_deliveries(OWNER, list(ids.values()))
    assert {chat: verdicts[ids[chat]] for chat in chats} == {
        erased: "erased",
        blocked: "blocked",
        stopped: "unsubscribed",
        paused: "paused",
        off: "turned off",
        taken: "taken over",
        fine: None,
        gone_quietly: "unsubscribed",
    }
    rows = await statuses(store)
    assert ids[erased] not in rows
    for chat, why in [
        (blocked, "deactivated"),
        (stopped, "unsubscribed"),
        (paused, "paused"),
        (off, "turned off"),
    ]:
        assert rows[ids[chat]] == (
            "cancelled",
            f"cancelled: {why}" if chat != blocked else "cancelled: deactivated: blocked the bot",
        )
    assert rows[ids[taken]][0] == "sending"  # another dispatcher's now: left alone
    assert rows[ids[fine]][0] == "sending"
    assert rows[ids[gone_quietly]] == ("skipped", "not sent: unsubscribed")


async def test_outcomes_are_recorded_only_on_the_owners_rows(store: Store) -> None:
    chats = [3001, 3002, 3003, 3004]
    for chat in chats:
        await ready_person(store, chat)
    due = berlin(10, 18, 30)
    ids = await claimed_for(store, chats, due)
    sent, retry, cancelled_retry, cancelled_sent = chats
    await store.unsubscribe(cancelled_retry, due)
    await store.unsubscribe(cancelled_sent, due)
    later = due + timedelta(seconds=5)
    recorded = await store.record_outcomes(
        OWNER,
        [
            SendOutcome(ids[sent], "sent", due, telegram_message_id=11),
            SendOutcome(ids[retry], "retry", due, retry_at=later, error="NetworkError: x"),
            SendOutcome(ids[cancelled_retry], "retry", due, retry_at=later),
            SendOutcome(ids[cancelled_sent], "sent", due, telegram_message_id=12),
        ],
    )
    assert [(r.status, r.dropped, r.was_cancelled) for r in recorded] == [
        ("sent", None, False),
        ("pending", None, False),
        ("cancelled", "unsubscribed", False),  # a retry after /stop is not rescheduled
        ("sent", None, True),  # it was on the wire: the history says it arrived
    ]
    rows = await statuses(store)
    assert rows[ids[retry]] == ("pending", "NetworkError: x")
    # Someone else's outcome touches nothing.
    assert [
        r.status
        for r in await store.record_outcomes("other", [SendOutcome(ids[retry], "sent", due)])
    ] == [None]
    claim = await store.claim_deliveries(
        later, owner="other", grace=timedelta(minutes=30), limit=10
    )
    assert [d.id for d in claim.claimed] == [ids[retry]]


async def test_settle_records_and_checks_in_one_round_as_the_two_calls_would(
    store: Store,
) -> None:
    chats = [3001, 3002, 3003, 3004]
    due = berlin(10, 18, 30)
    ids = await claimed_meals(store, chats, due)
    sent, retry, fine, gone_quietly = chats
    async with store.engine.begin() as connection:  # left claimed, as in the test above
        await connection.execute(
            text("UPDATE people SET subscribed = false WHERE chat_id = :c"), {"c": gone_quietly}
        )
    later = due + timedelta(seconds=5)
    verdicts, recorded = await store.settle(
        OWNER,
        [ids[fine], ids[gone_quietly]],
        [
            SendOutcome(ids[sent], "sent", due, telegram_message_id=11),
            SendOutcome(ids[retry], "retry", due, retry_at=later, error="NetworkError: x"),
        ],
    )
    assert verdicts == {ids[fine]: None, ids[gone_quietly]: "unsubscribed"}
    assert [(r.delivery_id, r.status) for r in recorded] == [
        (ids[sent], "sent"),
        (ids[retry], "pending"),
    ]
    rows = await statuses(store)
    assert rows[ids[sent]] == ("sent", None)
    assert rows[ids[retry]] == ("pending", "NetworkError: x")
    assert rows[ids[fine]] == ("sending", None)
    assert rows[ids[gone_quietly]] == ("skipped", "not sent: unsubscribed")
    # Another owner's round touches nothing and is told so.
    others, mine = await store.settle("other", [ids[fine]], [SendOutcome(ids[fine], "sent", due)])
    assert (others, [r.status for r in mine]) == ({ids[fine]: "taken over"}, [None])


async def test_anything_due_sees_due_reminders_and_due_pending_deliveries_only(
    store: Store,
) -> None:
    await ready_person(store)
    for kind in ("exercise", "wind_down"):
        await store.set_reminder(CHAT, kind, NOON, enabled=False)
    meal = berlin(10, 18, 30)
    assert not await store.anything_due(NOON)
    assert not await store.anything_due(meal - timedelta(seconds=1))
    assert await store.anything_due(meal)  # the reminder
    await store.materialize_due(
        meal, grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    assert await store.anything_due(meal)  # its pending delivery
    (claimed,) = (
        await store.claim_deliveries(meal, owner=OWNER, grace=timedelta(minutes=30), limit=10)
    ).claimed
    assert not await store.anything_due(meal)  # claimed: nothing left to do
    retry_at = meal + timedelta(minutes=1)
    await store.record_outcomes(OWNER, [SendOutcome(claimed.id, "retry", meal, retry_at=retry_at)])
    assert not await store.anything_due(retry_at - timedelta(seconds=1))
    assert await store.anything_due(retry_at)


async def test_dead_dispatchers_claims_go_back_to_pending_live_ones_never(store: Store) -> None:
    await ready_person(store, 3001)
    await ready_person(store, 3002)
    due = berlin(10, 18, 30)
    await store.heartbeat("dead", due)
    await store.heartbeat("alive", due)
    await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=100, choose_meal=never_chosen
    )
    await store.claim_deliveries(due, owner="dead", grace=timedelta(minutes=30), limit=1)
    await store.claim_deliveries(due, owner="alive", grace=timedelta(minutes=30), limit=1)
    ten = timedelta(seconds=10)
    # Claimed, so nothing is due; nobody is silent for 10 s yet.
    assert await store.tick_check(due + ten, ten) == TickCheck(due=False, dead_claims=False)
    assert (await store.release_dead_claims(due + ten, ten)).released == 0
    await store.heartbeat("alive", due + timedelta(seconds=9))
    eleven = due + timedelta(seconds=11)
    assert await store.tick_check(eleven, ten) == TickCheck(due=False, dead_claims=True)
    dead = await store.release_dead_claims(eleven, ten)
    assert (dead.released, dead.owners) == (1, ("dead",))
    assert await store.tick_check(eleven, ten) == TickCheck(due=True, dead_claims=False)
    async with store.engine.connect() as connection:
        owners = (await connection.execute(text("SELECT owner FROM dispatchers"))).scalars().all()
    assert owners == ["alive"]
    assert sorted(status for status, _ in (await statuses(store)).values()) == [
        "pending",
        "sending",
    ]
    assert await store.retire_dispatcher("alive") == 1
    assert [status for status, _ in (await statuses(store)).values()] == ["pending", "pending"]


async def test_a_materialised_night_is_not_repeated_after_a_later_bedtime(store: Store) -> None:
    await ready_person(store)
    result = await store.materialize_due(
        berlin(10, 18, 30), grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    assert result.materialized == 1
    # At 18:40 the person moves bedtime to 23:00: tonight's meal would now be at 19:00, but
    # tonight's meal reminder already exists, so the next one is tomorrow's.
    person = await store.set_bedtime(CHAT, time(23, 0), berlin(10, 18, 40))
    assert next_fire(person, "meal") == berlin(11, 19, 0)
    assert next_fire(person, "exercise") == berlin(10, 20, 0)  # not yet materialised


async def test_a_12_hour_reminder_is_not_lost_when_its_fire_time_crosses_noon(
    store: Store,
) -> None:
    """Saturday's reminder (bed Sun 00:30) fires Sat 12:30; Sunday's (bed 23:30) Sun 11:30.

    Filed by fire time both look like "Saturday night"; filed by bedtime they are two nights.
    """
    friday_noon = berlin(14, 12, 0)  # 2025-03-14 is a Friday
    await store.ensure_person(CHAT, friday_noon)
    await store.set_timezone(CHAT, "Europe/Berlin", friday_noon)
    await store.set_bedtime(CHAT, time(23, 30), friday_noon)
    await store.set_bedtime(CHAT, time(0, 30), friday_noon, weekend=True)
    await store.subscribe(CHAT, friday_noon)
    person = await store.set_reminder(CHAT, "meal", friday_noon, offset_minutes=720)
    # Friday and Saturday nights use the weekend bedtime, Sunday night the weekday one.
    expected = [berlin(14, 12, 30), berlin(15, 12, 30), berlin(16, 11, 30), berlin(17, 11, 30)]
    assert next_fire(person, "meal") == expected[0]
    for due, following in pairwise(expected):
        await store.materialize_due(
            due, grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
        )
        after = await store.get_person(CHAT)
        assert after is not None
        assert next_fire(after, "meal") == following


async def test_a_due_occurrence_survives_a_settings_change_before_the_tick(store: Store) -> None:
    await ready_person(store)
    # 18:30:02: the meal reminder is due but no tick has run yet; a change of diet must not
    # push it to tomorrow.
    person = await store.set_diet(CHAT, "vegetarian", berlin(10, 18, 30) + timedelta(seconds=2))
    assert next_fire(person, "meal") == berlin(10, 18, 30)


async def test_materialize_advances_and_remembers_meals(store: Store) -> None:
    await ready_person(store)
    result = await store.materialize_due(
        berlin(10, 18, 30), grace=timedelta(minutes=30), limit=10, choose_meal=lambda d, r: "x"
    )
    assert (result.claimed, result.materialized, result.stale) == (1, 1, ())
    person = await store.get_person(CHAT)
    assert person is not None and next_fire(person, "meal") == berlin(11, 18, 30)
    exported = await store.export_person(CHAT)
    assert exported is not None
    assert exported["person"]["recent_meals"] == ["x"]
    assert [d["meal_id"] for d in exported["deliveries"]] == ["x"]


async def test_reminders_sharing_a_schedule_in_one_batch_keep_their_own_pause(
    store: Store,
) -> None:
    """materialize_due answers the schedule once per distinct (zone, bedtimes, offset, pause,
    last night, start): two people with the same bedtime differ here only by a pause (set
    behind the Store's back, so the due row stays due), and each gets their own next night."""
    await ready_person(store, CHAT)
    await ready_person(store, OTHER)
    async with store.engine.begin() as connection:
        await connection.execute(
            PEOPLE.update().where(PEOPLE.c.chat_id == OTHER).values(paused_until=berlin(12, 12))
        )
    result = await store.materialize_due(
        berlin(10, 18, 30), grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    assert result.claimed == 2
    mine, theirs = await store.get_person(CHAT), await store.get_person(OTHER)
    assert mine is not None and theirs is not None
    assert next_fire(mine, "meal") == berlin(11, 18, 30)
    assert next_fire(theirs, "meal") == berlin(12, 18, 30)


async def test_unique_night_backstop(store: Store) -> None:
    """Even if next_fire_at were reset to an already materialised instant, no second row."""
    await ready_person(store)
    due = berlin(10, 18, 30)
    await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    async with store.engine.begin() as connection:
        await connection.execute(
            REMINDERS.update().where(REMINDERS.c.kind == "meal").values(next_fire_at=due)
        )
    again = await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    assert (again.claimed, again.materialized) == (1, 0)
    async with store.engine.connect() as connection:
        rows = (await connection.execute(select(DELIVERIES.c.id))).all()
    assert len(rows) == 1


async def test_backstop_counts_only_the_rows_inserted_in_a_mixed_batch(store: Store) -> None:
    """One batch with a night already materialised and a new one: one created, not two or
    zero (SQLite counts the driver's row changes, PostgreSQL the RETURNING rows)."""
    await ready_person(store)
    await ready_person(store, OTHER)
    due = berlin(10, 18, 30)
    first = await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=1, choose_meal=never_chosen
    )
    assert (first.claimed, first.materialized) == (1, 1)
    async with store.engine.begin() as connection:
        await connection.execute(
            REMINDERS.update()
            .where(REMINDERS.c.kind == "meal", REMINDERS.c.chat_id == CHAT)
            .values(next_fire_at=due)
        )
    mixed = await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    assert (mixed.claimed, mixed.materialized) == (2, 1)
    async with store.engine.connect() as connection:
        rows = (await connection.execute(select(DELIVERIES.c.chat_id))).scalars().all()
    assert sorted(rows) == sorted([CHAT, OTHER])


# --- blocking ----------------------------------------------------------------------------


async def test_deactivate_then_talking_again_reactivates(store: Store) -> None:
    await ready_person(store)
    await store.deactivate(CHAT, "Forbidden: bot was blocked by the user", NOON)
    person = await store.get_person(CHAT)
    assert person is not None and person.blocked and person.subscribed
    assert all(r.next_fire_at is None for r in person.reminders)
    # Scheduling changes while blocked schedule nothing... until they talk to us again,
    # which every user action implies.
    person = await store.ensure_person(CHAT, NOON)
    assert not person.blocked
    assert next_fire(person, "meal") == berlin(10, 18, 30)
    await store.deactivate(OTHER, "chat not found", NOON)  # unknown chat: nothing happens
    assert await store.get_person(OTHER) is None


# --- /mydata and /deletedata --------------------------------------------------------------


async def test_export_is_complete_and_json_able(store: Store) -> None:
    await ready_person(store)
    delivery_id = await sent_delivery(store, berlin(10, 18, 30))
    exported = await store.export_person(CHAT)
    assert exported is not None
    json.dumps(exported)  # no default= needed
    assert exported["person"]["timezone"] == "Europe/Berlin"
    assert exported["person"]["bedtime"] == "22:30"
    assert {r["kind"] for r in exported["reminders"]} == set(OFFSETS)
    assert exported["deliveries"][0]["id"] == delivery_id
    assert exported["deliveries"][0]["status"] == "sent"
    assert exported["deliveries"][0]["due_at"] == berlin(10, 18, 30).isoformat()
    assert await store.export_person(OTHER) is None


async def test_delete_removes_everything(store: Store) -> None:
    await ready_person(store)
    await ready_person(store, OTHER)
    delivery_id = await sent_delivery(store, berlin(10, 18, 30))
    await store.snooze(delivery_id, CHAT, berlin(10, 18, 31), 15)
    assert await store.delete_person(CHAT)
    assert await store.get_person(CHAT) is None
    assert await store.export_person(CHAT) is None
    assert await store.get_delivery(delivery_id, CHAT) is None
    async with store.engine.connect() as connection:
        for table in (REMINDERS, DELIVERIES):
            chats = (await connection.execute(select(table.c.chat_id).distinct())).scalars().all()
            assert list(chats) == [OTHER]
    assert not await store.delete_person(CHAT)
    assert await store.get_person(OTHER) is not None


# --- buttons on a delivered reminder ---------------------------------------------------------


async def test_deliveries_are_only_visible_to_their_chat(store: Store) -> None:
    await ready_person(store)
    await ready_person(store, OTHER)
    now = berlin(10, 18, 30)
    delivery_id = await sent_delivery(store, now)
    view = await store.get_delivery(delivery_id, CHAT)
    assert view is not None
    assert (view.chat_id, view.kind, view.status, view.meal_id) == (
        CHAT,
        "meal",
        "sent",
        "salmon-rice",
    )
    assert view.due_at == now and view.sent_at == now
    # Forged callback data: someone else's id gets nothing and changes nothing.
    assert await store.get_delivery(delivery_id, OTHER) is None
    assert not await store.mark_done(delivery_id, OTHER, now)
    assert await store.snooze(delivery_id, OTHER, now, 15) is None
    assert await store.turn_off_from_delivery(delivery_id, OTHER, now) is None
    assert await store.get_delivery(10**12, CHAT) is None
    other = await store.get_person(OTHER)
    assert other is not None and all(r.enabled for r in other.reminders)
    view = await store.get_delivery(delivery_id, CHAT)
    assert view is not None and view.status == "sent"


async def test_done_and_turn_off(store: Store) -> None:
    await ready_person(store)
    now = berlin(10, 18, 30)
    delivery_id = await sent_delivery(store, now)
    assert await store.mark_done(delivery_id, CHAT, now)
    assert await store.mark_done(delivery_id, CHAT, now)  # idempotent
    assert await store.snooze(delivery_id, CHAT, now, 15) is None  # done: nothing to snooze
    assert await store.turn_off_from_delivery(delivery_id, CHAT, now) == "meal"
    person = await store.get_person(CHAT)
    assert person is not None
    setting = person.reminder("meal")
    assert setting is not None and not setting.enabled and setting.next_fire_at is None


async def test_snooze_only_once(store: Store) -> None:
    await ready_person(store)
    now = berlin(10, 18, 30)
    delivery_id = await sent_delivery(store, now)
    results = await asyncio.gather(
        *(store.snooze(delivery_id, CHAT, now + timedelta(seconds=5), 15) for _ in range(5))
    )
    due = [r for r in results if r is not None]
    assert due == [now + timedelta(minutes=15, seconds=5)]
    assert await store.snooze(delivery_id, CHAT, now + timedelta(seconds=6), 15) is None
    view = await store.get_delivery(delivery_id, CHAT)
    assert view is not None and view.status == DeliveryStatus.SNOOZED
    stats = await store.stats()
    assert stats["deliveries_pending"] == 1
    # The snooze is a new delivery with the same meal, due 15 minutes later.
    claim = await store.claim_deliveries(due[0], owner=OWNER, grace=timedelta(minutes=30), limit=10)
    assert [(d.kind, d.meal_id, d.due_at) for d in claim.claimed] == [
        ("meal", "salmon-rice", due[0])
    ]


async def test_done_after_snooze_cancels_the_snooze(store: Store) -> None:
    await ready_person(store)
    now = berlin(10, 18, 30)
    delivery_id = await sent_delivery(store, now)
    assert await store.snooze(delivery_id, CHAT, now, 15) is not None
    assert await store.mark_done(delivery_id, CHAT, now + timedelta(minutes=1))
    stats = await store.stats()
    assert (stats["deliveries_pending"], stats["deliveries_cancelled"]) == (0, 1)


async def test_snooze_refused_after_stop(store: Store) -> None:
    await ready_person(store)
    now = berlin(10, 18, 30)
    delivery_id = await sent_delivery(store, now)
    await store.unsubscribe(CHAT, now)
    assert await store.snooze(delivery_id, CHAT, now, 15) is None


# --- column types ------------------------------------------------------------------------


async def test_naive_datetimes_are_refused_and_aware_ones_normalised(store: Store) -> None:
    plus_two = datetime(2025, 3, 10, 14, 0, tzinfo=ZoneInfo("Africa/Cairo"))
    person = await store.ensure_person(CHAT, plus_two)
    assert person.created_at == plus_two and person.created_at.tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        await store.pause(CHAT, datetime(2025, 3, 12, 12, 0), NOON)


async def test_stats(store: Store) -> None:
    await ready_person(store)
    await store.ensure_person(OTHER, NOON)
    stats = await store.stats()
    assert stats["people"] == 2 and stats["subscribed"] == 1 and stats["blocked"] == 0
    assert stats["reminders_scheduled"] == 3
    assert stats["deliveries_sent"] == 0


async def test_in_memory_sqlite_works_with_concurrent_sessions() -> None:
    store = await open_store("sqlite+aiosqlite:///:memory:", default_offsets=OFFSETS)
    try:
        await asyncio.gather(*(ready_person(store, chat) for chat in range(1, 6)))
        assert (await store.stats())["reminders_scheduled"] == 15
    finally:
        await store.close()


async def test_writers_in_one_process_take_turns_before_sqlite_sees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SQLite's busy handler off, any two of this process's writers meeting inside SQLite
    would fail with "database is locked": the writer lock queues them on the event loop first
    (where the next one starts as the last commits, instead of sleeping between retries)."""
    monkeypatch.setattr(dialects, "SQLITE_BUSY_TIMEOUT_MS", 0)
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    store = await open_store(url, default_offsets=OFFSETS)
    try:
        await asyncio.gather(*(ready_person(store, chat) for chat in range(1, 21)))
        assert (await store.stats())["reminders_scheduled"] == 60
    finally:
        await store.close()


def test_unsupported_url_is_refused() -> None:
    from bot.storage import UnsupportedDatabaseError

    with pytest.raises(UnsupportedDatabaseError):
        create_engine("mysql+aiomysql://localhost/x")


async def test_old_finished_history_is_purged_but_nothing_pending(store: Store) -> None:
    await ready_person(store)
    first_night = berlin(10, 18, 30)
    await sent_delivery(store, first_night)
    # The next night's meal reminder is materialised but never sent: still pending.
    await store.materialize_due(
        berlin(11, 18, 30), grace=timedelta(minutes=30), limit=10, choose_meal=never_chosen
    )
    assert await store.purge_deliveries(first_night) == 0  # strictly older only
    purged = await store.purge_deliveries(berlin(20, 0, 0))
    assert purged == 1
    exported = await store.export_person(CHAT)
    assert exported is not None
    assert [(d["due_at"], d["status"]) for d in exported["deliveries"]] == [
        (berlin(11, 18, 30).isoformat(), "pending")
    ]


# --- a new reminder kind reaches existing subscribers --------------------------------------


async def test_a_kind_added_later_is_backfilled_for_everyone_who_has_reminders(
    db: TestDatabase,
) -> None:
    """A database made while only two kinds existed, then a start-up that knows three."""
    before = {"meal": 240, "wind_down": 60}
    old = await db.open_store(before)
    try:
        await ready_person(old, CHAT)
        await ready_person(old, OTHER)
        await old.unsubscribe(OTHER, NOON)
        await old.ensure_person(3003, NOON)  # never set up: no reminder rows at all
        fourth = await ready_person(old, 4004)
        assert len(fourth.reminders) == 2
    finally:
        await old.close()

    new = await db.open_store(OFFSETS)
    try:
        assert await new.backfill_kinds(NOON) == 3  # CHAT, OTHER, 4004 lacked "exercise"
        subscribed = await new.get_person(CHAT)
        assert subscribed is not None
        exercise = {r.kind: r for r in subscribed.reminders}["exercise"]
        assert exercise.enabled and exercise.offset_minutes == 180
        assert exercise.next_fire_at == berlin(10, 19, 30)  # 22:30 - 3 h, tonight
        assert [r.kind for r in subscribed.reminders] == list(OFFSETS)  # content's order
        unsubscribed = await new.get_person(OTHER)
        assert unsubscribed is not None
        assert {r.kind: r.next_fire_at for r in unsubscribed.reminders}["exercise"] is None
        never = await new.get_person(3003)
        assert never is not None and never.reminders == ()
        assert await new.backfill_kinds(NOON) == 0  # a second start-up adds nothing
    finally:
        await new.close()
