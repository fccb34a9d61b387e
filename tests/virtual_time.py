"""Simulated monotonic time for code that takes `monotonic` and `sleep` callables.

`run()` drives a workload: whenever every task is parked, time jumps to the earliest pending
sleep and wakes it. So ten minutes of paced sending take milliseconds, wake-ups happen in
time order, and a test reads exact instants instead of racing a wall clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
SETTLE_ROUNDS = 50  # event-loop passes that let every ready task run before time moves


class VirtualTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(seconds, 0.0), next(self._order), wake))
        await wake

    async def _settle(self) -> None:
        for _ in range(SETTLE_ROUNDS):
            await asyncio.sleep(0)

    async def run(self, workload: Awaitable[T], *, limit: float = 24 * 3600) -> T:
        """Await `workload`, moving time forward whenever nothing else can run."""
        task = asyncio.ensure_future(workload)
        deadline = self.now + limit
        while True:
            await self._settle()
            if task.done():
                return task.result()
            while self._timers and self._timers[0][2].done():
                heapq.heappop(self._timers)  # a cancelled sleep
            if not self._timers:
                task.cancel()
                raise AssertionError("deadlock: the workload waits, but nothing sleeps")
            at, _, wake = heapq.heappop(self._timers)
            if at > deadline:
                task.cancel()
                raise AssertionError(f"the workload was still waiting after {limit} s")
            self.now = max(self.now, at)
            wake.set_result(None)
