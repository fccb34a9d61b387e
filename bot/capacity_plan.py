"""``sleepbot capacity``: will the coming hours fit in Telegram's cap? Read-only, in seconds.

Reads the schedule as counts per kind and minute (bot/storage/send_load.py, one aggregate
query), then plans it with bot/capacity.py twice, as the dispatcher sends today (first come,
first served) and levelled within content's send windows, at the free rate
(SEND_RATE_PER_SECOND, at most 30), expiring after REMINDER_GRACE_MINUTES, and prints: the load
per hour against the rate, the worst minutes, projected lateness and expiries both ways, and
one verdict line. With ALLOW_PAID_BROADCAST and a paid lane (SEND_RATE_PER_SECOND above 30, the
total) it also projects paid broadcasting for the overflow only, as the dispatcher sends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.capacity import (
    NO_WINDOW,
    PAID_BROADCAST_RATE,
    KindFigures,
    Leveller,
    Plan,
    Reminder,
    TokenBudget,
    Window,
    figures,
)
from bot.config import Settings
from bot.content import Content
from bot.storage.dialects import create_read_only_engine
from bot.storage.send_load import MinuteLoad, read_send_load

EXIT_OVER_CAPACITY = 1
PROJECTION_NAMES = ("as_today", "levelled", "paid")  # metric labels, in projection order

log = logging.getLogger(__name__)


class CapacityUnavailable(Exception):
    """The schedule cannot be read; the message is one line for the operator."""


@dataclass(frozen=True)
class Projection:
    label: str
    plan: Plan
    figures: dict[str, KindFigures]

    @property
    def expired(self) -> int:
        return self.plan.expired_count

    @property
    def outside_window(self) -> int:
        return sum(f.outside_window for f in self.figures.values())


@dataclass(frozen=True)
class CapacityReport:
    start: datetime
    hours: int
    rate: float
    grace_minutes: int
    loads: list[MinuteLoad]
    projections: list[Projection]
    paid_sends: int | None  # None: ALLOW_PAID_BROADCAST is off


async def read_loads(settings: Settings, start: datetime, hours: int) -> list[MinuteLoad]:
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        engine = create_read_only_engine(settings.database_url)
    except FileNotFoundError:
        raise CapacityUnavailable(
            f"no database at {where} yet: `sleepbot run` creates it on its first start"
        ) from None
    try:
        return await read_send_load(engine, start, start + timedelta(hours=hours))
    except (SQLAlchemyError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CapacityUnavailable(f"cannot read the database {where}: {reason}") from error
    finally:
        await engine.dispose()


def windows_from(content: Content) -> dict[str, Window]:
    """Every scheduled kind's send window from content (``Content.send_windows``: the nightly
    reminders' and the morning check-in's and weekly chart's), so the dispatcher and
    `sleepbot capacity` level all of them the same way."""
    return {
        kind: Window.minutes(before, after)
        for kind, (before, after) in content.send_windows().items()
    }


def project(
    loads: Sequence[MinuteLoad],
    windows: dict[str, Window],
    *,
    start: datetime,
    hours: int,
    rate: float,
    grace_minutes: int,
    allow_paid_broadcast: bool,
    paid_rate: float = PAID_BROADCAST_RATE,
) -> CapacityReport:
    """Plan the counted load without and with levelling (and paid, when allowed). ``rate`` is
    the free rate; ``paid_rate`` the total with the paid lane (SEND_RATE_PER_SECOND)."""
    reminders = [
        Reminder(None, load.kind, load.minute * 60, windows.get(load.kind, NO_WINDOW), load.count)
        for load in loads
    ]
    grace = grace_minutes * 60
    budget = TokenBudget(rate)
    runs = [
        ("as today (first come, first served)", Leveller(budget, grace, levelled=False)),
        ("levelled within the send windows", Leveller(budget, grace)),
    ]
    if allow_paid_broadcast:
        paid = TokenBudget(max(paid_rate, rate))
        runs.append(("levelled, paid broadcast", Leveller(budget, grace, paid=paid)))
    projections = []
    for label, leveller in runs:
        plan = leveller.plan(reminders)
        projections.append(Projection(label, plan, figures(plan)))
    sends = projections[-1].plan.paid if allow_paid_broadcast else None
    return CapacityReport(start, hours, rate, grace_minutes, list(loads), projections, sends)


def _clock(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def render(report: CapacityReport) -> str:
    per_minute: Counter[int] = Counter()
    per_kind: Counter[str] = Counter()
    for load in report.loads:
        per_minute[load.minute] += load.count
        per_kind[load.kind] += load.count
    total = sum(per_kind.values())
    per_minute_rate = report.rate * 60
    capacity = report.rate * report.hours * 3600
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(per_kind.items()))
    lines = [
        f"next {report.hours} h from {report.start:%Y-%m-%d %H:%M} UTC: {total:,} messages"
        + (f" ({kinds})" if kinds else ""),
        f"rate {report.rate:g} msg/s = {per_minute_rate:,.0f} a minute = {capacity:,.0f} in "
        f"{report.hours} h; the load is {total / capacity:.0%} of that",
        "",
        "hour (UTC)        messages  busiest minute  minutes over the rate",
    ]
    first_minute = int(report.start.timestamp()) // 60
    for hour in range(report.hours):
        minutes = range(first_minute + hour * 60, first_minute + (hour + 1) * 60)
        loads = [per_minute[m] for m in minutes]
        over = sum(1 for load in loads if load > per_minute_rate)
        lines.append(f"{_clock(minutes[0])}  {sum(loads):>9,}  {max(loads):>14,}  {over:>21}")
    lines += ["", "worst minutes (UTC)  messages  x the rate  time to send"]
    for minute, count in sorted(per_minute.items(), key=lambda item: (-item[1], item[0]))[:5]:
        lines.append(
            f"{_clock(minute)}  {count:>9,}  {count / per_minute_rate:>10.1f}  "
            f"{_duration(count / report.rate):>12}"
        )
    lines += [
        "",
        "projection (minutes)                      late p99  late max  early max  "
        "after window   expired",
    ]
    for projection in report.projections:
        values = list(projection.figures.values())
        late_p99 = max((f.lateness_p99 for f in values), default=0) / 60
        late_max = max((f.lateness_max for f in values), default=0) / 60
        early_max = max((f.earliness_max for f in values), default=0) / 60
        lines.append(
            f"{projection.label:<40}  {late_p99:>8.1f}  {late_max:>8.1f}  {early_max:>9.1f}  "
            f"{projection.outside_window:>12,}  {projection.expired:>8,}"
        )
    lines += ["", verdict(report)]
    return "\n".join(lines)


def over_capacity(report: CapacityReport) -> bool:
    """Something would expire even levelled (and paid, when allowed)."""
    return report.projections[-1].expired > 0


def verdict(report: CapacityReport) -> str:
    today, levelled = report.projections[0], report.projections[1]
    if report.paid_sends is not None and levelled.expired and not report.projections[-1].expired:
        return (
            f"verdict: OVER THE FREE RATE, covered by paid broadcast: {levelled.expired:,} "
            f"reminders would expire at {report.rate:g} msg/s; with ALLOW_PAID_BROADCAST "
            f"{report.paid_sends:,} reminders go as paid broadcasts, the overflow only (0.1 "
            "Telegram Stars each); the rest stay free"
        )
    if over_capacity(report):
        return (
            f"verdict: OVER CAPACITY: {levelled.expired:,} reminders would expire even levelled "
            f"({today.expired:,} as today); the dispatcher will take that many out by "
            "priority instead (meal ideas first, merged into the exercise note where they can "
            "be, then dropped; wind-downs last); set ALLOW_PAID_BROADCAST=true to send them as "
            "paid broadcasts"
        )
    if levelled.outside_window:
        return (
            f"verdict: TIGHT: nothing expires, but {levelled.outside_window:,} reminders go out "
            f"after their send window even levelled ({today.expired:,} would expire as today)"
        )
    return (
        "verdict: OK: every reminder goes out within its send window "
        f"(as today: {today.outside_window:,} after their window, {today.expired:,} expired)"
    )


@dataclass(frozen=True)
class CapacityFigures:
    """What the metrics endpoint shows of one projection (plain numbers, no planner types)."""

    messages: int
    busiest_minute: int
    expired: Mapping[str, int]  # by PROJECTION_NAMES
    over_capacity: bool


def figures_of(report: CapacityReport) -> CapacityFigures:
    per_minute: Counter[int] = Counter()
    for load in report.loads:
        per_minute[load.minute] += load.count
    return CapacityFigures(
        messages=per_minute.total(),
        busiest_minute=max(per_minute.values(), default=0),
        expired={
            name: projection.expired
            for name, projection in zip(PROJECTION_NAMES, report.projections, strict=False)
        },
        over_capacity=over_capacity(report),
    )


@dataclass(frozen=True)
class CapacityWatch:
    """``sleepbot capacity`` run by the sender itself, once a day: the verdict in the log (a
    WARNING when the next hours are over capacity, so the operator hears before it happens)
    and its figures for /metrics."""

    loads: Callable[[datetime, datetime], Awaitable[list[MinuteLoad]]]
    windows: Mapping[str, Window]
    rate: float
    grace_minutes: int
    allow_paid_broadcast: bool
    paid_rate: float = PAID_BROADCAST_RATE
    report_to: Callable[[CapacityFigures], None] | None = None
    hours: int = 24

    async def check(self, now: datetime) -> CapacityReport:
        loads = await self.loads(now, now + timedelta(hours=self.hours))
        # Planning a day is a second or two of CPU at a million people: off the event loop.
        report = await asyncio.to_thread(
            project,
            loads,
            dict(self.windows),
            start=now,
            hours=self.hours,
            rate=self.rate,
            grace_minutes=self.grace_minutes,
            allow_paid_broadcast=self.allow_paid_broadcast,
            paid_rate=self.paid_rate,
        )
        line = verdict(report)
        if over_capacity(report):
            log.warning(
                "capacity, next %d h: %s (`sleepbot capacity` for detail)", self.hours, line
            )
        else:
            log.info("capacity, next %d h: %s", self.hours, line)
        if self.report_to is not None:
            self.report_to(figures_of(report))
        return report
