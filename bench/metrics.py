"""What does recording a metric cost on the hot path, and what does a scrape cost?

Each recording call of ``bot.metrics.Metrics`` runs 100,000 times; the median of 7 runs of
the mean per call is printed next to an empty method call (the floor) and next to calling
prometheus_client's ``labels(...)`` on every call (what the child cache saves). A scrape
(``refresh`` + ``exposition``) is timed with every update type and 3 reminder kinds × 6
outcomes populated.

    python -m bench.metrics
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Final

from bot.flood import FloodCounters
from bot.metrics import OUTCOMES, UPDATE_TYPES, Metrics
from bot.ratelimit import SendStats

CALLS: Final = 100_000
REPEATS: Final = 7


def per_call_ns(function: Callable[[], object]) -> float:
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        for _ in range(CALLS):
            function()
        runs.append((time.perf_counter_ns() - start) / CALLS)
    return statistics.median(runs)


class _Empty:
    def call(self) -> None:
        return None


def main() -> int:
    metrics = Metrics()
    empty = _Empty()
    raw = metrics._reminders  # prometheus_client directly, for the comparison row
    rows = {
        "empty method call (floor)": empty.call,
        "update_received('message')": lambda: metrics.update_received("message"),
        "update_handled('message', 0.01)": lambda: metrics.update_handled("message", 0.01),
        "reminder_sent('meal', 'sent', 1.5)": lambda: metrics.reminder_sent("meal", "sent", 1.5),
        "reminder_sent('meal', 'retry')": lambda: metrics.reminder_sent("meal", "retry"),
        "prometheus labels('meal','retry').inc() each call": lambda: raw.labels(
            "meal", "retry"
        ).inc(),
        "tick_finished(0.2)": lambda: metrics.tick_finished(0.2),
    }
    print(f"per call, median of {REPEATS} × {CALLS:,} calls (Python {sys.version.split()[0]})\n")
    print("| call | ns |")
    print("| --- | ---: |")
    for label, function in rows.items():
        print(f"| {label} | {per_call_ns(function):,.0f} |")

    for kind in UPDATE_TYPES:
        metrics.update_received(kind)
        metrics.update_handled(kind, 0.02)
    for kind in ("meal", "exercise", "wind_down"):
        for outcome in OUTCOMES:
            metrics.reminder_sent(kind, outcome, 3.0)

    async def backlog() -> int:
        return 12

    metrics.observe(flood=FloodCounters, limiter=SendStats, leader=lambda: True, backlog=backlog)

    async def scrape() -> int:
        await metrics.refresh()
        return len(metrics.exposition())

    size = asyncio.run(scrape())
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(100):
            asyncio.run(scrape())
        runs.append((time.perf_counter() - start) / 100 * 1000)
    print(
        f"\nscrape (refresh + exposition, {size:,} bytes, incl. asyncio.run): "
        f"{statistics.median(runs):.2f} ms median"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
