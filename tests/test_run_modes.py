"""`sleepbot run`'s two ways of receiving updates, as wired by build_app(replica=True):
webhook mode registers the webhook with its secret and takes updates only over HTTP; polling
mode removes a webhook again (as PTB does) and refuses to be the second poller of a database,
with one clear line rather than a 409 loop."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from bench.kill import private_database
from bot.app import build_app, freeze_start_up_heap, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.context import SERVICES_KEY, Services, SleepApplication
from bot.fake_telegram import FakeBotApi
from tests.botprocess import BotProcess
from tests.conftest import TEST_TOKEN
from tests.harness import HANDLING_TIMEOUT, START
from tests.pg import require_postgres
from tests.test_replica import free_port

SECRET: Final = "run_modes-secret_1"
PATH: Final = "/telegram/updates"
ADA: Final = 5151
EXIT_TIMEOUT_S: Final = 60.0
PERSON: Final = 734_562_901  # long enough never to appear in a log line by chance


def settings_for(api: FakeBotApi, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        telegram_api_base_url=api.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        listen_host="127.0.0.1",
        **overrides,
    )


class Handled:
    """Update ids the inbox worker marked handled, and a way to wait for one."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self._changed = asyncio.Event()

    def __call__(self, update_id: int) -> None:
        self.ids.append(update_id)
        self._changed.set()

    async def wait_for(self, update_id: int) -> None:
        async with asyncio.timeout(HANDLING_TIMEOUT):
            while update_id not in self.ids:
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[tuple[SleepApplication, Handled]]:
    """The app `sleepbot run` builds, started as `serve` starts it; yields the handled ids."""
    application = build_app(
        settings, token=TEST_TOKEN, clock=FakeClock(START), rate_limit=False, replica=True
    )
    services: Services = application.bot_data[SERVICES_KEY]
    assert services.intake is not None
    handled = Handled()
    services.intake.on_handled.append(handled)
    async with running(application, poll=True):
        yield application, handled


async def test_webhook_mode_registers_the_secret_and_polling_removes_the_webhook_again(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    port = free_port()
    webhook = settings_for(
        fake_api,
        tmp_path,
        webhook_url=f"http://127.0.0.1:{port}{PATH}",
        webhook_secret=SECRET,
        listen_port=port,
    )
    async with started(webhook) as (_, handled), httpx.AsyncClient() as http:
        assert fake_api.webhook is not None
        assert fake_api.webhook["url"] == f"http://127.0.0.1:{port}{PATH}"
        assert fake_api.webhook["secret_token"] == SECRET
        update = fake_api.send_text(ADA, "/help")  # what Telegram would post
        url = f"http://127.0.0.1:{port}{PATH}"
        forged = await http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "x"})
        missing = await http.post(url, json=update)
        assert (forged.status_code, missing.status_code) == (403, 403)
        assert handled.ids == []
        answer = await http.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        assert answer.status_code == 200
        await handled.wait_for(update["update_id"])
        health = await http.get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200
    assert fake_api.calls_to("getUpdates") == []  # webhook mode never polls
    replies = [c for c in fake_api.calls_to("sendMessage") if int(c.params["chat_id"]) == ADA]
    assert len(replies) == 1
    assert handled.ids == [update["update_id"]]
    # Back to polling on the same database: deleteWebhook first, then getUpdates works.
    async with started(settings_for(fake_api, tmp_path)) as (_, handled):
        await fake_api.wait_for(lambda: fake_api.webhook is None, what="deleteWebhook")
        update = fake_api.send_text(ADA, "/about")
        await handled.wait_for(update["update_id"])
        assert handled.ids == [update["update_id"]]
    assert fake_api.calls_to("deleteWebhook", ok_only=True)
    assert not [c for c in fake_api.calls_to("getUpdates") if c.status == 409]  # no 409


async def second_process_exit(first: BotProcess, second: BotProcess) -> tuple[int, str]:
    """Start `first` (it polls), then `second` on the same database: its exit code and log."""
    await first.start()
    second.runs += 1
    with second.log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=second.workdir,
            env=second.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    async with asyncio.timeout(EXIT_TIMEOUT_S):
        code = await process.wait()
    return code, second.log_text()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_a_second_poller_on_the_same_database_is_refused_with_one_line(
    fake_api: FakeBotApi, tmp_path: Path, backend: str
) -> None:
    async with AsyncExitStack() as stack:
        shared = f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}"
        if backend == "postgresql":
            # A database of its own: the polling lock is per database, and nobody else's
            # tests on the shared server can hold it.
            shared = await stack.enter_async_context(
                private_database(require_postgres(), tmp_path, "run_modes")
            )
        (tmp_path / "one").mkdir()
        (tmp_path / "two").mkdir()
        first = BotProcess(fake_api, tmp_path / "one", DATABASE_URL=shared)
        second = BotProcess(fake_api, tmp_path / "two", DATABASE_URL=shared)
        stack.push_async_callback(first.stop)
        code, log = await second_process_exit(first, second)
        assert not first.exited  # the first one goes on polling
    assert code == 2
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines == [
        "sleepbot: another `sleepbot run` is already polling Telegram for this bot on this "
        "database (two would fight over getUpdates with 409 Conflict); stop it, or run "
        "replicas in webhook mode (WEBHOOK_URL)"
    ], log
    assert not [c for c in fake_api.calls_to("getUpdates") if c.status == 409]  # not a single 409


async def test_log_format_json_makes_sleepbot_run_write_one_json_object_a_line(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    import json

    bot = BotProcess(fake_api, tmp_path, LOG_FORMAT="json")
    try:
        await bot.start()
        fake_api.send_text(PERSON, "/help")
        await fake_api.wait_for(
            lambda: any(
                c.method == "sendMessage" and int(c.params["chat_id"]) == PERSON
                for c in fake_api.calls
            ),
            30,
            what="the answer",
        )
        bot.terminate()
        assert await bot.wait() == 0
    finally:
        await bot.stop()
    lines = [line for line in bot.log_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"sleepbot is running; SIGINT or SIGTERM stops it", "stopping"} <= {
        entry["event"] for entry in entries
    }
    assert fake_api.token not in bot.log_text()
    assert str(PERSON) not in bot.log_text()  # chat ids appear hashed only


def test_freeze_start_up_heap_takes_the_live_heap_out_of_the_collector() -> None:
    """`sleepbot run` freezes what start-up built (bot.app.serve): no generation holds it."""
    frozen_before = gc.get_freeze_count()
    alive: list[object] = []
    alive.append(alive)
    try:
        freeze_start_up_heap()
        assert gc.get_freeze_count() > frozen_before
        assert all(alive is not o for o in gc.get_objects())  # not in any generation
    finally:
        gc.unfreeze()
    assert any(alive is o for o in gc.get_objects())
