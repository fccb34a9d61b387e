"""The benchmark scenarios. Each runs alone in a fresh process and returns JSON-able numbers.

Every scenario module-level import happens before anything is measured, and the ``import``
scenario does nothing else, so "RSS over the import baseline" is what the scenario itself
added: the schedule, the caches, the connections; not Python, PTB or SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Final

import aiosqlite  # noqa: F401 - part of "the bot imported": open_store loads it lazily
from telegram.ext import ApplicationBuilder, BaseRateLimiter, CallbackContext

from bench.fake_remote import TOKEN, FakeReport, RemoteFakeApi
from bench.measure import (
    SqlProfile,
    TimedStore,
    UncheckedStore,
    WallClock,
    as_jsonable,
    median_ms,
    peak_rss_mb,
    percentile,
    rss_mb,
)
from bench.paced_limiter import PacedRateLimiter
from bench.population import chat_id, populate, quantile_instant, self_check
from bot.app import build_app, running
from bot.clock import Clock, FakeClock
from bot.config import Settings
from bot.content import Content, load_content
from bot.context import SERVICES_KEY, Services, SleepApplication
from bot.dispatch import Dispatcher, TickReport
from bot.storage import open_store
from bot.timezones import tzinfo_for

REPO: Final = Path(__file__).resolve().parent.parent
CONTENT_DIR: Final = REPO / "content"
# A Wednesday noon UTC: the population's "now". Every reminder is scheduled after it.
T0: Final = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)
SEND_DUE: Final = T0 + timedelta(hours=2)  # the minute the send benchmarks' reminders are due
SIZES: Final = {"100k": 100_000, "1m": 1_000_000}
EMPTY_TICKS: Final = 50
DUE_FRACTION: Final = 0.01
UNLIMITED_CHATS: Final = 5_000
LIMITED_CHATS: Final = {False: 10_000, True: 1_000}  # keyed by --quick
TELEGRAM_RATE: Final = 30  # messages per second, Telegram's documented broadcast limit
TELEGRAM_CHAT_RATE: Final = (1.0, 3)  # per chat: 1 msg/s after a short burst (Bot FAQ)
NAIVE_PEOPLE: Final = 100_000


@dataclass(frozen=True)
class Context:
    workdir: Path
    quick: bool


Result = dict[str, Any]
Scenario = Callable[[Context], Coroutine[Any, Any, Result]]


def log(message: str) -> None:
    """Progress on stderr, so a long full run shows where it is."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def database_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def settings_for(db_path: Path, api: RemoteFakeApi) -> Settings:
    return Settings(
        database_url=database_url(db_path),
        telegram_api_base_url=api.base_url,
        content_dir=CONTENT_DIR,
        log_level="WARNING",
    )


def offsets(content: Content) -> dict[str, int]:
    return {kind.kind: kind.default_offset_minutes for kind in content.reminder_kinds}


def memory(baseline_in_process: float) -> Result:
    now = rss_mb()
    return {
        "rss_mb": round(now, 1),
        "rss_over_own_imports_mb": round(now - baseline_in_process, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def tick_dict(report: TickReport) -> Result:
    return asdict(report)


def services_of(application: SleepApplication) -> Services:
    services = application.bot_data[SERVICES_KEY]
    assert isinstance(services, Services)
    return services


# --- import baseline ---------------------------------------------------------------------------


async def scenario_import(ctx: Context) -> Result:
    """Only the imports every other scenario also has: the baseline RSS."""
    return {"rss_mb": round(rss_mb(), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}


# --- population ----------------------------------------------------------------------------


def db_path(ctx: Context, size: str) -> Path:
    return ctx.workdir / f"{size}.sqlite3"


def meta_path(ctx: Context, size: str) -> Path:
    return ctx.workdir / f"{size}.meta.json"


def make_populate(size: str) -> Scenario:
    async def scenario(ctx: Context) -> Result:
        """Schema by the real migrations, rows by bulk insert, then checked by the real Store."""
        count = SIZES[size]
        path = db_path(ctx, size)
        content = load_content(CONTENT_DIR)
        kinds = list(offsets(content).items())
        started = time.perf_counter()
        store = await open_store(database_url(path), default_offsets=dict(kinds))
        await store.close()
        migrated = time.perf_counter() - started
        log(f"migrated a fresh database in {migrated:.2f} s; loading {count:,} people")
        population = populate(path, count, kinds, T0)
        log(f"loaded in {population.total_s:.1f} s; checking a sample through the Store")
        store = await open_store(database_url(path), default_offsets=dict(kinds))
        try:
            checked = await self_check(store, count, T0)
            stats = await store.stats()
        finally:
            await store.close()
        instant, due, chats = quantile_instant(path, DUE_FRACTION)
        meta_path(ctx, size).write_text(
            json.dumps({"one_percent_at": instant.isoformat(), "due": due, "due_chats": chats})
        )
        spread = _fire_spread(path)
        return {
            "people": population.people,
            "reminders_scheduled": population.reminders_scheduled,
            "migrate_s": round(migrated, 3),
            "generate_insert_s": round(population.generate_insert_s, 2),
            "index_s": round(population.index_s, 2),
            "checkpoint_s": round(population.checkpoint_s, 2),
            "population_s": round(population.total_s, 2),
            "db_mb": round(population.db_mb, 1),
            "self_checked_people": checked,
            "store_stats": stats,
            "one_percent_at": instant.isoformat(),
            "one_percent_due": due,
            "busiest_minute": spread["busiest_minute"],
            "minutes_with_reminders": spread["minutes_with_reminders"],
        }

    return scenario


def _fire_spread(path: Path) -> Result:
    """How next_fire_at spreads over the day: distinct minutes used and the busiest minute."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT substr(next_fire_at, 1, 16) AS minute, count(*) FROM reminders "
            "WHERE next_fire_at IS NOT NULL GROUP BY minute"
        ).fetchall()
    finally:
        connection.close()
    return {
        "minutes_with_reminders": len(rows),
        "busiest_minute": max((int(count) for _, count in rows), default=0),
    }


# --- store scenario: start-up, empty ticks, a 1% tick ------------------------------------------


def make_store(size: str) -> Scenario:
    async def scenario(ctx: Context) -> Result:
        """The issue's measurements (a)-(d) on the populated database, in a fresh process."""
        path = db_path(ctx, size)
        meta = json.loads(meta_path(ctx, size).read_text())
        own_imports = rss_mb()
        result: Result = {"rss_after_imports_mb": round(own_imports, 1)}
        async with RemoteFakeApi() as api:
            await api.add_chats(meta["due_chats"])
            settings = settings_for(path, api)
            clock = FakeClock(T0)

            # (a) start-up, phase by phase, the same steps post_init takes
            t0 = time.perf_counter()
            application = build_app(
                settings, token=TOKEN, clock=clock, rate_limit=False, dispatch=False
            )
            t_build = time.perf_counter()
            await application.initialize()  # getMe over HTTP
            t_init = time.perf_counter()
            content = services_of(application).content
            opened = await open_store(settings.database_url, default_offsets=offsets(content))
            store = TimedStore(opened.engine, default_offsets=offsets(content))
            t_open = time.perf_counter()
            dispatcher = Dispatcher(
                store,
                application.bot,
                content,
                clock,
                grace=timedelta(minutes=settings.reminder_grace_minutes),
            )
            t_dispatcher = time.perf_counter()
            first = await dispatcher.tick()
            t_first = time.perf_counter()
            if first:
                raise AssertionError(f"the first tick at T0 should be empty: {first.summary()}")
            result["startup"] = {
                "total_s": round(t_first - t0, 4),
                "build_app_s": round(t_build - t0, 4),
                "initialize_s": round(t_init - t_build, 4),
                "open_store_s": round(t_open - t_init, 4),
                "dispatcher_s": round(t_dispatcher - t_open, 4),
                "first_tick_s": round(t_first - t_dispatcher, 4),
            }
            # (b) memory right after start-up
            result["after_startup"] = memory(own_imports)
            log(f"start-up {t_first - t0:.3f} s, RSS {result['after_startup']['rss_mb']} MB")

            # (c) ticks with nothing due
            result["empty_tick"] = await _empty_ticks(dispatcher)
            profile = SqlProfile(store.engine)
            for _ in range(5):
                await dispatcher.tick()
            empty_sql = profile.top(4)
            profile.reset()

            # (d) ~1% of all reminders due at once, sent without a rate limiter
            due_at = datetime.fromisoformat(meta["one_percent_at"])
            clock.set(due_at)
            store.reset()
            log(f"1% tick: {meta['due']:,} reminders due at {due_at.isoformat()}")
            tick = await timed_tick(dispatcher, api, 1200)
            report, elapsed = tick.report, tick.wall_s
            fake = await api.report()
            busy_sql = profile.top(8)
            profile.close()
            store_seconds = store.total_seconds
            result["one_percent_tick"] = {
                "due": meta["due"],
                "due_chats": len(meta["due_chats"]),
                "tick": tick_dict(report),
                "tick_s": round(elapsed, 3),
                "store_s": round(store_seconds, 3),
                "store_breakdown_s": {k: round(v, 3) for k, v in store.seconds.items()},
                "store_calls": dict(store.calls),
                "send_s": round(elapsed - store_seconds, 3),
                "msg_per_s": round(report.sent / elapsed, 1) if elapsed else None,
                "http_200": fake.count(200),
                "per_chat_violations": fake.per_chat_violations,
                **cpu_dict(tick),
            }
            log(f"1% tick {elapsed:.2f} s: {report.summary()}")
            result["after_one_percent"] = memory(own_imports)

            # Reminders of one chat due in the same minute wait for the per-chat interval.
            clock.set(due_at + timedelta(seconds=2))
            result["one_percent_follow_up_tick"] = tick_dict(await dispatcher.tick())
            clock.set(due_at + timedelta(seconds=4))
            result["empty_tick_after_one_percent"] = await _empty_ticks(dispatcher)
            profile.explain(path, [*empty_sql, *busy_sql])
            result["sql_empty_tick"] = as_jsonable(empty_sql)
            result["sql_one_percent_tick"] = as_jsonable(busy_sql)
            await store.close()
            await application.shutdown()
        result["end"] = memory(own_imports)
        return result

    return scenario


@dataclass
class TimedTick:
    report: TickReport
    wall_s: float
    bot_cpu_s: float  # this process: dispatcher, PTB, httpx, SQLAlchemy, aiosqlite thread
    server_cpu_s: float  # the fake Telegram process


async def timed_tick(dispatcher: Dispatcher, api: RemoteFakeApi, limit_s: float) -> TimedTick:
    """One tick, with wall time and the CPU both processes spent on it (who is the bottleneck)."""
    server_before = await api.cpu_seconds()
    cpu_before = time.process_time()
    started = time.perf_counter()
    async with asyncio.timeout(limit_s):
        report = await dispatcher.tick()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    server = await api.cpu_seconds() - server_before
    return TimedTick(report, wall, cpu, server)


def cpu_dict(tick: TimedTick) -> Result:
    return {
        "bot_cpu_s": round(tick.bot_cpu_s, 2),
        "bot_cpu_share": round(tick.bot_cpu_s / tick.wall_s, 2) if tick.wall_s else None,
        "server_cpu_s": round(tick.server_cpu_s, 2),
        "server_cpu_share": round(tick.server_cpu_s / tick.wall_s, 2) if tick.wall_s else None,
    }


async def _empty_ticks(dispatcher: Dispatcher) -> Result:
    samples: list[float] = []
    for _ in range(EMPTY_TICKS):
        started = time.perf_counter()
        report = await dispatcher.tick()
        samples.append(time.perf_counter() - started)
        if report.sent or report.materialized:
            raise AssertionError(f"expected an empty tick, got {report.summary()}")
    return {
        "median_ms": round(median_ms(samples), 3),
        "p90_ms": round(percentile(samples, 0.9) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
        "n": len(samples),
    }


# --- production start-up: build_app + running(), rate limiter and JobQueue included -----------


def make_app(size: str) -> Scenario:
    async def scenario(ctx: Context) -> Result:
        """What ``sleepbot run`` does up to the first tick, and what the process weighs then."""
        path = db_path(ctx, size)
        own_imports = rss_mb()
        result: Result = {"rss_after_imports_mb": round(own_imports, 1)}
        async with RemoteFakeApi() as api:
            settings = settings_for(path, api)
            t0 = time.perf_counter()
            application = build_app(settings, token=TOKEN, clock=FakeClock(T0))
            async with running(application, poll=False):
                t_running = time.perf_counter()
                services = services_of(application)
                assert services.dispatcher is not None
                await services.dispatcher.tick()  # waits for the job's own first tick, if busy
                t_ready = time.perf_counter()
                result["ready"] = memory(own_imports)
                await asyncio.gather(*list(services.background))
                t_preloaded = time.perf_counter()
                result["after_timezone_preload"] = memory(own_imports)
            result["startup_s"] = round(t_ready - t0, 4)
            result["running_s"] = round(t_running - t0, 4)
            result["timezone_preload_done_s"] = round(t_preloaded - t0, 4)
        log(f"production start-up {result['startup_s']:.3f} s")
        return result

    return scenario


# --- the naive design: one PTB run_daily job per person -----------------------------------------


async def _noop(context: CallbackContext[Any, Any, Any, Any]) -> None:
    return None


class _MissedJobs(logging.Handler):
    """Counts APScheduler's "Run time of job ... was missed" warnings: reminders that did not
    go out because the event loop was busy adding jobs when they were due."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "was missed" in record.getMessage():
            self.count += 1


async def scenario_jobqueue(ctx: Context) -> Result:
    """One ``job_queue.run_daily`` per person, the usual PTB tutorial design, for 100k people.

    Schedules are read from the 100k database, so the input is the same people; each gets one
    daily job at bedtime minus the wind-down offset, in their own time zone. Adding jobs is
    synchronous: the event loop can do nothing else meanwhile.
    """
    path = db_path(ctx, "100k")
    own_imports = rss_mb()
    started = time.perf_counter()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT chat_id, timezone, bedtime FROM people ORDER BY chat_id LIMIT ?",
            (NAIVE_PEOPLE,),
        ).fetchall()
    finally:
        connection.close()
    schedules: list[tuple[int, clock_time]] = []
    for chat, zone, bedtime in rows:
        hour, minute = (int(part) for part in str(bedtime).split(":"))
        wall = (hour * 60 + minute - 60) % (24 * 60)
        schedules.append((int(chat), clock_time(wall // 60, wall % 60, tzinfo=tzinfo_for(zone))))
    read_s = time.perf_counter() - started
    result: Result = {"people": len(schedules), "read_s": round(read_s, 3)}
    missed = _MissedJobs()
    logging.getLogger("apscheduler").addHandler(missed)
    async with RemoteFakeApi() as api:
        application = ApplicationBuilder().token(TOKEN).base_url(api.base_url).build()
        job_queue = application.job_queue
        assert job_queue is not None
        async with application:
            await application.start()
            before = rss_mb()
            t_add = time.perf_counter()
            for chat, at in schedules:
                job_queue.run_daily(_noop, time=at, chat_id=chat, name=f"reminder-{chat}")
            t_added = time.perf_counter()
            await asyncio.sleep(0)  # APScheduler queued one wakeup per add_job: let them run
            t_drained = time.perf_counter()
            after = rss_mb()
            result["jobs"] = len(job_queue.jobs())
            await asyncio.sleep(1)  # jobs that fell due while the loop was blocked run now
            result["missed_while_blocked"] = missed.count
            await application.stop()
    result.update(
        {
            "add_s": round(t_added - t_add, 3),
            "drain_s": round(t_drained - t_added, 3),
            "blocked_s": round(t_drained - t_add, 3),
            "rss_before_jobs_mb": round(before, 1),
            "rss_after_jobs_mb": round(after, 1),
            "jobs_rss_delta_mb": round(after - before, 1),
            "rss_over_own_imports_mb": round(after - own_imports, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    )
    log(f"{len(schedules):,} run_daily jobs: loop blocked {result['blocked_s']:.1f} s")
    return result


# --- sending -------------------------------------------------------------------------------


class MovableWallClock:
    """A WallClock that can be restarted at a chosen instant (right before the measured tick)."""

    def __init__(self, start: datetime) -> None:
        self.wall = WallClock(start)

    def restart(self, start: datetime) -> float:
        self.wall = WallClock(start)
        return self.wall.started_monotonic

    def now(self) -> datetime:
        return self.wall.now()


async def _production_dispatcher(
    settings: Settings,
    clock: Clock,
    *,
    rate_limit: bool,
    rate_limiter: BaseRateLimiter[Any] | None = None,
    store_class: type[TimedStore] = TimedStore,
) -> tuple[SleepApplication, Dispatcher, TimedStore]:
    """build_app + initialize + post_init: the real wiring, minus starting the JobQueue.

    ``store_class`` UncheckedStore drops the last-moment eligibility check, to measure it.
    """
    application = build_app(
        settings, token=TOKEN, clock=clock, rate_limit=rate_limit, rate_limiter=rate_limiter
    )
    await application.initialize()
    assert application.post_init is not None
    await application.post_init(application)
    services = services_of(application)
    # The offline city index is built in a thread after start-up; it is CPU-bound, so let it
    # finish rather than have it steal the GIL from the measured tick.
    await asyncio.gather(*list(services.background))
    dispatcher = services.dispatcher
    assert dispatcher is not None
    timed = store_class(services.store.engine, default_offsets=offsets(services.content))
    dispatcher.store = timed
    return application, dispatcher, timed


async def _stop(application: SleepApplication) -> None:
    if application.post_stop is not None:  # the dispatcher's heartbeat and claims
        await application.post_stop(application)
    await application.shutdown()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


async def _send_database(ctx: Context, name: str, count: int) -> Path:
    path = ctx.workdir / f"{name}.sqlite3"
    content = load_content(CONTENT_DIR)
    store = await open_store(database_url(path), default_offsets=offsets(content))
    await store.close()
    populate(
        path,
        count,
        list(offsets(content).items()),
        T0,
        due_at=SEND_DUE,
        due_kind=content.reminder_kinds[-1].kind,
    )
    return path


WHAT_IF_CONCURRENCY: Final = 8
CHECK_ROUNDS: Final = 3  # with and without the eligibility check, alternating, this many times


async def scenario_send_unlimited(ctx: Context) -> Result:
    """Our own ceiling: N distinct chats due at once, no rate limiter, one tick.

    Measured with the production Dispatcher settings, then without the last-moment
    eligibility check (UncheckedStore), alternating on fresh copies of the database so both
    see the same machine state; then once with a smaller ``max_concurrency``: httpcore's pool
    does per-request work that grows with the number of requests in flight.
    """
    count = UNLIMITED_CHATS
    pristine = await _send_database(ctx, "send-unlimited", count)
    run = ctx.workdir / "send-unlimited-run.sqlite3"
    checked: list[Result] = []
    unchecked: list[Result] = []
    for _ in range(CHECK_ROUNDS):
        for store_class, results in ((TimedStore, checked), (UncheckedStore, unchecked)):
            fresh_copy(pristine, run)
            results.append(await _unlimited_once(run, count, None, store_class))
    fresh_copy(pristine, run)
    what_if = await _unlimited_once(run, count, WHAT_IF_CONCURRENCY, TimedStore)
    defaults = sorted(checked, key=lambda r: float(r["msg_per_s"]))[len(checked) // 2]
    rates = [r["msg_per_s"] for r in checked]
    rates_unchecked = [r["msg_per_s"] for r in unchecked]
    log(
        f"unlimited: {rates} msg/s with the check, {rates_unchecked} without; "
        f"max_concurrency={WHAT_IF_CONCURRENCY}: {what_if['msg_per_s']} msg/s"
    )
    return {
        **defaults,
        "msg_per_s_each_round": rates,
        "without_check": {
            "msg_per_s_each_round": rates_unchecked,
            "median": sorted(unchecked, key=lambda r: float(r["msg_per_s"]))[len(unchecked) // 2],
        },
        "what_if_concurrency": what_if,
    }


def fresh_copy(source: Path, target: Path) -> None:
    """Replace ``target`` (and its WAL files) with a copy of a checkpointed ``source``."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)


def per_send_costs(store: TimedStore) -> Result:
    """Database time per delivery for the last-moment check and for recording its outcome."""
    sends = max(store.recorded, 1)
    checks = max(len(store.checked_at), 1)
    return {
        "check_us_per_send": round(store.seconds.get("check_deliveries", 0.0) / checks * 1e6),
        "check_calls": store.calls.get("check_deliveries", 0),
        "record_us_per_send": round(store.seconds.get("record_outcomes", 0.0) / sends * 1e6),
        "record_calls": store.calls.get("record_outcomes", 0),
        # Rounds that checked and recorded in one transaction (Store.settle): per delivery
        # sent, so it adds to both figures above.
        "settle_us_per_send": round(store.seconds.get("settle", 0.0) / sends * 1e6),
        "settle_calls": store.calls.get("settle", 0),
        "recorded": store.recorded,
    }


async def _unlimited_once(
    path: Path, count: int, max_concurrency: int | None, store_class: type[TimedStore]
) -> Result:
    async with RemoteFakeApi() as api:
        await api.add_chats([chat_id(i) for i in range(count)])
        clock = FakeClock(SEND_DUE)
        application, dispatcher, store = await _production_dispatcher(
            settings_for(path, api), clock, rate_limit=False, store_class=store_class
        )
        if max_concurrency is not None:
            dispatcher.max_concurrency = max_concurrency
        try:
            tick = await timed_tick(dispatcher, api, 600)
            fake = await api.report()
        finally:
            await _stop(application)
    report, elapsed = tick.report, tick.wall_s
    ok = fake.ok()
    send_window = ok[-1].at - ok[0].at if len(ok) > 1 else 0.0
    return {
        "chats": count,
        "max_concurrency": dispatcher.max_concurrency,
        "tick": tick_dict(report),
        "tick_s": round(elapsed, 3),
        "msg_per_s": round(report.sent / elapsed, 1),
        "send_phase_msg_per_s": round((len(ok) - 1) / send_window, 1) if send_window else None,
        "store_s": round(store.total_seconds, 3),
        "store_breakdown_s": {k: round(v, 3) for k, v in store.seconds.items()},
        **per_send_costs(store),
        **_check_to_request(fake, store),
        "http_200": len(ok),
        "http_429": fake.count(429),
        "per_chat_violations": fake.per_chat_violations,
        **cpu_dict(tick),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def make_send_limited(previous: bool) -> Scenario:
    """`send-limited` with the production limiter, or `send-limited-paced` with the previous
    one (bench/paced_limiter.py), so one invocation compares before and after."""

    async def scenario(ctx: Context) -> Result:
        return await _send_limited(ctx, previous=previous)

    return scenario


async def _send_limited(ctx: Context, *, previous: bool) -> Result:
    """A limiter against a fake that answers 429 above 30 msg/s and above 1 msg/s per chat
    (after a burst of 3), like Telegram.

    The clock is the wall clock restarted at the due minute right before the tick, so due
    times in the database and seconds on the fake's clock line up: the k-th message (1-based,
    in arrival order) is on time if it arrives within k/30 s + 1 s of the tick's start. The
    JobQueue's polling delay (up to dispatch_interval_seconds) comes on top in production.
    """
    count = LIMITED_CHATS[ctx.quick]
    name = "send-limited-paced" if previous else "send-limited"
    path = await _send_database(ctx, name, count)
    # The previous limiter with the settings app.py gave it: 30 msg/s, 3 retries.
    limiter = PacedRateLimiter(TELEGRAM_RATE, max_retries=3) if previous else None
    async with RemoteFakeApi(
        enforce_global_rate=TELEGRAM_RATE, enforce_chat_rate=TELEGRAM_CHAT_RATE
    ) as api:
        await api.add_chats([chat_id(i) for i in range(count)])
        clock = MovableWallClock(SEND_DUE - timedelta(hours=1))
        application, dispatcher, store = await _production_dispatcher(
            settings_for(path, api), clock, rate_limit=True, rate_limiter=limiter
        )
        try:
            log(f"limited: {count:,} reminders due at once; ~{count / TELEGRAM_RATE:.0f} s")
            server_before = await api.cpu_seconds()
            tick_started = clock.restart(SEND_DUE)
            cpu_before = time.process_time()
            started = time.perf_counter()
            async with asyncio.timeout(count / TELEGRAM_RATE * 3 + 180):
                report = await dispatcher.tick()
            elapsed = time.perf_counter() - started
            tick = TimedTick(
                report,
                elapsed,
                time.process_time() - cpu_before,
                await api.cpu_seconds() - server_before,
            )
            fake = await api.report()
        finally:
            await _stop(application)
    return {
        "limiter": type(limiter or application.bot.rate_limiter).__name__,
        "chats": count,
        "tick": tick_dict(report),
        "tick_s": round(elapsed, 2),
        "store_s": round(store.total_seconds, 3),
        "store_breakdown_s": {k: round(v, 3) for k, v in store.seconds.items()},
        **per_send_costs(store),
        **_check_to_request(fake, store),
        **_lateness(fake, tick_started),
        **cpu_dict(tick),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _check_to_request(fake: FakeReport, store: TimedStore) -> Result:
    """The physics window of "stop means stop": from the start of a delivery's last-moment
    check to its request reaching Telegram (the fake). A person acting inside it can still
    get that one message right after the bot's confirmation."""
    delivery_of = {chat: delivery for delivery, chat in store.chat_of.items()}
    windows = sorted(
        record.at - store.checked_at[delivery_of[record.chat_id]]
        for record in fake.ok()
        if record.chat_id in delivery_of and delivery_of[record.chat_id] in store.checked_at
    )
    if not windows:
        return {}
    return {
        "check_to_request_n": len(windows),
        "check_to_request_p50_ms": round(percentile(windows, 0.5) * 1000, 2),
        "check_to_request_p99_ms": round(percentile(windows, 0.99) * 1000, 2),
        "check_to_request_max_ms": round(windows[-1] * 1000, 2),
    }


def _lateness(fake: FakeReport, due_monotonic: float) -> Result:
    ok = fake.ok()
    if not ok:
        return {"http_200": 0, "http_429": fake.count(429)}
    late = [record.at - due_monotonic - k / TELEGRAM_RATE for k, record in enumerate(ok, 1)]
    worst = max(range(len(late)), key=late.__getitem__)
    window = ok[-1].at - ok[0].at
    # Busiest sliding second, as the server saw it.
    busiest, left = 0, 0
    for right in range(len(ok)):
        while ok[right].at - ok[left].at >= 1.0:
            left += 1
        busiest = max(busiest, right - left + 1)
    steady = [r for r in ok if r.at - ok[0].at >= 2.0]
    steady_rate = (len(steady) - 1) / (steady[-1].at - steady[0].at) if len(steady) > 1 else None
    # The same lateness against the rate actually achieved: what is left is start-up delay
    # and stalls, not the rate deficit.
    achieved = (len(ok) - 1) / window if window else float(TELEGRAM_RATE)
    own = max(record.at - due_monotonic - k / achieved for k, record in enumerate(ok, 1))
    return {
        "http_200": len(ok),
        "http_429": fake.count(429),
        "sustained_msg_per_s": round((len(ok) - 1) / window, 2) if window else None,
        "steady_msg_per_s": round(steady_rate, 2) if steady_rate else None,
        "busiest_second": busiest,
        "first_send_after_due_s": round(ok[0].at - due_monotonic, 3),
        "last_send_after_due_s": round(ok[-1].at - due_monotonic, 3),
        "max_lateness_s": round(late[worst], 3),
        "max_lateness_k": worst + 1,
        "median_lateness_s": round(sorted(late)[len(late) // 2], 3),
        "max_lateness_vs_achieved_rate_s": round(own, 3),
        "per_chat_violations": fake.per_chat_violations,
        "global_violations": fake.global_violations,
    }


SCENARIOS: Final[dict[str, Scenario]] = {
    "import": scenario_import,
    "populate-100k": make_populate("100k"),
    "app-100k": make_app("100k"),
    "jobqueue-100k": scenario_jobqueue,
    "store-100k": make_store("100k"),
    "populate-1m": make_populate("1m"),
    "app-1m": make_app("1m"),
    "store-1m": make_store("1m"),
    "send-unlimited": scenario_send_unlimited,
    "send-limited": make_send_limited(previous=False),
    "send-limited-paced": make_send_limited(previous=True),
}
