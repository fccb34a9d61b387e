"""`sleepbot run` as a real child process against a fake Bot API served by the caller.

The kill tests (tests/test_inbox_e2e.py) and the benchmark that repeats them
(bench/inbox_kill.py) need a process that can really die: SIGKILL gives it no chance to clean
up, which is the point. The fake Telegram stays in the calling process, so it outlives the bot
and counts every answer across the restart.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from bot.fake_telegram import FakeBotApi
from bot.storage import open_store

REPO: Final = Path(__file__).resolve().parents[1]
START_TIMEOUT_S: Final = 60.0
# "/mechanisms q17" is answered "I don't know the mechanism “q17”": each answer names its message.
_MARKER: Final = re.compile(r"“(q\d+)”")


class BotProcess:
    """One `python -m bot run` child; start it again after a kill to model a restart."""

    def __init__(self, api: FakeBotApi, workdir: Path, **env: str) -> None:
        self.api = api
        self.workdir = workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "LOG_"))},
            "PYTHONPATH": str(REPO),
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'data' / 'bot.sqlite3'}",
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None
        self.runs = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"bot-{self.runs}.log"

    async def start(self) -> None:
        """Start the bot and return once it polls (its first getUpdates reached the fake)."""
        polls_before = len(self.api.calls_to("getUpdates"))
        self.runs += 1
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.workdir,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        assert self.process is not None
        polling = asyncio.ensure_future(
            self.api.wait_for(
                lambda: len(self.api.calls_to("getUpdates")) > polls_before,
                START_TIMEOUT_S,
                what="the bot's first getUpdates",
            )
        )
        exited = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait({polling, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            polling.cancel()
            raise AssertionError(f"sleepbot run exited at start-up:\n{self.log_text()}")
        exited.cancel()
        polling.result()  # raises if the wait timed out

    @property
    def exited(self) -> bool:
        return self.process is None or self.process.returncode is not None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no clean-up of any kind

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109 (a bound per wait)
        assert self.process is not None
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def stop(self) -> None:
        """Best-effort clean-up for tests: SIGTERM, then SIGKILL if it does not go."""
        if self.exited:
            return
        self.terminate()
        try:
            await self.wait(15)
        except TimeoutError:
            self.kill()
            await self.wait(5)

    def log_text(self) -> str:
        return "\n".join(
            (self.workdir / f"bot-{run}.log").read_text(errors="replace")
            for run in range(1, self.runs + 1)
        )


def queue_messages(api: FakeBotApi, count: int, chats: int) -> list[str]:
    """`count` messages from `chats` people, round robin; each answer will name its marker."""
    markers = [f"q{k}" for k in range(count)]
    for k, marker in enumerate(markers):
        api.send_text(7_000_000 + k % chats, f"/mechanisms {marker}")
    return markers


def answers(api: FakeBotApi) -> Counter[str]:
    """How many accepted answers named each marker."""
    counts: Counter[str] = Counter()
    for call in api.calls_to("sendMessage", ok_only=True):
        match = _MARKER.search(str(call.params.get("text", "")))
        if match:
            counts[match.group(1)] += 1
    return counts


@dataclass(frozen=True)
class KillReport:
    messages: int
    answered_at_kill: int
    first_exit_code: int  # -9 after SIGKILL; 0 is a clean stop after SIGTERM
    exit_s: float  # from the signal to the first process's exit
    answered: int  # distinct messages answered in the end
    lost: int
    duplicates: int  # answers beyond the first, over all messages
    restart_to_last_answer_s: float
    inbox: dict[str, int]  # rows per status after the final, clean stop

    def line(self) -> str:
        return (
            f"{self.messages} queued, signalled after {self.answered_at_kill} answers, "
            f"exit code {self.first_exit_code} after {self.exit_s:.2f} s: "
            f"{self.answered} answered, {self.lost} lost, {self.duplicates} duplicate(s), "
            f"last answer {self.restart_to_last_answer_s:.1f} s after the restart; "
            f"inbox after a clean stop: {self.inbox}"
        )


async def kill_with_backlog(
    api: FakeBotApi,
    workdir: Path,
    *,
    messages: int = 300,
    chats: int = 30,
    kill_after: int = 50,
    signal_: Literal["SIGKILL", "SIGTERM"] = "SIGKILL",
    jitter_s: float = 0.0,
    timeout: float = 120.0,  # noqa: ASYNC109 (a bound per wait)
) -> KillReport:
    """Queue `messages` at the fake, start the bot, send it `signal_` once every message has
    been received (confirmed to "Telegram") and `kill_after` answered, restart it, count.

    The signal goes right after an answer was accepted, the worst moment for a duplicate (the
    answer is out, its update not yet marked handled); `jitter_s` delays it by a random
    fraction of that, to hit any moment (bench/inbox_kill.py)."""
    markers = queue_messages(api, messages, chats)
    bot = BotProcess(api, workdir)
    try:
        await bot.start()
        await api.wait_for(
            lambda: api.pending_updates() == 0 and sum(answers(api).values()) >= kill_after,
            timeout,
            what=f"all {messages} received and {kill_after} answered",
        )
        if jitter_s:
            await asyncio.sleep(random.uniform(0, jitter_s))
        signalled = time.monotonic()
        if signal_ == "SIGKILL":
            bot.kill()
        else:
            bot.terminate()
        first_exit_code = await bot.wait()
        exit_s = time.monotonic() - signalled
        answered_at_kill = sum(answers(api).values())
        if answered_at_kill >= messages:
            raise AssertionError("the bot answered everything before the kill: nothing to prove")
        restarted = time.monotonic()
        await bot.start()
        await api.wait_for(
            lambda: set(answers(api)) >= set(markers), timeout, what=f"all {messages} answered"
        )
        last_answer = max(c.at for c in api.calls_to("sendMessage", ok_only=True))
        # A clean stop, then the database itself: nothing may be left waiting in the inbox.
        bot.terminate()
        exit_code = await bot.wait()
    finally:
        await bot.stop()
    assert exit_code == 0, bot.log_text()
    store = await open_store(bot.env["DATABASE_URL"])
    try:
        inbox = await store.inbox.counts()
    finally:
        await store.close()
    counts = answers(api)
    return KillReport(
        messages=messages,
        answered_at_kill=answered_at_kill,
        first_exit_code=first_exit_code,
        exit_s=exit_s,
        answered=sum(1 for m in markers if counts[m] >= 1),
        lost=sum(1 for m in markers if counts[m] == 0),
        duplicates=sum(max(0, n - 1) for n in counts.values()),
        restart_to_last_answer_s=last_answer - restarted,
        inbox=inbox,
    )
