"""Render the /progress chart from a generated four-week diary into docs/progress-example.png.

    python -m scripts.progress_example            # rewrites docs/progress-example.png
    python -m scripts.progress_example out.png    # somewhere else

It also prints the caption /progress would send with it.

The diary is made up but plausible (seeded, so the picture only changes when the code does):
about one night in ten unlogged, and ratings that lean higher on nights the lights were
dimmed, so the example shows what a habit that goes with better sleep looks like. The same
generator feeds the chart's tests and bench/chart.py.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final

from bot.content import default_content_dir
from bot.diary.chart import render_progress_chart
from bot.diary.insights import diary_insights
from bot.diary.models import MAX_RATING, MIN_RATING, DiaryEntry, Habit, OnsetBucket
from bot.diary.text import load_diary_text, render_caption
from bot.telegram_html import visible_text

EXAMPLE_LAST_NIGHT: Final = date(2026, 11, 29)
OUTPUT: Final = Path(__file__).resolve().parent.parent / "docs" / "progress-example.png"

_HABIT_CHANCE: Final = {
    Habit.DIMMED_LIGHTS: 0.6,
    Habit.NO_INTENSE_EXERCISE: 0.7,
    Habit.B12_DINNER: 0.5,
}
_HABIT_LIFT: Final = {
    Habit.DIMMED_LIGHTS: 1.0,
    Habit.NO_INTENSE_EXERCISE: 0.4,
    Habit.B12_DINNER: 0.1,
}


def example_diary(
    *, last_night: date = EXAMPLE_LAST_NIGHT, nights: int = 28, seed: int = 3, skip: float = 0.1
) -> list[DiaryEntry]:
    """A made-up diary of up to ``nights`` nights ending with ``last_night``, oldest first."""
    rng = random.Random(seed)  # noqa: S311 (a made-up diary, not a secret)
    entries = []
    for offset in range(nights - 1, -1, -1):
        night = last_night - timedelta(days=offset)
        if offset and rng.random() < skip:  # the last night is always logged
            continue
        habits = frozenset(
            habit for habit, chance in _HABIT_CHANCE.items() if rng.random() < chance
        )
        score = 2.2 + sum(_HABIT_LIFT[habit] for habit in habits) + rng.gauss(0, 0.7)
        rating = min(MAX_RATING, max(MIN_RATING, round(score)))
        onset = rng.choice([*OnsetBucket, None])
        logged_at = datetime.combine(night + timedelta(days=1), time(7, 30), tzinfo=UTC)
        entries.append(DiaryEntry(night, rating, logged_at, habits, onset))
    return entries


def main(argv: list[str]) -> int:
    output = Path(argv[0]) if argv else OUTPUT
    text = load_diary_text(default_content_dir())
    png = render_progress_chart(
        example_diary(), last_night=EXAMPLE_LAST_NIGHT, labels=text.chart_labels()
    )
    output.write_bytes(png)
    print(f"{output}: {len(png):,} bytes")
    caption = render_caption(diary_insights(example_diary()), text)
    print(visible_text(caption))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
