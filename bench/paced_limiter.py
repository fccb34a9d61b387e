"""The bot's previous send limiter, kept as the benchmark's "before" (bot/ratelimit.py is now).

Evenly spaced requests, one FIFO queue for every chat, and a 429 pauses everyone: what
`python -m bench.reminders --only send-limited send-limited-paced` compares the fair limiter
with, in the same run. Not used by the bot.

PTB's AIORateLimiter is a bucket of 30 that lets a full second's worth out at once, and it takes
its slot before waiting out a RetryAfter, so during one 429's pause ~30 more requests queue up
and are released together, drawing the next 429. Measured with 10,000 due reminders against a
fake that enforces 30 msg/s: 2,034 answers of 429 and 24.9 msg/s (bench/README.md). Spacing
each request 1/rate apart, and pushing every later slot behind a 429's retry_after, avoids both.
Requests without a chat_id (getUpdates, getMe, setMyCommands) are not flood-limited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.ratelimit import SendOptions, retry_after_seconds

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
SAFETY = 1.01


class PacedRateLimiter(BaseRateLimiter[int | SendOptions]):
    """At most `per_second` chat-bound requests a second, spaced evenly; retries a 429 up to
    `max_retries` times (`rate_limit_args` may override it per call)."""

    def __init__(
        self,
        per_second: float,
        *,
        max_retries: int = 3,
        monotonic: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`monotonic` and `sleep` default to the event loop's; tests pass a simulated pair."""
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        # 1% wider than 1/rate: exact spacing puts rate + 1 requests into a closed one-second
        # window (0, 1/30, ..., 30/30), and arrival jitter does the rest.
        self.interval = SAFETY / per_second
        self.max_retries = max_retries
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def initialize(self) -> None:
        """Nothing to set up: the first request starts the clock."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    def _now(self) -> float:
        return self._monotonic() if self._monotonic else asyncio.get_running_loop().time()

    async def _wait_for_slot(self) -> None:
        """One request at a time waits for its turn (the lock is FIFO), and the next turn is
        counted from when this one actually goes: after an event-loop stall, waiters leave one
        interval apart instead of all at once."""
        async with self._lock:
            while True:
                now = self._now()
                ready = max(self._next_slot, self._paused_until)
                if now >= ready:
                    break
                # Re-checked after waking: a 429 may have moved the whole queue back.
                await self._sleep(ready - now)
            self._next_slot = self._now() + self.interval

    def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._now() + seconds)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | SendOptions | None,
    ) -> bool | JSONDict | list[JSONDict]:
        if data.get("chat_id") is None:
            return await callback(*args, **kwargs)
        # The dispatcher now passes SendOptions; before, it passed nothing (and a reminder's
        # 429 was retried in here): ignore them, so this stays the "before" it was.
        if isinstance(rate_limit_args, SendOptions):
            rate_limit_args = None
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        for attempt in range(retries + 1):
            await self._wait_for_slot()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == retries:
                    raise
                seconds = retry_after_seconds(error) + 0.1
                log.info("flood control on %s: every send waits %.1f s", endpoint, seconds)
                self._pause(seconds)
        raise AssertionError("unreachable: the loop returns or raises")
