"""The real dispatcher through a simulated day: ``python -m bench.dispatch_day [--people 2000]
[--rate 0.6] [--hours 24] [--paid] [--only levelled,paid]``.

bench/day.py models when reminders *can* go out under the cap; this runs the dispatcher
itself — materialise, levelling, claim, last-moment check, record, on a real SQLite database —
on an injected clock, with a stand-in Bot whose sends consume simulated time at ``--rate``
messages a second (one send per 1/rate seconds, in order; nothing else is simulated). The
same population (bench/population.py) runs twice in one process, side by side:

* ``current``   the dispatcher without send windows (as before levelling);
* ``levelled``  the dispatcher with content's send windows, planning at ``--rate``;
* ``paid``      (with ``--paid``) levelled with ALLOW_PAID_BROADCAST: no drops, and a paid lane
  beside the free one at Telegram's 1,000 msg/s scaled like the population (``--paid-rate``,
  default (1000 - 30) x rate / 30: 19.4 msg/s at 0.6). The stand-in applies the rate
  limiter's lane rule (``bot.ratelimit.may_go_paid``) to the dispatcher's ``SendOptions``:
  a send goes paid only when its ``paid_after`` has come and the free lane's next slot is
  later; the table counts the paid sends per kind. The stand-in serialises sends in the order
  they are made, so a free send waiting for its slot also holds back a paid one made after it
  (FairRateLimiter lets the paid one pass): paid throughput and lateness are pessimistic.

The population scales with the rate: 2,000 people at 0.6 msg/s is the load shape of 100,000
at 30 msg/s (each clump a fiftieth, sent fifty times slower), in a fiftieth of the database
work; 10,000 and 20,000 people at 0.6 msg/s stand for 500k and 1M.
Per kind: how many were sent, p50/p99/max lateness and earliness in minutes (from the
moment the stand-in accepted the send to the reminder's intended minute), sent after the
window, expired (at the claim, or already too late when it was materialised), merged and
dropped (the overload policy b and c, levelled run only; a merged meal idea was sent inside the
person's exercise note) — of the reminders due within the simulated hours (the
last tick may send on past them; those sends count, with their lateness).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final, cast

from telegram import Bot

from bench.day import T0
from bench.population import populate
from bot.capacity import MERGED
from bot.capacity_plan import windows_from
from bot.clock import FakeClock
from bot.content import default_content_dir, load_content
from bot.dispatch import Dispatcher
from bot.ratelimit import SendOptions, Withdrawn, may_go_paid
from bot.storage import open_store

TICK: Final = timedelta(seconds=5)


class SimulatedBot:
    """Accepts sends one per 1/rate seconds of the injected clock, moving it forward; with a
    ``paid_rate``, also one per 1/paid_rate seconds in a paid lane, for the sends the rate
    limiter's rule would flag (it takes the dispatcher's SendOptions as FairRateLimiter does)."""

    takes_send_options = True  # bot.dispatch: pass SendOptions (the check, the paid limit)

    def __init__(self, clock: FakeClock, rate: float, paid_rate: float = 0.0) -> None:
        self.clock = clock
        self.interval = timedelta(seconds=1 / rate)
        self.paid_interval = timedelta(seconds=1 / paid_rate) if paid_rate > 0 else None
        self.next_free = clock.now()
        self.next_paid = clock.now()
        self.accepted: list[datetime] = []  # message_id - 1 -> when it was accepted
        self.paid: set[int] = set()  # message ids sent as paid broadcasts

    def _lane(self, options: SendOptions) -> tuple[datetime, bool]:
        """When the send leaves, and whether paid: the free slot unless, once its limit has
        come, the free slot is still ahead and the paid one comes sooner."""
        now = self.clock.now()
        free = max(now, self.next_free)
        if self.paid_interval is None or options.paid_after is None:
            return free, False
        paid_from = now + timedelta(seconds=options.paid_after)
        at = max(now, paid_from)
        if not may_go_paid(at.timestamp(), paid_from.timestamp(), (free - at).total_seconds()):
            return free, False
        paid = max(at, self.next_paid)
        return (paid, True) if paid < free else (free, False)

    async def send_message(
        self, chat_id: int, text: str, rate_limit_args: SendOptions | None = None, **_: Any
    ) -> Any:
        options = rate_limit_args or SendOptions()
        slot, paid = self._lane(options)
        if slot > self.clock.now():
            self.clock.set(slot)
        if paid:
            assert self.paid_interval is not None
            self.next_paid = slot + self.paid_interval
        else:
            self.next_free = slot + self.interval
        if options.still_wanted is not None and not await options.still_wanted():
            raise Withdrawn("sendMessage")
        self.accepted.append(slot)
        if paid:
            self.paid.add(len(self.accepted))
            if options.on_paid is not None:
                options.on_paid()
        return SimpleNamespace(message_id=len(self.accepted), chat_id=chat_id)


@dataclass
class Figures:
    sent: int = 0
    expired: int = 0
    dropped: int = 0  # overload policy c (bot/levelling.py)
    merged: int = 0  # overload policy b: a meal idea sent inside the person's exercise note
    stale: int = 0  # more than the grace late before it was even materialised: never sent
    after_window: int = 0
    paid: int = 0  # sent as paid broadcasts
    lateness: list[float] | None = None
    earliness: list[float] | None = None


def _quantile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


class _StaleCounter(logging.Handler):
    """The dispatcher logs each reminder skipped as too late to materialise; count by kind."""

    def __init__(self, end: datetime) -> None:
        super().__init__(logging.WARNING)
        self.end = end
        self.by_kind: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("skipped a stale"):
            args = record.args if isinstance(record.args, tuple) else ()
            kind, due = args[0], args[2]
            if datetime.fromisoformat(str(due)) < self.end:
                self.by_kind[str(kind)] += 1


async def run_day(
    label: str, db: Path, rate: float, hours: int, *, levelled: bool, paid_rate: float = 0.0
) -> tuple[dict[str, Figures], float, Counter[str]]:
    content = load_content(default_content_dir())
    offsets: dict[str, int] = {k.kind: k.default_offset_minutes for k in content.reminder_kinds}
    windows = windows_from(content)
    store = await open_store(f"sqlite+aiosqlite:///{db}", default_offsets=offsets)
    clock = FakeClock(T0)
    bot = SimulatedBot(clock, rate, paid_rate)
    dispatcher = Dispatcher(
        store,
        cast(Bot, bot),
        content,
        clock,
        windows=windows if levelled else None,
        send_rate=rate,
        allow_paid_broadcast=paid_rate > 0,
        tick_every=TICK,
        # The batch the production default (500) is at 30 msg/s, scaled with the rate: a
        # batch takes the same simulated time between two looks at the levelling plan.
        batch_size=max(1, round(500 * rate / 30)),
    )
    end = T0 + timedelta(hours=hours)
    report: Counter[str] = Counter()
    stale = _StaleCounter(end)
    logging.getLogger("bot.dispatch").addHandler(stale)
    started = time.perf_counter()
    try:
        while clock.now() < end:
            clock.advance(TICK)
            tick = await dispatcher.tick()
            report["materialized"] += tick.materialized
            report["released_early"] += tick.released_early
            report["expired"] += tick.expired
            report["skipped_stale"] += tick.skipped_stale
            report["dropped"] += tick.dropped.total()
            report["merged"] += tick.merged
            report["paid"] += tick.paid.total()
    finally:
        await store.close()
        logging.getLogger("bot.dispatch").removeHandler(stale)
    elapsed = time.perf_counter() - started
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT kind, due_at, status, telegram_message_id, last_error FROM deliveries"
        ).fetchall()
    figures: dict[str, Figures] = defaultdict(lambda: Figures(lateness=[], earliness=[]))
    for kind, count in stale.by_kind.items():
        figures[kind].stale += count
    for kind, due_text, status, message_id, reason in rows:
        due = datetime.fromisoformat(due_text).replace(tzinfo=T0.tzinfo)
        if due >= end:  # only what was due within the simulated hours
            continue
        f = figures[kind]
        if status == "expired":
            f.expired += 1
            continue
        if status == "skipped":
            if reason == MERGED:
                f.merged += 1
            else:
                f.dropped += 1
            continue
        if message_id is None:
            continue
        offset = (bot.accepted[message_id - 1] - due).total_seconds()
        f.sent += 1
        f.paid += message_id in bot.paid
        assert f.lateness is not None and f.earliness is not None
        f.lateness.append(max(0.0, offset))
        f.earliness.append(max(0.0, -offset))
        if offset > windows[kind].after:
            f.after_window += 1
    logging.getLogger("bench").info("%s: %.1f s", label, elapsed)
    return dict(figures), elapsed, report


def table(results: Sequence[tuple[str, dict[str, Figures]]]) -> str:
    lines = [
        "| run | kind | sent | late p50 / p99 / max (min) | early p50 / p99 / max (min) "
        "| after window | expired (+ too late to materialise) | merged | dropped | paid |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, figures in results:
        for kind in sorted(figures):
            f = figures[kind]
            late, early = f.lateness or [], f.earliness or []
            lines.append(
                f"| {label} | {kind} | {f.sent:,} | "
                f"{_quantile(late, 0.5) / 60:.1f} / {_quantile(late, 0.99) / 60:.1f} / "
                f"{max(late, default=0) / 60:.1f} | "
                f"{_quantile(early, 0.5) / 60:.1f} / {_quantile(early, 0.99) / 60:.1f} / "
                f"{max(early, default=0) / 60:.1f} | {f.after_window:,} | "
                f"{f.expired + f.stale:,} | {f.merged:,} | {f.dropped:,} | {f.paid:,} |"
            )
    return "\n".join(lines)


async def main_async(
    people: int, rate: float, hours: int, runs: Sequence[str], paid_rate: float
) -> None:
    content = load_content(default_content_dir())
    kinds = [(k.kind, k.default_offset_minutes) for k in content.reminder_kinds]
    results = []
    with tempfile.TemporaryDirectory(prefix="sleepbot-dispatch-day-") as tmp:
        for label in runs:
            levelled = label != "current"
            lane = paid_rate if label == "paid" else 0.0
            db = Path(tmp) / f"{label}.db"
            store = await open_store(f"sqlite+aiosqlite:///{db}", default_offsets=dict(kinds))
            await store.close()
            populate(db, people, kinds, T0)
            figures, elapsed, report = await run_day(
                label, db, rate, hours, levelled=levelled, paid_rate=lane
            )
            print(
                f"{label}: {hours} simulated hours in {elapsed:.1f} s; "
                + ", ".join(f"{name}={count:,}" for name, count in sorted(report.items()))
            )
            results.append((label, figures))
    print()
    print(
        f"{people:,} people, {rate:g} msg/s (the load shape of {people * 30 / rate:,.0f} "
        f"people at 30 msg/s), {hours} h from {T0:%Y-%m-%d %H:%M} UTC, grace 30 min"
        + (f", paid lane {paid_rate:g} msg/s" if "paid" in runs else "")
        + ":"
    )
    print(table(results))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=0.6)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--paid", action="store_true", help="also run with paid broadcast")
    parser.add_argument("--paid-rate", type=float, default=None, help="the paid lane, msg/s")
    parser.add_argument("--only", default=None, help="runs, comma-separated: current,levelled,paid")
    args = parser.parse_args(argv)
    runs = ["current", "levelled"] + (["paid"] if args.paid else [])
    if args.only:
        runs = [run for run in args.only.split(",") if run in ("current", "levelled", "paid")]
    paid_rate = args.paid_rate if args.paid_rate is not None else (1000 - 30) * args.rate / 30
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args.people, args.rate, args.hours, runs, paid_rate))


if __name__ == "__main__":
    main()
