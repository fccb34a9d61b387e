"""The open prompt survives a restart (and so the next update landing on another replica):
user_data lives in the database (bot/conversation.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import time
from pathlib import Path

import pytest

from bench.kill import private_database
from bot.fake_telegram import FakeBotApi
from bot.handlers.settings import AWAITING
from tests.conftest import TEST_TOKEN
from tests.harness import START, BotHarness, bot_harness
from tests.pg import BACKENDS, require_postgres

ADA = 8181


@asynccontextmanager
async def database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database of its own: a SQLite file, or a throw-away PostgreSQL database (the
    app opens it by URL, as `sleepbot run` does)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
        return
    async with private_database(require_postgres(), tmp_path, "conversation") as url:
        yield url


async def open_prompt(bot: BotHarness) -> object:
    stored = await bot.services.store.conversations.load([("user", ADA)])
    return stored.get(("user", ADA), {}).get(AWAITING)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_restart_in_the_middle_of_onboarding_keeps_the_open_prompt(
    fake_api: FakeBotApi, tmp_path: Path, backend: str
) -> None:
    async with (
        database(backend, tmp_path) as url,
        bot_harness(fake_api, tmp_path, TEST_TOKEN, database_url=url) as bot,
    ):
        await bot.send(ADA, "/start setup")  # the deep link into onboarding: asks a timezone
        assert await open_prompt(bot) == "timezone"
        await bot.restart()  # a new Application: nothing carried over in memory
        assert bot.services.store is not None
        await bot.send(ADA, "berlin")
        person = await bot.services.store.get_person(ADA)
        assert person is not None and person.timezone == "Europe/Berlin"  # understood
        assert await open_prompt(bot) == "bedtime"  # the next question, stored too
        await bot.restart()
        await bot.send(ADA, "22:30")
        person = await bot.services.store.get_person(ADA)
        assert person is not None and person.bedtime == time(22, 30)
        assert await open_prompt(bot) == "diet"
        await bot.send(ADA, "/help")  # any command closes the prompt: the row goes
        assert await bot.services.store.conversations.load([("user", ADA), ("chat", ADA)]) == {}


async def test_deletedata_erases_the_stored_conversation(tmp_path: Path) -> None:
    from bot.storage import open_store

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        await store.ensure_person(ADA, START)
        await store.conversations.save({("user", ADA): {AWAITING: "timezone"}}, START)
        await store.conversations.save({("chat", 99): {"kept": 1}}, START)
        assert await store.conversations.load([("user", ADA)]) == {
            ("user", ADA): {AWAITING: "timezone"}
        }
        await store.delete_person(ADA)
        assert await store.conversations.load([("user", ADA), ("chat", 99)]) == {
            ("chat", 99): {"kept": 1}
        }
    finally:
        await store.close()
