"""The replica's assembly beside the real bot: /healthz and /metrics over HTTP, leader-only
ticks, the send budget chosen from settings."""

from __future__ import annotations

import socket
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.fake_telegram import FakeBotApi
from bot.leader import Elector
from bot.redis_budget import RedisSendBudget
from bot.replica import Replica, bot_id, send_budget
from tests.conftest import TEST_TOKEN
from tests.harness import BotHarness, bot_harness

SECRET: Final = "replica_secret-1"


class ManualElector(Elector):
    async def start(self) -> None:
        """Leadership is set by the test."""

    async def stop(self) -> None:
        self._set_leader(False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(text: str) -> dict[str, float]:
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def polling_settings(bot: BotHarness, *, serve: bool = True) -> Settings:
    return Settings(
        _env_file=None,
        database_url=bot.settings.database_url,
        listen_host="127.0.0.1",
        metrics_port=free_port() if serve else None,
    )


async def test_polling_mode_serves_health_and_metrics_of_the_running_bot(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    """`sleepbot run`'s wiring (build_app(replica=True)): a person's reminder falls due, the
    backlog shows it, the leader-only job's tick sends it, and /healthz and /metrics over HTTP
    say so, with the update, handler and reminder counted."""
    async with bot_harness(
        fake_api,
        tmp_path,
        TEST_TOKEN,
        rate_limit=True,
        app_options={"replica": True},
        listen_host="127.0.0.1",
        metrics_port=free_port(),
    ) as bot:
        replica = bot.services.replica
        dispatcher = bot.services.dispatcher
        assert replica is not None and replica.server is not None and dispatcher is not None
        store, chat = bot.services.store, 4242
        await store.set_timezone(chat, "Europe/Berlin", bot.clock.now())
        await store.set_bedtime(chat, time(22, 30), bot.clock.now())
        await store.subscribe(chat, bot.clock.now())
        job = replica.leader_only(dispatcher.run_job)  # what the JobQueue runs
        base = f"http://127.0.0.1:{replica.server.port}"
        async with httpx.AsyncClient(base_url=base) as http:
            await bot.send(chat, "/help")
            bot.clock.advance(timedelta(hours=8, minutes=31))  # 10:00 → 18:31 in Berlin (CET)
            before = scrape((await http.get("/metrics")).text)
            calls_before = len(bot.api.calls)
            await job(None)
            await dispatcher.idle()  # run_job starts the tick in the background
            health = await http.get("/healthz")
            after = scrape((await http.get("/metrics")).text)
    assert before["sleepbot_due_backlog[]"] == 1  # the 18:30 meal reminder
    assert after["sleepbot_due_backlog[]"] == 0
    assert before["sleepbot_dispatcher_tick_seconds_count[]"] == 0
    assert after["sleepbot_dispatcher_tick_seconds_count[]"] == 1  # the tick itself, timed
    assert after["sleepbot_leader[]"] == 1
    assert after["sleepbot_flood_updates_total[('verdict', 'admitted')]"] >= 1
    assert after["sleepbot_updates_total[('type', 'message')]"] == 1  # /help, via getUpdates
    assert after["sleepbot_handler_seconds_count[('type', 'message')]"] == 1
    sent = "sleepbot_reminders_sent_total[('kind', 'meal'), ('outcome', 'sent')]"
    assert (before.get(sent, 0), after[sent]) == (0, 1)
    # Sent a minute after its 18:30 due time (the fake clock stands still meanwhile).
    assert after["sleepbot_reminder_lateness_seconds_sum[('kind', 'meal')]"] == 60
    assert "sleepbot_telegram_429_total[]" in after  # the send limiter's counters are exported
    assert health.status_code == 200
    assert health.json() | {"last_tick_seconds_ago": 0} == {
        "status": "ok",
        "role": "single",
        "database": "ok",
        "last_tick_seconds_ago": 0,
    }
    reminders = [
        call
        for call in bot.api.calls[calls_before:]
        if call.method == "sendMessage" and int(call.params["chat_id"]) == chat
    ]
    assert len(reminders) == 1  # the tick sent the due meal reminder


async def test_a_standby_does_not_tick_and_a_leader_does(bot: BotHarness) -> None:
    elector = ManualElector()
    replica = Replica(
        polling_settings(bot, serve=False), TEST_TOKEN, clock=bot.clock, elector=elector
    )
    ticked: list[object] = []

    async def job(context: object) -> None:
        ticked.append(context)

    guarded = replica.leader_only(job)
    await guarded("standby")
    elector._set_leader(True)
    await guarded("leader")
    assert ticked == ["leader"]
    assert replica.server is None  # polling without METRICS_PORT: nothing listens


async def test_webhook_mode_listens_on_the_path_of_webhook_url(tmp_path: Path) -> None:
    stored: list[dict[str, Any]] = []

    async def store_update(update: dict[str, Any]) -> None:
        stored.append(update)

    port = free_port()
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}",
        webhook_url="https://bot.example.org/hook/abc",
        webhook_secret=SECRET,
        listen_host="127.0.0.1",
        listen_port=port,
    )
    with pytest.raises(ValueError, match="store_update"):
        Replica(settings, TEST_TOKEN)
    replica = Replica(settings, TEST_TOKEN, store_update=store_update)
    await replica.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            refused = await http.post("/hook/abc", json={"update_id": 1})
            accepted = await http.post(
                "/hook/abc",
                json={"update_id": 1},
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
    finally:
        await replica.stop()
    assert (refused.status_code, accepted.status_code) == (403, 200)
    assert stored == [{"update_id": 1}]


def test_the_send_budget_is_redis_only_when_configured(tmp_path: Path) -> None:
    assert send_budget(Settings(_env_file=None), TEST_TOKEN) is None
    configured = Settings(_env_file=None, redis_url="redis://127.0.0.1:6379/0")
    assert isinstance(send_budget(configured, TEST_TOKEN), RedisSendBudget)
    assert bot_id(TEST_TOKEN) == "123456789"
