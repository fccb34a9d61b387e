"""Optional dependencies: a missing extra is one line that says what to install."""

from __future__ import annotations

import pytest

from bot import cli, extras
from bot.config import Settings
from tests.conftest import TEST_TOKEN


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "database_url", "redis", "expected"),
    [
        ("run", "sqlite+aiosqlite:///x.db", False, []),
        ("run", "postgresql+asyncpg://u@h/db", False, ["postgres"]),
        ("run", "postgresql://u@h/db", True, ["postgres", "redis"]),
        ("stats", "postgres://u@h/db", True, ["postgres"]),  # stats never talks to Redis
        ("chat", None, True, ["chat"]),
        ("chat", "postgresql://u@h/db", False, ["postgres", "chat"]),  # chat --database
        ("check-content", "postgresql://u@h/db", True, []),  # reads files only
    ],
)
def test_needed_extras(
    command: str, database_url: str | None, redis: bool, expected: list[str]
) -> None:
    assert extras.needed_extras(command, database_url=database_url, redis=redis) == expected


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras, "_installed", lambda module: module != "asyncpg")
    message = extras.missing_extras_message(
        settings(database_url="postgresql+asyncpg://postgres@db/sleepbot", redis_url="redis://r"),
        "run",
    )
    assert message == (
        "DATABASE_URL is PostgreSQL: install it with pip install 'sleepbot[postgres]'"
    )


def test_nothing_missing_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras, "_installed", lambda module: True)
    assert extras.missing_extras_message(settings(), "chat") is None


def test_cli_refuses_chat_without_aiohttp_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(extras, "_installed", lambda module: module != "aiohttp")
    monkeypatch.setattr(cli, "_load_settings", lambda: settings())
    assert cli.main(["chat"]) == cli.EXIT_CONFIG
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "pip install 'sleepbot[chat]'" in error


def test_cli_refuses_run_on_postgres_without_asyncpg_before_touching_telegram(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(extras, "_installed", lambda module: module != "asyncpg")
    monkeypatch.setattr(
        cli,
        "_load_settings",
        lambda: settings(telegram_bot_token=TEST_TOKEN, database_url="postgresql://u@h/db"),
    )
    monkeypatch.setattr(cli, "run", lambda _settings: pytest.fail("must not start"))
    assert cli.main(["run"]) == cli.EXIT_CONFIG
    assert "sleepbot[postgres]" in capsys.readouterr().err


BLOCK_EXTRAS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"asyncpg", "redis", "aiohttp"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Block())
"""


def test_the_production_modules_import_without_any_extra() -> None:
    """`pip install .` (no extras) must run the bot: nothing it imports at start-up may need
    asyncpg, redis or aiohttp, and the fake Bot API stays out of a production process."""
    import subprocess
    import sys

    probe = BLOCK_EXTRAS + (
        "import bot.cli, bot.app, bot.replica, bot.dispatch, bot.web, bot.leader, bot.polling\n"
        "unwanted = {'aiohttp', 'asyncpg', 'redis', 'bot.fake_telegram', 'hypothesis', 'pytest'}\n"
        "print(sorted(unwanted & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
