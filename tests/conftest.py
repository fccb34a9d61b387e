"""Shared fixtures: a real HTTP fake of the Telegram Bot API on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

import pytest

from bot.content import ContentError, load_content
from bot.fake_telegram import FakeBotApi
from bot.storage import Store
from tests.harness import BotHarness, bot_harness
from tests.pg import BACKENDS, TestDatabase, fresh_database

# Realistic format (\d+:[A-Za-z0-9_-]{35}) so PTB treats it like a real token; never valid.
TEST_TOKEN: Final = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
CONTENT_DIR: Final = Path(__file__).resolve().parent.parent / "content"


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    """A started fake Bot API, fresh per test so no state leaks between tests."""
    async with FakeBotApi(TEST_TOKEN) as api:
        yield api


@pytest.fixture
async def bot(fake_api: FakeBotApi, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The real Application, polling the fake Bot API, on a fresh SQLite file, clock at START."""
    async with bot_harness(fake_api, tmp_path, TEST_TOKEN) as harness:
        yield harness


@pytest.fixture
def broken(tmp_path: Path) -> Callable[[str, str, str], str]:
    """Copy content/, replace `old` by `new` in one file, return the ContentError message."""
    directory = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, directory)

    def breaker(file_name: str, old: str, new: str) -> str:
        path = directory / file_name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"test setup: {old!r} not in {file_name}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ContentError) as caught:
            load_content(directory)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"{directory / file_name}: "), message
        return message

    return breaker


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    """A fresh database per test, once on SQLite and once on PostgreSQL (when configured)."""
    async with fresh_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
async def store(db: TestDatabase) -> AsyncIterator[Store]:
    """An opened Store on ``db`` with the default reminder kinds (a module may override it)."""
    opened = await db.open_store()
    try:
        yield opened
    finally:
        await opened.close()
