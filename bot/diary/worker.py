"""Render /progress charts in one worker process, so the bot's event loop never waits on them.

``render_progress_chart`` is thread-safe, and ``asyncio.to_thread`` keeps it off the loop, but
not out of the loop's way: matplotlib builds ~3,000 objects in reference cycles per chart, and
the full garbage collections that churn triggers, like the drawing itself, hold the GIL the
loop needs. bench/chart.py measured the loop's longest stall while charts rendered: ~4 ms with
this worker, against 50–150 ms through threads (≈ 400 ms rendered on the loop). The worker
also keeps matplotlib's ~60 MB of imports and floating garbage out of the bot's process: the
bot itself never imports matplotlib.

The process is spawned (a clean interpreter, never a fork of a process with threads) on the
first chart, and replaced if it dies (e.g. killed for memory), so a crash costs one retry.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from functools import partial

from bot.diary.models import DiaryEntry
from bot.diary.text import ChartLabels

log = logging.getLogger(__name__)


def _render(
    entries: tuple[DiaryEntry, ...],
    last_night: date,
    labels: ChartLabels,
    font_family: tuple[str, ...] | None,
) -> bytes:
    """Runs in the worker: only there is matplotlib imported."""
    from bot.diary.chart import DEFAULT_FONT_FAMILY, render_progress_chart

    return render_progress_chart(
        entries,
        last_night=last_night,
        labels=labels,
        font_family=font_family or DEFAULT_FONT_FAMILY,
    )


class ChartWorker:
    """One lazily spawned process that renders charts; ``close()`` it on shutdown."""

    def __init__(self, *, font_family: Sequence[str] | None = None) -> None:
        self._font_family = tuple(font_family) if font_family is not None else None
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        return self._pool

    async def render(
        self, entries: Iterable[DiaryEntry], *, last_night: date, labels: ChartLabels
    ) -> bytes:
        """The PNG of ``render_progress_chart`` for these arguments, drawn in the worker."""
        job = partial(_render, tuple(entries), last_night, labels, self._font_family)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), job)
        except BrokenProcessPool:
            log.warning("chart worker died; starting a new one and retrying once")
            self.close()
            return await loop.run_in_executor(self._executor(), job)

    def close(self) -> None:
        """Stop the worker (no-op if none was started); pending charts are cancelled."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
