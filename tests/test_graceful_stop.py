"""SIGTERM mid-burst: `sleepbot run` as a real process exits 0 within 10 s and loses nothing.

The bot runs in a subprocess against the fake Bot API served from this test's event loop;
300 reminders are due at once and it sends at 20 msg/s, so a SIGTERM after 40 messages lands
mid-way. (bench/kill.py does the same with 10,000 reminders, and SIGKILLs.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from telegram import Bot

from bench.population import insert_due_people
from bot.clock import SystemClock
from bot.content import default_content_dir, load_content
from bot.dispatch import Dispatcher
from bot.fake_telegram import FakeBotApi
from bot.storage import open_store
from bot.storage.models import DELIVERIES
from tests.conftest import TEST_TOKEN

DUE: Final = 300
SIGNAL_AFTER: Final = 40
STOP_WITHIN_S: Final = 10.0
CHATS: Final = list(range(8_000_001, 8_000_001 + DUE))


def bot_environment(api: FakeBotApi, database_url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONTENT_"))}
    return {
        **clean,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "DATABASE_URL": database_url,
        "SEND_RATE_PER_SECOND": "20",
        "DISPATCH_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }


async def test_sigterm_mid_burst_exits_0_within_10_s_and_nothing_is_lost(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    content = load_content(default_content_dir())
    offsets: dict[str, int] = {k.kind: k.default_offset_minutes for k in content.reminder_kinds}
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    store = await open_store(url, default_offsets=offsets)
    await insert_due_people(store.engine, CHATS, datetime.now(UTC))
    await store.close()
    for chat in CHATS:
        fake_api.add_chat(chat)

    def delivered() -> int:
        return len(fake_api.calls_to("sendMessage", ok_only=True))

    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=bot_environment(fake_api, url),
            stdout=log,
            stderr=log,
        )
        try:
            await fake_api.wait_for(lambda: delivered() >= SIGNAL_AFTER, timeout=60)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = await asyncio.wait_for(process.wait(), 30)
            took = time.monotonic() - signalled
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = log_path.read_text()
    assert code == 0, output
    assert took <= STOP_WITHIN_S, output
    at_exit = delivered()
    assert at_exit < DUE, "the burst was over before the signal: nothing was tested"
    assert "unsent claims released for the next process" in output

    store = await open_store(url, default_offsets=offsets)
    try:
        async with store.engine.connect() as connection:
            rows = await connection.execute(
                select(DELIVERIES.c.status, func.count()).group_by(DELIVERIES.c.status)
            )
            by_status = {str(status): int(count) for status, count in rows}
        # Every message Telegram accepted is recorded as sent; everything else is pending
        # again (not "sending": the next process need not wait for a heartbeat to go stale).
        assert by_status == {"sent": at_exit, "pending": DUE - at_exit}
        # The next process sends the rest at once.
        async with Bot(TEST_TOKEN, base_url=fake_api.base_url) as bot:
            report = await Dispatcher(store, bot, content, SystemClock()).tick()
        assert report.sent == DUE - at_exit
    finally:
        await store.close()
    per_chat = Counter(call.chat_id for call in fake_api.calls_to("sendMessage", ok_only=True))
    assert per_chat == dict.fromkeys(CHATS, 1)  # none lost, none twice
