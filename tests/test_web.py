"""The webhook, /healthz and /metrics: through the ASGI app, and once through real uvicorn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.flood import FloodCounters
from bot.health import Health, Role, TickWatch
from bot.metrics import Metrics
from bot.ratelimit import SendStats
from bot.web import MAX_BODY_BYTES, Webhook, create_app, serving, webhook_path

SECRET: Final = "s3cret_-token"
PATH: Final = "/telegram/hook"
GOOD: Final = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
UPDATE: Final = {"update_id": 7, "message": {"message_id": 1, "date": 0, "text": "hi"}}


class Inbox:
    """A store_update that records what it stored; it can be made to block or to fail."""

    def __init__(self) -> None:
        self.stored: list[dict[str, Any]] = []
        self.entered = asyncio.Event()
        self.release: asyncio.Event | None = None
        self.fail = False

    async def store(self, update: dict[str, Any]) -> None:
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        if self.fail:
            raise ConnectionError("database went away")
        self.stored.append(update)


class Database:
    def __init__(self) -> None:
        self.up = True

    async def ping(self) -> None:
        if not self.up:
            raise ConnectionRefusedError("connection refused")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def client(inbox: Inbox, metrics: Metrics) -> AsyncIterator[httpx.AsyncClient]:
    health = Health(Database().ping, interval=5, ticks=None)
    app = create_app(metrics=metrics, health=health, webhook=Webhook(PATH, SECRET, inbox.store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
        yield http


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by prometheus_client's own text parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# --- the webhook ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
        {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
        {"X-Telegram-Bot-Api-Secret-Token": ""},
    ],
    ids=["missing", "wrong", "longer", "empty"],
)
async def test_without_the_exact_secret_the_answer_is_403_and_nothing_is_stored(
    client: httpx.AsyncClient, inbox: Inbox, headers: dict[str, str]
) -> None:
    response = await client.post(PATH, json=UPDATE, headers=headers)
    assert response.status_code == 403
    assert inbox.stored == []
    assert not inbox.entered.is_set()


async def test_a_second_copy_of_the_secret_header_is_refused(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    headers = [
        ("X-Telegram-Bot-Api-Secret-Token", SECRET),
        ("X-Telegram-Bot-Api-Secret-Token", "x"),
    ]
    response = await client.post(PATH, content=json.dumps(UPDATE), headers=headers)
    assert response.status_code == 403
    assert inbox.stored == []


async def test_a_forged_request_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    read = []

    async def body() -> AsyncIterator[bytes]:
        read.append(True)
        yield b"{}"

    response = await client.post(
        PATH, content=body(), headers={"X-Telegram-Bot-Api-Secret-Token": "no"}
    )
    assert response.status_code == 403
    assert read == []


async def test_a_declared_length_over_1_mib_is_413_unread(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    too_big = b"x" * (MAX_BODY_BYTES + 1)
    response = await client.post(PATH, content=too_big, headers=GOOD)
    assert response.status_code == 413
    assert inbox.stored == []


async def test_a_streamed_body_growing_past_1_mib_is_413(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    sent = []

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(40):
            sent.append(64 * 1024)
            yield b" " * (64 * 1024)

    response = await client.post(PATH, content=chunks(), headers=GOOD)
    assert response.status_code == 413
    assert inbox.stored == []


async def test_exactly_1_mib_of_valid_update_is_accepted(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    body = json.dumps(UPDATE).encode()
    body += b" " * (MAX_BODY_BYTES - len(body))
    response = await client.post(PATH, content=body, headers=GOOD)
    assert response.status_code == 200
    assert inbox.stored == [UPDATE]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting: RecursionError, not a crash
        b"[1, 2]",
        b'"update"',
        b"{}",
        b'{"update_id": "7"}',
        b'{"update_id": 7.0}',
        b'{"update_id": true}',
        b'{"update_id": -1}',
    ],
    ids=[
        "broken",
        "binary",
        "deep",
        "array",
        "string",
        "no-id",
        "id-string",
        "id-float",
        "id-bool",
        "id-negative",
    ],
)
async def test_a_body_that_is_not_an_update_is_400(
    client: httpx.AsyncClient, inbox: Inbox, body: bytes
) -> None:
    response = await client.post(PATH, content=body, headers=GOOD)
    assert response.status_code == 400
    assert inbox.stored == []


async def test_200_comes_only_after_the_update_is_stored(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    inbox.release = asyncio.Event()
    request = asyncio.create_task(client.post(PATH, json=UPDATE, headers=GOOD))
    async with asyncio.timeout(5):
        await inbox.entered.wait()
    for _ in range(20):  # let the app run as far as it can while the store is blocked
        await asyncio.sleep(0)
    assert not request.done()
    inbox.release.set()
    async with asyncio.timeout(5):
        response = await request
    assert response.status_code == 200
    assert inbox.stored == [UPDATE]


async def test_when_storing_fails_the_answer_is_500_so_telegram_retries(
    client: httpx.AsyncClient, inbox: Inbox, metrics: Metrics
) -> None:
    inbox.fail = True
    response = await client.post(PATH, json=UPDATE, headers=GOOD)
    assert response.status_code == 500
    inbox.fail = False
    again = await client.post(PATH, json=UPDATE, headers=GOOD)
    assert again.status_code == 200
    assert inbox.stored == [UPDATE]
    scraped = samples((await client.get("/metrics")).text)
    assert scraped[("sleepbot_webhook_requests_total", (("status", "500"),))] == 1
    assert scraped[("sleepbot_webhook_requests_total", (("status", "200"),))] == 1


async def test_other_methods_and_paths_are_not_the_webhook(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    assert (await client.get(PATH, headers=GOOD)).status_code == 405
    assert (await client.post("/other", json=UPDATE, headers=GOOD)).status_code == 404
    assert inbox.stored == []


def test_the_path_is_the_path_of_webhook_url() -> None:
    assert webhook_path("https://bot.example.org/tg/abc") == "/tg/abc"
    assert webhook_path("https://bot.example.org") == "/"
    with pytest.raises(ValueError, match="/healthz"):
        Webhook("/healthz", SECRET, Inbox().store)


# --- /metrics -----------------------------------------------------------------------------


async def test_metrics_are_scraped_and_parsed_by_prometheus_client(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    flood = FloodCounters(admitted=10, dropped=4, coalesced=1, floods=1, exempted=2)
    stats = SendStats(held_chats=3, slowdowns=1, pauses=0, deferred=5)
    metrics.observe(
        flood=lambda: flood, limiter=lambda: stats, leader=lambda: True, backlog=_answer(42)
    )
    for update in (UPDATE, {"update_id": 8, "callback_query": {}}, {"update_id": 9, "new_x": 1}):
        assert (await client.post(PATH, json=update, headers=GOOD)).status_code == 200
    metrics.update_handled("message", 0.03)
    metrics.reminder_sent("meal", "sent", lateness=1.5)
    metrics.reminder_sent("meal", "retry")
    metrics.reminder_sent("wind_down", "sent", lateness=0.2)
    metrics.deactivated()
    async with TickWatch(metrics).ticking():
        pass

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    scraped = samples(response.text)
    assert scraped[("sleepbot_updates_total", (("type", "message"),))] == 1
    assert scraped[("sleepbot_updates_total", (("type", "callback_query"),))] == 1
    assert scraped[("sleepbot_updates_total", (("type", "other"),))] == 1
    assert scraped[("sleepbot_handler_seconds_count", (("type", "message"),))] == 1
    sent = ("sleepbot_reminders_sent_total", (("kind", "meal"), ("outcome", "sent")))
    assert scraped[sent] == 1
    retry = ("sleepbot_reminders_sent_total", (("kind", "meal"), ("outcome", "retry")))
    assert scraped[retry] == 1
    late = ("sleepbot_reminder_lateness_seconds_bucket", (("kind", "meal"), ("le", "2.0")))
    assert scraped[late] == 1
    early = ("sleepbot_reminder_lateness_seconds_bucket", (("kind", "meal"), ("le", "1.0")))
    assert scraped[early] == 0
    assert scraped[("sleepbot_deactivations_total", ())] == 1
    assert scraped[("sleepbot_dispatcher_tick_seconds_count", ())] == 1
    assert scraped[("sleepbot_dispatcher_last_tick_timestamp_seconds", ())] > 0
    assert scraped[("sleepbot_due_backlog", ())] == 42
    assert scraped[("sleepbot_leader", ())] == 1
    assert scraped[("sleepbot_telegram_429_total", ())] == 3
    assert scraped[("sleepbot_send_slowdowns_total", ())] == 1
    assert scraped[("sleepbot_send_deferred_total", ())] == 5
    assert scraped[("sleepbot_flood_updates_total", (("verdict", "dropped"),))] == 4
    assert scraped[("sleepbot_flood_updates_total", (("verdict", "exempted"),))] == 2
    assert scraped[("sleepbot_flood_bursts_total", ())] == 1


async def test_the_backlog_reads_nan_while_its_query_fails(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    async def broken() -> int:
        raise ConnectionRefusedError

    metrics.observe(backlog=broken)
    scraped = samples((await client.get("/metrics")).text)
    backlog = scraped[("sleepbot_due_backlog", ())]
    assert backlog != backlog  # NaN


def test_two_metrics_objects_in_one_process_do_not_collide() -> None:
    first, second = Metrics(), Metrics()
    first.update_received("message")
    assert b'sleepbot_updates_total{type="message"} 1.0' in first.exposition()
    assert b"sleepbot_updates_total{" not in second.exposition()


def test_an_unknown_reminder_outcome_is_a_bug_not_a_new_label() -> None:
    with pytest.raises(ValueError, match="outcome"):
        Metrics().reminder_sent("meal", "delivered")


def _answer(value: int) -> Any:
    async def probe() -> int:
        return value

    return probe


# --- /healthz -----------------------------------------------------------------------------


async def healthz(health: Health) -> tuple[int, dict[str, Any]]:
    app = create_app(metrics=Metrics(), health=health)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
        response = await http.get("/healthz")
    return response.status_code, response.json()


async def test_healthz_is_503_while_the_database_is_down_and_200_when_it_is_back() -> None:
    database, clock = Database(), Clock()
    ticks = TickWatch(monotonic=clock)
    health = Health(database.ping, interval=5, ticks=ticks, monotonic=clock)
    async with ticks.ticking():
        pass
    assert await healthz(health) == (
        200,
        {"status": "ok", "role": "single", "database": "ok", "last_tick_seconds_ago": 0.0},
    )
    database.up = False
    status, report = await healthz(health)
    assert status == 503
    assert report["reason"] == "database unreachable (ConnectionRefusedError)"
    database.up = True
    assert (await healthz(health))[0] == 200


async def test_healthz_is_503_when_the_database_hangs() -> None:
    async def hanging() -> None:
        await asyncio.Event().wait()

    health = Health(hanging, interval=5, ticks=None, ping_timeout=0.01)
    status, report = await healthz(health)
    assert (status, report["reason"]) == (503, "database did not answer within 0.01 s")


async def test_healthz_is_503_when_the_dispatcher_missed_three_intervals() -> None:
    clock = Clock()
    ticks = TickWatch(monotonic=clock)
    health = Health(Database().ping, interval=5, ticks=ticks, monotonic=clock)
    clock.now += 15  # start-up grace: three intervals
    assert (await healthz(health))[0] == 200
    clock.now += 1
    status, report = await healthz(health)
    assert status == 503
    assert report["reason"].startswith("dispatcher has not ticked for 16 s")
    async with ticks.ticking():
        clock.now += 1
    assert (await healthz(health))[0] == 200


async def test_a_long_tick_that_makes_progress_is_healthy_and_a_stalled_one_is_not() -> None:
    clock = Clock()
    ticks = TickWatch(monotonic=clock)
    health = Health(Database().ping, interval=5, ticks=ticks, monotonic=clock, stall_after=60)
    async with ticks.ticking():
        for _ in range(10):  # ten minutes of sending, a batch every minute
            clock.now += 59
            ticks.progress()
            assert (await healthz(health))[0] == 200
        clock.now += 61
        status, report = await healthz(health)
        assert (status, report["reason"]) == (503, "dispatcher tick shows no progress for 61 s")


async def test_a_standby_is_healthy_without_ticks_and_a_new_leader_gets_grace() -> None:
    clock = Clock()
    role: list[Role] = ["standby"]
    ticks = TickWatch(monotonic=clock)
    health = Health(Database().ping, interval=5, ticks=ticks, role=lambda: role[0], monotonic=clock)
    clock.now += 600
    assert await healthz(health) == (200, {"status": "ok", "role": "standby", "database": "ok"})
    role[0] = "leader"
    assert (await healthz(health))[0] == 200  # it just took over: grace
    clock.now += 16
    status, report = await healthz(health)
    assert (status, report["role"]) == (503, "leader")


# --- through uvicorn, over TCP --------------------------------------------------------------


async def test_the_real_server_answers_over_http(inbox: Inbox, metrics: Metrics) -> None:
    health = Health(Database().ping, interval=5, ticks=None)
    app = create_app(metrics=metrics, health=health, webhook=Webhook(PATH, SECRET, inbox.store))
    async with (
        serving(app, "127.0.0.1", 0) as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http,
    ):
        assert (await http.post(PATH, json=UPDATE)).status_code == 403
        big = await http.post(PATH, content=b"{" * (MAX_BODY_BYTES + 10), headers=GOOD)
        assert big.status_code == 413
        assert (await http.post(PATH, json=UPDATE, headers=GOOD)).status_code == 200
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert "sleepbot_updates_total" in (await http.get("/metrics")).text
    assert inbox.stored == [UPDATE]


async def test_a_taken_port_is_an_os_error_not_an_exit(metrics: Metrics) -> None:
    health = Health(Database().ping, interval=5, ticks=None)
    app = create_app(metrics=metrics, health=health)
    async with serving(app, "127.0.0.1", 0) as first:
        with pytest.raises(OSError, match="cannot listen"):
            async with serving(app, "127.0.0.1", first.port):
                pass
