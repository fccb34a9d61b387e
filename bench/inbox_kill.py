"""SIGKILL `sleepbot run` with a backlog of queued messages, restart it, count the answers.

Issue 7: with PTB's Updater, 300 queued messages, 50 answered at the kill, the other 250 were
never answered (confirmed to Telegram, held only in memory). Here every update is in the inbox
before it is confirmed. Each run queues the messages at the fake Bot API (in this process),
starts the real `sleepbot run` (a child process, production settings: 30 msg/s), kills it once
everything was received and K answered, restarts it and counts, per message, the answers.

    python -m bench.inbox_kill                    # 300 messages, kills after 1/50/150/250
    python -m bench.inbox_kill --messages 1000 --kill-after 500

"right after an answer" is the worst moment for a duplicate (the answer is out, its update not
yet marked handled); "random" adds a random delay of up to one send interval.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from bot.fake_telegram import FakeBotApi
from tests.botprocess import KillReport, kill_with_backlog

SEND_INTERVAL_S = 1 / 30


async def one_run(messages: int, kill_after: int, jitter_s: float) -> KillReport:
    with tempfile.TemporaryDirectory(prefix="inbox-kill-") as scratch:
        async with FakeBotApi() as api:
            return await kill_with_backlog(
                api, Path(scratch), messages=messages, kill_after=kill_after, jitter_s=jitter_s
            )


async def main_async(messages: int, kill_points: list[int], repeats: int) -> int:
    print(f"{messages} messages from 30 people, SIGKILL, restart (30 msg/s send cap)\n")
    print(
        "| kill after | moment | answered at kill | lost | duplicates | last answer after "
        "restart | inbox after a clean stop |"
    )
    print("| --: | --- | --: | --: | --: | --: | --- |")
    worst = 0
    for kill_after in kill_points:
        for moment, jitter in (("right after an answer", 0.0), ("random", SEND_INTERVAL_S)):
            for _ in range(repeats):
                report = await one_run(messages, kill_after, jitter)
                worst = max(worst, report.lost)
                print(
                    f"| {kill_after} | {moment} | {report.answered_at_kill} | {report.lost} | "
                    f"{report.duplicates} | {report.restart_to_last_answer_s:.1f} s | "
                    f"{report.inbox} |",
                    flush=True,
                )
    return 1 if worst else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--kill-after", type=int, nargs="+", default=[1, 50, 150, 250])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args.messages, args.kill_after, args.repeats))


if __name__ == "__main__":
    sys.exit(main())
