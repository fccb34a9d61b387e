"""The /progress chart: four weeks of sleep ratings with the evening habits under them, as PNG.

Thread-safe by construction, so it can run off the event loop with ``asyncio.to_thread``: each
call builds its own ``Figure`` on its own ``FigureCanvasAgg`` and never touches pyplot or the
global ``rcParams`` (fonts and sizes are passed to each artist). Threads still share the GIL
with the loop, so the bot renders in a worker process instead (``bot.diary.worker``, measured
in bench/chart.py). No words live here: every label arrives in ``ChartLabels``
(content/diary.toml).

Fonts: matplotlib ships only DejaVu and STIX, which have no Chinese glyphs. ``font_family`` is a
fallback list, tried glyph by glyph; families that are not installed are skipped. The default
puts DejaVu Sans first and common CJK families after it, so Chinese labels render as soon as one
of them is installed (Debian: ``fonts-wqy-microhei``, 5 MB, or ``fonts-noto-cjk``, 91 MB).
``missing_glyphs`` tells which characters no installed family can draw, to check a locale at
start-up rather than send a chart of empty boxes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from functools import lru_cache
from typing import Final

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from bot.diary.models import (
    CHART_NIGHTS,
    MAX_RATING,
    MIN_RATING,
    RATINGS,
    DiaryEntry,
    recent_nights,
)
from bot.diary.text import ChartLabels
from bot.schedule import is_weekend_night

"""Four weeks, the window of /progress and its caption."""
DEFAULT_SIZE_PX: Final = (1200, 800)
DEFAULT_FONT_FAMILY: Final = (
    "DejaVu Sans",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
"""Latin from DejaVu (always there, it ships with matplotlib); Chinese from the first CJK family
installed. Configurable per call for other scripts or house fonts."""

_DPI: Final = 100
_PNG_COLOURS: Final = 64
"""Flat colours and anti-aliased text fit in a 64-colour palette: a third of the RGB file."""
_RATING_COLOUR: Final = "#2f5d9e"
_WEEKEND_COLOUR: Final = "#e9edf5"
_DONE_COLOUR: Final = "#2e8b57"
_NOT_DONE_COLOUR: Final = "#a3a9b1"
_GRID_COLOUR: Final = "#d5d9df"
_TEXT_SIZE: Final = 17.0
_TITLE_SIZE: Final = 22.0


def render_progress_chart(
    entries: Iterable[DiaryEntry],
    *,
    last_night: date,
    labels: ChartLabels,
    nights: int = CHART_NIGHTS,
    font_family: Sequence[str] = DEFAULT_FONT_FAMILY,
    size_px: tuple[int, int] = DEFAULT_SIZE_PX,
) -> bytes:
    """The chart of the ``nights`` nights ending with ``last_night``, as PNG bytes.

    Nights without an entry are gaps (the rating line breaks there); entries outside the window
    are ignored. Works for any number of logged nights, including none.
    """
    if nights < 1:
        raise ValueError(f"nights must be >= 1, got {nights}")
    shown = recent_nights(entries, last_night=last_night, count=nights)
    first = last_night - timedelta(days=nights - 1)
    families = list(installed_families(tuple(font_family)))

    figure = Figure(figsize=(size_px[0] / _DPI, size_px[1] / _DPI), dpi=_DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    ratings_axes, habits_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.25]}
    )
    night_dates = [first + timedelta(days=index) for index in range(nights)]
    for axes in (ratings_axes, habits_axes):
        _shade_weekends(axes, night_dates)
        axes.set_xlim(-0.6, nights - 0.4)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)

    by_index = {(entry.night - first).days: entry for entry in shown}
    _draw_ratings(ratings_axes, by_index, nights, labels, families)
    _draw_habits(habits_axes, by_index, labels, families)
    _draw_night_ticks(habits_axes, night_dates, labels, families)

    # Not bold: most CJK fonts have no bold face, and matplotlib would log that it fell back.
    figure.suptitle(labels.title, fontsize=_TITLE_SIZE, fontfamily=families)
    figure.legend(
        handles=_legend_handles(labels),
        loc="outside lower center",
        ncols=4,
        frameon=False,
        prop=font_manager.FontProperties(family=families, size=_TEXT_SIZE),
    )
    if not shown:
        ratings_axes.text(
            (nights - 1) / 2,
            (MIN_RATING + MAX_RATING) / 2,
            labels.no_nights,
            ha="center",
            va="center",
            fontsize=_TITLE_SIZE,
            fontfamily=families,
            color=_NOT_DONE_COLOUR,
        )
    canvas.draw()  # type: ignore[no-untyped-call]  # untyped in matplotlib's stubs
    return _png(canvas)


def _shade_weekends(axes: Axes, night_dates: Sequence[date]) -> None:
    for index, night in enumerate(night_dates):
        if is_weekend_night(night):
            axes.axvspan(index - 0.5, index + 0.5, color=_WEEKEND_COLOUR, linewidth=0, zorder=0)


def _draw_ratings(
    axes: Axes,
    by_index: dict[int, DiaryEntry],
    nights: int,
    labels: ChartLabels,
    families: list[str],
) -> None:
    # NaN for a night without an entry breaks the line there instead of bridging the gap.
    values = [
        float(by_index[index].rating) if index in by_index else float("nan")
        for index in range(nights)
    ]
    axes.plot(
        range(nights),
        values,
        color=_RATING_COLOUR,
        linewidth=3,
        marker="o",
        markersize=11,
        zorder=3,
    )
    axes.set_ylim(MIN_RATING - 0.5, MAX_RATING + 0.5)
    axes.set_yticks(list(RATINGS), [str(rating) for rating in RATINGS], fontfamily=families)
    axes.tick_params(labelsize=_TEXT_SIZE, length=0)
    axes.yaxis.grid(visible=True, color=_GRID_COLOUR, linewidth=1)
    axes.set_axisbelow(True)
    axes.set_ylabel(labels.rating_axis, fontsize=_TEXT_SIZE, fontfamily=families)


def _draw_habits(
    axes: Axes, by_index: dict[int, DiaryEntry], labels: ChartLabels, families: list[str]
) -> None:
    rows = len(labels.habits)
    for row, (habit, _) in enumerate(labels.habits):
        y = rows - 1 - row  # first habit on top, as in the check-in
        done = [index for index, entry in by_index.items() if entry.did(habit)]
        not_done = [index for index, entry in by_index.items() if not entry.did(habit)]
        axes.scatter(done, [y] * len(done), s=190, color=_DONE_COLOUR, zorder=3)
        axes.scatter(
            not_done,
            [y] * len(not_done),
            s=150,
            facecolors="none",
            edgecolors=_NOT_DONE_COLOUR,
            linewidths=2,
            zorder=3,
        )
    axes.set_ylim(-0.6, rows - 0.4)
    axes.set_yticks(
        [rows - 1 - row for row in range(rows)],
        [label for _, label in labels.habits],
        fontfamily=families,
    )
    axes.tick_params(labelsize=_TEXT_SIZE, length=0)
    axes.spines["left"].set_visible(False)


def _draw_night_ticks(
    axes: Axes, night_dates: Sequence[date], labels: ChartLabels, families: list[str]
) -> None:
    """A label every 7 nights, counted back from the last night so the newest is named."""
    last = len(night_dates) - 1
    positions = sorted(range(last, -1, -7))
    axes.set_xticks(
        positions, [labels.tick(night_dates[p]) for p in positions], fontfamily=families
    )
    axes.tick_params(axis="x", labelsize=_TEXT_SIZE)


def _legend_handles(labels: ChartLabels) -> list[Line2D | Patch]:
    return [
        Line2D(
            [],
            [],
            color=_RATING_COLOUR,
            linewidth=3,
            marker="o",
            markersize=11,
            label=labels.rating_legend,
        ),
        Patch(facecolor=_WEEKEND_COLOUR, label=labels.weekend_legend),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=13,
            color=_DONE_COLOUR,
            label=labels.done_legend,
        ),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=12,
            markerfacecolor="none",
            markeredgecolor=_NOT_DONE_COLOUR,
            markeredgewidth=2,
            label=labels.not_done_legend,
        ),
    ]


def _png(canvas: FigureCanvasAgg) -> bytes:
    """The canvas as a palette PNG: the chart has a handful of flat colours, so 64 entries keep
    the anti-aliasing and cut the file to about a third of the full-colour one (28 KB vs 77 KB).
    Fast octree quantising costs ~40 ms; median cut and ``optimize`` doubled that for ~10%."""
    pixels = canvas.buffer_rgba()  # type: ignore[no-untyped-call]  # untyped in the stubs
    image = Image.frombuffer("RGBA", canvas.get_width_height(), pixels).convert("RGB")
    palette = image.quantize(colors=_PNG_COLOURS, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    palette.save(out, format="PNG")
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Fonts


@lru_cache(maxsize=32)
def installed_families(font_family: tuple[str, ...]) -> tuple[str, ...]:
    """The families of ``font_family`` that matplotlib can find, in order; DejaVu Sans if none.

    Asking matplotlib for a family it does not have logs a warning on every render, so the
    list is filtered once per distinct setting.
    """
    known = {entry.name for entry in font_manager.fontManager.ttflist}
    found = tuple(family for family in font_family if family in known)
    return found or ("DejaVu Sans",)


def missing_glyphs(text: str, font_family: Sequence[str] = DEFAULT_FONT_FAMILY) -> str:
    """The characters of ``text`` that no installed family of ``font_family`` can draw.

    Empty means the chart renders ``text`` fully; otherwise those characters would be boxes.
    Call it at start-up with ``ChartLabels.all_text()`` of every locale.
    """
    charmaps = [_charmap(family) for family in installed_families(tuple(font_family))]
    missing = dict.fromkeys(
        char
        for char in text
        if not char.isspace() and not any(ord(char) in charmap for charmap in charmaps)
    )
    return "".join(missing)


@lru_cache(maxsize=32)
def _charmap(family: str) -> frozenset[int]:
    path = font_manager.findfont(
        font_manager.FontProperties(family=family), fallback_to_default=False
    )
    return frozenset(font_manager.get_font(path).get_charmap())
