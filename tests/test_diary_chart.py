"""The /progress chart is a small, valid PNG of the right size for 0, 1 and 28 nights, draws
what the diary holds, renders the same from many threads, and knows which glyphs it lacks."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.diary.chart import (
    DEFAULT_FONT_FAMILY,
    installed_families,
    missing_glyphs,
    render_progress_chart,
)
from bot.diary.models import CHART_NIGHTS, DiaryEntry, Habit
from bot.diary.text import ChartLabels, load_diary_text
from bot.diary.worker import ChartWorker
from scripts.progress_example import EXAMPLE_LAST_NIGHT, example_diary

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 100_000
DONE_GREEN = (0x2E, 0x8B, 0x57)
RATING_BLUE = (0x2F, 0x5D, 0x9E)
WEEKEND_TINT = (0xE9, 0xED, 0xF5)
CHINESE = ChartLabels(
    title="你的睡眠：最近 4 周",
    rating_axis="睡得怎么样（1–5）",
    rating_legend="你的评分",
    weekend_legend="周五和周六晚上",
    done_legend="做到了",
    not_done_legend="没做到",
    no_nights="还没有记录",
    habits=(
        (Habit.DIMMED_LIGHTS, "调暗灯光"),
        (Habit.NO_INTENSE_EXERCISE, "没有剧烈运动"),
        (Habit.B12_DINNER, "富含B12的晚餐"),
    ),
    night_tick="{month_number}月{day}日",
)


@pytest.fixture(scope="module")
def labels() -> ChartLabels:
    return load_diary_text(CONTENT_DIR).chart_labels()


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk (type, payload) after checking the signature and each chunk's CRC."""
    assert data[:8] == PNG_SIGNATURE
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + payload), f"bad CRC in {kind!r}"
        chunks.append((kind, payload))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def png_size(data: bytes) -> tuple[int, int]:
    ihdr = png_chunks(data)[0][1]
    width, height = struct.unpack(">II", ihdr[:8])
    return width, height


def colour_pixels(data: bytes, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    """How many pixels are within ``tolerance`` of ``colour`` on every channel."""
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    close = np.abs(pixels - np.array(colour, dtype=np.int16)) <= tolerance
    return int(close.all(axis=2).sum())


@pytest.mark.parametrize("count", [0, 1, CHART_NIGHTS])
def test_chart_is_a_small_png_of_phone_size(labels: ChartLabels, count: int) -> None:
    diary = example_diary(nights=CHART_NIGHTS, skip=0)[CHART_NIGHTS - count :]
    assert len(diary) == count
    png = render_progress_chart(diary, last_night=EXAMPLE_LAST_NIGHT, labels=labels)
    assert png.startswith(PNG_SIGNATURE)
    assert png_size(png) == (1200, 800)
    assert len(png) <= MAX_BYTES, f"{len(png):,} bytes"
    with Image.open(io.BytesIO(png)) as image:  # decodes every row: no truncated data
        image.load()
        assert image.size == (1200, 800)


def test_chart_draws_what_the_diary_holds(labels: ChartLabels) -> None:
    def chart(entries: list[DiaryEntry]) -> bytes:
        return render_progress_chart(entries, last_night=EXAMPLE_LAST_NIGHT, labels=labels)

    empty = chart([])
    full = example_diary(skip=0)
    everything = chart([DiaryEntry(e.night, e.rating, e.logged_at, frozenset(Habit)) for e in full])
    nothing_done = chart([DiaryEntry(e.night, e.rating, e.logged_at) for e in full])
    # Green "done" markers grow with the habits done (the legend's one marker is always there).
    legend_only = colour_pixels(empty, DONE_GREEN)
    assert colour_pixels(nothing_done, DONE_GREEN) == legend_only
    assert colour_pixels(everything, DONE_GREEN) > legend_only + 28 * 3 * 100
    # The rating line: far more blue with 28 nights than the legend alone.
    assert colour_pixels(everything, RATING_BLUE) > 5 * colour_pixels(empty, RATING_BLUE)
    # Weekends are shaded even with no data: 8 Fri/Sat nights in 4 weeks, two panels each.
    assert colour_pixels(empty, WEEKEND_TINT) > 8 * 2 * 30 * 150


def test_chart_ignores_nights_outside_its_window(labels: ChartLabels) -> None:
    inside = example_diary(skip=0)
    outside = [
        DiaryEntry(entry.night + timedelta(days=offset), 1, entry.logged_at, frozenset(Habit))
        for entry in inside[:3]
        for offset in (-60, 40)
    ]
    last = EXAMPLE_LAST_NIGHT
    assert render_progress_chart(inside + outside, last_night=last, labels=labels) == (
        render_progress_chart(inside, last_night=last, labels=labels)
    )
    # Only nights outside the window: the chart says there is nothing to show yet.
    assert render_progress_chart(outside, last_night=last, labels=labels) == (
        render_progress_chart([], last_night=last, labels=labels)
    )


def test_chart_shows_the_later_of_two_entries_for_a_night(labels: ChartLabels) -> None:
    night = EXAMPLE_LAST_NIGHT - timedelta(days=3)
    first = DiaryEntry(night, 1, datetime(2026, 11, 27, 7, 0, tzinfo=UTC), frozenset(Habit))
    replaced = DiaryEntry(night, 5, datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    last = EXAMPLE_LAST_NIGHT
    assert render_progress_chart([replaced, first], last_night=last, labels=labels) == (
        render_progress_chart([replaced], last_night=last, labels=labels)
    )


def test_rendering_in_threads_gives_identical_charts(labels: ChartLabels) -> None:
    # asyncio.to_thread runs renders side by side: no shared pyplot state may leak between them.
    diaries = [example_diary(seed=seed) for seed in range(3)]
    alone = [
        render_progress_chart(diary, last_night=EXAMPLE_LAST_NIGHT, labels=labels)
        for diary in diaries
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(
            pool.map(
                lambda diary: render_progress_chart(
                    diary, last_night=EXAMPLE_LAST_NIGHT, labels=labels
                ),
                diaries * 2,
            )
        )
    assert together == alone * 2
    assert len(set(alone)) == 3


def test_chart_refuses_an_empty_window(labels: ChartLabels) -> None:
    with pytest.raises(ValueError, match="nights"):
        render_progress_chart([], last_night=date(2026, 11, 29), labels=labels, nights=0)


def test_missing_glyphs_names_what_no_installed_font_can_draw(labels: ChartLabels) -> None:
    # DejaVu ships with matplotlib: the English labels always render; it has no Chinese.
    assert missing_glyphs(labels.all_text(), ["DejaVu Sans"]) == ""
    assert missing_glyphs("睡眠 sleep 睡", ["DejaVu Sans"]) == "睡眠"
    # Families that are not installed are skipped, never an error or a log line per render.
    assert installed_families(("No Such Font", "DejaVu Sans")) == ("DejaVu Sans",)
    assert installed_families(("No Such Font",)) == ("DejaVu Sans",)


def test_chinese_labels_render_when_a_cjk_font_is_installed() -> None:
    if missing_glyphs(CHINESE.all_text(), DEFAULT_FONT_FAMILY):
        pytest.skip(
            "no CJK font installed (e.g. apt-get install fonts-wqy-microhei): "
            "Chinese labels would render as boxes"
        )
    png = render_progress_chart(example_diary(), last_night=EXAMPLE_LAST_NIGHT, labels=CHINESE)
    assert png_size(png) == (1200, 800) and len(png) <= MAX_BYTES


# --------------------------------------------------------------------------------------------
# the worker process


async def test_worker_renders_the_same_chart_and_survives_its_death(
    labels: ChartLabels, caplog: pytest.LogCaptureFixture
) -> None:
    diary = example_diary()
    expected = render_progress_chart(diary, last_night=EXAMPLE_LAST_NIGHT, labels=labels)
    worker = ChartWorker()
    try:
        assert await worker.render(diary, last_night=EXAMPLE_LAST_NIGHT, labels=labels) == expected
        pool = worker._pool
        assert pool is not None
        (pid,) = [process.pid for process in pool._processes.values()]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # e.g. the kernel's OOM killer
        again = await worker.render(diary[:1], last_night=EXAMPLE_LAST_NIGHT, labels=labels)
        assert again == render_progress_chart(
            diary[:1], last_night=EXAMPLE_LAST_NIGHT, labels=labels
        )
        assert worker._pool is not pool
        assert "chart worker died" in caplog.text
    finally:
        worker.close()
    worker.close()  # closing twice is harmless


def test_the_worker_keeps_matplotlib_out_of_the_bot_process() -> None:
    probe = (
        "import sys, bot.diary.worker, bot.diary.text, bot.diary.insights, bot.diary.checkin, "
        "bot.diary.wake; print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
