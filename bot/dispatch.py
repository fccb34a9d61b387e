"""The reminder "postman": one repeating tick that turns due rows into Telegram messages.

There are no per-person scheduler jobs. The database holds every reminder's next fire time;
each tick

1. MATERIALISES due reminders into pending delivery rows (choosing tonight's meal), moving
   each reminder to its next night in the same transaction. Occurrences more than ``grace``
   late (the bot was down) are skipped with a warning instead of being sent as a burst.
   With send windows (levelling, bot/levelling.py), reminders due in the coming minutes are
   also released early — within their window, never before it opens — when the send rate
   cannot carry them all at their minute: once a minute the coming load is read and planned
   at ``send_rate`` messages a second, and each tick releases what the plan says is due.
2. SENDS due deliveries through a small pipeline: claims a few at a time (``sending``, owned
   by this dispatcher), and ``max_concurrency`` workers each check → send → record one
   delivery after another; the checks and records waiting at the same moment share one
   transaction (``Store.settle``), a worker's record always with its next check. Loops while
   claims keep coming, so with 10,000 reminders due at once the send rate is set by the bot's
   rate limiter, not by the tick interval; after each ``batch_size`` claims it goes back to
   step 1, so a tick that sends a backlog for minutes still levels and materialises in step
   with the clock. A tick with nothing due costs one indexed read (``Store.anything_due``;
   once a heartbeat interval ``Store.tick_check``, which also asks for dead claims).

Paid only for the overflow (ALLOW_PAID_BROADCAST): a reminder is sent flagged
``allow_paid_broadcast`` (0.1 Telegram Stars each) only when the free lane (~30 msg/s) cannot
get it out before it — or a reminder waiting behind it — would leave its send window. The rule
(``paid_after``): from ``PAID_LEAD`` (60 s) before ``due_at`` + the *tightest* ``after`` of
all windowed kinds (5 minutes: the wind-down's), never before its own minute, it may take the
rate limiter's paid lane whenever its turn comes and the free slot is taken (bot/ratelimit.py
decides the lane there, so replies, other replicas and 429 slowdowns count). Why the tightest
window and not its own: deliveries are claimed in due order, not deadline order, so behind a
meal idea due at 21:30 (window +10 min) may wait a wind-down due at 21:30 (+5 min); a meal
idea that held the free lane until its own close would push that wind-down out of its window
(bench/dispatch_day.py at 1M: 9,688 wind-downs after their window with the kind's own window,
none with the tightest). Why this is "only the overflow": whatever waits ahead of it in the
free lane is due no later; if it is still waiting a minute before that close, the free lane
is full up to then, and a minute at the paid rate (1,000 msg/s) carries the clump of any
minute we have seen (65,000 reminders at 1M people). The minute is the planner's ``PAID_LEAD``
(bot/capacity.py); the planner sends earliest deadline first, so it can use each reminder's own
window, and its paid count is a lower bound of the dispatcher's. Early (levelled) releases
never pay; replies and kinds without a send window never pay (the diary's check-in and weekly
chart have windows in content/diary.toml, so their overflow may pay too). Each tick's
summary counts the paid sends (``paid``, with one INFO line saying why); /metrics counts them
(``sleepbot_paid_broadcasts_total``).

Stop means stop: right before each request goes out — after the rate limiter's wait, via
its ``SendOptions.still_wanted`` hook — the delivery is checked against the person's current
state in the database (``bot.eligibility``), and dropped with a counted, logged reason if
the person stopped, paused, erased, switched that kind off or blocked the bot since it was
claimed. The same rule runs again before a failed attempt is rescheduled.

Crash safety: each outcome is committed as soon as its send returns (small group commits), in
the same transaction as the worker's check of its next delivery, which is sent only after that
commit; so a SIGKILL can repeat at most one send per worker (≤ ``max_concurrency``). Claims
carry their owner; a heartbeat task renews the owner's row every ``heartbeat_every``,
independently of sending. Claims of an owner silent for ``dead_after`` (8 s) are put back to
pending by any live dispatcher at its next tick, or within a heartbeat interval mid-burst: at
most 8 + 5 = 13 s after the crash by default; a live owner's claims are never taken, however
slowly it sends. ``stop()`` (SIGTERM) stops claiming, lets requests already on the wire
finish, and gives unsent claims back at once.

Several processes may share one PostgreSQL database: every claim uses ``FOR UPDATE SKIP
LOCKED``, so each reminder is materialised once and each delivery claimed by one process.
Nothing due is ever silently lost: it is sent, retried, or marked expired/failed/skipped with
a log line.

Time always comes from the injected clock, so tests can cross nights and DST without sleeping.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
import warnings
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, Protocol, TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import CallbackContext, ExtBot
from telegram.warnings import PTBDeprecationWarning

from bot.capacity import DROPPED, PAID_LEAD, Window
from bot.clock import Clock, FakeClock
from bot.config import DEFAULT_SNOOZE_MINUTES
from bot.content import Content
from bot.keyboards import reminder_keyboard
from bot.levelling import Release, ReleasePlan, horizon_seconds, plan_releases
from bot.meals import MEAL_KIND, choose_meal
from bot.ratelimit import FairRateLimiter, SendOptions, Withdrawn
from bot.storage import ClaimedDelivery, RecordedOutcome, SendOutcome, Shed, Store

log = logging.getLogger(__name__)

BACKOFF_START: Final = timedelta(seconds=5)
BACKOFF_CAP: Final = timedelta(minutes=5)
PURGE_EVERY: Final = timedelta(hours=1)
REPLAN_EVERY: Final = timedelta(minutes=1)  # levelling: how often the coming load is read
CAPACITY_EVERY: Final = timedelta(days=1)  # the capacity check's WARNING: once a day at most
HEARTBEAT_EVERY: Final = timedelta(seconds=2)
DEAD_AFTER: Final = timedelta(seconds=8)
# Graceful stop: how long requests already on the wire may take before they are abandoned
# (their claims are then released too: a possible duplicate, never a loss).
DRAIN_SECONDS: Final = 5.0
# Telegram refused a paid broadcast for want of Stars: no reminder goes paid for this long
# (then one tries again: the operator may have topped the balance up), and meanwhile the
# overload policy's merges and drops apply as without paid broadcasts.
PAID_SUSPENDED_FOR: Final = timedelta(hours=1)
# No in-process retry of a 429, and no waiting longer than this for a held-back chat: the
# delivery is rescheduled instead, so the send slot goes to another chat.
REMINDER_SEND: Final = SendOptions(max_retries=0, max_wait=2.0)
# Sends in flight at once. bench/sendrate.py (5,000 messages, local fake Bot API, 2026-11-30,
# bench/README.md): the dispatcher's rate is flat from 4 to 32 (it is CPU-bound there:
# ~200-330 msg/s in four runs, while plain PTB fell from up to 990 msg/s at 4 to ~140-440 at
# 32, httpcore's pool bookkeeping), so locally concurrency buys nothing above 8. Against real
# Telegram a send waits a network round trip (~50-100 ms), so the rate is about
# concurrency / RTT: 16 keeps ~160-320 msg/s of headroom over the 30 msg/s cap (8 would leave
# 80-160), while a crash repeats at most this many sends and 32+ costs httpcore time. Measured
# with the fake answering after 50 ms (bench.sendrate --latency-ms 50): 131 / 215 / 189 msg/s
# at 8 / 16 / 32. Hence 16.
DEFAULT_MAX_CONCURRENCY: Final = 16
# Overload policy (b): a meal idea the plan takes out of a congested stretch rides with the
# person's exercise note when that note comes at most this long after it (3 h before bedtime
# by default, an hour after the meal idea); a meal idea later than that is no longer tonight's
# dinner idea, so it is dropped instead.
MERGE_WITHIN: Final = timedelta(hours=2)
# A chat's next due reminder is looked at again this much later while its previous one is
# still in flight (one at a time keeps their order; the limiter paces the chat).
BUSY_CHAT_DEFER: Final = timedelta(milliseconds=250)

_PACING: Final = "pacing"  # waiting for the rate limiter: nothing sent yet, safe to cancel
_BUSY: Final = "busy"  # checking, on the wire or recording: let it finish


class DispatchObserver(Protocol):
    """Who watches the dispatcher from outside (bot.replica: /healthz and /metrics).

    ``ticking()`` wraps each tick itself (``run_job`` only starts it in the background, so
    timing ``run_job`` would time nothing); ``progress()`` says a long tick is still moving;
    ``outcome()`` gets each reminder's end: kind, one of bot.metrics.OUTCOMES, and the
    seconds after its due time when Telegram accepted it.
    """

    def ticking(self) -> AbstractAsyncContextManager[None]: ...

    def progress(self) -> None: ...

    def outcome(self, kind: str, outcome: str, lateness: float | None) -> None: ...


def new_owner_id() -> str:
    """Unique per process start: host, pid and a random tail (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class TickReport:
    """What one tick did; all zero means there was nothing to do."""

    materialized: int = 0
    released_early: int = 0  # materialised before their time by levelling (in their window)
    merged: int = 0  # meal ideas sent inside the exercise note instead (overload policy b)
    sent: int = 0
    skipped_stale: int = 0
    retried: int = 0
    deactivated: int = 0
    failed: int = 0
    expired: int = 0  # pending deliveries that became older than the grace period
    # Claimed but not sent, by reason (bot.eligibility): the person acted after the claim.
    dropped: Counter[str] = field(default_factory=Counter)
    # Sent while the person cancelled it: the request was already on the wire.
    in_flight_when_cancelled: int = 0
    taken_over: int = 0  # claims of dead dispatchers put back to pending by this one
    released: int = 0  # unsent claims given back (stopping, or a failed check)
    # Sent as paid broadcasts, by kind: the free lane could not send them within their window.
    paid: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def add(self, other: TickReport) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Counter):
                detail = ", ".join(f"{reason}={n}" for reason, n in sorted(value.items()))
                parts.append(f"{f.name}={value.total()}" + (f" ({detail})" if detail else ""))
            else:
                parts.append(f"{f.name}={value}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Outgoing:
    """What a composer sends: a text message, or a photo with ``text`` as its caption."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    photo: bytes | None = None


Composer = Callable[[ClaimedDelivery], Awaitable[Outgoing]]
"""Builds a scheduled kind that is not a nightly reminder (the diary's morning check-in and
weekly chart): given the claimed delivery, what to send."""

T = TypeVar("T")
R = TypeVar("R")


class _GroupCall(Generic[T, R]):
    """Runs ``run`` once for everything submitted while its previous run was busy.

    Idle, a submission runs at once (alone); under load, what arrived meanwhile shares one
    transaction. Rounds run one after another in submission order, so an item's answer comes
    only after everything submitted before it has run (committed, for the dispatcher).
    ``submit`` waits for its item's result; ``post`` does not wait, and calls ``then`` with
    the result (or the error) as soon as its round ends.
    """

    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        self._run = run
        self._waiting: list[tuple[T, Callable[[R | Exception], None]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()

        def then(result: R | Exception) -> None:
            if future.done():  # the caller gave up (cancelled)
                return
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

        self.post(item, then)
        return await future

    def post(self, item: T, then: Callable[[R | Exception], None]) -> None:
        """Queue ``item`` for the next round without waiting for it."""
        self._waiting.append((item, then))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name="dispatcher-group-call")

    async def flush(self) -> None:
        """Wait until everything submitted so far has run (a caller that gave up included)."""
        while self._runner is not None and not self._runner.done():
            await asyncio.shield(self._runner)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results: Sequence[R | Exception] = await self._run([item for item, _ in batch])
            except Exception as error:  # every caller sees it; the next batch may succeed
                results = [error] * len(batch)
            for (_, then), result in zip(batch, results, strict=True):
                try:
                    then(result)
                except Exception:  # one caller's bookkeeping must not fail the others
                    log.exception("dispatcher: handling a settled item failed")


class PaidRefused(Exception):
    """Telegram answered a paid broadcast with a refusal to charge for it (``error``)."""

    def __init__(self, error: TelegramError) -> None:
        super().__init__(str(error))
        self.error = error


def _refuses_paid_broadcast(error: TelegramError) -> bool:
    """Is this Telegram's "not enough Stars" for a paid broadcast? The Bot API does not
    document the answer; MTProto's error for it is BALANCE_TOO_LOW, and the Bot API passes
    such names through in its descriptions ("Bad Request: BALANCE_TOO_LOW"). Matched loosely
    on purpose: a paid send refused for any reason about the balance or Stars must not cost
    the reminder."""
    text = str(error).lower()
    return "balance" in text or "stars" in text


class NothingToSend(Exception):
    """A composer's answer when a due message has become pointless (the check-in's night
    was already logged): the delivery is recorded as skipped with this reason, not sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Dispatcher:
    """Sends every due reminder when due, once, from whichever process claims it first."""

    def __init__(
        self,
        store: Store,
        bot: Bot,
        content: Content,
        clock: Clock,
        *,
        grace: timedelta = timedelta(minutes=30),
        batch_size: int = 500,
        claim_size: int = 32,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retention: timedelta = timedelta(days=30),
        heartbeat_every: timedelta = HEARTBEAT_EVERY,
        dead_after: timedelta = DEAD_AFTER,
        owner: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: DispatchObserver | None = None,
        allow_paid_broadcast: bool = False,
        locales: Mapping[str, Content] | None = None,
        snooze_minutes: int = DEFAULT_SNOOZE_MINUTES,
        composers: dict[str, Composer] | None = None,
        windows: Mapping[str, Window] | None = None,
        send_rate: float = 30.0,
        replan_every: timedelta = REPLAN_EVERY,
        tick_every: timedelta = timedelta(seconds=5),
        capacity_check: Callable[[datetime], Coroutine[Any, Any, object]] | None = None,
        paid_lead: timedelta = timedelta(seconds=PAID_LEAD),
    ) -> None:
        """``composers`` render kinds other than the nightly reminders (by kind).
        ``batch_size`` reminders are materialised per transaction, ``claim_size``
        deliveries claimed per transaction. ``sleep`` paces the heartbeat task (tests may
        pass their own; ``beat()`` also works on its own). ``locales``: the content of each
        locale a person may speak (default: only ``content``, which is also the fallback);
        ``snooze_minutes`` is what the Snooze button says. ``windows``: each kind's send
        window (content's); with any window opening before its time the dispatcher levels,
        planning at ``send_rate`` messages a second (SEND_RATE_PER_SECOND), and each tick
        releases what the plan sends before the next tick (``tick_every`` later).
        ``capacity_check`` (bot.capacity_plan.CapacityWatch.check) runs in the background
        once a day from the first tick, so only the process that sends projects the day.
        ``allow_paid_broadcast``: reminders may take the rate limiter's paid lane from
        ``paid_lead`` before their window closes (see the module docstring); ``send_rate`` is
        then the free lane's rate, the one levelling fills."""
        if batch_size < 1 or claim_size < 1 or max_concurrency < 1:
            raise ValueError("batch_size, claim_size and max_concurrency must be positive")
        if heartbeat_every <= timedelta(0) or dead_after < 2 * heartbeat_every:
            raise ValueError("dead_after must be at least two heartbeats")
        self.store = store
        self.bot = bot
        self.content = content
        self.locales: Mapping[str, Content] = locales or {}
        self.snooze_minutes = snooze_minutes
        self.clock = clock
        self.grace = grace
        self.batch_size = batch_size
        self.claim_size = claim_size
        self.max_concurrency = max_concurrency
        self.retention = retention
        self.heartbeat_every = heartbeat_every
        self.dead_after = dead_after
        self.owner = owner or new_owner_id()
        self._sleep = sleep
        self.observer = observer
        # ALLOW_PAID_BROADCAST: Telegram's paid broadcasts, up to 1,000 messages a second,
        # charged in Stars (bot/capacity.py's overload policy a), for the overflow only.
        self.allow_paid_broadcast = allow_paid_broadcast
        self.paid_lead = paid_lead
        self._went_paid: set[int] = set()  # deliveries whose send was a paid broadcast
        self._paid_suspended_until: datetime | None = None  # see PAID_SUSPENDED_FOR
        self.composers = dict(composers or {})
        self.windows: Mapping[str, Window] = dict(windows or {})
        self.send_rate = send_rate
        self.replan_every = replan_every
        self.tick_every = tick_every
        self._horizon = timedelta(seconds=horizon_seconds(self.windows))
        self._releases: ReleasePlan | None = None
        self.capacity_check = capacity_check
        self._next_capacity_check: datetime | None = None
        self._capacity_task: asyncio.Task[object] | None = None
        self._replan_at: datetime | None = None
        # Per-chat pacing is the rate limiter's (bot/ratelimit.py); here a chat has one
        # reminder in flight at a time, so its reminders keep their order.
        self._busy_chats: set[int] = set()
        self._running = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = asyncio.Event()
        self._workers: dict[asyncio.Task[None], str] = {}
        self._unrecorded: set[int] = set()  # sent or not, its outcome could not be written
        self._withdrawn: set[int] = set()  # not sent and still claimed: to be released
        self._released_on_stop = 0
        # Last-moment checks (a delivery id) and outcomes to record share one group call:
        # what arrives while a round runs goes to the database together in the next one.
        self._rounds: _GroupCall[int | SendOutcome, str | RecordedOutcome | None] = _GroupCall(
            self._settle_round
        )
        self._tick_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._beating = False
        self._last_beat: datetime | None = None
        self._last_reap: datetime | None = None
        self._next_purge_at: datetime | None = None

    # --- life cycle ------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def start(self) -> None:
        """Register this dispatcher and keep its heartbeat going until ``stop()``."""
        await self.beat()
        self._heartbeat_task = asyncio.create_task(
            self._heartbeat_forever(), name="dispatcher-heartbeat"
        )

    async def beat(self) -> None:
        """One heartbeat: this dispatcher's claims stay its own for ``dead_after`` more."""
        now = self.clock.now()
        await self.store.heartbeat(self.owner, now)
        self._last_beat = now

    async def _heartbeat_forever(self) -> None:
        while not self._stopping.is_set():
            await self._sleep(self.heartbeat_every.total_seconds())
            self._beating = True
            try:
                await self.beat()
            except Exception:  # a database hiccup: the next beat may succeed
                log.warning("dispatcher heartbeat failed", exc_info=True)
            finally:
                self._beating = False

    async def stop(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Graceful stop (SIGTERM): claim nothing more, let requests on the wire finish,
        give every unsent claim back (pending, due at once for the next process)."""
        self._stopping.set()
        for task, phase in list(self._workers.items()):
            if phase == _PACING:
                task.cancel()
        try:
            await asyncio.wait_for(self._idle.wait(), drain_seconds)
        except TimeoutError:
            log.warning(
                "%d sends still unfinished %.0f s after stop: abandoning them (their claims are "
                "released, so a message Telegram did accept may be sent again)",
                len(self._workers),
                drain_seconds,
            )
            for task in list(self._workers):
                task.cancel()
            try:  # the tick now releases what it holds; it only needs the database
                await asyncio.wait_for(self._idle.wait(), min(2.0, drain_seconds))
            except TimeoutError:
                if self._tick_task is not None:
                    self._tick_task.cancel()
        await self._rounds.flush()  # outcomes first, so no sent message is released
        if self._heartbeat_task is not None:
            # Cancelled only while it sleeps: a beat cancelled mid-write is rolled back with a
            # traceback in the log; a beat under way finishes and the loop then ends.
            if not self._beating:
                self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        if self._capacity_task is not None and not self._capacity_task.done():
            self._capacity_task.cancel()  # a read-only projection: nothing half-written
        released = self._released_on_stop + await self.store.retire_dispatcher(self.owner)
        log.info("dispatcher stopped; %d unsent claims released for the next process", released)

    async def run_job(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        """JobQueue callback: start a tick in the background and return.

        PTB's ``Application.stop()`` waits for running jobs; a tick mid-burst would hold a
        SIGTERM for minutes. The tick runs beside the JobQueue instead, and ``stop()`` (from
        ``post_stop``) ends it. Overlapping ticks are skipped: one at a time per process.
        """
        if self.stopping:
            return
        if self._tick_task is not None and not self._tick_task.done():
            log.debug("dispatcher tick still running; skipping this one")
            return
        self._tick_task = asyncio.create_task(self.tick_and_log(), name="dispatcher-tick")

    async def idle(self) -> None:
        """Wait for the tick ``run_job`` started, if any, to finish."""
        if self._tick_task is not None:
            await asyncio.shield(self._tick_task)

    async def tick_and_log(self) -> None:
        """One tick, summarised in one log line when it did anything."""
        try:
            async with self.observer.ticking() if self.observer else nullcontext():
                report = await self.tick()
        except Exception:
            log.exception("dispatcher tick failed; the next one retries")
            return
        if not report:
            return
        # Rows created for later sending are routine (DEBUG); anything sent, retried,
        # skipped or failed is worth a line at INFO (details are logged where they happen).
        only_materialized = report == TickReport(materialized=report.materialized)
        level = logging.DEBUG if only_materialized else logging.INFO
        log.log(level, "dispatcher tick: %s", report.summary())
        if report.paid:
            log.info(
                "%d reminders went as paid broadcasts (0.1 Telegram Stars each; %s): the free "
                "lane could not send them before %s ahead of their send window's close",
                report.paid.total(),
                ", ".join(f"{kind}={n}" for kind, n in sorted(report.paid.items())),
                _duration(self.paid_lead),
            )

    async def tick(self) -> TickReport:
        """Materialise due reminders, then send due deliveries until none are left this tick."""
        async with self._running:
            self._idle.clear()
            try:
                report = TickReport()
                if self.stopping:
                    return report
                await self._beat_when_due()
                await self._release_unrecorded(report)
                # Send after every materialised batch, so with 10,000 due at once the first
                # message leaves after one batch of database work, not after all of it; and
                # send at most a batch before looking again, so a tick that sends for minutes
                # (a backlog) keeps levelling, shedding and materialising in step with the
                # clock instead of after the backlog. Nothing due (almost every tick): one
                # read decides, no write transaction.
                first = True
                while not self.stopping:
                    await self._level(report)
                    due = await self._anything_due(report, reap=first)
                    first = False
                    if not due:
                        break
                    more_reminders = await self._materialize(report)
                    more_deliveries = await self._send_due(report, limit=self.batch_size)
                    if not (more_reminders or more_deliveries):
                        break
                if not self.stopping:
                    await self._purge_history()
                    self._check_capacity_daily()
                return report
            finally:
                self._idle.set()

    async def _beat_when_due(self) -> None:
        """Beat if the heartbeat task has not (tests tick without it)."""
        now = self.clock.now()
        if self._last_beat is None or now - self._last_beat >= self.heartbeat_every:
            await self.beat()

    async def _keep_alive(self, report: TickReport) -> None:
        """Between claims of a long tick: beat when due, and at most once a heartbeat
        interval put dead dispatchers' claims back to pending."""
        await self._beat_when_due()
        now = self.clock.now()
        if self._reap_due(now):
            self._last_reap = now
            await self._reap(now, report)

    async def _anything_due(self, report: TickReport, *, reap: bool) -> bool:
        """Is there work? When it is time to look for dead dispatchers' claims too (``reap``:
        the tick's first look, at most once a heartbeat interval), the same one read asks
        both; claims taken over are pending again, so then there is work."""
        now = self.clock.now()
        if not (reap and self._reap_due(now)):
            return await self.store.anything_due(now)
        self._last_reap = now
        check = await self.store.tick_check(now, self.dead_after)
        if not check.dead_claims:
            return check.due
        return await self._reap(now, report) > 0 or check.due

    def _reap_due(self, now: datetime) -> bool:
        return self._last_reap is None or now - self._last_reap >= self.heartbeat_every

    async def _reap(self, now: datetime, report: TickReport) -> int:
        dead = await self.store.release_dead_claims(now, self.dead_after)
        if dead.released:
            log.warning(
                "took over %d deliveries claimed by %s (no heartbeat for %s)",
                dead.released,
                ", ".join(dead.owners),
                _duration(self.dead_after),
            )
            report.taken_over += dead.released
        return dead.released

    async def _release_unrecorded(self, report: TickReport) -> None:
        """Deliveries whose outcome could not be written are given back: at least once."""
        if not self._unrecorded:
            return
        ids, self._unrecorded = sorted(self._unrecorded), set()
        report.released += await self.store.release_claims(self.owner, ids)

    async def _purge_history(self) -> None:
        """At most hourly: forget finished deliveries older than the retention period."""
        now = self.clock.now()
        if self._next_purge_at is not None and now < self._next_purge_at:
            return
        self._next_purge_at = now + PURGE_EVERY
        purged = await self.store.purge_deliveries(now - self.retention)
        if purged:
            log.info("purged %d deliveries older than %s", purged, _duration(self.retention))

    def _check_capacity_daily(self) -> None:
        """Start the day's capacity check beside the ticks (it may take seconds)."""
        if self.capacity_check is None:
            return
        now = self.clock.now()
        if self._next_capacity_check is not None and now < self._next_capacity_check:
            return
        if self._capacity_task is not None and not self._capacity_task.done():
            return
        self._next_capacity_check = now + CAPACITY_EVERY
        self._capacity_task = asyncio.create_task(
            self.capacity_check(now), name="dispatcher-capacity-check"
        )
        self._capacity_task.add_done_callback(_log_capacity_failure)

    # --- 1. materialise ------------------------------------------------------------------

    def _choose_meal(self, diet: str, recent: Sequence[str]) -> str | None:
        try:
            return choose_meal(self.content.meal_ideas, diet, recent).id
        except ValueError:
            log.warning("no meal idea for diet %r; sending the generic meal reminder", diet)
            return None

    async def _level(self, report: TickReport) -> None:
        """Release early what the levelling plan says should be on its way by now."""
        if not self._horizon:
            return
        now = self.clock.now()
        if self._releases is None or self._replan_at is None or now >= self._replan_at:
            loads = await self.store.upcoming_load(now - self.grace, now + self._horizon, now)
            self._releases = plan_releases(
                loads,
                self.windows,
                now=int(now.timestamp()),
                rate=self.send_rate,
                grace=int(self.grace.total_seconds()),
            )
            self._replan_at = now + self.replan_every
            if self._releases:
                log.debug(
                    "levelling: %d reminders of the next %s will go out early, within their "
                    "send windows (the coming minutes hold more than %g messages a second)",
                    self._releases.total,
                    _duration(self._horizon),
                    self.send_rate,
                )
        # Drops for every group falling due before the next plan: that plan starts from those
        # groups as already due, and no longer sees them as its to drop.
        drops = self._releases.drops_due(
            int((now + self.replan_every + self.tick_every).timestamp())
        )
        if drops and not self.paid_now():  # paid: the overflow goes paid instead
            await self._shed(now, drops, report)
        due = self._releases.due(int((now + self.tick_every).timestamp()))
        if not due:
            return
        released = sum(await self.store.materialize_early(now, due, choose_meal=self._choose_meal))
        for release in due:
            self._releases.released(release)
        report.released_early += released
        log.info(
            "released %d reminders early (levelling): %s",
            released,
            ", ".join(
                f"{r.count} {r.kind} due {datetime.fromtimestamp(r.at, UTC):%H:%M} UTC" for r in due
            ),
        )

    async def _shed(self, now: datetime, drops: Sequence[Release], report: TickReport) -> None:
        """What the plan says would expire goes, explicitly: merged where the person loses
        nothing (policy b: the meal idea rides with their exercise note), else dropped by
        priority (policy c)."""
        results = await self.store.shed(
            now,
            drops,
            choose_meal=self._choose_meal,
            merge_within=MERGE_WITHIN,
        )
        merged = sum(result.merged for result in results)
        dropped = sum(result.dropped for result in results)
        carried = sum(result.carried_dropped for result in results)
        report.merged += merged
        report.dropped[DROPPED] += dropped + carried
        if self.observer is not None:
            # Counters count what was done: a meal idea merged earlier and lost now with the
            # note that carried it shows once as merged (then) and once as dropped (now).
            for release, result in zip(drops, results, strict=True):
                for _ in range(result.merged):
                    self.observer.outcome(release.kind, "merged", None)
                for _ in range(result.dropped):
                    self.observer.outcome(release.kind, "dropped", None)
                for _ in range(result.carried_dropped):
                    self.observer.outcome(MEAL_KIND, "dropped", None)

        def groups(count: Callable[[Shed], int]) -> str:
            return ", ".join(
                f"{count(result)} {release.kind} due {_utc_minute(release.at)} UTC"
                for release, result in zip(drops, results, strict=True)
                if count(result)
            )

        if merged:
            log.warning(
                "merged %d meal ideas into the same person's exercise note (overload policy b: "
                "the coming hour cannot carry every message even levelled): %s",
                merged,
                groups(lambda result: result.merged),
            )
        if dropped:
            log.warning(
                "dropped %d reminders by priority (overload policy c: the coming hour cannot "
                "carry them even levelled and merged; meal ideas go first, wind-downs last): %s%s",
                dropped + carried,
                groups(lambda result: result.dropped),
                f"; and {carried} meal ideas merged into the dropped exercise notes"
                if carried
                else "",
            )

    async def _materialize(self, report: TickReport) -> bool:
        """One batch of due reminders into deliveries; True when more may be waiting."""
        now = self.clock.now()
        result = await self.store.materialize_due(
            now, grace=self.grace, limit=self.batch_size, choose_meal=self._choose_meal
        )
        report.materialized += result.materialized
        report.skipped_stale += len(result.stale)
        for stale in result.stale:
            log.warning(
                "skipped a stale %s reminder for chat %s: due %s, %s late "
                "(more than the %s grace period: the bot was down, or far behind its send rate)",
                stale.kind,
                stale.chat_id,
                stale.due_at.isoformat(),
                _duration(stale.lateness),
                _duration(self.grace),
            )
            if self.observer is not None:  # never sent: for /metrics it expired
                self.observer.outcome(stale.kind, "expired", None)
        return result.claimed >= self.batch_size

    # --- 2. send -------------------------------------------------------------------------

    async def _send_due(self, report: TickReport, *, limit: int) -> bool:
        """Claim a few, keep ``max_concurrency`` workers busy, claim more as they go, up to
        ``limit`` claims; True when it stopped at the limit (more may be due).

        A worker takes the next ready delivery as soon as its send returns and its outcome is
        queued for the next round, so that outcome is recorded in the same transaction as
        the next delivery's check (``_GroupCall``: rounds run in order, and a check's answer
        comes only after its round commits). A send therefore starts only after every
        outcome queued before its check is committed: a worker has at most one sent but
        unrecorded delivery at any moment, and a SIGKILL repeats at most ``max_concurrency``.
        """
        ready: deque[ClaimedDelivery] = deque()
        holding: dict[asyncio.Task[None], ClaimedDelivery] = {}
        unsent: list[int] = []
        hungry = asyncio.Event()  # ``ready`` ran low: claim more
        workers: set[asyncio.Task[None]] = set()
        more = True
        claimed_so_far = 0
        try:
            while True:
                claiming = more and claimed_so_far < limit  # at the limit: finish what is held
                if claiming and not self.stopping and len(ready) < self.max_concurrency:
                    claimed, more = await self._claim(report)
                    claimed_so_far += len(claimed)
                    ready.extend(claimed)
                while ready and len(workers) < self.max_concurrency and not self.stopping:
                    task = asyncio.create_task(
                        self._work(ready, holding, unsent, hungry, report),
                        name="dispatcher-worker",
                    )
                    self._workers[task] = _BUSY
                    workers.add(task)
                if not workers:
                    if self.stopping or not (claiming or ready):
                        return more and not self.stopping
                    continue
                hungry.clear()
                wants_more = more and claimed_so_far < limit and not self.stopping
                waiting: set[asyncio.Future[Any]] = set(workers)
                waker = asyncio.ensure_future(hungry.wait()) if wants_more else None
                if waker is not None:
                    waiting.add(waker)
                try:
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if waker is not None:
                        waker.cancel()
                for task in workers & done:
                    workers.discard(task)
                    self._workers.pop(task, None)
                    if task.cancelled():  # stop(): it was waiting for the rate limiter
                        continue
                    error = task.exception()
                    if error is not None:
                        raise error
        finally:
            for task in workers:  # only when this tick itself is cancelled
                task.cancel()
            if workers:
                await asyncio.gather(*workers, return_exceptions=True)
            for task in workers:
                self._workers.pop(task, None)
            unsent.extend(delivery.id for delivery in [*ready, *holding.values()])
            for delivery in [*ready, *holding.values()]:
                self._busy_chats.discard(delivery.chat_id)
            # Outcomes first, so no sent message is released (and the report is complete).
            await self._rounds.flush()
            if unsent:
                released = await self.store.release_claims(self.owner, unsent)
                report.released += released
                if self.stopping:
                    self._released_on_stop += released

    async def _claim(self, report: TickReport) -> tuple[list[ClaimedDelivery], bool]:
        """Claim up to ``claim_size``; also says whether more may be due."""
        await self._keep_alive(report)
        now = self.clock.now()

        def accept(chat_id: int) -> bool:
            if chat_id in self._busy_chats:
                return False
            self._busy_chats.add(chat_id)
            return True

        claim = await self.store.claim_deliveries(
            now,
            owner=self.owner,
            grace=self.grace,
            limit=self.claim_size,
            accept=accept,
            defer=BUSY_CHAT_DEFER,
        )
        for expired in claim.expired:
            log.warning(
                "expired a %s reminder for chat %s: due %s, not sent within the %s grace "
                "period (attempts so far: %d)",
                expired.kind,
                expired.chat_id,
                expired.due_at.isoformat(),
                _duration(self.grace),
                expired.attempts,
            )
        report.expired += len(claim.expired)
        if self.observer is not None:
            for expired in claim.expired:
                self.observer.outcome(expired.kind, "expired", None)
        return list(claim.claimed), claim.scanned >= self.claim_size

    async def _work(
        self,
        ready: deque[ClaimedDelivery],
        holding: dict[asyncio.Task[None], ClaimedDelivery],
        unsent: list[int],
        hungry: asyncio.Event,
        report: TickReport,
    ) -> None:
        """One worker: check, send and queue the outcome of ready deliveries, one at a time.

        ``holding`` says which delivery it has (released by ``_send_due`` if the worker is
        cancelled before its send); one that was not sent and is still claimed (withdrawn
        because we are stopping, or the check itself failed) goes to ``unsent``.
        """
        task = asyncio.current_task()
        assert task is not None
        while ready and not self.stopping:
            delivery = ready.popleft()
            if len(ready) < self.max_concurrency:
                hungry.set()
            holding[task] = delivery
            if task in self._workers:
                self._workers[task] = _BUSY
            outcome = await self._attempt(delivery, report)
            del holding[task]
            if outcome is None:
                if delivery.id in self._withdrawn:
                    unsent.append(delivery.id)
                self._finished(delivery)
                continue
            # Not awaited: recorded in the round that also checks this worker's next one.
            self._rounds.post(outcome, functools.partial(self._recorded, delivery, outcome, report))

    def _recorded(
        self,
        delivery: ClaimedDelivery,
        outcome: SendOutcome,
        report: TickReport,
        recorded: str | RecordedOutcome | Exception | None,
    ) -> None:
        """An outcome's round has ended: count it, or keep it to release if not written."""
        try:
            if isinstance(recorded, RecordedOutcome):
                self._count(delivery, outcome, recorded, report)
            else:
                log.error(
                    "could not record that delivery %s was %s; it will be released",
                    delivery.id,
                    outcome.result,
                    exc_info=recorded if isinstance(recorded, Exception) else None,
                )
                self._unrecorded.add(delivery.id)
        finally:
            self._finished(delivery)

    def _finished(self, delivery: ClaimedDelivery) -> None:
        """The delivery is done with (its outcome committed, or nothing to record)."""
        self._withdrawn.discard(delivery.id)
        self._went_paid.discard(delivery.id)
        self._busy_chats.discard(delivery.chat_id)
        if self.observer is not None:
            self.observer.progress()

    def content_for(self, delivery: ClaimedDelivery) -> Content:
        """The content in the person's language (their choice, else Telegram's)."""
        return self.locales.get(delivery.locale or "", self.content)

    async def _attempt(self, delivery: ClaimedDelivery, report: TickReport) -> SendOutcome | None:
        """The send itself; None when the last-moment check said no (nothing was sent)."""
        composer = self.composers.get(delivery.kind)
        try:
            if composer is not None:
                outgoing = await composer(delivery)
            else:
                content = self.content_for(delivery)
                # An exercise note carrying a meal id is the one evening message.
                text = content.render_delivery(delivery.kind, delivery.meal_id)
                keyboard = reminder_keyboard(content, delivery.id, self.snooze_minutes)
                outgoing = Outgoing(text, keyboard)
        except NothingToSend as nothing:
            log.info(
                "not sending %s %s to chat %s: %s",
                delivery.kind,
                delivery.id,
                delivery.chat_id,
                nothing.reason,
            )
            return SendOutcome(delivery.id, "skipped", self.clock.now(), error=nothing.reason)
        except KeyError:
            return self._failed(delivery, f"unknown reminder kind {delivery.kind!r}")
        except Exception as error:  # the database, for a composer: try again later
            log.warning("could not prepare delivery %s", delivery.id, exc_info=True)
            return self._retry(delivery, _backoff(delivery.attempts + 1), error)

        async def still_wanted() -> bool:
            return await self._still_wanted(delivery, report)

        try:
            message = await self._send(delivery, outgoing, still_wanted)
        except Withdrawn:
            return None
        except PaidRefused as refused:
            return self._paid_refused(delivery, refused.error)
        except RetryAfter as error:
            wait = _retry_after(error)
            log.info(
                "flood control for chat %s: retrying delivery %s in %s",
                delivery.chat_id,
                delivery.id,
                _duration(wait),
            )
            return self._retry(delivery, wait, error)
        except Forbidden as error:
            return self._gone(delivery, error)
        except BadRequest as error:  # a NetworkError subclass in PTB: must come first
            if "chat not found" in str(error).lower():
                return self._gone(delivery, error)
            return self._failed(delivery, f"BadRequest: {error}")
        except NetworkError as error:  # includes TimedOut: maybe delivered, maybe not
            wait = _backoff(delivery.attempts + 1)
            log.warning(
                "network error sending delivery %s to chat %s (%s); retrying in %s",
                delivery.id,
                delivery.chat_id,
                error,
                _duration(wait),
            )
            return self._retry(delivery, wait, error)
        except TelegramError as error:  # 5xx, InvalidToken, Conflict, ...: maybe transient
            wait = _backoff(delivery.attempts + 1)
            log.error(
                "Telegram error sending delivery %s to chat %s: %r; retrying in %s",
                delivery.id,
                delivery.chat_id,
                error,
                _duration(wait),
            )
            return self._retry(delivery, wait, error)
        except Exception as error:  # a bug: record it rather than retry forever
            log.exception("unexpected error sending delivery %s", delivery.id)
            return self._failed(delivery, f"{type(error).__name__}: {error}")
        if message is None:
            return None
        return SendOutcome(
            delivery.id, "sent", self.clock.now(), telegram_message_id=message.message_id
        )

    async def _send(
        self,
        delivery: ClaimedDelivery,
        outgoing: Outgoing,
        still_wanted: Callable[[], Awaitable[bool]],
    ) -> Message | None:
        """Through the rate limiter's last-moment hook when it has one (the check then runs
        after the wait for a slot); otherwise check, then send. None: not wanted any more."""
        bot = self.bot
        extra: dict[str, Any] = {}
        refused: list[TelegramError] = []  # paid attempts Telegram refused to charge for
        if _takes_send_options(bot):
            task = asyncio.current_task()
            if task in self._workers:
                self._workers[task] = _PACING

            def went_paid() -> None:
                self._went_paid.add(delivery.id)

            def paid_failed(error: Exception) -> None:
                if isinstance(error, TelegramError) and _refuses_paid_broadcast(error):
                    refused.append(error)

            extra["rate_limit_args"] = replace(
                REMINDER_SEND,
                still_wanted=still_wanted,
                paid_after=self.paid_after(delivery),
                on_paid=went_paid,
                on_paid_error=paid_failed,
            )
        elif not await still_wanted():
            return None
        try:
            if outgoing.photo is not None:
                return await bot.send_photo(
                    delivery.chat_id,
                    outgoing.photo,
                    caption=outgoing.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=outgoing.markup,
                    **extra,
                )
            return await bot.send_message(
                delivery.chat_id,
                outgoing.text,
                parse_mode=ParseMode.HTML,
                reply_markup=outgoing.markup,
                **extra,
            )
        except TelegramError as error:
            if refused:  # that last attempt went paid, and Telegram would not charge for it
                raise PaidRefused(refused[-1]) from error
            raise

    def _paid_refused(self, delivery: ClaimedDelivery, error: TelegramError) -> SendOutcome:
        """A paid broadcast refused for want of Stars: this reminder is tried again on the
        free lane, and none goes paid for ``PAID_SUSPENDED_FOR``. Without this it would be
        recorded failed (a BadRequest), and every later overflow the same way."""
        now = self.clock.now()
        if self.paid_now():
            self._paid_suspended_until = now + PAID_SUSPENDED_FOR
            log.error(
                "Telegram refused a paid broadcast (%s): the bot's Telegram Stars balance is "
                "probably too low. No reminder goes as a paid broadcast for the next %s; the "
                "overflow waits for the free lane, and the overload policy merges and drops "
                "again. Top the balance up (paid broadcasts resume after that, or on restart), "
                "or set ALLOW_PAID_BROADCAST=false.",
                error,
                _duration(PAID_SUSPENDED_FOR),
            )
        self._went_paid.discard(delivery.id)
        return self._retry(delivery, BACKOFF_START, error)

    def paid_now(self) -> bool:
        """May reminders go as paid broadcasts now: allowed, and not suspended since
        Telegram refused one for want of Stars (``PAID_SUSPENDED_FOR``)?"""
        if not self.allow_paid_broadcast:
            return False
        suspended = self._paid_suspended_until
        return suspended is None or self.clock.now() >= suspended

    def paid_after(self, delivery: ClaimedDelivery) -> float | None:
        """Seconds from now after which this delivery may go as a paid broadcast when the free
        lane has no slot for it (negative: already), or None: never. From ``paid_lead`` before
        the tightest window closes (``due_at`` + the smallest ``after``: a reminder due as
        early may wait behind it, see the module docstring), never before its own time; None
        when paid broadcasts are off or its kind has no send window."""
        if not self.paid_now() or delivery.kind not in self.windows:
            return None
        tightest = min(window.after for window in self.windows.values())
        closes = delivery.due_at + timedelta(seconds=tightest)
        paid_from = max(delivery.due_at, closes - self.paid_lead)
        return (paid_from - self.clock.now()).total_seconds()

    async def _still_wanted(self, delivery: ClaimedDelivery, report: TickReport) -> bool:
        """The last look before the request goes: stopping, or the person acted meanwhile?"""
        task = asyncio.current_task()
        if task in self._workers:
            self._workers[task] = _BUSY
        if self.stopping:
            self._withdrawn.add(delivery.id)
            return False
        try:
            reason = await self._rounds.submit(delivery.id)
            assert reason is None or isinstance(reason, str)
        except Exception:
            log.warning(
                "could not check delivery %s; not sending it now", delivery.id, exc_info=True
            )
            self._withdrawn.add(delivery.id)
            return False
        if reason is not None:
            log.info(
                "not sending %s reminder %s to chat %s: %s",
                delivery.kind,
                delivery.id,
                delivery.chat_id,
                reason,
            )
            report.dropped[reason] += 1
            if self.observer is not None:
                self.observer.outcome(delivery.kind, "stale", None)
            return False
        return True

    async def _settle_round(
        self, items: list[int | SendOutcome]
    ) -> list[str | RecordedOutcome | None]:
        """One database round for the workers: the outcomes recorded and the checks made
        in one transaction (``Store.settle``); each caller gets its own answer."""
        check_ids = [item for item in items if isinstance(item, int)]
        outcomes = [item for item in items if isinstance(item, SendOutcome)]
        verdicts, recorded = await self.store.settle(self.owner, check_ids, outcomes)
        written = iter(recorded)
        return [verdicts[item] if isinstance(item, int) else next(written) for item in items]

    def _retry(self, delivery: ClaimedDelivery, wait: timedelta, error: Exception) -> SendOutcome:
        now = self.clock.now()
        return SendOutcome(
            delivery.id,
            "retry",
            now,
            retry_at=now + wait,
            error=f"{type(error).__name__}: {error}"[:500],
        )

    def _failed(self, delivery: ClaimedDelivery, error: str) -> SendOutcome:
        log.error(
            "delivery %s (%s) to chat %s failed for good: %s",
            delivery.id,
            delivery.kind,
            delivery.chat_id,
            error,
        )
        return SendOutcome(delivery.id, "failed", self.clock.now(), error=error[:500])

    def _gone(self, delivery: ClaimedDelivery, error: TelegramError) -> SendOutcome:
        reason = f"{type(error).__name__}: {error}"[:200]
        log.info("chat %s is unreachable (%s): turning its reminders off", delivery.chat_id, reason)
        return SendOutcome(delivery.id, "gone", self.clock.now(), error=reason)

    def _count(
        self,
        delivery: ClaimedDelivery,
        outcome: SendOutcome,
        recorded: RecordedOutcome,
        report: TickReport,
    ) -> None:
        if recorded.status is None:
            log.warning(
                "delivery %s to chat %s (%s) was no longer ours when recorded: erased, or taken "
                "over by another dispatcher",
                delivery.id,
                delivery.chat_id,
                outcome.result,
            )
        self._observe(delivery, outcome, recorded)
        paid = delivery.id in self._went_paid
        if outcome.result == "sent":
            report.sent += 1
            if paid:
                report.paid[delivery.kind] += 1
            if recorded.was_cancelled:
                log.info(
                    "delivery %s to chat %s was already on the wire when the person cancelled it",
                    delivery.id,
                    delivery.chat_id,
                )
                report.in_flight_when_cancelled += 1
        elif recorded.dropped is not None:
            log.info(
                "not retrying %s reminder %s to chat %s: %s",
                delivery.kind,
                delivery.id,
                delivery.chat_id,
                recorded.dropped,
            )
            report.dropped[recorded.dropped] += 1
        elif outcome.result == "skipped":
            report.dropped[outcome.error or "skipped"] += 1
        elif outcome.result == "retry":
            report.retried += 1
        elif outcome.result == "gone":
            report.deactivated += 1
        else:
            report.failed += 1

    def _observe(
        self, delivery: ClaimedDelivery, outcome: SendOutcome, recorded: RecordedOutcome
    ) -> None:
        if self.observer is None:
            return
        if outcome.result == "sent":
            lateness = (outcome.at - delivery.due_at).total_seconds()
            self.observer.outcome(delivery.kind, "sent", lateness)
        elif recorded.dropped is not None or outcome.result == "skipped":
            self.observer.outcome(delivery.kind, "stale", None)
        else:
            name = {"gone": "deactivated"}.get(outcome.result, outcome.result)
            self.observer.outcome(delivery.kind, name, None)


def _takes_send_options(bot: Bot) -> bool:
    """The bot paces through a FairRateLimiter (or a stand-in that takes its SendOptions, as
    bench/dispatch_day.py's SimulatedBot does): the last-moment check and the lane choice are
    then the limiter's. Without one there are no lanes, so nothing is ever flagged paid."""
    if isinstance(bot, ExtBot):
        return isinstance(bot.rate_limiter, FairRateLimiter)
    return bool(getattr(bot, "takes_send_options", False))


def _log_capacity_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("the daily capacity check failed", exc_info=task.exception())


def _utc_minute(epoch: int) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%H:%M}"


def _backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s, ... capped at 5 minutes, for the n-th failed attempt (n >= 1)."""
    exponent = min(max(attempt, 1) - 1, 16)
    return min(BACKOFF_START * (1 << exponent), BACKOFF_CAP)


def _retry_after(error: RetryAfter) -> timedelta:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB_TIMEDELTA; accept both."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: float | timedelta = error.retry_after
    wait = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    return max(wait, timedelta(seconds=1))


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


async def run_simulated(
    dispatcher: Dispatcher,
    clock: FakeClock,
    delta: timedelta,
    *,
    step: timedelta = timedelta(minutes=1),
) -> None:
    """Move a fake clock forward in steps, ticking after each as the JobQueue would.

    Shared by `sleepbot chat`'s `:wait` and the tests, so both see reminders at their minute.
    """
    target = clock.now() + delta
    while clock.now() < target:
        clock.advance(min(step, target - clock.now()))
        await dispatcher.tick()
