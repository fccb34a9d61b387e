"""The inbox on its own: durable, de-duplicated, ordered, forgetful once handled."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select, text

from bot.storage import Store, create_engine, upgrade_to_head
from bot.storage.inbox import KEEP_HANDLED, MAX_ATTEMPTS, IncomingUpdate
from bot.storage.migrate import alembic_config
from bot.storage.models import INBOX
from tests.pg import TestDatabase

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ADA, BOB = 4242, 5151


def incoming(update_id: int, chat_id: int | None = ADA, text: str = "hi") -> IncomingUpdate:
    payload = {"update_id": update_id, "message": {"text": text, "chat": {"id": chat_id}}}
    return IncomingUpdate(update_id, chat_id, payload)


async def raw_rows(store: Store) -> list[dict[str, object]]:
    async with store.engine.connect() as connection:
        result = await connection.execute(select(INBOX).order_by(INBOX.c.update_id))
        return [dict(row._mapping) for row in result]


async def test_updates_come_back_in_update_id_order_once_each(store: Store) -> None:
    inbox = store.inbox
    await inbox.store([incoming(12), incoming(10, BOB, "¹²³ 🌙")], NOW)
    # Telegram re-delivers what was not confirmed: the same ids are stored once.
    await inbox.store([incoming(10, BOB, "¹²³ 🌙"), incoming(11), incoming(12)], NOW)
    batch = await inbox.next_batch()
    assert [item.update_id for item in batch] == [10, 11, 12]
    assert batch[0].payload["message"]["text"] == "¹²³ 🌙"
    assert [item.attempts for item in batch] == [0, 0, 0]
    assert [item.update_id for item in await inbox.next_batch(limit=2)] == [10, 11]


async def test_a_handled_update_is_forgotten_and_never_handled_again(store: Store) -> None:
    inbox = store.inbox
    await inbox.store([incoming(10, text="my secret"), incoming(11)], NOW)
    await inbox.mark_done(10, NOW)
    assert [item.update_id for item in await inbox.next_batch()] == [11]
    [done, _pending] = await raw_rows(store)
    assert done["payload"] is None and done["chat_id"] is None and done["status"] == "done"
    # Re-delivered after it was handled (crash before the offset reached Telegram): ignored.
    await inbox.store([incoming(10, text="my secret")], NOW)
    assert [item.update_id for item in await inbox.next_batch()] == [11]
    assert not await inbox.count_attempt(10, NOW)  # nothing pending by that id
    assert await inbox.counts() == {"pending": 1, "done": 1, "failed": 0}


async def test_an_update_that_outlived_every_attempt_is_given_up(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = store.inbox
    await inbox.store([incoming(10, text="poison"), incoming(11)], NOW)
    for _ in range(MAX_ATTEMPTS):  # each process began handling it, then died
        assert await inbox.count_attempt(10, NOW)
    [item, _] = await inbox.next_batch()
    assert item.attempts == MAX_ATTEMPTS
    with caplog.at_level(logging.ERROR):
        assert not await inbox.count_attempt(10, NOW)
    assert [item.update_id for item in await inbox.next_batch()] == [11]
    [row, _] = await raw_rows(store)
    assert row["status"] == "failed" and row["payload"] is None and row["chat_id"] is None
    assert "update 10" in caplog.text and "poison" not in caplog.text


async def test_prune_keeps_pending_updates_whatever_their_age(store: Store) -> None:
    inbox = store.inbox
    await inbox.store([incoming(10), incoming(11), incoming(12)], NOW)
    await inbox.mark_done(10, NOW)
    await inbox.mark_done(11, NOW + timedelta(hours=2))
    assert await inbox.prune(NOW + KEEP_HANDLED) == 0
    assert await inbox.prune(NOW + KEEP_HANDLED + timedelta(hours=1)) == 1
    assert [row["update_id"] for row in await raw_rows(store)] == [11, 12]
    assert await inbox.prune(NOW + timedelta(days=400)) == 1
    assert [row["update_id"] for row in await raw_rows(store)] == [12]


async def test_deleting_a_person_erases_their_updates_up_to_the_request(store: Store) -> None:
    inbox = store.inbox
    await store.ensure_person(ADA, NOW)
    await inbox.store([incoming(10), incoming(11, BOB), incoming(12), incoming(13)], NOW)
    # 12 is the "Yes, erase it" press being handled; 13 came after it and is still to answer.
    assert await store.delete_person(ADA, inbox_through=12)
    assert [(r["update_id"], r["chat_id"]) for r in await raw_rows(store)] == [(11, BOB), (13, ADA)]
    await store.delete_person(ADA)
    assert [r["update_id"] for r in await raw_rows(store)] == [11]


async def test_migration_0004_erases_what_groups_had_stored(db: TestDatabase) -> None:
    """Settings are private-only now: a group's rows could not be seen or erased by anyone."""
    engine = create_engine(db.url, schema=db.schema)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.upgrade(alembic_config(c), "0002"))
            for chat_id in (ADA, -ADA, -1_000_000_000_000 - ADA):
                await connection.execute(
                    text(
                        "INSERT INTO people (chat_id, subscribed, created_at, updated_at) "
                        "VALUES (:chat_id, true, :now, :now)"
                    ),
                    {"chat_id": chat_id, "now": NOW.replace(tzinfo=None)},
                )
                await connection.execute(
                    text(
                        "INSERT INTO reminders (chat_id, kind, offset_minutes) "
                        "VALUES (:chat_id, 'meal', 240)"
                    ),
                    {"chat_id": chat_id},
                )
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            for table in ("people", "reminders"):
                rows = await connection.scalars(text(f"SELECT chat_id FROM {table}"))
                assert list(rows) == [ADA]
    finally:
        await engine.dispose()


async def test_replicas_begin_each_update_once_and_take_over_a_dead_ones(store: Store) -> None:
    """Two workers on one inbox (replicas): each pending update is begun by exactly one, a
    live owner's update is never taken, a dead owner's is, once its heartbeat is old."""
    from bot.storage import Claimant

    dead_after = timedelta(seconds=8)
    await store.heartbeat("replica-a", NOW)
    await store.heartbeat("replica-b", NOW)
    await store.inbox.store([incoming(n) for n in range(1, 7)], NOW)
    a, b = (Claimant(owner, NOW - dead_after) for owner in ("replica-a", "replica-b"))
    seen_by_both = await store.inbox.next_batch(10, claimant=a)
    assert seen_by_both == await store.inbox.next_batch(10, claimant=b)
    # Both race for everything; A's write lands first on 1-3, B's on 4-6 and then the rest.
    won_by_a = await store.inbox.begin(seen_by_both[:3], NOW, claimant=a)
    won_by_b = await store.inbox.begin(seen_by_both, NOW, claimant=b)
    again_by_a = await store.inbox.begin(seen_by_both, NOW, claimant=a)
    assert [u.update_id for u in won_by_a] == [1, 2, 3]
    assert [u.update_id for u in won_by_b] == [4, 5, 6]
    assert again_by_a == []
    assert await store.inbox.next_batch(10, claimant=a) == []  # nothing left that A may begin
    # B dies (no more heartbeats); A keeps beating. After dead_after, B's pending are A's.
    later = NOW + dead_after + timedelta(seconds=1)
    await store.heartbeat("replica-a", later)
    a_later = Claimant("replica-a", later - dead_after)
    orphans = await store.inbox.next_batch(10, claimant=a_later)
    assert [u.update_id for u in orphans] == [4, 5, 6]
    taken = await store.inbox.begin(orphans, later, claimant=a_later)
    assert [(u.update_id, u.attempts) for u in taken] == [(4, 1), (5, 1), (6, 1)]
