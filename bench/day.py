"""A simulated day of sending: ``python -m bench.day [--sizes 100k 500k 1m] [--rate 30]``.

Every person of the benchmark population (bench/population.py: bedtimes clustered on quarter
hours, people all over the world) gets their three reminders of the 24 hours after the
benchmark's T0, at the instants ``bot.schedule`` computes. The day then runs on a simulated
clock in whole seconds: each second sends what the rate allows (``TokenBudget``), whatever is
still unsent ``--grace`` minutes after its time expires (as the dispatcher expires it). Side by
side, in one run:

* ``current``   the dispatcher as it is: each reminder released at its time, first come first
                served (its claim order), no windows;
* ``levelled``  bot/capacity.py's Leveller with content's send windows;
* ``policy``    levelled plus the overload policy (merge, then drop by priority);
* ``paid``      levelled plus paid broadcast at 1,000 msg/s (only when something expires).

Per kind: p50/p99/max lateness and earliness (minutes), expired, merged, dropped. A model of
the send path (not the real HTTP path: bench/reminders.py measures that), so the figures are
about *when* each reminder can go out under the cap, which is what this benchmark is for.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from bench.population import people, populate
from bot import schedule
from bot.capacity import (
    DROPPED,
    MERGED,
    PAID_BROADCAST_RATE,
    KindFigures,
    Leveller,
    Plan,
    PolicyOutcome,
    Reminder,
    TokenBudget,
    Window,
    apply_overload_policy,
    figures,
)
from bot.content import default_content_dir, load_content
from bot.storage import open_store
from bot.timezones import tzinfo_for

T0: Final = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)  # bench/scenarios.py's population "now"
SIZES: Final = {"100k": 100_000, "500k": 500_000, "1m": 1_000_000}


def day_of_reminders(
    count: int, windows: dict[str, Window], offsets: dict[str, int]
) -> list[Reminder]:
    """Everybody's reminders in the 24 h after T0, at the instants the bot would schedule."""
    kinds = list(offsets.items())
    cache: dict[tuple[object, ...], int] = {}
    reminders = []
    end = int((T0 + timedelta(hours=24)).timestamp())
    for spec in people(count, kinds):
        for (kind, _), offset in zip(kinds, spec.offsets, strict=True):
            key = (spec.timezone, spec.bedtime, spec.weekend_bedtime, offset)
            instant = cache.get(key)
            if instant is None:
                moment = schedule.next_fire_at(
                    bedtime=spec.bedtime,
                    weekend_bedtime=spec.weekend_bedtime,
                    offset_minutes=offset,
                    tz=tzinfo_for(spec.timezone),
                    after=T0,
                )
                instant = cache[key] = int(moment.timestamp())
            if instant <= end:
                reminders.append(Reminder(spec.chat_id, kind, instant, windows[kind]))
    return reminders


def _minutes(seconds: int) -> str:
    return f"{seconds / 60:.1f}"


def _rows(
    label: str, result: dict[str, KindFigures], removed: Counter[tuple[str, str]]
) -> list[str]:
    rows = []
    for kind, f in result.items():
        rows.append(
            f"| {label} | {kind} | {f.total:,} | {_minutes(f.lateness_p50)} | "
            f"{_minutes(f.lateness_p99)} | {_minutes(f.lateness_max)} | "
            f"{_minutes(f.earliness_p50)} | {_minutes(f.earliness_p99)} | "
            f"{_minutes(f.earliness_max)} | {f.outside_window:,} | {f.expired:,} | "
            f"{removed[kind, MERGED]:,} | {removed[kind, DROPPED]:,} |"
        )
    for kind in ("meal", "exercise"):
        if kind not in result and (removed[kind, MERGED] or removed[kind, DROPPED]):
            rows.append(
                f"| {label} | {kind} | 0 | | | | | | | | | {removed[kind, MERGED]:,} | "
                f"{removed[kind, DROPPED]:,} |"
            )
    return rows


def busiest_band(reminders: Sequence[Reminder], hours: int, rate: float) -> str:
    """The ``hours``-long stretch with the most reminders, against what the rate can send."""
    per_minute = Counter(r.intended // 60 for r in reminders)
    first, last = min(per_minute), max(per_minute)
    span = hours * 60
    load = sum(per_minute[m] for m in range(first, first + span))
    best, best_start = load, first
    for start in range(first + 1, last - span + 2):
        load += per_minute[start + span - 1] - per_minute[start - 1]
        if load > best:
            best, best_start = load, start
    capacity = int(rate * span * 60)
    start_at = datetime.fromtimestamp(best_start * 60, UTC).strftime("%H:%M")
    return (
        f"busiest {hours} h (from {start_at} UTC): {best:,} reminders, the rate sends "
        f"{capacity:,} ({best / capacity:.0%})"
    )


def run(sizes: Sequence[str], rate: float, grace_minutes: int) -> str:
    content = load_content(default_content_dir())
    windows: dict[str, Window] = {
        k.kind: Window.minutes(k.window_before_minutes, k.window_after_minutes)
        for k in content.reminder_kinds
    }
    offsets: dict[str, int] = {k.kind: k.default_offset_minutes for k in content.reminder_kinds}
    grace = grace_minutes * 60
    budget = TokenBudget(rate)
    lines = [
        f"# Simulated day: rate {rate:g} msg/s, grace {grace_minutes} min, windows "
        + ", ".join(f"{kind} -{w.before // 60}/+{w.after // 60}" for kind, w in windows.items()),
        "",
    ]
    header = (
        "| run | kind | reminders | late p50 | late p99 | late max | early p50 | early p99 | "
        "early max | after window | expired | merged | dropped |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for size in sizes:
        started = time.perf_counter()
        reminders = day_of_reminders(SIZES[size], windows, offsets)
        built = time.perf_counter() - started
        lines += [
            f"## {size} people: {len(reminders):,} reminders in 24 h "
            f"({len(reminders) / (rate * 86400):.0%} of the day's cap)",
            "",
            busiest_band(reminders, 8, rate),
            "",
            header,
        ]
        timings = [f"built in {built:.1f} s"]
        for label, leveller in (
            ("current", Leveller(budget, grace, levelled=False)),
            ("levelled", Leveller(budget, grace)),
        ):
            started = time.perf_counter()
            plan: Plan = leveller.plan(reminders)
            timings.append(f"{label} {time.perf_counter() - started:.1f} s")
            lines += _rows(label, figures(plan), Counter())
            expired_levelled = plan.expired_count
        outcome: PolicyOutcome | None = None
        if expired_levelled:
            started = time.perf_counter()
            outcome = apply_overload_policy(reminders, Leveller(budget, grace))
            timings.append(
                f"policy {time.perf_counter() - started:.1f} s ({outcome.rounds} rounds)"
            )
            lines += _rows("policy", figures(outcome.plan), outcome.reasons)
            started = time.perf_counter()
            paid = apply_overload_policy(
                reminders,
                Leveller(budget, grace),
                paid=TokenBudget(PAID_BROADCAST_RATE),
            )
            timings.append(f"paid {time.perf_counter() - started:.1f} s")
            lines += _rows("paid", figures(paid.plan), paid.reasons)
            lines += [
                "",
                f"policy: {outcome.merged_people:,} people got one evening message "
                f"({outcome.count(MERGED):,} reminders merged), "
                f"{outcome.count(DROPPED):,} dropped, "
                f"{outcome.plan.expired_count:,} still expired",
                f"paid: {paid.paid_sends:,} sends above {rate:g} msg/s "
                f"(charged in Telegram Stars), {paid.count(MERGED):,} merged, "
                f"{paid.plan.expired_count:,} expired",
            ]
        lines += ["", "timings: " + ", ".join(timings), ""]
        print("\n".join(lines), flush=True)
        lines = []
    return "\n".join(lines)


def capacity_cli(size: str) -> str:
    """``sleepbot capacity`` timed on a database of ``size`` people (bench/population.py)."""
    content = load_content(default_content_dir())
    kinds = [(k.kind, k.default_offset_minutes) for k in content.reminder_kinds]
    with tempfile.TemporaryDirectory(prefix="sleepbot-capacity-") as directory:
        path = Path(directory) / "bot.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"

        async def migrate() -> None:
            store = await open_store(url, default_offsets=dict(kinds))
            await store.close()

        asyncio.run(migrate())
        population = populate(path, SIZES[size], kinds, T0)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "bot", "capacity", "--at", T0.isoformat()],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
    report = (
        f"## sleepbot capacity on {size} people ({population.reminders_scheduled:,} reminders, "
        f"{population.db_mb:.0f} MB SQLite): exit {result.returncode} in {elapsed:.1f} s "
        "(whole process)\n\n```\n" + result.stdout + result.stderr + "```\n"
    )
    print(report, flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.day", description=__doc__)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--rate", type=float, default=30.0, help="messages a second")
    parser.add_argument("--grace", type=int, default=30, help="minutes before a reminder expires")
    parser.add_argument(
        "--capacity",
        choices=list(SIZES),
        help="instead: time `sleepbot capacity` on a database of this many people",
    )
    args = parser.parse_args(argv)
    if args.capacity:
        capacity_cli(args.capacity)
    else:
        run(args.sizes, args.rate, args.grace)


if __name__ == "__main__":
    main()
