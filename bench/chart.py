"""What does a /progress chart cost, does memory stay flat, and does rendering block the bot?

Three measurements on the 4-week example diary (``scripts/progress_example.py``):

1. Render time: each of ``--renders`` (1,000) sequential renders is timed; median and p95.
2. Memory: the process RSS after the import, after the first render and after 100, 500 and
   1,000 renders. A leak (figures kept by pyplot, caches keyed per call) shows as growth.
3. Event-loop stalls: a probe task awaits ``asyncio.sleep(0.01)`` in a loop and records how
   late each wake-up is, while ``--concurrent`` (50) charts render through
   ``asyncio.to_thread`` (the default executor: min(32, CPUs + 4) threads). For contrast the
   same probe runs idle, with a dedicated one-thread executor, with one worker process (no
   shared GIL or garbage collector), and with charts rendered on the loop itself (what the bot
   must not do).

    python -m bench.chart                 # ~5-8 min on the shared 2-core machine
    python -m bench.chart --renders 200   # a quicker look (RSS at 100 only)

The lateness includes the ~0.1 ms the loop itself needs; the machine is shared, so compare
rows within one run. Prints Markdown and writes it with the raw numbers to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bot.diary.models import DiaryEntry
    from bot.diary.text import ChartLabels

RESULTS: Final = Path(__file__).resolve().parent / "results"
PROBE_INTERVAL: Final = 0.01
RSS_CHECKPOINTS: Final = (100, 500, 1000)


def rss_mb() -> float:
    """Resident set size now, from /proc (Linux): not bench.measure's, which imports the store
    and would blur what matplotlib itself costs."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Stalls:
    """How late the probe's ``asyncio.sleep(0.01)`` woke up, in ms, over one workload."""

    workload: str
    wall_s: float
    wakeups: int
    longest_ms: float
    p99_ms: float
    median_ms: float


async def probe_while(workload: str, job: Callable[[], Awaitable[object]]) -> Stalls:
    """Run ``job`` while a probe measures the event loop's lateness."""
    lateness: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            asked = loop.time()
            await asyncio.sleep(PROBE_INTERVAL)
            lateness.append((loop.time() - asked - PROBE_INTERVAL) * 1000)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.05)  # the probe is running before the work starts
    start = time.perf_counter()
    await job()
    wall = time.perf_counter() - start
    done.set()
    await prober
    return Stalls(
        workload=workload,
        wall_s=wall,
        wakeups=len(lateness),
        longest_ms=max(lateness),
        p99_ms=percentile(lateness, 0.99),
        median_ms=statistics.median(lateness),
    )


@cache
def _example() -> tuple[list[DiaryEntry], ChartLabels]:
    from bot.content import default_content_dir
    from bot.diary.text import load_diary_text
    from scripts.progress_example import example_diary

    return example_diary(), load_diary_text(default_content_dir()).chart_labels()


def render_example() -> bytes:
    """One chart of the example diary; module-level so a worker process can run it too."""
    from bot.diary.chart import render_progress_chart
    from scripts.progress_example import EXAMPLE_LAST_NIGHT

    diary, labels = _example()
    return render_progress_chart(diary, last_night=EXAMPLE_LAST_NIGHT, labels=labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=1000, help="sequential renders (1000)")
    parser.add_argument("--concurrent", type=int, default=50, help="charts under the probe (50)")
    args = parser.parse_args(argv)

    rss_start = rss_mb()
    import bot.diary.chart  # noqa: F401  (the import's memory is measured on its own)

    diary, _ = _example()
    rss_imported = rss_mb()
    render = render_example

    first_start = time.perf_counter()
    png = render()
    first_ms = (time.perf_counter() - first_start) * 1000
    rss_first = rss_mb()

    times_ms: list[float] = []
    rss_at: dict[int, float] = {}
    cpu_start = time.process_time()
    for count in range(1, args.renders + 1):
        start = time.perf_counter()
        render()
        times_ms.append((time.perf_counter() - start) * 1000)
        if count in RSS_CHECKPOINTS:
            rss_at[count] = rss_mb()
    cpu_per_render_ms = (time.process_time() - cpu_start) / args.renders * 1000

    worker_start_s = 0.0

    async def stalls() -> list[Stalls]:
        loop = asyncio.get_running_loop()
        n = args.concurrent

        async def idle() -> None:
            await asyncio.sleep(1.0)

        async def via_to_thread() -> None:
            await asyncio.gather(*(asyncio.to_thread(render) for _ in range(n)))

        async def one_thread() -> None:
            with ThreadPoolExecutor(max_workers=1) as pool:
                await asyncio.gather(*(loop.run_in_executor(pool, render) for _ in range(n)))

        # spawn: a clean interpreter, not a fork of a process with running threads. Started
        # and warmed before the probe: start-up is a one-off (measured separately below).
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        warm_start = time.perf_counter()
        await loop.run_in_executor(pool, render_example)
        nonlocal worker_start_s
        worker_start_s = time.perf_counter() - warm_start

        async def worker_process() -> None:
            await asyncio.gather(*(loop.run_in_executor(pool, render_example) for _ in range(n)))

        async def on_the_loop() -> None:
            for _ in range(5):
                render()
                await asyncio.sleep(0)

        try:
            return [
                await probe_while("idle, 1 s", idle),
                await probe_while(f"{n} charts via asyncio.to_thread", via_to_thread),
                await probe_while(f"{n} charts via a 1-thread executor", one_thread),
                await probe_while(f"{n} charts in 1 worker process (warm)", worker_process),
                await probe_while("5 charts rendered on the loop (the wrong way)", on_the_loop),
            ]
        finally:
            pool.shutdown()

    loop_results = asyncio.run(stalls())

    report = [
        "# /progress chart: render time, memory, event-loop stalls",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs (shared), PNG {len(png):,} bytes, 1200×800 px, "
        f"{len(diary)} nights",
        "",
        "| render | value |",
        "| --- | ---: |",
        f"| first render (font cache, imports) | {first_ms:,.0f} ms |",
        f"| median of {len(times_ms):,} | {statistics.median(times_ms):,.0f} ms |",
        f"| p95 | {percentile(times_ms, 0.95):,.0f} ms |",
        f"| max | {max(times_ms):,.0f} ms |",
        f"| CPU per render | {cpu_per_render_ms:,.0f} ms |",
        f"| worker process start-up (spawn, imports, first chart) | {worker_start_s:,.1f} s |",
        "",
        "| RSS | MB |",
        "| --- | ---: |",
        f"| Python | {rss_start:,.0f} |",
        f"| + matplotlib, bot.diary imported | {rss_imported:,.0f} |",
        f"| after the first render | {rss_first:,.0f} |",
        *(f"| after {count:,} renders | {rss_at[count]:,.0f} |" for count in sorted(rss_at)),
        "",
        f"Event loop: lateness of `asyncio.sleep({PROBE_INTERVAL})` wake-ups (ms)",
        "",
        "| while | wall | wake-ups | longest stall | p99 | median |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {s.workload} | {s.wall_s:,.1f} s | {s.wakeups:,} | {s.longest_ms:,.1f} | "
            f"{s.p99_ms:,.1f} | {s.median_ms:,.1f} |"
            for s in loop_results
        ),
    ]
    text = "\n".join(report)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"chart-{stamp}.md").write_text(text + "\n", encoding="utf-8")
    raw: dict[str, object] = {
        "png_bytes": len(png),
        "first_ms": first_ms,
        "times_ms": times_ms,
        "cpu_per_render_ms": cpu_per_render_ms,
        "worker_start_s": worker_start_s,
        "rss_mb": {
            "start": rss_start,
            "imported": rss_imported,
            "first": rss_first,
            **{f"after_{count}": value for count, value in rss_at.items()},
        },
        "loop": [asdict(s) for s in loop_results],
    }
    (RESULTS / f"chart-{stamp}.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
