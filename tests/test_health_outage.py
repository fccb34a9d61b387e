"""/healthz of the running bot follows its database: 503 while PostgreSQL is unreachable, 200
again once it is back, and the dispatcher ticks again.

"Stopped" is a TCP proxy between the bot and the shared PostgreSQL server, cut (every
connection dropped, new ones refused) and restored; the server itself is never touched, and
the bot gets a throw-away database of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import httpx
import pytest
from sqlalchemy import make_url

from bench.kill import private_database
from bot.clock import FakeClock
from bot.config import Settings
from bot.fake_telegram import FakeBotApi
from tests.conftest import TEST_TOKEN
from tests.harness import START, BotHarness
from tests.pg import require_postgres
from tests.tcp_proxy import TcpProxy
from tests.test_replica import free_port

RECOVERY_S: Final = 15.0
POLL_S: Final = 0.2


async def health_until(
    http: httpx.AsyncClient,
    done: Callable[[httpx.Response], bool],
    pause: Callable[[], Awaitable[None]],
) -> tuple[httpx.Response, float]:
    """GET /healthz until `done(answer)`, within RECOVERY_S: the answer and the seconds it took."""
    began = time.monotonic()
    while True:
        answer = await http.get("/healthz")
        if done(answer):
            return answer, time.monotonic() - began
        if time.monotonic() - began > RECOVERY_S:
            raise AssertionError(f"/healthz still {answer.status_code}: {answer.text}")
        await pause()


@pytest.mark.postgres
async def test_healthz_is_503_while_postgresql_is_down_and_200_when_it_is_back(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    async def pause() -> None:
        await asyncio.sleep(POLL_S)  # between two requests of a bounded poll, not a guess

    async with private_database(require_postgres(), tmp_path, "health") as url:
        parsed = make_url(url)
        async with TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
            via = parsed.set(host="127.0.0.1", port=proxy.port)
            port = free_port()
            settings = Settings(
                _env_file=None,
                telegram_api_base_url=fake_api.base_url,
                database_url=via.render_as_string(hide_password=False),
                listen_host="127.0.0.1",
                metrics_port=port,
                dispatch_interval_seconds=1,
            )
            bot = BotHarness(
                fake_api, settings, FakeClock(START), TEST_TOKEN, app_options={"replica": True}
            )
            await bot.start(dispatch_job=True)  # the real JobQueue ticks the dispatcher
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    up, _ = await health_until(
                        http, lambda a: a.json().get("role") == "leader", pause
                    )
                    assert up.status_code == 200, up.text
                    await proxy.cut()
                    down = await http.get("/healthz")
                    await proxy.restore()
                    back, recovered_s = await health_until(
                        http,
                        lambda a: a.status_code == 200 and a.json().get("role") == "leader",
                        pause,
                    )
                    ticked, _ = await health_until(
                        http, lambda a: "last_tick_seconds_ago" in a.json(), pause
                    )
            finally:
                await bot.stop()
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert down.json()["reason"].startswith("database")
    assert back.json()["database"] == "ok"
    assert ticked.status_code == 200
    print(f"[health] 503 while cut; 200 again {recovered_s:.1f} s after the database returned")
