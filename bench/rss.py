"""What is the RSS floor of a bot process? ``python -m bench.rss``.

Issue 11 item 4 asks for ≤ 80 MB ready at 1M people. Most of a ready process is imports,
whatever the population (``bench.reminders``' ``app-1m`` measures the ready process). Each row
here is a fresh interpreter that imports one more layer and reports its RSS (median of 3),
so the table shows what each layer costs and where the floor is.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Final

LAYERS: Final = (
    ("python", ""),
    ("+ asyncio, json, ssl", "import asyncio, json, ssl"),
    ("+ httpx", "import httpx"),
    ("+ telegram, telegram.ext (PTB)", "import telegram, telegram.ext"),
    ("+ sqlalchemy (asyncio ext, ORM)", "import sqlalchemy.ext.asyncio, sqlalchemy.orm"),
    ("+ aiosqlite, asyncpg", "import aiosqlite, asyncpg"),
    ("+ pydantic", "import pydantic"),
    ("+ bot.app (everything `sleepbot run` imports)", "import bot.app, bot.cli"),
    ("+ alembic (only when a migration runs)", "import alembic.command"),
)
PROBE: Final = (
    "{imports}\n"
    "import os\n"
    "pages = int(open('/proc/self/statm').read().split()[1])\n"
    "print(pages * os.sysconf('SC_PAGE_SIZE') / 2**20)\n"
)


def rss_after(imports: str) -> float:
    """RSS (MB) of a fresh interpreter after ``imports``; median of 3."""
    samples = []
    for _ in range(3):
        output = subprocess.run(
            [sys.executable, "-c", PROBE.format(imports=imports)],
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(output.stdout.strip()))
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m bench.rss", description=__doc__).parse_args(argv)
    print("| imported | RSS MB | added MB |")
    print("| --- | ---: | ---: |")
    cumulative = ""
    previous = 0.0
    for label, imports in LAYERS:
        cumulative = f"{cumulative}\n{imports}" if imports else cumulative
        rss = rss_after(cumulative)
        print(f"| {label} | {rss:.1f} | {rss - previous:+.1f} |", flush=True)
        previous = rss
    return 0


if __name__ == "__main__":
    sys.exit(main())
