"""A replica that only campaigns:
``python -m tests.leader_process URL NAMESPACE [CHECK RETRY [IDLE_SESSION_TIMEOUT]]``.

Prints ``leading <backend pid>`` when it wins and ``standby`` when it starts, then runs until
killed. Tests and ``bench/leader.py`` kill it (SIGKILL, SIGSTOP) to measure takeovers.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Final

from bot.leader import CHECK_INTERVAL_S, IDLE_SESSION_TIMEOUT, RETRY_INTERVAL_S, PostgresElector

ROOT: Final = Path(__file__).resolve().parent.parent


async def spawn_leader(
    url: str, namespace: str, *extra: str, quiet: bool = False
) -> tuple[asyncio.subprocess.Process, int]:
    """Start this module as a separate process and wait (30 s at most) until it leads; the
    process and its lock session's backend pid. `extra`: CHECK RETRY [IDLE_SESSION_TIMEOUT]."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.leader_process",
        url,
        namespace,
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL if quiet else None,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (line := (await child.stdout.readline()).decode()).startswith("leading"):
                if not line:
                    raise RuntimeError("the leader process exited before leading")
    except BaseException:
        child.kill()
        await child.wait()
        raise
    return child, int(line.split()[1])


async def main(url: str, namespace: str, check: float, retry: float, idle: str) -> None:
    elector = PostgresElector(
        url,
        namespace=namespace,
        check_interval=check,
        retry_interval=retry,
        idle_session_timeout=idle,
    )
    await elector.start()
    print("standby", flush=True)
    await elector.wait_until_leader()
    print(f"leading {elector.backend_pid}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    check = float(arguments[2]) if len(arguments) > 2 else CHECK_INTERVAL_S
    retry = float(arguments[3]) if len(arguments) > 3 else RETRY_INTERVAL_S
    idle = arguments[4] if len(arguments) > 4 else IDLE_SESSION_TIMEOUT
    asyncio.run(main(arguments[0], arguments[1], check, retry, idle))
