"""Is this replica healthy? The database answers, and — where it sends reminders — the
dispatcher keeps ticking.

``/healthz`` (bot/web.py) asks :meth:`Health.check`. Healthy means:

* the database answers a ping within ``ping_timeout`` (every replica needs it to store
  updates), and
* on the replica that sends reminders (the elected leader, or the only process), the last
  dispatcher tick finished within three intervals — or a tick is still running and showed
  progress within ``stall_after`` (with 10,000 reminders due at once a tick rightly runs for
  minutes at 30 msg/s; restarting the replica for that would be wrong). A standby replica
  does not tick, so its health is the database's; the answer says which role it has.

Right after start-up, or after becoming leader, the dispatcher gets three intervals of grace.
Time is ``time.monotonic`` unless a test injects another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bot.metrics import Metrics

Role = Literal["leader", "standby", "single"]
DatabasePing = Callable[[], Awaitable[object]]
Monotonic = Callable[[], float]

MISSED_TICKS: Final = 3
STALL_AFTER_S: Final = 120.0
PING_TIMEOUT_S: Final = 2.0


class TickWatch:
    """The dispatcher's heartbeat: wrap each tick in :meth:`ticking`, and call
    :meth:`progress` whenever a long tick has done a batch."""

    def __init__(self, metrics: Metrics | None = None, *, monotonic: Monotonic = time.monotonic):
        self._metrics = metrics
        self._now = monotonic
        self.last_finished: float | None = None
        self.running_since: float | None = None
        self.last_progress: float | None = None

    @asynccontextmanager
    async def ticking(self) -> AsyncIterator[None]:
        """Around one tick: records its start, its end (also when it failed) and its
        duration into the metrics."""
        start = self.running_since = self.last_progress = self._now()
        try:
            yield
        finally:
            end = self._now()
            self.running_since = None
            self.last_finished = end
            if self._metrics is not None:
                self._metrics.tick_finished(end - start)

    def progress(self) -> None:
        self.last_progress = self._now()


@dataclass
class Health:
    """What /healthz reports; see the module docstring."""

    ping: DatabasePing
    interval: float  # DISPATCH_INTERVAL_SECONDS
    ticks: TickWatch | None  # None: this process runs no dispatcher
    role: Callable[[], Role] = lambda: "single"
    monotonic: Monotonic = time.monotonic
    ping_timeout: float = PING_TIMEOUT_S
    stall_after: float = STALL_AFTER_S
    _role: Role | None = field(default=None, init=False)
    _since: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._since = self.monotonic()

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, a small JSON-able report with the reason when not)."""
        role = self.role()
        now = self.monotonic()
        if self._role is not None and role != self._role:  # leadership changed: grace anew
            self._since = now
        self._role = role
        report: dict[str, Any] = {"role": role}
        try:
            async with asyncio.timeout(self.ping_timeout):
                await self.ping()
        except Exception as error:
            reason = (
                f"database did not answer within {self.ping_timeout:g} s"
                if isinstance(error, TimeoutError)
                else f"database unreachable ({type(error).__name__})"
            )
            return False, {"status": "unavailable", "reason": reason, **report}
        report["database"] = "ok"
        if role == "standby" or self.ticks is None:
            return True, {"status": "ok", **report}
        problem = self._dispatcher_problem(self.ticks, now, report)
        if problem is not None:
            return False, {"status": "unavailable", "reason": problem, **report}
        return True, {"status": "ok", **report}

    def _dispatcher_problem(
        self, ticks: TickWatch, now: float, report: dict[str, Any]
    ) -> str | None:
        if ticks.running_since is not None:
            quiet = now - max(ticks.last_progress or ticks.running_since, self._since)
            report["tick_running_seconds"] = round(now - ticks.running_since, 1)
            limit = max(self.stall_after, MISSED_TICKS * self.interval)
            if quiet > limit:
                return f"dispatcher tick shows no progress for {quiet:.0f} s"
            return None
        last = max(ticks.last_finished or self._since, self._since)
        ago = now - last
        if ticks.last_finished is not None:
            report["last_tick_seconds_ago"] = round(now - ticks.last_finished, 1)
        if ago > MISSED_TICKS * self.interval:
            return (
                f"dispatcher has not ticked for {ago:.0f} s "
                f"(interval {self.interval:g} s, allowed {MISSED_TICKS} intervals)"
            )
        return None
