"""Webhook mode end to end, in one process: Telegram's POST over HTTP → the real inbox → the
inbox worker → the real Application's handlers → a reply at the fake Bot API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from bot.app import build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.context import SERVICES_KEY, Services
from bot.fake_telegram import FakeBotApi
from bot.polling import InboxWorker
from bot.replica import Replica, inbox_store_update
from tests.conftest import TEST_TOKEN
from tests.harness import HANDLING_TIMEOUT, START, texts

SECRET: Final = "webhook_e2e_secret"
PATH: Final = "/tg/hook"
ADA: Final = 4242


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class WebhookBot:
    http: httpx.AsyncClient
    services: Services
    handled: list[int]
    progress: asyncio.Condition

    async def post(self, update: dict[str, Any], secret: str = SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        return (await self.http.post(PATH, json=update, headers=headers)).status_code

    async def wait_handled(self, update_id: int) -> None:
        async with asyncio.timeout(HANDLING_TIMEOUT), self.progress:
            await self.progress.wait_for(lambda: update_id in self.handled)


@asynccontextmanager
async def webhook_bot(api: FakeBotApi, tmp_path: Path) -> AsyncIterator[WebhookBot]:
    port = free_port()
    settings = Settings(
        _env_file=None,
        telegram_api_base_url=api.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        webhook_url=f"http://127.0.0.1:{port}{PATH}",  # a self-hosted Bot API may use http
        webhook_secret=SECRET,
        listen_host="127.0.0.1",
        listen_port=port,
    )
    clock = FakeClock(START)
    application = build_app(settings, token=TEST_TOKEN, clock=clock, rate_limit=False)
    handled: list[int] = []
    progress = asyncio.Condition()

    def on_handled(update_id: int) -> None:
        handled.append(update_id)

        async def notify() -> None:
            async with progress:
                progress.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async with running(application, poll=False):  # no getUpdates: updates come by webhook
        services: Services = application.bot_data[SERVICES_KEY]
        inbox = services.store.inbox
        worker = InboxWorker(
            application, inbox, clock, wake=asyncio.Event(), on_handled=[on_handled]
        )
        store_update = inbox_store_update(inbox, clock, stored=worker.wake)
        replica = Replica(settings, TEST_TOKEN, store_update=store_update, clock=clock)
        work = asyncio.create_task(worker.run())
        await replica.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                yield WebhookBot(http, services, handled, progress)
        finally:
            await replica.stop()
            worker.stop()
            await work


async def test_a_posted_update_is_stored_handled_and_answered_once(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    async with webhook_bot(fake_api, tmp_path) as bot:
        update = fake_api.send_text(ADA, "/start")  # the update as Telegram would post it
        before = len(fake_api.calls)
        assert await bot.post(update, secret="forged") == 403
        assert await bot.services.store.inbox.counts() == {"pending": 0, "done": 0, "failed": 0}
        assert await bot.post(update) == 200
        await bot.wait_handled(update["update_id"])
        # Telegram redelivers (say our 200 was lost): stored once, answered once.
        assert await bot.post(update) == 200
        counts = await bot.services.store.inbox.counts()
    replies = [
        call
        for call in fake_api.calls[before:]
        if call.method == "sendMessage" and int(call.params["chat_id"]) == ADA
    ]
    assert len(replies) == 1
    assert texts(replies)[0]
    assert bot.handled == [update["update_id"]]
    assert counts == {"pending": 0, "done": 1, "failed": 0}
