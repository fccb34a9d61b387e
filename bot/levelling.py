"""Which scheduled reminders the dispatcher should release early, and when: the Leveller's plan
turned into release quotas. Pure: no I/O, no clock, no Telegram.

The dispatcher (bot/dispatch.py) asks the database every minute for the coming load (reminders
not yet materialised, per kind and minute, plus deliveries already pending), plans it with
``bot.capacity.Leveller`` at the configured send rate, and keeps the plan's early sends as
quotas: "by second s, n of the meal reminders due at 22:00 should have left". Each tick it
materialises what the quotas say is due, sooner than its time but never before its window
opens, so a clump of reminders is spread over the minutes before it instead of piling up late.

Only sends at least a minute early become quotas. A reminder the plan sends later is
materialised at its time as always, so on a quiet evening levelling changes nothing at all;
and the plan is redone from the database every minute, so a wrong guess costs at most one
minute's releases.

When even levelling cannot carry the coming hour (the plan expires something), the plan also
gives *drop* quotas — explicit instead of expiry by arrival order: as many reminders as would
expire, from the congested stretch, meal ideas first, then exercise notes, wind-downs last,
the soonest due first. A group's quota is acted on when it falls due (``Store.shed``): a meal idea
whose person has an exercise note coming soon after it is merged into that note (overload
policy b, nothing lost), the rest are dropped (policy c); each is recorded as skipped with its
reason, counted and logged.

Everything the plan sees starts at "now": nothing is sent before it, a window that opened in
the past opens now, and what is already due (deliveries pending, a backlog) waits for now but
keeps its own time, so the plan sees it expire ``grace`` after that time — under sustained
overload, that backlog is what tells the plan to drop. Only scheduled reminders go early.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Final

from bot.capacity import DROP_ORDER, NO_WINDOW, Leveller, Plan, Reminder, TokenBudget, Window

MIN_EARLY: Final = 60
"""Levelling moves reminders by whole minutes: a send planned less than this before its time
is left to the normal materialisation at its time (a clump that fits in its own minute, or
nearly, just queues for a few seconds instead of being released early)."""
HORIZON_FACTOR: Final = 2
"""How far ahead the plan looks, in widest windows: a clump borrows seconds up to one window
before it, and the clump after it may have borrowed those already."""


@dataclass(frozen=True, slots=True)
class Load:
    """``count`` messages of ``kind`` due at ``at`` (epoch seconds). ``scheduled``: reminders
    not yet materialised, which may be released early; otherwise pending deliveries."""

    kind: str
    at: int
    count: int
    scheduled: bool = True


@dataclass(frozen=True, slots=True)
class Release:
    """Release ``count`` more of the ``kind`` reminders due in the minute starting at ``at``."""

    kind: str
    at: int
    count: int


class ReleasePlan:
    """Early-release quotas from one plan, consumed as the dispatcher releases reminders."""

    def __init__(
        self,
        planned_at: int,
        quotas: Mapping[tuple[str, int], Sequence[tuple[int, int]]],
        drops: Mapping[tuple[str, int], int] | None = None,
        expiring: int = 0,
    ) -> None:
        self.planned_at = planned_at
        self.expiring = expiring  # what the plan expires even levelled, before any drop
        self._drops = dict(drops or {})
        # (kind, minute start) -> (seconds, cumulative early sends by each second)
        self._quotas = {
            key: ([second for second, _ in pieces], list(accumulate(n for _, n in pieces)))
            for key, pieces in quotas.items()
        }
        self._released: dict[tuple[str, int], int] = {}

    def __bool__(self) -> bool:
        return bool(self._quotas or self._drops)

    @property
    def dropping(self) -> int:
        """Reminders this plan drops (overload policy c), all told."""
        return sum(self._drops.values())

    def drops_due(self, now: int) -> list[Release]:
        """Groups falling due by second ``now`` with reminders to drop; each asked once."""
        due = [
            Release(kind, at, count)
            for (kind, at), count in sorted(self._drops.items(), key=lambda i: (i[0][1], i[0][0]))
            if at <= now and count > 0
        ]
        for release in due:
            self._drops[release.kind, release.at] = 0
        return due

    @property
    def total(self) -> int:
        """Early sends in this plan, all told."""
        return sum(cumulative[-1] for _, cumulative in self._quotas.values())

    def due(self, now: int) -> list[Release]:
        """What should have been released by second ``now`` and was not yet, earliest first."""
        releases = []
        for (kind, at), (seconds, cumulative) in sorted(
            self._quotas.items(), key=lambda item: (item[0][1], item[0][0])
        ):
            if at <= now:  # due anyway: materialised at its time
                continue
            position = bisect_right(seconds, now)
            wanted = cumulative[position - 1] if position else 0
            missing = wanted - self._released.get((kind, at), 0)
            if missing > 0:
                releases.append(Release(kind, at, missing))
        return releases

    def released(self, release: Release) -> None:
        """``release`` was acted on. Counted as asked even when the database found fewer: the
        rest were not releasable (a person's earlier reminder still waiting, or already
        materialised), and asking again every tick would find none either."""
        key = (release.kind, release.at)
        self._released[key] = self._released.get(key, 0) + release.count


def plan_releases(
    loads: Sequence[Load],
    windows: Mapping[str, Window],
    *,
    now: int,
    rate: float,
    grace: int,
) -> ReleasePlan:
    """Level ``loads`` from second ``now`` on and keep the early sends of scheduled reminders."""
    reminders: list[Reminder] = []
    groups: list[tuple[str, int] | None] = []
    for load in loads:
        window = windows.get(load.kind, NO_WINDOW)
        if load.scheduled and load.at > now:
            # A window opening before now opens now: nothing is sent in the past.
            window = Window(min(window.before, load.at - now), window.after)
            groups.append((load.kind, load.at))
        else:
            # Already due: it waits for now and still expires ``grace`` after its own time.
            window = Window(0, window.after)
            groups.append(None)
        reminders.append(Reminder(None, load.kind, load.at, window, load.count))
    if not reminders:
        return ReleasePlan(now, {})
    plan = Leveller(TokenBudget(rate), grace, start=now).plan(reminders)
    drops = _drop_quotas(plan, groups) if plan.expired else {}
    expiring = plan.expired_count
    if drops:
        # Level what is left after the drops: early releases must not take the reminders the
        # plan drops (the soonest groups), which, released, would be pending and beyond reach.
        kept = [
            (replace(reminder, count=reminder.count - drops.get(group, 0)), group)
            if group is not None
            else (reminder, group)
            for reminder, group in zip(reminders, groups, strict=True)
        ]
        reminders = [reminder for reminder, _ in kept if reminder.count > 0]
        groups = [group for reminder, group in kept if reminder.count > 0]
        plan = Leveller(TokenBudget(rate), grace, start=now).plan(reminders)
    quotas: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for index, second, count in zip(
        plan.piece_reminder, plan.piece_second, plan.piece_count, strict=True
    ):
        group = groups[index]
        if group is not None and second <= group[1] - MIN_EARLY:
            quotas.setdefault(group, []).append((second, count))
    return ReleasePlan(now, quotas, drops, expiring)


def _drop_quotas(
    plan: Plan, groups: Sequence[tuple[str, int] | None]
) -> dict[tuple[str, int], int]:
    """Per congested stretch, as many scheduled reminders as would expire in it, by
    ``DROP_ORDER`` (meal ideas first, wind-downs last), the soonest due first: dropping one
    frees a send for one that would otherwise expire, and only the groups falling due before
    the next plan are acted on — quotas on the stretch's latest groups would be planned again
    a minute later, and again, and under sustained overload never carried out (the horizon
    recedes as fast as they approach). Pending deliveries are never dropped here."""
    reminders = plan.reminders
    drops: dict[tuple[str, int], int] = {}
    for first, last, expired, lost in plan.congested:
        members = {plan.piece_reminder[p] for p in range(first, last)} | set(lost)
        candidates = sorted(
            (i for i in members if groups[i] is not None), key=lambda i: reminders[i].intended
        )
        need = expired
        for kind in DROP_ORDER:
            for index in candidates:
                group = groups[index]
                if need == 0:
                    break
                if group is None or reminders[index].kind != kind:
                    continue
                take = min(need, reminders[index].count - drops.get(group, 0))
                if take > 0:
                    drops[group] = drops.get(group, 0) + take
                    need -= take
    return drops


def horizon_seconds(windows: Mapping[str, Window]) -> int:
    """How far ahead the dispatcher reads the load (0: no kind may go early)."""
    widest = max((window.before for window in windows.values()), default=0)
    return HORIZON_FACTOR * widest
