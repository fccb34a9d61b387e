"""One contract for every `SendBudget`: the in-process one and the Redis one behave alike.

The contract tests drive each budget with the same controlled clock. The Redis-only tests
below them use Redis's own clock and several clients, as replicas would."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import pytest
from redis.asyncio import Redis

from bot.ratelimit import (
    SAFETY,
    FairRateLimiter,
    Lane,
    LocalSendBudget,
    Pace,
    Refusal,
    SendBudget,
    SendOptions,
)
from bot.redis_budget import RETRY_AFTER_S, RedisSendBudget, connect
from tests.redis_server import redis_namespace, require_redis

RATE: Final = 1000.0  # msg/s: global spacing of ~1 ms, so chat pacing shows on its own
SPACING: Final = SAFETY / RATE
STEP: Final = 0.002  # > SPACING: consecutive takes never meet the global slot


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Subject:
    budget: SendBudget
    clock: Clock


@pytest.fixture(params=["local", "redis"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    clock = Clock()
    if request.param == "local":
        yield Subject(LocalSendBudget(monotonic=clock), clock)
        return
    async with redis_namespace() as (client, namespace):
        yield Subject(RedisSendBudget(client, namespace=namespace, clock=clock), clock)


def refused(result: Refusal | None, scope: str, wait: float) -> bool:
    """`result` is a refusal by `scope` for about `wait` seconds."""
    return result is not None and result.scope == scope and result.wait == pytest.approx(wait)


async def takes(subject: Subject, chat: int | str, count: int) -> list[Refusal | None]:
    """`count` takes for `chat`, STEP apart."""
    results = []
    for _ in range(count):
        results.append(await subject.budget.take(chat, RATE))
        subject.clock.advance(STEP)
    return results


# --- the contract ---------------------------------------------------------------------------


async def test_a_private_chat_bursts_three_then_waits_for_its_refill(subject: Subject) -> None:
    assert await takes(subject, 7, 3) == [None, None, None]
    refusal = await subject.budget.take(7, RATE)
    # Three takes and three steps refilled 3 * STEP / 1.1 of a token.
    assert refused(refusal, "chat", 1.1 - 3 * STEP)
    subject.clock.advance(1.1 - 3 * STEP)
    assert await subject.budget.take(7, RATE) is None


async def test_groups_and_usernames_refill_every_3_9_s(subject: Subject) -> None:
    for chat in (-100123, "@channel"):
        assert await takes(subject, chat, 3) == [None, None, None]
        assert refused(await subject.budget.take(chat, RATE), "chat", 3.9 - 3 * STEP)


async def test_global_sends_are_spaced_and_a_refusal_takes_nothing(subject: Subject) -> None:
    assert await subject.budget.take(1, 30) is None
    assert refused(await subject.budget.take(2, 30), "global", SAFETY / 30)
    subject.clock.advance(SAFETY / 30)
    # Chat 2's refusal cost it no token: its full burst is still there.
    for _ in range(3):
        assert await subject.budget.take(2, 30) is None
        subject.clock.advance(SAFETY / 30)


async def test_a_chat_refusal_leaves_the_global_slot_free(subject: Subject) -> None:
    await subject.budget.hold(5, 30)
    assert refused(await subject.budget.take(5, 30), "chat", 30)
    assert await subject.budget.take(6, 30) is None  # the same instant: the slot was not used


async def test_a_hold_stops_one_chat_and_only_grows(subject: Subject) -> None:
    await subject.budget.hold(5, 30)
    await subject.budget.hold(5, 10)  # shorter: changes nothing
    assert await subject.budget.wait_hint(5) == pytest.approx(30)
    assert await subject.budget.wait_hint(6) == 0
    subject.clock.advance(29.9)
    assert refused(await subject.budget.take(5, RATE), "chat", 0.1)
    subject.clock.advance(0.1 + 1e-5)
    assert await subject.budget.take(5, RATE) is None
    assert await subject.budget.wait_hint(5) == 0  # a held chat kept its burst


async def test_a_global_hold_stops_every_chat(subject: Subject) -> None:
    await subject.budget.hold(None, 10)
    assert refused(await subject.budget.take(1, RATE), "global", 10)
    assert await subject.budget.wait_hint(2) == pytest.approx(10)
    subject.clock.advance(10 + 1e-5)
    assert await subject.budget.take(1, RATE) is None


async def test_the_paid_lane_has_its_own_slot_but_shares_chats_and_global_holds(
    subject: Subject,
) -> None:
    """ALLOW_PAID_BROADCAST: a taken free slot does not refuse a paid send, nor the other way
    round; a chat's pace counts sends in both lanes; a global hold stops both."""
    assert await subject.budget.take(1, 30) is None
    assert refused(await subject.budget.take(2, 30), "global", SAFETY / 30)
    assert await subject.budget.take(2, RATE, "paid") is None  # the free slot is not the paid one
    assert refused(await subject.budget.take(3, RATE, "paid"), "global", SPACING)
    lanes: tuple[Lane, ...] = ("free", "paid")
    for lane in lanes:  # chat 2: a send in each lane, three in all
        subject.clock.advance(SAFETY / 30)
        assert await subject.budget.take(2, 30 if lane == "free" else RATE, lane) is None
    subject.clock.advance(SAFETY / 30)
    refusal = await subject.budget.take(2, 30)
    assert refusal is not None and refusal.scope == "chat"  # its burst is spent in both lanes
    await subject.budget.hold(None, 10)
    assert refused(await subject.budget.take(4, RATE, "paid"), "global", 10)
    assert refused(await subject.budget.take(5, 30), "global", 10)


async def test_a_wait_hint_takes_nothing(subject: Subject) -> None:
    for _ in range(10):
        assert await subject.budget.wait_hint(9) == 0
    assert await takes(subject, 9, 3) == [None, None, None]
    hint = await subject.budget.wait_hint(9)
    refusal = await subject.budget.take(9, RATE)
    assert refusal is not None
    assert hint == pytest.approx(refusal.wait)


async def test_a_long_idle_chat_refills_to_its_burst_and_no_further(subject: Subject) -> None:
    assert await takes(subject, 3, 3) == [None, None, None]
    subject.clock.advance(3600)
    results = await takes(subject, 3, 4)
    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[3].scope == "chat"


# --- Redis: what replicas share -------------------------------------------------------------


@pytest.fixture
async def shared() -> AsyncIterator[tuple[Redis, str]]:
    async with redis_namespace() as client_and_namespace:
        yield client_and_namespace


async def test_two_replicas_share_one_chats_burst_and_the_global_slot(
    shared: tuple[Redis, str],
) -> None:
    client, namespace = shared
    other_client = Redis.from_url(require_redis())
    try:
        clock = Clock()
        one = RedisSendBudget(client, namespace=namespace, clock=clock)
        two = RedisSendBudget(other_client, namespace=namespace, clock=clock)
        assert await one.take(7, RATE) is None
        clock.advance(STEP)
        assert await two.take(7, RATE) is None
        clock.advance(STEP)
        assert await one.take(7, RATE) is None
        clock.advance(STEP)
        assert refused(await two.take(7, RATE), "chat", 1.1 - 3 * STEP)
        assert await two.take(8, 30) is None
        assert refused(await one.take(9, 30), "global", SAFETY / 30)
        await one.hold(10, 60)
        assert await two.wait_hint(10) == pytest.approx(60)
        # Another bot (namespace) has limits of its own.
        stranger = RedisSendBudget(client, namespace=namespace + "-other", clock=clock)
        assert await stranger.take(7, 30) is None
        await client.delete(f"sleepbot:{{{namespace}-other}}:global")
        await client.delete(f"sleepbot:{{{namespace}-other}}:chat:i:7")
    finally:
        await other_client.aclose()


async def test_redis_time_is_the_clock_and_keys_expire_once_back_to_default(
    shared: tuple[Redis, str],
) -> None:
    client, namespace = shared
    budget = RedisSendBudget(client, namespace=namespace)  # Redis's TIME
    assert await budget.take(7, 30) is None
    refusal = await budget.take(8, 30)
    assert refusal is not None and refusal.scope == "global"
    assert 0 < refusal.wait <= SAFETY / 30
    # A bucket with one token used is full again after 1.1 s: its key lives ~1.1 + 1 s.
    ttl = await client.pttl(f"sleepbot:{{{namespace}}}:chat:i:7")
    assert 1100 < ttl <= 2200
    await budget.hold(None, 5)
    assert 5000 < await client.pttl(f"sleepbot:{{{namespace}}}:global") <= 6100


async def test_two_limiters_on_one_redis_pace_a_chat_across_replicas(
    shared: tuple[Redis, str],
) -> None:
    """Real time, two FairRateLimiters (replicas) sending to one chat: together they keep the
    chat's pace, where two in-process budgets would each allow it in full."""
    client, namespace = shared
    fast = Pace(burst=2, interval=0.05)
    sent: list[float] = []

    async def send(*_: Any) -> bool:
        sent.append(time.monotonic())
        return True

    limiters = [
        FairRateLimiter(200, budget=RedisSendBudget(client, namespace=namespace, private=fast))
        for _ in range(2)
    ]
    start = time.monotonic()
    await asyncio.gather(
        *(
            limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 42}, None)
            for limiter in limiters
            for _ in range(10)
        )
    )
    for limiter in limiters:
        await limiter.shutdown()
    assert len(sent) == 20
    # 20 sends with a burst of 2 need 18 refills of 0.05 s, whoever sends them.
    assert sent[-1] - start >= 18 * 0.05 - 0.02


async def test_two_limiters_on_one_redis_share_the_free_lane_and_pay_for_the_rest(
    shared: tuple[Redis, str],
) -> None:
    """Real time, ALLOW_PAID_BROADCAST on two replicas: 40 reminders to 40 chats, each allowed
    to go paid after 0.5 s, free lane 20 msg/s. Together the replicas send at most the free
    lane's 0.5 s worth unflagged before then (two in-process budgets would each send that
    much), and the rest goes paid."""
    client, namespace = shared
    sent: list[tuple[float, bool]] = []

    def request(limiter: FairRateLimiter, chat: int) -> Any:
        data: dict[str, Any] = {"chat_id": chat}

        async def send(*_: Any) -> bool:
            sent.append((time.monotonic(), bool(data.get("allow_paid_broadcast"))))
            return True

        options = SendOptions(paid_after=0.5)
        return limiter.process_request(send, (), {}, "sendMessage", data, options)

    limiters = [
        FairRateLimiter(
            20, paid_per_second=200, budget=RedisSendBudget(client, namespace=namespace)
        )
        for _ in range(2)
    ]
    start = time.monotonic()
    await asyncio.gather(
        *(request(limiter, 100 * n + i) for n, limiter in enumerate(limiters) for i in range(20))
    )
    for limiter in limiters:
        await limiter.shutdown()
    assert len(sent) == 40
    free_in_time = [at for at, paid in sent if not paid and at - start < 0.5]
    assert len(free_in_time) <= 0.5 * 20 / SAFETY + 2
    paid = [at for at, flagged in sent if flagged]
    assert len(paid) == sum(limiter.stats.paid for limiter in limiters) >= 20
    assert min(paid) - start >= 0.5 - 0.01


def is_degraded(budget: RedisSendBudget) -> bool:
    return budget.degraded


class _Forwarder:
    """A TCP proxy to Redis that can be cut and restored, to fail Redis for real."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.port = 0
        self._links: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._links:
            writer.close()
        self._links.clear()
        await self.server.wait_closed()


@asynccontextmanager
async def forwarded(url: str) -> AsyncIterator[tuple[_Forwarder, Redis]]:
    target = Redis.from_url(url).connection_pool.connection_kwargs
    forwarder = _Forwarder(int(target.get("port", 6379)))
    await forwarder.start()
    client = connect(f"redis://127.0.0.1:{forwarder.port}/{target.get('db', 0)}")
    try:
        yield forwarder, client
    finally:
        await client.aclose()
        if forwarder.server is not None:
            forwarder.server.close()


async def test_when_redis_fails_limits_fall_back_to_the_process_and_come_back(
    shared: tuple[Redis, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, namespace = shared
    clock, monotonic = Clock(), Clock()
    async with forwarded(require_redis()) as (forwarder, client):
        budget = RedisSendBudget(client, namespace=namespace, clock=clock, monotonic=monotonic)
        assert await budget.take(7, RATE) is None
        await forwarder.cut()
        with caplog.at_level(logging.WARNING, logger="bot.redis_budget"):
            # Sends go on, paced by the process: chat 7 has a fresh bucket of 3 here.
            assert await takes(Subject(budget, clock), 7, 3) == [None, None, None]
            assert is_degraded(budget)
            assert refused(await budget.take(7, RATE), "chat", 1.1 - 3 * STEP)
            await budget.hold(8, 20)  # remembered locally while Redis is away
            assert await budget.wait_hint(8) == pytest.approx(20)
            await forwarder.start()  # same port
            monotonic.advance(RETRY_AFTER_S)
            clock.advance(1.1)
            assert await budget.take(9, RATE) is None
            assert not is_degraded(budget)
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 2, warnings  # one when it failed, one when it came back
        assert "unreachable" in warnings[0] and "again" in warnings[1]
        # Back on Redis: chat 7's Redis bucket (one token used before the cut) is shared again.
        assert await budget.wait_hint(7) == 0
