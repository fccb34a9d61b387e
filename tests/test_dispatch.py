"""The postman loop end to end: FakeClock + a real database + PTB over HTTP to FakeBotApi.

Nothing sleeps: time moves only when a test moves the FakeClock, and each tick is awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time as wallclock
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from telegram import Bot
from telegram.ext import ExtBot

from bench.dispatch_day import SimulatedBot
from bench.population import insert_due_people
from bot.capacity import DROPPED, MERGED
from bot.capacity_plan import windows_from
from bot.clock import FakeClock
from bot.content import Content, default_content_dir, load_content
from bot.dispatch import DEAD_AFTER, Dispatcher, TickReport, run_simulated
from bot.fake_telegram import ApiCall, FakeBotApi
from bot.handlers.diary import CHECKIN_KIND, checkin_composer
from bot.levelling import Release
from bot.ratelimit import FairRateLimiter
from bot.storage import Person, Shed, Store
from tests.conftest import TEST_TOKEN
from tests.pg import BACKENDS, TestDatabase, fresh_database

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CHAT = 5001
OTHER = 5002
GRACE = timedelta(minutes=30)


def berlin(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A Berlin wall-clock time in March 2025 (CET, before the DST switch), as UTC."""
    return datetime(2025, 3, day, hour, minute, second, tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(default_content_dir())


def offsets(content: Content) -> dict[str, int]:
    return {kind.kind: kind.default_offset_minutes for kind in content.reminder_kinds}


@dataclass
class Harness:
    db: TestDatabase
    store: Store
    api: FakeBotApi
    bot: Bot
    clock: FakeClock
    content: Content
    dispatcher: Dispatcher

    def new_dispatcher(
        self, store: Store | None = None, *, bot: Any = None, **options: Any
    ) -> Dispatcher:
        return Dispatcher(store or self.store, bot or self.bot, self.content, self.clock, **options)

    async def tick_at(self, moment: datetime) -> TickReport:
        self.clock.set(moment)
        return await self.dispatcher.tick()

    def sends(self, chat_id: int | None = None, *, ok_only: bool = True) -> list[ApiCall]:
        calls = self.api.calls_to("sendMessage", ok_only=ok_only)
        return [c for c in calls if chat_id is None or c.chat_id == chat_id]

    async def person(self, chat_id: int = CHAT) -> Person:
        person = await self.store.get_person(chat_id)
        assert person is not None
        return person

    async def deliveries(self, chat_id: int = CHAT) -> list[dict[str, Any]]:
        exported = await self.store.export_person(chat_id)
        assert exported is not None
        deliveries: list[dict[str, Any]] = exported["deliveries"]
        return deliveries


@pytest.fixture(params=BACKENDS)
async def h(
    request: pytest.FixtureRequest, tmp_path: Path, fake_api: FakeBotApi, content: Content
) -> AsyncIterator[Harness]:
    async with fresh_database(request.param, tmp_path) as db:
        store = await db.open_store(offsets(content))
        try:
            async with Bot(TEST_TOKEN, base_url=fake_api.base_url) as bot:
                clock = FakeClock(berlin(10, 12))  # Monday noon
                dispatcher = Dispatcher(store, bot, content, clock)
                yield Harness(db, store, fake_api, bot, clock, content, dispatcher)
        finally:
            await store.close()


async def sign_up(
    h: Harness,
    chat_id: int = CHAT,
    *,
    tz: str = "Europe/Berlin",
    bedtime: time = time(22, 30),
    only: Sequence[str] | None = None,
    known_to_telegram: bool = True,
) -> Person:
    """A person who set up reminders now; ``only`` switches the other kinds off."""
    now = h.clock.now()
    if known_to_telegram:
        h.api.add_chat(chat_id)
    await h.store.ensure_person(chat_id, now)
    await h.store.set_timezone(chat_id, tz, now)
    await h.store.set_bedtime(chat_id, bedtime, now)
    person = await h.store.subscribe(chat_id, now)
    for kind in h.store.kinds:
        if only is not None and kind not in only:
            person = await h.store.set_reminder(chat_id, kind, now, enabled=False)
    return person


def callback_data(call: ApiCall) -> list[str]:
    markup = call.params["reply_markup"]
    return [button["callback_data"] for row in markup["inline_keyboard"] for button in row]


def delivery_id_of(call: ApiCall) -> int:
    return int(callback_data(call)[0].rsplit(":", 1)[1])


# --- on time, once -----------------------------------------------------------------------


async def test_reminders_fire_exactly_once_at_their_minute(h: Harness) -> None:
    await sign_up(h)
    schedule = {
        berlin(10, 18, 30): "meal",
        berlin(10, 19, 30): "exercise",
        berlin(10, 21, 30): "wind_down",
    }
    moment = berlin(10, 18, 0)
    while moment <= berlin(10, 23, 59):
        for second in (0, 20, 59):  # several ticks within every minute
            await h.tick_at(moment + timedelta(seconds=second))
            expected = [kind for at, kind in schedule.items() if at <= h.clock.now()]
            sent = h.sends(CHAT)
            assert len(sent) == len(expected), f"at {h.clock.now():%H:%M:%S}"
        moment += timedelta(minutes=1)

    sent = h.sends(CHAT)
    for call, kind in zip(sent, schedule.values(), strict=True):
        title = h.content.reminder_kind(kind).title
        assert html.escape(title, quote=False) in call.params["text"]
        assert call.params["parse_mode"] == "HTML"
        delivery_id = delivery_id_of(call)
        assert callback_data(call) == [
            f"rem:done:{delivery_id}",
            f"rem:snooze:{delivery_id}",
            f"rem:why:{delivery_id}",
            f"rem:off:{delivery_id}",
        ]
    deliveries = await h.deliveries()
    assert [(d["kind"], d["status"]) for d in deliveries] == [
        ("meal", "sent"),
        ("exercise", "sent"),
        ("wind_down", "sent"),
    ]
    assert deliveries[0]["meal_id"] is not None
    person = await h.person()
    assert [r.next_fire_at for r in person.reminders] == [
        berlin(11, 18, 30),
        berlin(11, 19, 30),
        berlin(11, 21, 30),
    ]


async def tick_statements(h: Harness) -> tuple[TickReport, list[str]]:
    """One tick of ``h.dispatcher`` at the clock's time, and the SQL it sent (upper case)."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    engine = h.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        report = await h.dispatcher.tick()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return report, statements


async def test_a_tick_with_nothing_due_only_reads(h: Harness) -> None:
    """Almost every tick finds nothing due: it must not take the write lock or row locks
    (one indexed read decides), or a million idle people would cost a write per tick."""
    await sign_up(h)
    await h.tick_at(berlin(10, 17, 0))  # registers the dispatcher, reaps: writes are fine
    h.clock.set(berlin(10, 17, 0, 1))  # within the heartbeat interval
    report, statements = await tick_statements(h)
    assert not report
    assert statements  # it did look
    writes = [
        sql
        for sql in statements
        if sql.startswith(("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE")) or "FOR " in sql
    ]
    assert writes == []
    assert not h.sends()


async def test_an_idle_tick_at_production_cadence_is_one_read(h: Harness) -> None:
    """Production ticks are 5 s apart, more than the heartbeat interval, so each also looks
    for dead dispatchers' claims: that question shares the one read (bench.idle)."""
    await sign_up(h)
    await h.tick_at(berlin(10, 17, 0))  # registers the dispatcher, reaps: writes are fine
    h.clock.set(berlin(10, 17, 0, 5))
    await h.dispatcher.beat()  # the heartbeat task's work, not the tick's
    report, statements = await tick_statements(h)
    assert not report
    [read] = statements
    assert read.startswith("SELECT") and "DISPATCHERS" in read  # it did look for the dead


async def test_a_tick_takes_over_a_dead_dispatchers_claims_and_sends_them(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    due = berlin(10, 18, 30)
    await h.store.heartbeat("crashed", due)
    await h.store.materialize_due(due, grace=GRACE, limit=10, choose_meal=lambda d, r: None)
    claim = await h.store.claim_deliveries(due, owner="crashed", grace=GRACE, limit=10)
    assert len(claim.claimed) == 1
    report = await h.tick_at(due + DEAD_AFTER + timedelta(seconds=1))
    assert (report.taken_over, report.sent) == (1, 1)
    assert len(h.sends(CHAT)) == 1


async def test_a_week_of_meal_ideas_never_repeats(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    for day in range(10, 17):  # Monday 10 to Sunday 16 March, weekend nights included
        report = await h.tick_at(berlin(day, 18, 30))
        assert (report.materialized, report.sent) == (1, 1)
        await h.tick_at(berlin(day, 18, 31))
    meal_ids = [d["meal_id"] for d in await h.deliveries()]
    assert len(meal_ids) == 7 and len(set(meal_ids)) == 7
    for call, meal_id in zip(h.sends(CHAT), meal_ids, strict=True):
        meal = h.content.meal(meal_id)
        assert meal is not None and "omnivore" in meal.diets
        assert html.escape(meal.name, quote=False) in call.params["text"]
    exported = await h.store.export_person(CHAT)
    assert exported is not None and exported["person"]["recent_meals"] == meal_ids


async def test_diet_is_respected(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    await h.store.set_diet(CHAT, "vegetarian", h.clock.now())
    for day in range(10, 14):
        await h.tick_at(berlin(day, 18, 30))
    for delivery in await h.deliveries():
        meal = h.content.meal(delivery["meal_id"])
        assert meal is not None and "vegetarian" in meal.diets


# --- Telegram says no ----------------------------------------------------------------------


async def test_blocked_bot_deactivates_the_person(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    await sign_up(h, OTHER, only=["meal"])
    h.api.block_chat(CHAT)
    report = await h.tick_at(berlin(10, 18, 30))
    assert (report.sent, report.deactivated) == (1, 1)
    person = await h.person()
    assert person.blocked and all(r.next_fire_at is None for r in person.reminders)
    for day in range(11, 14):
        await h.tick_at(berlin(day, 18, 30))
    assert len(h.sends(CHAT, ok_only=False)) == 1  # the one refused attempt, nothing after
    assert len(h.sends(OTHER)) == 4
    assert [d["status"] for d in await h.deliveries()] == ["failed"]


async def test_chat_not_found_deactivates_the_person(h: Harness) -> None:
    # A chat the fake never saw: Telegram answers 400 "chat not found".
    await sign_up(h, only=["wind_down"], known_to_telegram=False)
    report = await h.tick_at(berlin(10, 21, 30))
    assert report.deactivated == 1
    assert (await h.person()).blocked
    await h.tick_at(berlin(11, 21, 30))
    assert len(h.sends(CHAT, ok_only=False)) == 1


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_retries_after_retry_after(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    h.api.fail_next("sendMessage", error_code=429, retry_after=30, chat_id=CHAT)
    report = await h.tick_at(berlin(10, 18, 30))
    assert (report.sent, report.retried) == (0, 1)
    await h.tick_at(berlin(10, 18, 30, 29))
    assert len(h.sends(CHAT, ok_only=False)) == 1
    report = await h.tick_at(berlin(10, 18, 30, 30))
    assert report.sent == 1
    for second in range(31, 60):
        await h.tick_at(berlin(10, 18, 30, second))
    assert len(h.sends(CHAT)) == 1 and len(h.sends(CHAT, ok_only=False)) == 2


async def test_dropped_connections_are_retried_with_backoff(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    h.api.drop_connection_next("sendMessage", times=2, chat_id=CHAT)
    due = berlin(10, 18, 30)
    assert (await h.tick_at(due)).retried == 1
    assert (await h.tick_at(due + timedelta(seconds=4))) == TickReport()  # back-off: 5 s
    assert (await h.tick_at(due + timedelta(seconds=5))).retried == 1
    assert (await h.tick_at(due + timedelta(seconds=14))) == TickReport()  # then 10 s
    assert (await h.tick_at(due + timedelta(seconds=15))).sent == 1
    for minute in range(1, 10):
        await h.tick_at(due + timedelta(minutes=minute))
    assert len(h.sends(CHAT)) == 1 and len(h.sends(CHAT, ok_only=False)) == 3
    assert [(d["status"], d["attempts"]) for d in await h.deliveries()] == [("sent", 3)]


async def test_other_bad_requests_fail_loudly_without_retrying(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_up(h, only=["meal"])
    h.api.fail_next("sendMessage", error_code=400, description="Bad Request: message is too long")
    with caplog.at_level(logging.ERROR, logger="bot.dispatch"):
        report = await h.tick_at(berlin(10, 18, 30))
    assert report.failed == 1
    assert any("message is too long" in r.getMessage().lower() for r in caplog.records)
    for minute in range(1, 40):
        await h.tick_at(berlin(10, 18, 30) + timedelta(minutes=minute))
    assert len(h.sends(CHAT, ok_only=False)) == 1
    assert not (await h.person()).blocked
    await h.tick_at(berlin(11, 18, 30))  # the next night is unaffected
    assert len(h.sends(CHAT)) == 1


async def test_undeliverable_messages_expire_visibly(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_up(h, only=["meal"])
    h.api.drop_connection_next("sendMessage", times=1000)
    with caplog.at_level(logging.WARNING, logger="bot.dispatch"):
        moment, expired = berlin(10, 18, 30), 0
        while moment <= berlin(10, 19, 5):
            expired += (await h.tick_at(moment)).expired
            moment += timedelta(minutes=1)
    assert expired == 1
    assert [d["status"] for d in await h.deliveries()] == ["expired"]
    assert any("expired" in r.getMessage() and str(CHAT) in r.getMessage() for r in caplog.records)


async def test_run_job_logs_a_summary_when_something_happened(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_up(h, only=["meal"])
    context: Any = None  # the JobQueue's CallbackContext is not used
    with caplog.at_level(logging.DEBUG, logger="bot.dispatch"):
        h.clock.set(berlin(10, 18, 0))
        await h.dispatcher.run_job(context)
        await h.dispatcher.idle()
        assert caplog.records == []  # nothing happened, nothing logged
        h.clock.set(berlin(10, 18, 30))
        await h.dispatcher.run_job(context)
        await h.dispatcher.idle()
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert "materialized=1" in record.getMessage() and "sent=1" in record.getMessage()


# --- downtime ------------------------------------------------------------------------------


async def test_long_downtime_skips_stale_reminders_without_a_burst(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_up(h)
    await h.tick_at(berlin(10, 18, 29))
    # The bot is down from 18:29 until 21:30: the meal (3 h late) and exercise (2 h late)
    # reminders are skipped and logged; wind-down, due right now, goes out.
    with caplog.at_level(logging.WARNING, logger="bot.dispatch"):
        report = await h.tick_at(berlin(10, 21, 30))
    assert (report.skipped_stale, report.materialized, report.sent) == (2, 1, 1)
    stale = [r.getMessage() for r in caplog.records if "stale" in r.getMessage()]
    assert len(stale) == 2
    assert all(str(CHAT) in message for message in stale)
    assert any("meal" in m and "3h00m late" in m for m in stale)
    assert any("exercise" in m and "2h00m late" in m for m in stale)
    assert [d["kind"] for d in await h.deliveries()] == ["wind_down"]
    person = await h.person()
    assert [r.next_fire_at for r in person.reminders] == [
        berlin(11, 18, 30),
        berlin(11, 19, 30),
        berlin(11, 21, 30),
    ]


async def test_days_of_downtime_skip_every_missed_night(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    report = await h.tick_at(berlin(13, 18, 0))  # down from Monday noon to Thursday 18:00
    assert (report.skipped_stale, report.sent) == (1, 0)
    assert (await h.person()).reminders[0].next_fire_at == berlin(13, 18, 30)
    assert (await h.tick_at(berlin(13, 18, 30))).sent == 1


async def test_short_downtime_still_sends_once(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    await h.tick_at(berlin(10, 18, 29))
    report = await h.tick_at(berlin(10, 18, 40))  # 10 minutes late, within the grace period
    assert (report.sent, report.skipped_stale) == (1, 0)
    for minute in range(41, 60):
        await h.tick_at(berlin(10, 18, minute))
    assert len(h.sends(CHAT)) == 1


async def claim_as_dead_process(h: Harness, due: datetime, owner: str = "dead") -> int:
    """A process claims the due delivery (its heartbeat at ``due``), then dies unannounced."""
    h.clock.set(due)
    await h.store.heartbeat(owner, due)
    await h.store.materialize_due(due, grace=GRACE, limit=10, choose_meal=lambda d, r: None)
    claim = await h.store.claim_deliveries(due, owner=owner, grace=GRACE, limit=10)
    (delivery,) = claim.claimed
    return delivery.id


async def test_a_killed_process_is_taken_over_within_15_seconds(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    due = berlin(10, 18, 30)
    await claim_as_dead_process(h, due)
    await h.store.close()

    # A new process on the same database, ticking every second of simulated time.
    store = await h.db.open_store(offsets(h.content))
    try:
        dispatcher = h.new_dispatcher(store)
        sent_after: list[int] = []
        for second in range(0, 30):
            h.clock.set(due + timedelta(seconds=second))
            report = await dispatcher.tick()
            if report.sent:
                assert report.taken_over == 1
                sent_after.append(second)
        assert len(sent_after) == 1
        assert DEAD_AFTER.total_seconds() < sent_after[0] <= 15
        assert len(h.sends(CHAT)) == 1
        exported = await store.export_person(CHAT)
        assert exported is not None and exported["deliveries"][0]["status"] == "sent"
    finally:
        await store.close()


async def test_a_live_owners_claim_is_never_taken_however_slow(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    due = berlin(10, 18, 30)
    await claim_as_dead_process(h, due, owner="slow")
    other = h.new_dispatcher()
    for second in range(0, 120):
        h.clock.set(due + timedelta(seconds=second))
        if second % 2 == 0:
            await h.store.heartbeat("slow", h.clock.now())  # its heartbeat task, still running
        assert (await other.tick()).taken_over == 0
    assert h.sends() == []
    assert [d["status"] for d in await h.deliveries()] == ["sending"]
    # Its heartbeat stops: now it is taken over, within the promised 15 s.
    stopped = h.clock.now()
    while not h.sends(CHAT):
        h.clock.advance(timedelta(seconds=1))
        await other.tick()
    assert h.clock.now() - stopped <= timedelta(seconds=15)


async def test_graceful_stop_releases_unsent_claims_for_the_next_process_at_once(
    h: Harness,
) -> None:
    await sign_up(h, only=["meal"])
    due = berlin(10, 18, 30)
    h.clock.set(due)
    first = h.new_dispatcher(owner="first")
    await first.start()
    await h.store.materialize_due(due, grace=GRACE, limit=10, choose_meal=lambda d, r: None)
    await h.store.claim_deliveries(due, owner="first", grace=GRACE, limit=10)
    await first.stop()
    assert [d["status"] for d in await h.deliveries()] == ["pending"]
    second = h.new_dispatcher()
    assert (await second.tick()).sent == 1  # no waiting for a heartbeat to go stale


async def test_stop_abandons_a_send_stuck_on_the_wire_and_releases_its_claim(
    h: Harness,
) -> None:
    await sign_up(h, only=["meal"])
    await sign_up(h, OTHER, only=["meal"])
    stuck = h.api.hold("sendMessage", chat_ids=[CHAT])
    h.clock.set(berlin(10, 18, 30))
    tick = asyncio.create_task(h.dispatcher.tick())
    await h.api.wait_for(lambda: stuck.arrived == 1 and len(h.sends(OTHER)) == 1)
    started = wallclock.monotonic()
    await h.dispatcher.stop(drain_seconds=0.3)
    assert wallclock.monotonic() - started < 3
    report = await tick
    assert (report.sent, report.released) == (1, 1)
    # Given back, not lost: the next process sends it (at least once).
    assert [d["status"] for d in await h.deliveries()] == ["pending"]
    stuck.release()
    assert (await h.new_dispatcher().tick()).sent == 1


# --- buttons -------------------------------------------------------------------------------


async def test_snooze_sends_again_fifteen_minutes_later(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    await h.tick_at(berlin(10, 18, 30))
    (first,) = h.sends(CHAT)
    delivery_id = delivery_id_of(first)
    snoozed_until = await h.store.snooze(delivery_id, CHAT, berlin(10, 18, 32), 15)
    assert snoozed_until == berlin(10, 18, 47)
    assert await h.store.snooze(delivery_id, CHAT, berlin(10, 18, 32), 15) is None
    await h.tick_at(berlin(10, 18, 46, 59))
    assert len(h.sends(CHAT)) == 1
    report = await h.tick_at(berlin(10, 18, 47))
    assert (report.sent, report.materialized) == (1, 0)
    second = h.sends(CHAT)[1]
    assert second.params["text"] == first.params["text"]  # same meal idea
    assert delivery_id_of(second) != delivery_id  # its own buttons
    for minute in range(48, 60):
        await h.tick_at(berlin(10, 18, minute))
    assert len(h.sends(CHAT)) == 2


async def test_one_message_per_chat_per_tick(h: Harness) -> None:
    """Two reminders due together for one chat go out in two ticks, so they keep their order;
    pacing between them is the rate limiter's job (bot/ratelimit.py)."""
    await sign_up(h, only=["meal", "exercise"])
    await h.store.set_reminder(CHAT, "exercise", h.clock.now(), offset_minutes=240)
    due = berlin(10, 18, 30)
    assert (await h.tick_at(due)).sent == 1
    assert (await h.tick_at(due + timedelta(milliseconds=500))).sent == 1
    assert (await h.tick_at(due + timedelta(seconds=1))).sent == 0
    assert {d["kind"] for d in await h.deliveries()} == {"meal", "exercise"}


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_send_waits_for_the_outcomes_before_it_and_shares_their_round(
    h: Harness, monkeypatch: pytest.MonkeyPatch, concurrency: int
) -> None:
    """Crash safety with the record and the next check in one round: when a request reaches
    Telegram, every answered send but those of the other workers is committed, so a SIGKILL
    repeats at most ``max_concurrency`` sends. One worker records each outcome in the same
    transaction as its next delivery's check: one round per send, not two."""
    chats = [CHAT + i for i in range(7)]
    for chat in chats:
        await sign_up(h, chat, only=["meal"])
    rounds: list[tuple[int, int]] = []  # (checks, outcomes) of each round, in order
    committed: list[float] = []  # when each outcome's round committed (the fake's clock)
    settle = h.store.settle  # every round of the dispatcher's workers goes through it

    async def logged_settle(owner: str, ids: Sequence[int], outcomes: Sequence[Any]) -> Any:
        result = await settle(owner, ids, outcomes)
        rounds.append((len(ids), len(outcomes)))
        committed.extend([wallclock.monotonic()] * len(outcomes))
        return result

    monkeypatch.setattr(h.store, "settle", logged_settle)
    h.dispatcher = h.new_dispatcher(max_concurrency=concurrency)

    report = await h.tick_at(berlin(10, 18, 30))

    assert report.sent == len(chats)
    for call in h.sends():
        arrived = sum(1 for other in h.sends() if other.at <= call.at)
        recorded = sum(1 for moment in committed if moment < call.at)
        assert arrived - recorded <= concurrency, (arrived, recorded)
    assert sum(outcomes for _, outcomes in rounds) == len(chats)
    if concurrency == 1:  # check, then (record + next check) x 6, then the last record
        assert rounds == [(1, 0), *[(1, 1)] * (len(chats) - 1), (0, 1)]
    else:
        assert any(checks and outcomes for checks, outcomes in rounds)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_chat_held_back_by_the_limiter_is_rescheduled_without_a_send(
    h: Harness,
) -> None:
    """Through the production limiter: a chat still in a 30 s flood wait gets RetryAfter at
    once (nothing sent to it), its delivery is retried later, and the other chat is served."""
    await sign_up(h, only=["meal"])
    await sign_up(h, OTHER, only=["meal"])
    limiter = FairRateLimiter(30)
    async with ExtBot(TEST_TOKEN, base_url=h.api.base_url, rate_limiter=limiter) as bot:
        dispatcher = Dispatcher(h.store, bot, h.content, h.clock)
        await limiter.budget.hold(CHAT, 30)
        h.clock.set(berlin(10, 18, 30))
        report = await dispatcher.tick()
    assert (report.sent, report.retried) == (1, 1)
    assert h.sends(CHAT, ok_only=False) == [] and len(h.sends(OTHER)) == 1
    assert limiter.stats.deferred == 1
    [delivery] = await h.deliveries()
    assert delivery["status"] == "pending" and "RetryAfter" in (delivery["last_error"] or "")


# --- DST -----------------------------------------------------------------------------------


async def test_fall_back_night_sends_a_repeated_local_time_once(h: Harness) -> None:
    # New York, Sunday 2 November 2025: 01:00-02:00 happens twice (EDT, then EST).
    h.clock.set(datetime(2025, 11, 1, 12, 0, tzinfo=NEW_YORK))
    await sign_up(h, tz="America/New_York", bedtime=time(2, 30), only=["wind_down"])  # 01:30
    first_0130 = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert (await h.person()).reminders[-1].next_fire_at == first_0130
    moment = datetime(2025, 11, 2, 4, 0, tzinfo=UTC)  # 00:00 EDT
    while moment <= datetime(2025, 11, 2, 9, 0, tzinfo=UTC):  # 04:00 EST
        await h.tick_at(moment)
        sent = h.sends(CHAT)
        assert len(sent) == (1 if moment >= first_0130 else 0), f"at {moment}"
        moment += timedelta(minutes=1)
    (delivery,) = await h.deliveries()
    assert delivery["due_at"] == first_0130.isoformat()
    next_night = datetime(2025, 11, 3, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert (await h.person()).reminders[-1].next_fire_at == next_night


# --- several dispatchers -------------------------------------------------------------------


async def test_two_dispatchers_on_one_database_never_double_send(h: Harness) -> None:
    chats = list(range(7000, 7060))
    for chat in chats:
        await sign_up(h, chat, only=["meal", "wind_down"])
    second_store = await h.db.open_store(offsets(h.content))
    try:
        first = h.new_dispatcher(batch_size=7)
        second = h.new_dispatcher(second_store, batch_size=7)
        for moment in (berlin(10, 18, 30), berlin(10, 21, 30), berlin(11, 18, 30)):
            h.clock.set(moment)
            reports = await asyncio.gather(first.tick(), second.tick())
            assert sum(r.sent for r in reports) == len(chats)
    finally:
        await second_store.close()
    per_chat = Counter(call.chat_id for call in h.sends())
    assert per_chat == {chat: 3 for chat in chats}


@pytest.mark.postgres
async def test_two_dispatchers_send_10000_due_reminders_exactly_once_on_postgresql(
    tmp_path: Path, content: Content, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two "processes" (own engine, Store, Bot and Dispatcher each) tick concurrently on one
    PostgreSQL database with 10,000 reminders due: every chat gets exactly one message."""
    count = 10_000
    now = datetime(2025, 3, 10, 21, 0, tzinfo=UTC)
    chats = list(range(10_000_001, 10_000_001 + count))
    async with fresh_database("postgresql", tmp_path) as db:
        stores = [await db.open_store(offsets(content)), await db.open_store(offsets(content))]
        try:
            await insert_due_people(stores[0].engine, chats, now)
            async with FakeBotApi(TEST_TOKEN) as api:
                for chat in chats:
                    api.add_chat(chat)
                clock = FakeClock(now)
                async with (
                    Bot(TEST_TOKEN, base_url=api.base_url) as bot_a,
                    Bot(TEST_TOKEN, base_url=api.base_url) as bot_b,
                ):
                    # Both "processes" share this one event loop and its CPU with the fake
                    # server, and httpx's connection-pool bookkeeping grows with the square of
                    # the requests in flight: 8 per process keeps the fake saturated, 64 (the
                    # default, for real network latency) only burns CPU here.
                    dispatchers = [
                        Dispatcher(stores[0], bot_a, content, clock, max_concurrency=8),
                        Dispatcher(stores[1], bot_b, content, clock, max_concurrency=8),
                    ]
                    started = wallclock.perf_counter()
                    reports = await asyncio.gather(*(d.tick() for d in dispatchers))
                    elapsed = wallclock.perf_counter() - started
                    # A further round finds nothing left to do.
                    again = await asyncio.gather(*(d.tick() for d in dispatchers))
                sends = api.calls_to("sendMessage")
            per_chat = Counter(call.chat_id for call in sends if call.ok)
            duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
            missing = len(set(chats) - set(per_chat))
            stats = await stores[0].stats()
        finally:
            for store in stores:
                await store.close()
    with capsys.disabled():
        print(
            f"\n[10k on PostgreSQL] {count} reminders, 2 dispatchers: {elapsed:.1f}s, "
            f"sent {reports[0].sent}+{reports[1].sent}, duplicates {duplicates}, "
            f"missing {missing}, failed calls {sum(1 for c in sends if not c.ok)}"
        )
    assert duplicates == 0 and missing == 0
    assert len(sends) == count
    assert all(report.sent > 0 for report in reports), "both processes should share the work"
    assert sum(r.materialized for r in reports) == count
    assert sum(r.sent for r in reports) == count
    assert all(not report for report in again)
    assert stats["deliveries_sent"] == count
    assert stats["reminders_scheduled"] == count


async def test_history_is_purged_hourly_after_the_retention_period(h: Harness) -> None:
    await sign_up(h, only=["meal"])
    dispatcher = h.new_dispatcher(retention=timedelta(days=2))
    h.dispatcher = dispatcher
    for day in (10, 11, 12, 13):  # four nights of meal ideas, each sent
        await h.tick_at(berlin(day, 18, 30))
    # The 13th's tick purged what was due before the 11th 18:30: the 10th's.
    assert len(await h.deliveries()) == 3
    await h.tick_at(berlin(13, 19, 29))  # within the hour: no second purge yet
    assert len(await h.deliveries()) == 3
    await h.tick_at(berlin(13, 19, 31))  # the 11th's is now more than two days old
    kept = [d["due_at"] for d in await h.deliveries()]
    assert kept == [berlin(12, 18, 30).isoformat(), berlin(13, 18, 30).isoformat()]


async def test_stop_lets_a_heartbeat_under_way_finish_instead_of_cancelling_it(
    h: Harness,
) -> None:
    """A beat cancelled mid-write is rolled back with a traceback in the log (seen once at
    shutdown under load); stop() waits for it instead, then ends the loop."""
    gate, entered = asyncio.Event(), asyncio.Event()
    real_heartbeat = h.store.heartbeat
    finished: list[str] = []

    async def slow_heartbeat(owner: str, now: datetime) -> None:
        entered.set()
        await gate.wait()
        await real_heartbeat(owner, now)
        finished.append(owner)

    async def no_pause(seconds: float) -> None:
        await asyncio.sleep(0)

    dispatcher = h.new_dispatcher(sleep=no_pause)
    await dispatcher.start()
    h.store.heartbeat = slow_heartbeat  # type: ignore[method-assign]
    try:
        await entered.wait()  # the loop's next beat is now inside the store
        stopping = asyncio.create_task(dispatcher.stop(drain_seconds=0.1))
        gate.set()  # set before stop() runs: an old-style cancel would still land mid-beat
        await stopping
    finally:
        h.store.heartbeat = real_heartbeat  # type: ignore[method-assign]
    assert finished == [dispatcher.owner]  # completed, not cancelled half-way


# --- levelling (bot/levelling.py): early within the window, never twice, order kept ----------


def _sent_at(delivery: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(delivery["sent_at"])


async def test_levelling_sends_a_clump_early_within_its_window_exactly_once(h: Harness) -> None:
    people = range(7000, 7060)
    for chat_id in people:  # bedtime 22:30: the wind-down reminder is due at 21:30
        await sign_up(h, chat_id, only=["wind_down"])
    # 60 at one minute at 0.1 msg/s need 10 minutes; the window opens 5 minutes early.
    dispatcher = h.new_dispatcher(
        windows=windows_from(h.content), send_rate=0.1, tick_every=timedelta(minutes=1)
    )
    h.clock.set(berlin(10, 21))
    await run_simulated(dispatcher, h.clock, timedelta(minutes=45))

    due, opens = berlin(10, 21, 30), berlin(10, 21, 25)
    deliveries = [d for chat_id in people for d in await h.deliveries(chat_id)]
    assert [d["status"] for d in deliveries] == ["sent"] * 60
    assert {datetime.fromisoformat(d["due_at"]) for d in deliveries} == {due}
    assert Counter(call.chat_id for call in h.sends()) == Counter(people)
    sent = sorted(_sent_at(d) for d in deliveries)
    assert sent[0] >= opens  # never before the window opens
    early = [moment for moment in sent if moment < due]
    assert 20 <= len(early) < 60  # the plan's early share went early, the rest at 21:30
    assert all(moment <= due - timedelta(minutes=1) for moment in early)


async def test_without_windows_nothing_goes_early(h: Harness) -> None:
    for chat_id in range(7100, 7120):
        await sign_up(h, chat_id, only=["wind_down"])
    h.clock.set(berlin(10, 21))
    await run_simulated(h.dispatcher, h.clock, timedelta(minutes=45))
    sent = [_sent_at(d) for c in range(7100, 7120) for d in await h.deliveries(c)]
    assert len(sent) == 20 and min(sent) == berlin(10, 21, 30)


async def test_an_early_release_never_overtakes_the_persons_earlier_reminder(h: Harness) -> None:
    # Both at bedtime 22:30 with the exercise note moved to 21:05, a minute after a meal idea
    # at 21:04; the second person has no meal idea. Releasing exercise notes at 20:50 must
    # skip the first person: their meal idea has not gone yet.
    await sign_up(h, CHAT, only=["meal", "exercise"])
    await h.store.set_reminder(CHAT, "meal", h.clock.now(), offset_minutes=86)
    await h.store.set_reminder(CHAT, "exercise", h.clock.now(), offset_minutes=85)
    await sign_up(h, OTHER, only=["exercise"])
    await h.store.set_reminder(OTHER, "exercise", h.clock.now(), offset_minutes=85)
    exercise_at = berlin(10, 21, 5)
    release = Release("exercise", int(exercise_at.timestamp()), 10)
    released = await h.store.materialize_early(
        berlin(10, 20, 50), [release], choose_meal=lambda diet, recent: None
    )
    assert released == [1]
    assert await h.deliveries(CHAT) == []
    [early] = await h.deliveries(OTHER)
    assert early["kind"] == "exercise" and early["status"] == "pending"
    assert datetime.fromisoformat(early["due_at"]) == exercise_at


async def test_a_change_takes_back_an_early_release_and_the_new_time_wins(h: Harness) -> None:
    await sign_up(h, OTHER, only=["exercise"])  # bedtime 22:30: exercise note at 19:30
    exercise_at = berlin(10, 19, 30)
    release = Release("exercise", int(exercise_at.timestamp()), 1)
    now = berlin(10, 19, 15)
    assert await h.store.materialize_early(now, [release], choose_meal=lambda d, r: None) == [1]
    h.clock.set(now)
    await h.store.set_bedtime(OTHER, time(23, 30), now)  # exercise note now at 20:30
    assert await h.deliveries(OTHER) == []  # the early row went back to being scheduled
    await run_simulated(h.dispatcher, h.clock, timedelta(hours=2))
    [delivery] = await h.deliveries(OTHER)
    assert datetime.fromisoformat(delivery["due_at"]) == berlin(10, 20, 30)
    assert delivery["status"] == "sent" and _sent_at(delivery) == berlin(10, 20, 30)
    assert len(h.sends(OTHER)) == 1


@dataclass
class RecordingObserver:
    """A DispatchObserver that keeps every reminder outcome (what /metrics counts)."""

    outcomes: Counter[tuple[str, str]]

    def ticking(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    def progress(self) -> None:
        pass

    def outcome(self, kind: str, outcome: str, lateness: float | None) -> None:
        self.outcomes[kind, outcome] += 1


async def overloaded_evening(
    h: Harness,
    caplog: pytest.LogCaptureFixture,
    winders: range,
    eaters: range,
    eater_kinds: Sequence[str],
    *,
    late_winders: range = range(0),
    duration: timedelta = timedelta(hours=1),
    observer: RecordingObserver | None = None,
) -> None:
    """Wind-downs (bedtime 22:30) and meal ideas (bedtime 01:30, 4 h before) all due at 21:30,
    at 0.02 msg/s: the hour around them holds 72 sends; ``late_winders``' wind-downs are due
    at 22:30 (bedtime 23:30). ``duration`` (an hour) of levelled dispatching from 20:40,
    WARNINGs captured."""
    for chat_id in winders:
        await sign_up(h, chat_id, only=["wind_down"])
    for chat_id in late_winders:
        await sign_up(h, chat_id, bedtime=time(23, 30), only=["wind_down"])
    for chat_id in eaters:
        await sign_up(h, chat_id, bedtime=time(1, 30), only=eater_kinds)
    dispatcher = h.new_dispatcher(
        windows=windows_from(h.content),
        send_rate=0.02,
        tick_every=timedelta(minutes=1),
        observer=observer,
    )
    h.clock.set(berlin(10, 20, 40))
    with caplog.at_level(logging.WARNING, logger="bot.dispatch"):
        await run_simulated(dispatcher, h.clock, duration)


async def test_overload_drops_meal_ideas_by_priority_counted_and_logged(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # 40 wind-downs and 40 meal ideas due at 21:30 at 0.02 msg/s: the hour around them holds
    # 72 sends. Levelling cannot carry it, so 8 meal ideas are dropped when they fall due,
    # recorded as skipped with the policy's reason; every wind-down goes.
    winders, eaters = range(7200, 7240), range(7300, 7340)
    await overloaded_evening(h, caplog, winders, eaters, ["meal"])

    wind_downs = [d for c in winders for d in await h.deliveries(c)]
    meals = [d for c in eaters for d in await h.deliveries(c)]
    assert [d["status"] for d in wind_downs] == ["sent"] * 40
    dropped = [d for d in meals if d["status"] == "skipped"]
    assert len(dropped) == 8 and Counter(d["status"] for d in meals)["sent"] == 32
    assert {d["last_error"] for d in dropped} == {DROPPED}
    assert len(h.sends()) == 72
    [warning] = [r.getMessage() for r in caplog.records if "overload policy c" in r.getMessage()]
    assert warning.startswith("dropped 8 reminders by priority") and "8 meal due" in warning


THIRD = 5003


async def shed_at(
    h: Harness, due: datetime, kind: str = "meal", count: int = 1, *, meal: str | None = None
) -> list[Shed]:
    """The overload shedding of ``count`` reminders of ``kind`` due at ``due``, a minute
    before it; ``meal`` is the idea a merged note carries (default: the first one)."""
    chosen = meal if meal is not None else h.content.meal_ideas[0].id
    return await h.store.shed(
        due - timedelta(minutes=1),
        [Release(kind, int(due.timestamp()), count)],
        choose_meal=lambda diet, recent: chosen,
        merge_within=timedelta(hours=2),
    )


async def test_shedding_merges_meal_ideas_into_the_exercise_note_first(h: Harness) -> None:
    # Bedtime 22:30: meal idea 18:30, exercise note 19:30. OTHER signs up first (lower ids)
    # but has no exercise note, so the two people who can merge are taken before it.
    await sign_up(h, OTHER, only=["meal"])
    await sign_up(h, CHAT, only=["meal", "exercise"])
    await sign_up(h, THIRD, only=["meal", "exercise"])
    meal_at, exercise_at = berlin(10, 18, 30), berlin(10, 19, 30)
    now = berlin(10, 18, 29)
    assert await shed_at(h, meal_at, "meal", 2) == [Shed(merged=2, dropped=0)]
    for chat_id in (CHAT, THIRD):
        meal, note = sorted(await h.deliveries(chat_id), key=lambda d: d["due_at"])
        assert (meal["kind"], meal["status"], meal["last_error"]) == ("meal", "skipped", MERGED)
        assert note["kind"] == "exercise" and note["status"] == "pending"
        assert note["meal_id"] == h.content.meal_ideas[0].id
        assert datetime.fromisoformat(note["due_at"]) == exercise_at
    assert await h.deliveries(OTHER) == []  # not shed: its meal idea goes at its time

    h.clock.set(now)
    await run_simulated(h.dispatcher, h.clock, timedelta(hours=2))
    assert len(h.sends(OTHER)) == 1  # its own meal idea, at 18:30
    for chat_id in (CHAT, THIRD):
        [evening] = h.sends(chat_id)  # one message, at the exercise note's time, saying both
        assert html.escape(h.content.evening.title) in evening.params["text"]
        [note] = [d for d in await h.deliveries(chat_id) if d["kind"] == "exercise"]
        assert note["status"] == "sent" and _sent_at(note) == exercise_at


async def test_shedding_drops_what_cannot_merge(h: Harness) -> None:
    # OTHER's exercise note is 3 h after its meal idea (beyond the 2 h a dinner idea may wait):
    # dropped. CHAT has no exercise note at all: dropped.
    await sign_up(h, CHAT, only=["meal"])
    await sign_up(h, OTHER, only=["meal", "exercise"])
    await h.store.set_reminder(OTHER, "exercise", h.clock.now(), offset_minutes=60)
    meal_at = berlin(10, 18, 30)
    shed = await shed_at(h, meal_at, "meal", 5)
    assert shed == [Shed(merged=0, dropped=2)]
    for chat_id in (CHAT, OTHER):
        [meal] = await h.deliveries(chat_id)
        assert (meal["status"], meal["last_error"]) == ("skipped", DROPPED)


async def test_an_early_release_never_overtakes_a_merged_exercise_note(h: Harness) -> None:
    # Meal 21:20, exercise 21:25, wind-down 21:30 (bedtime 22:30). The meal idea merged into
    # the exercise note leaves a pending row for 21:25: the wind-down may not go before it.
    await sign_up(h, CHAT, only=["meal", "exercise", "wind_down"])
    await h.store.set_reminder(CHAT, "meal", h.clock.now(), offset_minutes=70)
    await h.store.set_reminder(CHAT, "exercise", h.clock.now(), offset_minutes=65)
    merged = await shed_at(h, berlin(10, 21, 20))
    assert merged == [Shed(merged=1)]
    wind_down = Release("wind_down", int(berlin(10, 21, 30).timestamp()), 1)
    none = lambda diet, recent: None  # noqa: E731
    assert await h.store.materialize_early(berlin(10, 21, 24), [wind_down], choose_meal=none) == [0]
    h.clock.set(berlin(10, 21, 24))
    await run_simulated(h.dispatcher, h.clock, timedelta(minutes=2))  # the note goes at 21:25
    assert await h.store.materialize_early(berlin(10, 21, 26), [wind_down], choose_meal=none) == [1]


async def test_overload_merges_before_it_drops_counted_and_logged(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # As the drop test, but each eater also has an exercise note an hour after the meal idea
    # (22:30). The plan still takes meal ideas out of the 21:30 clump; now each rides with
    # its person's exercise note: no meal idea is lost, and fewer messages go.
    winders, eaters = range(7400, 7440), range(7500, 7540)
    await overloaded_evening(h, caplog, winders, eaters, ["meal", "exercise"])

    wind_downs = [d for c in winders for d in await h.deliveries(c)]
    assert [d["status"] for d in wind_downs] == ["sent"] * 40
    meals = {c: [d for d in await h.deliveries(c) if d["kind"] == "meal"] for c in eaters}
    notes = {c: [d for d in await h.deliveries(c) if d["kind"] == "exercise"] for c in eaters}
    merged = {c for c, [meal] in meals.items() if meal["status"] == "skipped"}
    assert len(merged) >= 8
    assert {meals[c][0]["last_error"] for c in merged} == {MERGED}
    assert all(meals[c][0]["status"] == "sent" for c in eaters if c not in merged)
    # Each merged idea rides with its person's exercise note, made now for 22:30; the others'
    # notes are not made before their time.
    assert all(len(notes[c]) == 1 and notes[c][0]["meal_id"] is not None for c in merged)
    assert all(notes[c] == [] for c in eaters if c not in merged)
    warnings = [r.getMessage() for r in caplog.records if "overload policy" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"merged {len(merged)} meal ideas")


async def test_a_long_send_keeps_materialising_in_step_with_the_clock(h: Harness) -> None:
    # 60 wind-downs already pending at 21:00 take 20 minutes at one send per 20 s (a stand-in
    # bot that moves the clock). Ten meal ideas fall due at 21:10, inside that one tick: they
    # are materialised within one batch's sends of 21:10, not after the whole backlog.
    backlog, later = range(7600, 7660), range(7700, 7710)
    for chat_id in backlog:
        await sign_up(h, chat_id, bedtime=time(22, 0), only=["wind_down"])  # due 21:00
    for chat_id in later:
        await sign_up(h, chat_id, bedtime=time(1, 10), only=["meal"])  # due 21:10
    start = berlin(10, 21)
    made = await h.store.materialize_due(
        start, grace=GRACE, limit=100, choose_meal=lambda diet, recent: None
    )
    assert made.materialized == 60
    h.clock.set(start)
    paced = SimulatedBot(h.clock, rate=0.05)
    dispatcher = h.new_dispatcher(bot=paced, batch_size=10)
    await dispatcher.tick()  # one tick, about 23 simulated minutes

    assert len(paced.accepted) == 70  # everything, once
    for chat_id in later:
        [meal] = await h.deliveries(chat_id)
        created = datetime.fromisoformat(meal["created_at"])
        assert berlin(10, 21, 10) <= created <= berlin(10, 21, 10) + timedelta(seconds=10 * 20)


async def test_a_merged_note_can_still_be_levelled_early(h: Harness) -> None:
    # The note made ahead for 19:30 (carrying the merged meal idea) is planned and released
    # like the reminder it stands for: counted as scheduled, sendable early within its window.
    await sign_up(h, CHAT, only=["meal", "exercise"])
    meal = h.content.meal_ideas[0].id
    exercise_at = berlin(10, 19, 30)
    await shed_at(h, berlin(10, 18, 30), meal=meal)
    now = berlin(10, 19, 15)
    loads = await h.store.upcoming_load(now - GRACE, now + timedelta(hours=1), now)
    assert [(load.kind, load.at, load.scheduled) for load in loads] == [
        ("exercise", int(exercise_at.timestamp()), True)
    ]
    release = Release("exercise", int(exercise_at.timestamp()), 1)
    none = lambda diet, recent: None  # noqa: E731
    assert await h.store.materialize_early(now, [release], choose_meal=none) == [1]
    assert await h.store.materialize_early(now, [release], choose_meal=none) == [0]  # once
    h.clock.set(now)
    await h.dispatcher.tick()
    [note] = [d for d in await h.deliveries(CHAT) if d["kind"] == "exercise"]
    assert note["status"] == "sent" and note["meal_id"] == meal and _sent_at(note) == now
    assert datetime.fromisoformat(note["due_at"]) == exercise_at  # lateness counts from 19:30


async def test_a_change_gives_a_merged_meal_idea_back_with_its_note(h: Harness) -> None:
    # The meal idea (18:30) merged into the 19:30 note; at 18:45 the person moves bedtime to
    # 23:00. The note is taken back, and so is the merge: the meal idea is planned again
    # (now 19:00) instead of being lost with the note it rode on.
    await sign_up(h, CHAT, only=["meal", "exercise"])
    meal = h.content.meal_ideas[0].id
    await shed_at(h, berlin(10, 18, 30), meal=meal)
    h.clock.set(berlin(10, 18, 45))
    await h.store.set_bedtime(CHAT, time(23, 0), h.clock.now())
    assert await h.deliveries(CHAT) == []
    await run_simulated(h.dispatcher, h.clock, timedelta(hours=2))
    sent = sorted(await h.deliveries(CHAT), key=lambda d: d["due_at"])
    assert [(d["kind"], d["status"]) for d in sent] == [("meal", "sent"), ("exercise", "sent")]
    assert [_sent_at(d) for d in sent] == [berlin(10, 19), berlin(10, 20)]
    assert sent[1]["meal_id"] is None  # two messages again, the person's own mode


async def test_a_check_in_is_never_sent_before_its_time_even_under_a_clump(h: Harness) -> None:
    # 30 morning check-ins (bedtime 22:30: wake 06:30) and 30 wind-downs (bedtime 07:30) due
    # at 06:30, at 0.2 msg/s: 5 minutes of sending, which the 5 minutes before would hold. The
    # dispatcher levels with content's windows: wind-downs may go up to 5 minutes early,
    # check-ins (diary.toml: -0/+15) never, so they queue from their time on.
    sleepers, winders = range(7400, 7430), range(7500, 7530)
    for chat_id in sleepers:
        await sign_up(h, chat_id, only=[])
        await h.store.set_checkin(chat_id, h.clock.now(), enabled=True)
    for chat_id in winders:
        await sign_up(h, chat_id, bedtime=time(7, 30), only=["wind_down"])
    dispatcher = h.new_dispatcher(
        windows=windows_from(h.content),
        send_rate=0.2,
        tick_every=timedelta(minutes=1),
        composers={CHECKIN_KIND: checkin_composer(h.store, lambda delivery: h.content)},
    )
    h.clock.set(berlin(11, 6))
    await run_simulated(dispatcher, h.clock, timedelta(minutes=45))

    due = berlin(11, 6, 30)
    checkins = [d for c in sleepers for d in await h.deliveries(c) if d["kind"] == CHECKIN_KIND]
    wind_downs = [d for c in winders for d in await h.deliveries(c)]
    assert [d["status"] for d in checkins + wind_downs] == ["sent"] * 60
    assert {datetime.fromisoformat(d["due_at"]) for d in checkins + wind_downs} == {due}
    assert min(_sent_at(d) for d in checkins) >= due  # never before the wake time asked for
    assert any(_sent_at(d) < due for d in wind_downs)  # the clump was levelled


async def test_shedding_drops_plain_exercise_notes_before_merged_ones(h: Harness) -> None:
    # CHAT's meal idea rides with its 19:30 note; OTHER has a plain 19:30 note. Dropping one
    # exercise note takes OTHER's (the planner's order: exercise before the merged message);
    # dropping another takes CHAT's note, and its meal idea is relabelled dropped: both lost.
    await sign_up(h, CHAT, only=["meal", "exercise"])
    await sign_up(h, OTHER, only=["exercise"])
    meal = h.content.meal_ideas[0].id
    await shed_at(h, berlin(10, 18, 30), meal=meal)

    async def drop_one() -> list[Shed]:
        return await shed_at(h, berlin(10, 19, 30), "exercise")

    assert await drop_one() == [Shed(dropped=1)]
    [plain] = await h.deliveries(OTHER)
    assert (plain["status"], plain["last_error"]) == ("skipped", DROPPED)
    assert {d["status"] for d in await h.deliveries(CHAT)} == {"skipped", "pending"}
    assert await drop_one() == [Shed(dropped=1, carried_dropped=1)]
    assert {(d["kind"], d["status"], d["last_error"]) for d in await h.deliveries(CHAT)} == {
        ("meal", "skipped", DROPPED),
        ("exercise", "skipped", DROPPED),
    }
    assert await drop_one() == [Shed()]  # nothing left to take


async def test_shedding_keeps_an_evening_mode_note_for_last(h: Harness) -> None:
    # CHAT chose the one evening message (signed up first: lower ids); OTHER's note is plain.
    # One exercise note to drop: OTHER's, since CHAT's also carries the meal idea.
    await sign_up(h, CHAT, only=["meal", "exercise"])
    await h.store.set_evening_message(CHAT, True, h.clock.now())
    await sign_up(h, OTHER, only=["exercise"])
    shed = await shed_at(h, berlin(10, 19, 30), "exercise")
    assert shed == [Shed(dropped=1)]
    assert [d["status"] for d in await h.deliveries(OTHER)] == ["skipped"]
    assert await h.deliveries(CHAT) == []


async def test_turning_the_exercise_note_off_gives_a_merged_meal_idea_back(h: Harness) -> None:
    # The meal idea (18:30) rides with the 19:30 note; at 18:45 the person switches exercise
    # notes off. The note goes, and the meal idea comes back on its own, sent late (within
    # the grace) instead of being lost with the note.
    await sign_up(h, CHAT, only=["meal", "exercise"])
    await shed_at(h, berlin(10, 18, 30))
    h.clock.set(berlin(10, 18, 45))
    await h.store.set_reminder(CHAT, "exercise", h.clock.now(), enabled=False)
    await run_simulated(h.dispatcher, h.clock, timedelta(hours=2))
    [meal] = await h.deliveries(CHAT)
    assert (meal["kind"], meal["status"]) == ("meal", "sent")
    assert _sent_at(meal) == berlin(10, 18, 46)  # the first tick after the change
    assert [call.chat_id for call in h.sends()] == [CHAT]


@pytest.mark.parametrize("action", ["stop", "pause"])
async def test_nothing_of_a_merge_reaches_a_person_who_stops_or_pauses(
    h: Harness, action: str
) -> None:
    # The meal idea (18:30) rides with the 19:30 note; at 18:45 the person stops, or pauses
    # until tomorrow. Neither the note nor the meal idea it carried is sent tonight.
    await sign_up(h, CHAT, only=["meal", "exercise"])
    await shed_at(h, berlin(10, 18, 30))
    h.clock.set(berlin(10, 18, 45))
    if action == "stop":
        await h.store.unsubscribe(CHAT, h.clock.now())
    else:
        await h.store.pause(CHAT, berlin(11, 12), h.clock.now())
    await run_simulated(h.dispatcher, h.clock, timedelta(hours=3))
    assert h.sends(CHAT) == []
    assert all(d["status"] != "pending" for d in await h.deliveries(CHAT))


async def test_a_meal_idea_lost_with_its_dropped_note_is_counted_dropped(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # The merge test's evening (40 wind-downs and 40 meal ideas at 21:30, each eater's
    # exercise note at 22:30), with 40 more wind-downs at 22:30, at 0.02 msg/s: the 22:30
    # clump sheds exercise notes too, and some of them carry a merged meal idea. A meal idea
    # lost that way is counted dropped (it was counted merged when it was merged).
    eaters = range(7900, 7940)
    observer = RecordingObserver(Counter())
    await overloaded_evening(
        h,
        caplog,
        range(7800, 7840),
        eaters,
        ["meal", "exercise"],
        late_winders=range(7840, 7880),
        duration=timedelta(hours=2, minutes=15),
        observer=observer,
    )

    meals = [d for c in eaters for d in await h.deliveries(c) if d["kind"] == "meal"]
    lost = sum(d["last_error"] == DROPPED for d in meals)
    still_merged = sum(d["last_error"] == MERGED for d in meals)
    assert lost > 0 and still_merged > 0  # the scenario reaches carried notes, not all
    assert observer.outcomes["meal", "dropped"] == lost
    assert observer.outcomes["meal", "merged"] == lost + still_merged
    assert observer.outcomes["meal", "sent"] == len(meals) - lost - still_merged
    [warning] = [r.getMessage() for r in caplog.records if "overload policy c" in r.getMessage()]
    assert warning.endswith(f"; and {lost} meal ideas merged into the dropped exercise notes")
