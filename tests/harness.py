"""Runs the real Application against the fake Bot API and knows when an update was handled.

The inbox worker reports every handled update id (``Intake.on_handled``), so tests wait for "the
bot finished handling what I sent" instead of sleeping or guessing how many replies will come.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import DISPATCH_JOB, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.context import SERVICES_KEY, Services, SleepApplication
from bot.dispatch import TickReport, run_simulated
from bot.fake_telegram import ApiCall, FakeBotApi, StoredMessage

HANDLING_TIMEOUT = 10.0  # seconds; a generous bound, not a synchronisation sleep
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class BotHarness:
    """One running bot: send it text, press its buttons, move its clock, restart it."""

    def __init__(
        self,
        api: FakeBotApi,
        settings: Settings,
        clock: FakeClock,
        token: str,
        *,
        rate_limit: bool = False,
        app_options: dict[str, Any] | None = None,
    ) -> None:
        self.api = api
        self.rate_limit = rate_limit
        self.app_options = app_options or {}
        self.settings = settings
        self.clock = clock
        self.token = token
        self._processed: set[int] = set()
        self._handled_now = asyncio.Event()  # replaced after each handled update
        self._stack: AsyncExitStack | None = None
        self.app: SleepApplication | None = None

    @property
    def services(self) -> Services:
        assert self.app is not None
        services = self.app.bot_data[SERVICES_KEY]
        assert isinstance(services, Services)
        return services

    async def start(self, *, dispatch_job: bool = False) -> None:
        """Start a fresh Application (on the same database, if restarted)."""
        self.app = build_app(
            self.settings,
            token=self.token,
            clock=self.clock,
            rate_limit=self.rate_limit,
            **self.app_options,
        )
        intake = self.services.intake
        assert intake is not None
        intake.on_handled.append(self._mark_processed)
        self._stack = AsyncExitStack()
        await self._stack.enter_async_context(running(self.app, poll=True))
        # Polling has begun (deleteWebhook, then a parked getUpdates): no start-up call can
        # fall into the first test step's window.
        await self.api.wait_for(lambda: self.api.long_polls_waiting > 0, what="the first poll")
        if not dispatch_job and self.app.job_queue is not None:
            # Tests drive the dispatcher with the fake clock via tick(); one test keeps the job.
            for job in self.app.job_queue.get_jobs_by_name(DISPATCH_JOB):
                job.schedule_removal()

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def restart(self) -> None:
        """Stop this process's Application and start a new one, as after a crash or deploy."""
        await self.stop()
        await self.start()

    @property
    def processed(self) -> int:
        """How many updates the bot has finished with (handled, or dropped by flood control)."""
        return len(self._processed)

    def _mark_processed(self, update_id: int) -> None:
        self._processed.add(update_id)
        self._handled_now.set()
        self._handled_now = asyncio.Event()

    async def _handled(self, update: dict[str, Any]) -> list[ApiCall]:
        before = len(self.api.calls)
        update_id = int(update["update_id"])
        async with asyncio.timeout(HANDLING_TIMEOUT):
            while update_id not in self._processed:
                await self._handled_now.wait()
        return [call for call in self.api.calls[before:] if call.method != "getUpdates"]

    async def send(self, chat_id: int, text: str) -> list[ApiCall]:
        """The person types `text`; returns the calls the bot made while handling it."""
        return await self._handled(self.api.send_text(chat_id, text))

    async def share_location(
        self, chat_id: int, latitude: float, longitude: float
    ) -> list[ApiCall]:
        return await self._handled(self.api.send_location(chat_id, latitude, longitude))

    async def press(
        self, chat_id: int, message_id: int, data: str, *, check: bool = True
    ) -> list[ApiCall]:
        self.api.press_button(chat_id, message_id, data, check=check)
        return await self._handled(self.api.updates[-1])

    async def press_label(self, chat_id: int, label: str) -> list[ApiCall]:
        """Press the button whose label contains `label` on the newest message that has it."""
        for message in reversed(self.api.messages(chat_id)):
            for text, data in message.buttons:
                if label in text:
                    return await self.press(chat_id, message.message_id, data)
        raise AssertionError(f"no button labelled {label!r} in chat {chat_id}")

    def last(self, chat_id: int) -> StoredMessage:
        message = self.api.last_message(chat_id)
        assert message is not None, f"the bot sent nothing to {chat_id}"
        return message

    async def tick(self) -> TickReport:
        dispatcher = self.services.dispatcher
        assert dispatcher is not None
        return await dispatcher.tick()

    async def advance(
        self, delta: timedelta, *, step: timedelta = timedelta(minutes=1)
    ) -> list[ApiCall]:
        """Move the clock minute by minute, ticking the dispatcher as the JobQueue would."""
        before = len(self.api.calls)
        dispatcher = self.services.dispatcher
        assert dispatcher is not None
        await run_simulated(dispatcher, self.clock, delta, step=step)
        return self.api.calls[before:]


def texts(calls: list[ApiCall], method: str = "sendMessage") -> list[str]:
    return [str(call.params.get("text", "")) for call in calls if call.method == method]


@asynccontextmanager
async def bot_harness(
    api: FakeBotApi,
    tmp_path: Path,
    token: str,
    *,
    start: datetime = START,
    rate_limit: bool = False,
    app_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[BotHarness]:
    """A started bot; `app_options` go to build_app, `overrides` to its Settings."""
    settings = Settings(
        _env_file=None,
        telegram_api_base_url=api.base_url,
        database_url=overrides.pop(
            "database_url", f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
        ),
        **overrides,
    )
    harness = BotHarness(
        api, settings, FakeClock(start), token, rate_limit=rate_limit, app_options=app_options
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
