"""How long until a standby sends the reminders when the leading replica dies?

A child process (``tests/leader_process.py``) wins the PostgreSQL advisory lock with the
production intervals (check 2 s, retry 2 s); this process stands by with the same intervals.
Then the leader dies in one of three ways and the time from the blow to the standby holding
the lock is measured:

* ``sigkill``: ``kill -9`` on this host (the kernel closes the socket, the server sees EOF);
* ``terminate``: ``pg_terminate_backend`` (the database side kills the session);
* ``sigstop``: the process is frozen, its socket stays open (only ``idle_session_timeout``,
  10 s, frees the lock).

A vanished host (no FIN ever sent) cannot be staged without root here; the server's TCP
keepalives (5 s idle + 3 × 2 s probes = 11 s) bound it, plus one 2 s retry.

    TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test python -m bench.leader
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import time
import uuid
from typing import Final

from sqlalchemy import text

from bot.leader import PostgresElector
from bot.storage import create_engine
from tests.leader_process import spawn_leader

BOUND_S: Final = 15.0
WAYS: Final = ("sigkill", "terminate", "sigstop")


async def one_takeover(url: str, way: str) -> float:
    namespace = f"bench-{uuid.uuid4().hex}"
    child, pid = await spawn_leader(url, namespace, quiet=True)
    standby = PostgresElector(url, namespace=namespace)
    try:
        await standby.start()
        # A standby that has tried and failed at least once, hit at a random point of its
        # 2 s retry cycle (and of the leader's 2 s check cycle).
        await asyncio.sleep(1.0 + random.uniform(0, 2))  # timing, not secrets
        if standby.is_leader:
            raise RuntimeError("two leaders")
        start = time.monotonic()
        if way == "sigkill":
            child.send_signal(signal.SIGKILL)
        elif way == "sigstop":
            child.send_signal(signal.SIGSTOP)
        else:
            engine = create_engine(url)
            async with engine.begin() as connection:
                await connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            await engine.dispose()
        async with asyncio.timeout(BOUND_S * 2):
            await standby.wait_until_leader()
        return time.monotonic() - start
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGCONT)
            child.kill()
        await child.wait()
        await standby.stop()


async def run(url: str, repeats: int) -> int:
    print(f"takeover time, {repeats} runs each (bound {BOUND_S:g} s)\n")
    print("| how the leader died | min | median | max | within bound |")
    print("| --- | --: | --: | --: | --- |")
    for way in WAYS:
        times = [await one_takeover(url, way) for _ in range(repeats)]
        ok = "✓" if max(times) <= BOUND_S else "✗"
        print(
            f"| {way} | {min(times):.2f} s | {statistics.median(times):.2f} s "
            f"| {max(times):.2f} s | {ok} |"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        print("set TEST_DATABASE_URL to a PostgreSQL URL", file=sys.stderr)
        return 2
    return asyncio.run(run(url, args.repeats))


if __name__ == "__main__":
    sys.exit(main())
