"""The reminder "postman": one repeating tick that turns due rows into Telegram messages.

There are no per-person scheduler jobs. The database holds every reminder's next fire time;
each tick

1. MATERIALISES due reminders into pending delivery rows (choosing tonight's meal), moving
   each reminder to its next night in the same transaction. Occurrences more than ``grace``
   late (the bot was down) are skipped with a warning instead of being sent as a burst.
2. SENDS due deliveries: claims a batch (``sending`` + a lease), sends concurrently, records
   each outcome. Loops while full batches keep coming, so with 10,000 reminders due at once
   the send rate is set by the bot's rate limiter, not by the tick interval.

Several processes may share one PostgreSQL database: every claim uses ``FOR UPDATE SKIP
LOCKED``, so each reminder is materialised once and each delivery claimed by one process.

Delivery is at-least-once. A process killed while sending leaves ``sending`` rows whose lease
expires; the next tick (in any process) sends them again. The window for a duplicate is the
time between Telegram accepting a message and the batch's outcome being committed (at most one
batch of sends), plus a network error or timeout after Telegram accepted the message. Nothing
due is ever silently lost: it is sent, retried, or marked expired/failed with a log line.

Time always comes from the injected clock, so tests can cross nights and DST without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Final

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import CallbackContext
from telegram.warnings import PTBDeprecationWarning

from bot.clock import Clock, FakeClock
from bot.content import Content
from bot.keyboards import reminder_keyboard
from bot.meals import choose_meal
from bot.ratelimit import SendOptions
from bot.storage import ClaimedDelivery, SendOutcome, Store

log = logging.getLogger(__name__)

BACKOFF_START: Final = timedelta(seconds=5)
BACKOFF_CAP: Final = timedelta(minutes=5)
PURGE_EVERY: Final = timedelta(hours=1)
# No in-process retry of a 429, and no waiting longer than this for a held-back chat: the
# delivery is rescheduled instead, so the send slot goes to another chat.
REMINDER_SEND: Final = SendOptions(max_retries=0, max_wait=2.0)


@dataclass
class TickReport:
    """What one tick did; all zero means there was nothing to do."""

    materialized: int = 0
    sent: int = 0
    skipped_stale: int = 0
    retried: int = 0
    deactivated: int = 0
    failed: int = 0
    expired: int = 0  # pending deliveries that became older than the grace period

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def add(self, other: TickReport) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


@dataclass(frozen=True)
class _Attempt:
    delivery: ClaimedDelivery
    outcome: SendOutcome
    deactivate: str | None = None  # reason, when the chat is gone for us


class Dispatcher:
    """Sends every due reminder exactly when due, once, from whichever process gets it first."""

    def __init__(
        self,
        store: Store,
        bot: Bot,
        content: Content,
        clock: Clock,
        *,
        grace: timedelta = timedelta(minutes=30),
        batch_size: int = 500,
        lease: timedelta = timedelta(minutes=5),
        max_concurrency: int = 16,
        retention: timedelta = timedelta(days=30),
    ) -> None:
        if batch_size < 1 or max_concurrency < 1:
            raise ValueError("batch_size and max_concurrency must be positive")
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        self.store = store
        self.bot = bot
        self.content = content
        self.clock = clock
        self.grace = grace
        self.batch_size = batch_size
        self.lease = lease
        self.max_concurrency = max_concurrency
        # Per-chat pacing is the bot's rate limiter's (bot/ratelimit.py). A chat it holds back
        # for long (a 429) answers RetryAfter at once, and the delivery is rescheduled.
        self._send_options: dict[str, Any] = (
            {"rate_limit_args": REMINDER_SEND} if getattr(bot, "rate_limiter", None) else {}
        )
        self._running = asyncio.Lock()
        self.retention = retention
        self._next_purge_at: datetime | None = None

    async def run_job(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        """JobQueue callback. Overlapping runs are skipped: one tick at a time per process."""
        if self._running.locked():
            log.debug("dispatcher tick still running; skipping this one")
            return
        report = await self.tick()
        if not report:
            return
        # Rows created for later sending are routine (DEBUG); anything sent, retried,
        # skipped or failed is worth a line at INFO (details are logged where they happen).
        only_materialized = report == TickReport(materialized=report.materialized)
        level = logging.DEBUG if only_materialized else logging.INFO
        log.log(level, "dispatcher tick: %s", report.summary())

    async def tick(self) -> TickReport:
        """Materialise due reminders, then send due deliveries until none are left this tick."""
        async with self._running:
            report = TickReport()
            # Send after every materialised batch, so with 10,000 due at once the first
            # message leaves after one batch of database work, not after all of it.
            while await self._materialize(report):
                await self._send_due(report)
            await self._send_due(report)
            await self._purge_history()
            return report

    async def _purge_history(self) -> None:
        """At most hourly: forget finished deliveries older than the retention period."""
        now = self.clock.now()
        if self._next_purge_at is not None and now < self._next_purge_at:
            return
        self._next_purge_at = now + PURGE_EVERY
        purged = await self.store.purge_deliveries(now - self.retention)
        if purged:
            log.info("purged %d deliveries older than %s", purged, _duration(self.retention))

    # --- 1. materialise ------------------------------------------------------------------

    async def _materialize(self, report: TickReport) -> bool:
        """One batch of due reminders into deliveries; True when more may be waiting."""
        ideas = self.content.meal_ideas

        def chooser(diet: str, recent: Sequence[str]) -> str | None:
            try:
                return choose_meal(ideas, diet, recent).id
            except ValueError:
                log.warning("no meal idea for diet %r; sending the generic meal reminder", diet)
                return None

        now = self.clock.now()
        result = await self.store.materialize_due(
            now, grace=self.grace, limit=self.batch_size, choose_meal=chooser
        )
        report.materialized += result.materialized
        report.skipped_stale += len(result.stale)
        for stale in result.stale:
            log.warning(
                "skipped a stale %s reminder for chat %s: due %s, %s late "
                "(more than the %s grace period; the bot was probably down)",
                stale.kind,
                stale.chat_id,
                stale.due_at.isoformat(),
                _duration(stale.lateness),
                _duration(self.grace),
            )
        return result.claimed >= self.batch_size

    # --- 2. send -------------------------------------------------------------------------

    async def _send_due(self, report: TickReport) -> None:
        cursor: tuple[datetime, int] | None = None
        chats_this_tick: set[int] = set()
        semaphore = asyncio.Semaphore(self.max_concurrency)
        while True:
            now = self.clock.now()

            def accept(chat_id: int) -> bool:
                # At most one message per chat per tick: a chat's reminders keep their order.
                if chat_id in chats_this_tick:
                    return False
                chats_this_tick.add(chat_id)
                return True

            claim = await self.store.claim_deliveries(
                now,
                lease=self.lease,
                grace=self.grace,
                limit=self.batch_size,
                after=cursor,
                accept=accept,
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
            if claim.claimed:
                attempts = await asyncio.gather(
                    *(self._send_one(delivery, semaphore) for delivery in claim.claimed)
                )
                await self._record(attempts, report)
            if claim.scanned < self.batch_size or claim.cursor is None:
                return
            cursor = claim.cursor

    async def _send_one(self, delivery: ClaimedDelivery, semaphore: asyncio.Semaphore) -> _Attempt:
        async with semaphore:
            meal = self.content.meal(delivery.meal_id) if delivery.meal_id else None
            try:
                text = self.content.render_reminder(delivery.kind, meal)
            except KeyError:
                return self._failed(delivery, f"unknown reminder kind {delivery.kind!r}")
            try:
                message = await self.bot.send_message(
                    delivery.chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=reminder_keyboard(delivery.id),
                    **self._send_options,
                )
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
            return _Attempt(
                delivery,
                SendOutcome(
                    delivery.id, "sent", self.clock.now(), telegram_message_id=message.message_id
                ),
            )

    def _retry(self, delivery: ClaimedDelivery, wait: timedelta, error: Exception) -> _Attempt:
        now = self.clock.now()
        return _Attempt(
            delivery,
            SendOutcome(
                delivery.id,
                "retry",
                now,
                retry_at=now + wait,
                error=f"{type(error).__name__}: {error}"[:500],
            ),
        )

    def _failed(self, delivery: ClaimedDelivery, error: str) -> _Attempt:
        log.error(
            "delivery %s (%s) to chat %s failed for good: %s",
            delivery.id,
            delivery.kind,
            delivery.chat_id,
            error,
        )
        return _Attempt(
            delivery, SendOutcome(delivery.id, "failed", self.clock.now(), error=error[:500])
        )

    def _gone(self, delivery: ClaimedDelivery, error: TelegramError) -> _Attempt:
        reason = f"{type(error).__name__}: {error}"[:200]
        log.info("chat %s is unreachable (%s): turning its reminders off", delivery.chat_id, reason)
        return _Attempt(
            delivery,
            SendOutcome(delivery.id, "failed", self.clock.now(), error=reason),
            deactivate=reason,
        )

    async def _record(self, attempts: Sequence[_Attempt], report: TickReport) -> None:
        await self.store.record_outcomes([attempt.outcome for attempt in attempts])
        now = self.clock.now()
        deactivated: set[int] = set()
        for attempt in attempts:
            result = attempt.outcome.result
            if result == "sent":
                report.sent += 1
            elif result == "retry":
                report.retried += 1
            elif attempt.deactivate is not None:
                chat_id = attempt.delivery.chat_id
                if chat_id not in deactivated:
                    deactivated.add(chat_id)
                    await self.store.deactivate(chat_id, attempt.deactivate, now)
                    report.deactivated += 1
            else:
                report.failed += 1


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
