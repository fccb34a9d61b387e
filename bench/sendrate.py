"""How close does the dispatcher get to plain PTB? ``python -m bench.sendrate``.

Issue 11 item 4: the dispatcher's send rate should be ≥ 90 % of plain PTB ``send_message``
at the same concurrency, in the same run. For each concurrency, in one invocation and
alternating which goes first:

* **plain**: ``concurrency`` coroutines call ``bot.send_message`` for N distinct chats (the
  reminder's text and keyboard), nothing else;
* **dispatcher**: N reminders due at once in a fresh copy of one SQLite database (the
  benchmark population's loader), one ``Dispatcher.tick`` with ``max_concurrency`` =
  concurrency: materialise, claim, last-moment check, send, record.

Both use the bot ``build_app`` makes (same HTTP pool, no rate limiter) against the fake Bot
API in its own process (``bench/fake_remote.py``), a fresh one per run. msg/s is messages
accepted by the fake over the wall time from the first call to the last answer: the tick's
whole wall time for the dispatcher (its database work included). ``--profile C`` writes a
cProfile of one dispatcher run at concurrency C to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from telegram.constants import ParseMode

from bench.fake_remote import TOKEN, RemoteFakeApi
from bench.population import chat_id
from bench.scenarios import (
    SEND_DUE,
    Context,
    _production_dispatcher,
    _send_database,
    _stop,
    fresh_copy,
    services_of,
    settings_for,
)
from bot.app import build_app
from bot.clock import FakeClock
from bot.keyboards import reminder_keyboard

CONCURRENCIES: Final = (4, 8, 16, 32)
RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"


async def plain(path: Path, count: int, concurrency: int, latency: float = 0.0) -> dict[str, Any]:
    """``concurrency`` coroutines sending the reminder text with PTB, nothing else."""
    async with RemoteFakeApi(latency=latency) as api:
        chats = [chat_id(i) for i in range(count)]
        await api.add_chats(chats)
        application = build_app(
            settings_for(path, api),
            token=TOKEN,
            clock=FakeClock(SEND_DUE),
            rate_limit=False,
            dispatch=False,
        )
        await application.initialize()
        try:
            content = services_of(application).content
            kind = content.reminder_kinds[-1].kind  # what _send_database makes due
            text = content.render_reminder(kind, None)
            keyboard = reminder_keyboard(content, 1, 10)
            bot = application.bot
            queue = iter(chats)

            async def worker() -> None:
                for chat in queue:
                    await bot.send_message(
                        chat, text, parse_mode=ParseMode.HTML, reply_markup=keyboard
                    )

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            accepted = (await api.report()).count(200)
        finally:
            await application.shutdown()
    return {"sent": accepted, "wall_s": elapsed, "msg_per_s": accepted / elapsed}


async def dispatcher(
    path: Path,
    count: int,
    concurrency: int,
    profile: Path | None = None,
    latency: float = 0.0,
) -> dict[str, Any]:
    """One production Dispatcher tick sending ``count`` due reminders."""
    async with RemoteFakeApi(latency=latency) as api:
        await api.add_chats([chat_id(i) for i in range(count)])
        application, tick_dispatcher, store = await _production_dispatcher(
            settings_for(path, api), FakeClock(SEND_DUE), rate_limit=False
        )
        tick_dispatcher.max_concurrency = concurrency
        profiler = cProfile.Profile() if profile is not None else None
        try:
            if profiler is not None:
                profiler.enable()
            started = time.perf_counter()
            report = await tick_dispatcher.tick()
            elapsed = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
            accepted = (await api.report()).count(200)
        finally:
            await _stop(application)
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    if report.sent != count:
        raise AssertionError(f"expected {count} sent, got {report.summary()}")
    return {
        "sent": accepted,
        "wall_s": elapsed,
        "msg_per_s": accepted / elapsed,
        "store_s": {name: round(seconds, 3) for name, seconds in store.seconds.items()},
        "store_calls": dict(store.calls),
    }


async def run(
    count: int,
    concurrencies: Sequence[int],
    rounds: int,
    profile: int | None,
    latency: float = 0.0,
) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sleepbot-sendrate-"))
    try:
        return await _run_in(workdir, count, concurrencies, rounds, profile, latency)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _run_in(
    workdir: Path,
    count: int,
    concurrencies: Sequence[int],
    rounds: int,
    profile: int | None,
    latency: float,
) -> int:
    pristine = await _send_database(Context(workdir=workdir, quick=False), "sendrate", count)
    copy = workdir / "run.sqlite3"
    rates: dict[tuple[str, int], list[float]] = {}
    print(
        f"{count:,} messages per run, {rounds} round(s), fake Bot API in its own process, "
        f"answering {latency * 1000:g} ms after each request"
    )
    for round_number in range(rounds):
        for concurrency in concurrencies:
            order = ("plain", "dispatcher") if round_number % 2 == 0 else ("dispatcher", "plain")
            for mode in order:
                fresh_copy(pristine, copy)
                if mode == "plain":
                    result = await plain(copy, count, concurrency, latency)
                else:
                    result = await dispatcher(copy, count, concurrency, latency=latency)
                rates.setdefault((mode, concurrency), []).append(result["msg_per_s"])
                extra = ""
                if "store_s" in result:
                    extra = f" store s {result['store_s']}, calls {result['store_calls']}"
                print(
                    f"  round {round_number + 1} c={concurrency:2} {mode:10} "
                    f"{result['msg_per_s']:6.0f} msg/s ({result['wall_s']:.2f} s){extra}",
                    flush=True,
                )
    print("\n| concurrency | plain PTB msg/s | dispatcher msg/s | dispatcher / plain |")
    print("| ---: | ---: | ---: | ---: |")
    for concurrency in concurrencies:
        base = statistics.median(rates[("plain", concurrency)])
        ours = statistics.median(rates[("dispatcher", concurrency)])
        print(f"| {concurrency} | {base:.0f} | {ours:.0f} | {ours / base:.0%} |")
    if profile is not None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        target = RESULTS_DIR / f"sendrate-c{profile}.prof"
        fresh_copy(pristine, copy)
        await dispatcher(copy, count, profile, target, latency)
        print(f"\nprofile of one dispatcher run at concurrency {profile}: {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sendrate", description=__doc__)
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCIES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=int, metavar="C", help="also profile concurrency C")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="the fake answers this long after each request, as api.telegram.org's round "
        "trip would (0: localhost, where the bot's CPU per message decides the rate)",
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    return asyncio.run(
        run(args.messages, args.concurrency, args.rounds, args.profile, args.latency_ms / 1000)
    )


if __name__ == "__main__":
    if not __package__:
        # Run as a script (``PYTHONPATH=/work/main python bench/sendrate.py``, to measure
        # another checkout's dispatcher): bench/ itself must not shadow anything.
        sys.path.pop(0)
    sys.exit(main())
