"""One elected reminder sender: PostgreSQL's advisory lock, takeovers, and ``leading()``."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import pytest
from sqlalchemy import text

from bot.leader import (
    RETRY_INTERVAL_S,
    Elector,
    LeadershipLost,
    LocalElector,
    PostgresElector,
    elector_for,
    lock_key,
)
from bot.storage import create_engine
from tests.leader_process import spawn_leader
from tests.pg import require_postgres

FAST_S: Final = 0.2  # check and retry intervals in these tests (production: 2 s)
TAKEOVER_BOUND_S: Final = 15.0  # the bound


class ManualElector(Elector):
    """Leadership set by hand, to test ``leading()`` without a database."""

    async def start(self) -> None:
        self._set_leader(True)

    async def stop(self) -> None:
        self._set_leader(False)


async def within(seconds: float, awaitable: object) -> float:
    """Await `awaitable` (a coroutine) with a bound; the seconds it took."""
    start = time.monotonic()
    async with asyncio.timeout(seconds):
        await awaitable  # type: ignore[misc]
    return time.monotonic() - start


async def terminate(url: str, pid: int) -> None:
    """Kill a session from the server side, as a failover or an operator would."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            killed = await connection.scalar(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
            )
        assert killed
    finally:
        await engine.dispose()


@asynccontextmanager
async def electors(count: int) -> AsyncIterator[list[PostgresElector]]:
    url = require_postgres()
    namespace = f"test-{uuid.uuid4().hex}"
    started = [
        PostgresElector(url, namespace=namespace, check_interval=FAST_S, retry_interval=FAST_S)
        for _ in range(count)
    ]
    for elector in started:
        await elector.start()
    try:
        yield started
    finally:
        for elector in started:
            await elector.stop()


async def the_leader(candidates: list[PostgresElector]) -> PostgresElector:
    done, pending = await asyncio.wait(
        [asyncio.create_task(e.wait_until_leader()) for e in candidates],
        timeout=TAKEOVER_BOUND_S,
        return_when=asyncio.FIRST_COMPLETED,
    )
    for task in pending:
        task.cancel()
    assert done, "nobody became the leader"
    leaders = [e for e in candidates if e.is_leader]
    assert len(leaders) == 1
    return leaders[0]


def dispatching(elector: Elector) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A stand-in dispatcher that runs forever inside ``elector.leading()``; the event is set
    once it is inside."""
    entered = asyncio.Event()

    async def dispatcher() -> None:
        async with elector.leading():
            entered.set()
            await asyncio.Event().wait()

    return asyncio.create_task(dispatcher()), entered


# --- without a database ---------------------------------------------------------------------


def test_sqlite_has_one_process_which_always_leads() -> None:
    elector = elector_for("sqlite+aiosqlite:///./data/x.sqlite3", namespace="1")
    assert isinstance(elector, LocalElector)

    async def scene() -> None:
        await elector.start()
        assert elector.is_leader and elector.role() == "single"

    asyncio.run(scene())


def test_the_lock_key_is_stable_per_bot_and_fits_a_bigint() -> None:
    assert lock_key("123") == lock_key("123") != lock_key("124")
    assert -(2**63) <= lock_key("123") < 2**63


async def test_leading_waits_for_leadership_and_cancels_the_block_when_it_is_lost() -> None:
    elector = ManualElector()
    entered = asyncio.Event()
    outcome: list[str] = []

    async def dispatcher() -> None:
        try:
            async with elector.leading():
                entered.set()
                await asyncio.Event().wait()  # ticks forever
        except LeadershipLost:
            outcome.append("lost")

    task = asyncio.create_task(dispatcher())
    await asyncio.sleep(0)
    assert not entered.is_set()  # a standby does not dispatch
    await elector.start()
    await within(1, entered.wait())
    await elector.stop()
    await within(1, task)
    assert outcome == ["lost"]
    assert elector.role() == "standby"


async def test_an_outside_cancellation_is_not_mistaken_for_lost_leadership() -> None:
    elector = ManualElector()
    await elector.start()
    task, entered = dispatching(elector)
    await within(1, entered.wait())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert elector.is_leader


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
async def test_of_two_electors_exactly_one_leads_and_keeps_leading() -> None:
    async with electors(2) as pair:
        leader = await the_leader(pair)
        standby = next(e for e in pair if e is not leader)
        # Several check and retry rounds later, still one leader, the same one.
        await asyncio.sleep(1.0)
        assert leader.is_leader and not standby.is_leader
        assert (leader.role(), standby.role()) == ("leader", "standby")


@pytest.mark.postgres
async def test_when_the_leaders_connection_is_killed_the_standby_takes_over() -> None:
    url = require_postgres()
    async with electors(2) as pair:
        leader = await the_leader(pair)
        standby = next(e for e in pair if e is not leader)
        assert leader.backend_pid is not None
        await terminate(url, leader.backend_pid)
        took = await within(TAKEOVER_BOUND_S, standby.wait_until_leader())
        await within(TAKEOVER_BOUND_S, leader.wait_until_standby())
        print(f"takeover after pg_terminate_backend: {took:.2f} s")
        assert standby.is_leader and not leader.is_leader
        # The old leader reconnects as a standby and takes over in turn when needed.
        await standby.stop()
        await within(TAKEOVER_BOUND_S, leader.wait_until_leader())


@pytest.mark.postgres
async def test_a_leader_that_stops_hands_over_at_once() -> None:
    async with electors(2) as pair:
        leader = await the_leader(pair)
        standby = next(e for e in pair if e is not leader)
        await leader.stop()
        took = await within(TAKEOVER_BOUND_S, standby.wait_until_leader())
        assert took < 1.0  # one retry interval (0.2 s) and a round trip


@pytest.mark.postgres
async def test_the_leading_block_ends_with_leadership_lost_when_the_session_dies() -> None:
    url = require_postgres()
    async with electors(1) as (elector,):
        task, entered = dispatching(elector)
        await within(TAKEOVER_BOUND_S, entered.wait())
        assert elector.backend_pid is not None
        await terminate(url, elector.backend_pid)
        with pytest.raises(LeadershipLost):
            await within(TAKEOVER_BOUND_S, task)
        # Alone, it wins the lock back on a new session.
        await within(TAKEOVER_BOUND_S, elector.wait_until_leader())


@asynccontextmanager
async def standing_by(
    url: str, namespace: str, interval: float = RETRY_INTERVAL_S
) -> AsyncIterator[Elector]:
    """A standby in this process; `interval` is both its check and its retry interval."""
    standby = PostgresElector(
        url, namespace=namespace, check_interval=interval, retry_interval=interval
    )
    await standby.start()
    try:
        yield standby
    finally:
        await standby.stop()


@pytest.mark.postgres
async def test_a_sigkilled_leader_process_is_replaced_within_the_bound() -> None:
    """A separate process leads with the default intervals; SIGKILL it and time the takeover."""
    url, namespace = require_postgres(), f"test-{uuid.uuid4().hex}"
    child, _ = await spawn_leader(url, namespace)
    try:
        async with standing_by(url, namespace) as standby:  # default intervals: 2 s
            await asyncio.sleep(0.5)  # not to synchronise: a standby must stay one
            assert not standby.is_leader
            killed_at = time.monotonic()
            child.send_signal(signal.SIGKILL)
            await within(TAKEOVER_BOUND_S, standby.wait_until_leader())
            took = time.monotonic() - killed_at
            print(f"takeover after SIGKILL: {took:.2f} s")
            assert took <= 2.0 + 1.0  # the retry interval, plus a loaded machine's slack
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


@pytest.mark.postgres
async def test_a_frozen_leader_loses_the_lock_to_idle_session_timeout() -> None:
    """SIGSTOP: the process lives and its socket stays open, but its session goes quiet."""
    url, namespace = require_postgres(), f"test-{uuid.uuid4().hex}"
    child, _ = await spawn_leader(url, namespace, "0.2", "0.2", "1s")
    try:
        async with standing_by(url, namespace, FAST_S) as s:
            frozen_at = time.monotonic()
            child.send_signal(signal.SIGSTOP)
            await within(TAKEOVER_BOUND_S, s.wait_until_leader())
            took = time.monotonic() - frozen_at
            print(f"takeover after SIGSTOP with idle_session_timeout=1s: {took:.2f} s")
            # Up to 1 s of timeout counted from the leader's last check, plus one retry.
            assert took <= 1.0 + FAST_S + 1.0
    finally:
        child.send_signal(signal.SIGCONT)
        child.kill()
        await child.wait()
