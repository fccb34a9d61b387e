"""What does a dispatcher tick cost when nothing is due? ``python -m bench.idle``.

Almost every tick (one each ``DISPATCH_INTERVAL_SECONDS``, 5 s) finds nothing to send; issue
11 item 4 asks for ≤ 1 ms at 1M people. This loads the benchmark population into SQLite
(``bench/population.py``, every reminder scheduled after T0) and times ``Dispatcher.tick()``
at T0 two ways:

* **back to back**, the clock standing still (as ``bench.reminders``' empty tick): the read
  that decides nothing is due;
* **production cadence**: each tick also looks for dead dispatchers' claims, as every
  production tick does (5 s apart, more than the 2 s heartbeat interval); the heartbeat
  itself is its own task's work, not the tick's.

No request reaches Telegram (nothing is due), so the bot is never contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from telegram import Bot

from bench.fake_remote import TOKEN
from bench.measure import percentile, rss_mb
from bench.population import populate
from bench.scenarios import CONTENT_DIR, T0, database_url, offsets
from bot.clock import FakeClock
from bot.content import load_content
from bot.dispatch import Dispatcher
from bot.storage import open_store

TICKS: Final = 200


def _summary(samples: Sequence[float]) -> str:
    return (
        f"median {statistics.median(samples) * 1000:.3f} ms, "
        f"p90 {percentile(samples, 0.9) * 1000:.3f} ms, max {max(samples) * 1000:.3f} ms"
    )


async def run(people: int) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sleepbot-idle-"))
    try:
        return await _run_in(workdir / "idle.sqlite3", people)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _run_in(path: Path, people: int) -> int:
    content = load_content(CONTENT_DIR)
    store = await open_store(database_url(path), default_offsets=offsets(content))
    await store.close()
    population = populate(path, people, list(offsets(content).items()), T0)
    print(f"{people:,} people, {population.reminders_scheduled:,} reminders scheduled after T0")
    store = await open_store(database_url(path), default_offsets=offsets(content))
    clock = FakeClock(T0)
    dispatcher = Dispatcher(store, Bot(TOKEN), content, clock)
    try:
        if await dispatcher.tick():  # registers, reaps, purges: the first tick's work
            raise AssertionError("something was due at T0")
        still: list[float] = []
        for _ in range(TICKS):
            started = time.perf_counter()
            report = await dispatcher.tick()
            still.append(time.perf_counter() - started)
            assert not report
        cadence: list[float] = []
        for _ in range(TICKS):
            # Production ticks every 5 s, more than a heartbeat interval, so each tick also
            # looks for dead dispatchers' claims. The clock cannot move (at 1M people
            # something is due almost every minute): make the tick think it is time.
            dispatcher._last_reap = None
            started = time.perf_counter()
            report = await dispatcher.tick()
            cadence.append(time.perf_counter() - started)
            assert not report
    finally:
        await store.close()
    print(f"back to back ({TICKS} ticks): {_summary(still)}")
    print(f"production cadence, with the dead-claims check ({TICKS} ticks): {_summary(cadence)}")
    print(f"RSS of this process: {rss_mb():.0f} MB")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.people))


if __name__ == "__main__":
    sys.exit(main())
