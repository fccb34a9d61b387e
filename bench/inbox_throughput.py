"""What the inbox costs: updates handled per second through getUpdates + inbox, against the
same Application fed directly with process_update (no durability at all).

    python -m bench.inbox_throughput --updates 2000 --repeats 3

Both paths run the real handlers (each "/help" reads the person and sends one reply to the fake
Bot API in this process) with the rate limiter off, so the number is the bot's own ceiling,
not Telegram's 30 msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from telegram import Update

from bot.app import build_app, running
from bot.config import Settings
from bot.fake_telegram import FakeBotApi


async def one_run(updates: int, *, inbox: bool) -> float:
    """Updates per second from the first update pushed to the last reply accepted."""
    with tempfile.TemporaryDirectory(prefix="inbox-throughput-") as scratch:
        async with FakeBotApi() as api:
            settings = Settings(
                _env_file=None,
                telegram_api_base_url=api.base_url,
                database_url=f"sqlite+aiosqlite:///{Path(scratch) / 'bot.sqlite3'}",
            )
            app = build_app(settings, token=api.token, rate_limit=False, dispatch=False)
            async with running(app, poll=inbox):
                started = time.monotonic()
                for k in range(updates):
                    pushed = api.send_text(1_000 + k, "/help")
                    if not inbox:
                        await app.process_update(Update.de_json(pushed, app.bot))
                await api.wait_for_calls("sendMessage", updates, timeout=600, ok_only=True)
                return updates / (time.monotonic() - started)


async def main_async(updates: int, repeats: int) -> None:
    direct: list[float] = []
    stored: list[float] = []
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        direct.append(await one_run(updates, inbox=False))
        stored.append(await one_run(updates, inbox=True))
    print(f"{updates} updates, {repeats} runs each, median (min–max) updates/s")
    for name, rates in (("process_update directly", direct), ("getUpdates + inbox", stored)):
        print(f"{name:24} {statistics.median(rates):6.0f} ({min(rates):.0f}–{max(rates):.0f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.updates, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
