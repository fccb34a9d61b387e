"""What the bot process imports: only what it runs (issue 11: RSS of a ready process).

The chart renders in its own process (bot.diary.worker) and coordinates are looked up only
when someone shares a location, so matplotlib, PIL, numpy and timezonefinder must not be
imported by ``sleepbot run`` itself: together they are ~45 MB of RSS (bench/rss.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_start_on_a_migrated_database_does_not_import_alembic(tmp_path: Path) -> None:
    # Alembic with Mako is ~8 MB of RSS; once the database is at head a start only reads
    # alembic_version. The first start migrates (and imports it); the second must not.
    probe = (
        "import asyncio, sys\n"
        "from bot.storage import open_store\n"
        "async def start():\n"
        f"    store = await open_store('sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}')\n"
        "    await store.close()\n"
        "asyncio.run(start())\n"
        "print('alembic' in sys.modules)\n"
    )
    starts = [
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert starts == ["True", "False"]


def test_a_shared_location_still_finds_its_zone() -> None:
    from bot.timezones import timezone_at

    assert timezone_at(52.52, 13.405) == "Europe/Berlin"
