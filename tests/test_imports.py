"""What the bot process imports: only what it runs (issue 11: RSS of a ready process).

The chart renders in its own process (bot.diary.worker) and coordinates are looked up only
when someone shares a location, so matplotlib, PIL, numpy and timezonefinder must not be
imported by ``sleepbot run`` itself: together they are ~45 MB of RSS (bench/rss.py).
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("matplotlib", "PIL", "numpy", "timezonefinder", "h3")


def test_the_bot_process_does_not_import_the_chart_or_coordinate_libraries() -> None:
    probe = (
        "import sys\n"
        "import bot.app, bot.cli\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    # A fresh interpreter: this test process may have imported them for other tests.
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_a_shared_location_still_finds_its_zone() -> None:
    from bot.timezones import timezone_at

    assert timezone_at(52.52, 13.405) == "Europe/Berlin"
