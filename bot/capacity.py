"""Sending within Telegram's cap: send windows, earliest-deadline-first levelling, overload policy.

Telegram lets a bot send about 30 messages a second. Bedtimes cluster on quarter hours, so a
few minutes of the evening hold far more reminders than that rate can send in the minute; the
plain dispatcher sends them in arrival order and the last of a clump come late, or expire after
the grace period. Each reminder kind has a *send window* (content/reminders.toml): it may go out
``before`` seconds early and is on time up to ``after`` seconds late. The Leveller plans sends
second by second so that lateness is spread instead of piled on the busiest minute:

1. **As late as possible, but on time** (a backward pass): every reminder is given the latest
   second at or before its intended time that the rate leaves free, taking first the one whose
   window opens latest. A quiet minute keeps its reminders at their minute; a clump borrows the
   free seconds before it. That second, never earlier than the window opens, is its *release*.
2. **Earliest deadline first** (a forward pass): each second, the budget's sends go to released
   reminders in order of deadline (intended time + ``after``). A person's own reminders keep
   their order: one is released only after that person's previous one has gone. Whatever is
   still unsent ``grace`` after its time expires, as the dispatcher would expire it.

When levelling cannot absorb a day (something would expire), ``apply_overload_policy`` decides,
explicitly and with a count for every reminder touched: (a) paid broadcasts
(``allow_paid_broadcast``, up to 1,000 messages a second, charged in Telegram Stars) when the
operator allowed them; otherwise (b) a person's meal idea and exercise note become one evening
message, then (c) reminders are dropped in priority order: meal idea first, then the exercise
note, the wind-down reminder last.

Pure: no I/O, no clock, no Telegram. Times are whole seconds on one time line (UTC epoch
seconds in practice), so DST never enters here: ``bot.schedule`` already turned every local
bedtime into a UTC instant, and a window is that instant minus/plus absolute seconds.
A reminder with ``person=None`` stands for ``count`` interchangeable reminders of one kind at
one instant (what ``sleepbot capacity`` reads as an aggregate); people's order does not apply.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Final

# Drop order under overload: the first is dropped first. The wind-down reminder, the one most
# about sleep itself, goes last. "evening" is a meal idea and exercise note merged into one.
# The morning check-in and weekly chart ("checkin", "weekly") are levelled within their windows
# (content/diary.toml) but on purpose not here: dropping chooses which *nightly* message a person
# loses, while the check-in is the diary's one question a day and the chart a weekly message
# someone asked for. Dropping a nightly reminder frees a send for them; what a stretch of them
# still cannot carry expires after the grace period, counted, as it would without a policy.
MERGED_KIND: Final = "evening"
DROP_ORDER: Final = ("meal", "exercise", MERGED_KIND, "wind_down")
# Within one instant, a person's reminders are sent in this order (their natural evening order).
KIND_ORDER: Final = ("meal", "exercise", MERGED_KIND, "wind_down")
PAID_BROADCAST_RATE: Final = 1000.0  # Telegram: "up to 1000 messages per second" when paid
PAID_LEAD: Final = 60  # seconds before its window closes that a waiting reminder goes paid

# Reasons, as counted and logged.
EARLY: Final = "sent early, within its window (levelling)"
LATE_IN_WINDOW: Final = "sent late, within its window"
LATE_OUTSIDE: Final = "sent late, after its window (over the rate)"
EXPIRED: Final = "expired: not sent within the grace period"
MERGED: Final = "merged into one evening message (overload policy b)"
DROPPED: Final = "dropped by priority (overload policy c)"
PAID: Final = "sent as a paid broadcast (overload policy a)"


@dataclass(frozen=True, slots=True)
class Window:
    """How many seconds before its time a reminder may go out, and after it, still on time."""

    before: int
    after: int

    def __post_init__(self) -> None:
        if self.before < 0 or self.after < 0:
            raise ValueError(f"a send window cannot be negative: {self}")

    @classmethod
    def minutes(cls, before: int, after: int) -> Window:
        return cls(before * 60, after * 60)


NO_WINDOW: Final = Window(0, 0)


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder to send (or ``count`` interchangeable ones when ``person`` is None)."""

    person: int | None
    kind: str
    intended: int  # whole seconds (UTC epoch seconds in practice)
    window: Window
    count: int = 1

    @classmethod
    def at(cls, person: int | None, kind: str, intended: datetime, window: Window) -> Reminder:
        """From an aware instant (``bot.schedule`` output)."""
        return cls(person, kind, int(intended.timestamp()), window)


class TokenBudget:
    """``rate`` sends a second as whole sends per second, exactly: over any n seconds the
    budget allows floor(rate * n) or one more, never drifting (the rate is kept as a fraction).
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"the send rate must be positive, got {rate}")
        self.rate = rate
        fraction = Fraction(rate).limit_denominator(1000)
        self._num, self._den = fraction.numerator, fraction.denominator

    def slots(self, second: int) -> int:
        """How many sends second ``second`` may hold."""
        return (self._num * (second + 1)) // self._den - (self._num * second) // self._den

    def per_minute(self) -> float:
        return self.rate * 60


@dataclass(slots=True)
class Plan:
    """Every send, in time order: ``pieces`` (reminder index, second, how many) and what expired.

    Indexes refer to the reminders given to ``Leveller.plan``.
    """

    reminders: Sequence[Reminder]
    piece_reminder: array[int] = field(default_factory=lambda: array("q"))
    piece_second: array[int] = field(default_factory=lambda: array("q"))
    piece_count: array[int] = field(default_factory=lambda: array("q"))
    expired: dict[int, int] = field(default_factory=dict)  # reminder index -> how many
    paid: int = 0  # sends above the free rate, as paid broadcasts
    # For the overload policy: per busy stretch of seconds with expiries, the range of pieces
    # sent in it before its last expiry, how many expired and which reminders.
    congested: list[tuple[int, int, int, list[int]]] = field(default_factory=list)

    def first_send(self) -> dict[int, int]:
        """Reminder index -> the second its (first) send goes."""
        sends: dict[int, int] = {}
        for index, second in zip(self.piece_reminder, self.piece_second, strict=True):
            sends.setdefault(index, second)
        return sends

    @property
    def expired_count(self) -> int:
        return sum(self.expired.values())

    @property
    def sent_count(self) -> int:
        return sum(self.piece_count)

    def sends_per_second(self) -> Counter[int]:
        per_second: Counter[int] = Counter()
        for second, count in zip(self.piece_second, self.piece_count, strict=True):
            per_second[second] += count
        return per_second


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


class Leveller:
    """Plans when each reminder goes out, at ``budget``'s rate, expiring after ``grace``.

    ``levelled=False`` models the dispatcher without windows: each reminder is released at its
    own time and sent first come, first served (the claim query's order). With ``paid`` (a
    budget above ``budget``, e.g. 1,000 a second), a reminder that would otherwise go out after
    its window closes goes as a paid broadcast instead, and only then: paid sends cost Stars.
    ``start`` (the dispatcher's "now"): no send before this second, so reminders already
    due wait for it and still expire ``grace`` after their own time.
    """

    def __init__(
        self,
        budget: TokenBudget,
        grace: int,
        *,
        levelled: bool = True,
        paid: TokenBudget | None = None,
        start: int | None = None,
    ) -> None:
        if grace < 0:
            raise ValueError("grace cannot be negative")
        self.budget = budget
        self.grace = grace
        self.levelled = levelled
        self.paid = paid
        self.start = start

    def plan(self, reminders: Sequence[Reminder]) -> Plan:
        plan = Plan(reminders)
        n = len(reminders)
        if n == 0:
            return plan
        # Work in (intended, kind, person) order: an index then breaks every tie the same way.
        order = sorted(
            range(n),
            key=lambda i: (
                reminders[i].intended,
                _kind_rank(reminders[i].kind),
                reminders[i].person or 0,
            ),
        )
        intended = [reminders[i].intended for i in order]
        base = intended[0] - max(r.window.before for r in reminders) - 1
        intended = [t - base for t in intended]
        counts = [reminders[i].count for i in order]
        if self.levelled:
            opens = [t - reminders[i].window.before for t, i in zip(intended, order, strict=True)]
            deadlines = [
                t + reminders[i].window.after for t, i in zip(intended, order, strict=True)
            ]
        else:
            opens, deadlines = intended, intended
        pred, succ = _person_chains(reminders, order)
        if self.levelled:
            units = self._release_times(base, intended, opens, counts, succ, pred)
        else:
            units = [(t, k, c) for k, (t, c) in enumerate(zip(intended, counts, strict=True))]
        self._forward(plan, order, base, intended, deadlines, units, pred, succ)
        return plan

    # -- pass 1: as late as possible, but on time ---------------------------------------------

    def _release_times(
        self,
        base: int,
        intended: list[int],
        opens: list[int],
        counts: list[int],
        succ: list[int],
        pred: list[int],
    ) -> list[tuple[int, int, int]]:
        """(release second, reminder, how many) units: the latest free second at or before the
        intended one, never before the window opens; a person's reminder is placed only after
        their next one, so its slot is never after that one's."""
        n = len(intended)
        scale = n + 1
        heap: list[int] = []
        placed = bytearray(n)
        parked = bytearray(n)
        remaining = counts[:]
        units: list[tuple[int, int, int]] = []
        pointer = n - 1
        second = intended[-1]
        slots = self.budget.slots
        before_start = None if self.start is None else self.start - base
        n_total = sum(counts)
        while pointer >= 0 or heap:
            if not heap:
                second = min(second, intended[pointer])
            while pointer >= 0 and intended[pointer] >= second:
                k = pointer
                pointer -= 1
                if succ[k] >= 0 and not placed[succ[k]]:
                    parked[k] = 1
                else:
                    heapq.heappush(heap, -(opens[k] * scale + k))
            # Before ``start`` nothing is sent: whatever is left is released by then.
            free = (
                slots(second + base) if before_start is None or second >= before_start else n_total
            )
            while free and heap:
                k = -heapq.heappop(heap) % scale
                take = min(remaining[k], free)
                free -= take
                remaining[k] -= take
                units.append((max(second, opens[k]), k, take))
                if remaining[k]:
                    heapq.heappush(heap, -(opens[k] * scale + k))
                    continue
                placed[k] = 1
                before = pred[k]
                if before >= 0 and parked[before]:
                    parked[before] = 0
                    heapq.heappush(heap, -(opens[before] * scale + before))
            second -= 1
        units.sort()
        return units

    # -- pass 2: earliest deadline first ------------------------------------------------------

    def _forward(
        self,
        plan: Plan,
        order: list[int],
        base: int,
        intended: list[int],
        deadlines: list[int],
        units: list[tuple[int, int, int]],
        pred: list[int],
        succ: list[int],
    ) -> None:
        n = len(intended)
        scale = n + 1
        unit_scale = len(units) + 1
        done = bytearray(n)
        parked: dict[int, int] = {}  # reminder -> its unit, waiting for the person's previous one
        remaining = [count for _, _, count in units]
        heap: list[int] = []
        slots = self.budget.slots
        paid_slots = self.paid.slots if self.paid is not None else None
        before_start = None if self.start is None else self.start - base
        grace = self.grace
        append_reminder = plan.piece_reminder.append
        append_second = plan.piece_second.append
        append_count = plan.piece_count.append
        pointer = 0
        second = units[0][0]
        stretch_first_piece = 0
        stretch_expired = 0
        stretch_last_piece = 0
        stretch_reminders: list[int] = []

        def key(u: int) -> int:
            k = units[u][1]
            return (deadlines[k] * scale + k) * unit_scale + u

        while pointer < len(units) or heap:
            if not heap:
                if stretch_expired:
                    plan.congested.append(
                        (
                            stretch_first_piece,
                            stretch_last_piece,
                            stretch_expired,
                            stretch_reminders,
                        )
                    )
                stretch_expired = 0
                stretch_reminders = []
                stretch_first_piece = len(plan.piece_second)
                second = max(second, units[pointer][0])
            while pointer < len(units) and units[pointer][0] <= second:
                k = units[pointer][1]
                if pred[k] >= 0 and not done[pred[k]]:
                    parked[k] = pointer
                else:
                    heapq.heappush(heap, key(pointer))
                pointer += 1
            if before_start is not None and second < before_start:
                free = extra = 0
            else:
                free = slots(second + base)
                extra = paid_slots(second + base) - free if paid_slots else 0
            while heap and (free or intended[units[heap[0] % unit_scale][1]] + grace < second):
                u = heapq.heappop(heap) % unit_scale
                k = units[u][1]
                if second > intended[k] + grace:
                    reminder = order[k]
                    plan.expired[reminder] = plan.expired.get(reminder, 0) + remaining[u]
                    stretch_expired += remaining[u]
                    stretch_reminders.append(reminder)
                    stretch_last_piece = len(plan.piece_second)
                    remaining[u] = 0
                else:
                    take = min(remaining[u], free)
                    free -= take
                    remaining[u] -= take
                    append_reminder(order[k])
                    append_second(second + base)
                    append_count(take)
                    if remaining[u]:
                        heapq.heappush(heap, key(u))
                        continue
                done[k] = 1
                after = succ[k]
                if after >= 0 and after in parked:
                    heapq.heappush(heap, key(parked.pop(after)))
            # Paid broadcasts: only for what would otherwise leave its window within the minute
            # (a clump sharing one deadline needs a few seconds even at 1,000 a second).
            while (
                extra > 0
                and heap
                and deadlines[units[heap[0] % unit_scale][1]] <= second + PAID_LEAD
            ):
                u = heapq.heappop(heap) % unit_scale
                k = units[u][1]
                take = min(remaining[u], extra)
                extra -= take
                remaining[u] -= take
                plan.paid += take
                append_reminder(order[k])
                append_second(second + base)
                append_count(take)
                if remaining[u]:
                    heapq.heappush(heap, key(u))
                    continue
                done[k] = 1
                after = succ[k]
                if after >= 0 and after in parked:
                    heapq.heappush(heap, key(parked.pop(after)))
            second += 1
        if stretch_expired:
            plan.congested.append(
                (stretch_first_piece, stretch_last_piece, stretch_expired, stretch_reminders)
            )


def _person_chains(reminders: Sequence[Reminder], order: list[int]) -> tuple[list[int], list[int]]:
    """For each position in ``order``: the same person's previous and next reminder (or -1)."""
    n = len(order)
    pred = [-1] * n
    succ = [-1] * n
    last: dict[int, int] = {}
    for k, i in enumerate(order):
        person = reminders[i].person
        if person is None:
            continue
        before = last.get(person)
        if before is not None:
            pred[k] = before
            succ[before] = k
        last[person] = k
    return pred, succ


# --------------------------------------------------------------------------------------------
# Figures


@dataclass(frozen=True, slots=True)
class KindFigures:
    """Per kind: how many, what happened, and the distance from the intended time (seconds)."""

    kind: str
    total: int
    sent: int
    early: int
    late: int
    outside_window: int  # sent after the window closed
    expired: int
    lateness_p50: int
    lateness_p99: int
    lateness_max: int
    earliness_p50: int
    earliness_p99: int
    earliness_max: int


def _quantile(histogram: Counter[int], total: int, fraction: float) -> int:
    if total == 0:
        return 0
    rank = max(1, math.ceil(total * fraction))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def figures(plan: Plan) -> dict[str, KindFigures]:
    """Per kind p50/p99/max lateness and earliness over every sent reminder, and the counts."""
    reminders = plan.reminders
    late: dict[str, Counter[int]] = {}
    early: dict[str, Counter[int]] = {}
    counts: dict[str, Counter[str]] = {}
    for reminder in reminders:
        counts.setdefault(reminder.kind, Counter())["total"] += reminder.count
    for index, second, count in zip(
        plan.piece_reminder, plan.piece_second, plan.piece_count, strict=True
    ):
        reminder = reminders[index]
        kind = reminder.kind
        offset = second - reminder.intended
        tally = counts[kind]
        tally["sent"] += count
        late.setdefault(kind, Counter())[max(offset, 0)] += count
        early.setdefault(kind, Counter())[max(-offset, 0)] += count
        if offset < 0:
            tally["early"] += count
        elif offset > 0:
            tally["late"] += count
            if offset > reminder.window.after:
                tally["outside"] += count
    for index, count in plan.expired.items():
        counts[reminders[index].kind]["expired"] += count
    result = {}
    for kind, tally in sorted(counts.items(), key=lambda item: _kind_rank(item[0])):
        sent = tally["sent"]
        lateness = late.get(kind, Counter())
        earliness = early.get(kind, Counter())
        result[kind] = KindFigures(
            kind=kind,
            total=tally["total"],
            sent=sent,
            early=tally["early"],
            late=tally["late"],
            outside_window=tally["outside"],
            expired=tally["expired"],
            lateness_p50=_quantile(lateness, sent, 0.5),
            lateness_p99=_quantile(lateness, sent, 0.99),
            lateness_max=max(lateness, default=0),
            earliness_p50=_quantile(earliness, sent, 0.5),
            earliness_p99=_quantile(earliness, sent, 0.99),
            earliness_max=max(earliness, default=0),
        )
    return result


# --------------------------------------------------------------------------------------------
# Overload policy


@dataclass(slots=True)
class PolicyOutcome:
    """The final plan and every reminder the policy touched, counted by (kind, reason)."""

    plan: Plan
    kept: list[Reminder]
    reasons: Counter[tuple[str, str]]
    merged_people: int = 0
    paid_sends: int = 0
    rounds: int = 0

    def count(self, reason: str) -> int:
        return sum(n for (_, why), n in self.reasons.items() if why == reason)


def count_reasons(plan: Plan) -> Counter[tuple[str, str]]:
    """(kind, reason) for every early, late and expired reminder of a plan."""
    reasons: Counter[tuple[str, str]] = Counter()
    for index, second, count in zip(
        plan.piece_reminder, plan.piece_second, plan.piece_count, strict=True
    ):
        reminder = plan.reminders[index]
        offset = second - reminder.intended
        if offset < 0:
            reasons[reminder.kind, EARLY] += count
        elif offset > reminder.window.after:
            reasons[reminder.kind, LATE_OUTSIDE] += count
        elif offset > 0:
            reasons[reminder.kind, LATE_IN_WINDOW] += count
    for index, count in plan.expired.items():
        reasons[plan.reminders[index].kind, EXPIRED] += count
    return reasons


def apply_overload_policy(
    reminders: Sequence[Reminder],
    leveller: Leveller,
    *,
    paid: TokenBudget | None = None,
    max_rounds: int = 60,
) -> PolicyOutcome:
    """Level; when something would expire, use (a) paid broadcasts up to ``paid``'s rate if
    given (for the reminders that would leave their window), else (b) merge and (c) drop, in
    the congested stretches only, until nothing expires.

    Each round removes, in every congested stretch, as many reminders as expired there, from
    the reminders sent in it before its last expiry: first one of a person's meal idea and
    exercise note (the other becomes the evening message), then by ``DROP_ORDER``; within a
    kind the latest first (nearest the congestion). Expiries left after ``max_rounds`` stay
    counted as expired, never silent.
    """
    plan = leveller.plan(reminders)
    if not plan.expired:
        return PolicyOutcome(plan, list(reminders), count_reasons(plan))
    sends = 0
    if paid is not None:
        leveller = Leveller(leveller.budget, leveller.grace, levelled=leveller.levelled, paid=paid)
        plan = leveller.plan(reminders)
        sends = plan.paid
        if not plan.expired:
            outcome = PolicyOutcome(plan, list(reminders), count_reasons(plan), paid_sends=sends)
            outcome.reasons["all", PAID] += sends
            return outcome
    active = list(reminders)
    removed: Counter[tuple[str, str]] = Counter()
    merged_people = 0
    rounds = 0
    while plan.expired and rounds < max_rounds:
        rounds += 1
        drop: set[int] = set()
        merge_into: dict[int, int] = {}  # index kept -> index folded into it
        by_person: dict[int, dict[str, int]] = {}
        for index, reminder in enumerate(active):
            if reminder.person is not None and reminder.kind in ("meal", "exercise"):
                by_person.setdefault(reminder.person, {})[reminder.kind] = index
        for first, last, expired, lost in plan.congested:
            # What was sent before the last expiry (removing one frees a slot in time) and what
            # expired (dropping it by priority beats expiring it, and frees nothing it needs).
            sent_before = {plan.piece_reminder[p] for p in range(first, last)}
            candidates = sorted(
                (sent_before | set(lost)) - drop - merge_into.keys(),
                key=lambda i: -active[i].intended,
            )
            need = expired
            for index in candidates:
                if need == 0:
                    break
                reminder = active[index]
                if reminder.person is None or reminder.kind not in ("meal", "exercise"):
                    continue
                pair = by_person.get(reminder.person, {})
                other = pair.get("exercise" if reminder.kind == "meal" else "meal")
                if other is None or other in drop or other in merge_into:
                    continue
                drop.add(index)
                merge_into[other] = index
                del by_person[reminder.person]
                need -= 1
            for kind in DROP_ORDER:
                for index in candidates:
                    if need == 0:
                        break
                    if index in drop:
                        continue
                    if index in merge_into:  # merged this round: an evening message now
                        if kind != MERGED_KIND:
                            continue
                        folded = merge_into.pop(index)
                        removed[active[folded].kind, DROPPED] += 1
                    elif active[index].kind != kind:
                        continue
                    drop.add(index)
                    removed[active[index].kind, DROPPED] += active[index].count
                    need -= 1
        if not drop:
            break
        survivors = []
        for index, reminder in enumerate(active):
            if index in merge_into:
                removed[reminder.kind, MERGED] += 1
                removed[active[merge_into[index]].kind, MERGED] += 1
                merged_people += 1
                survivors.append(
                    Reminder(reminder.person, MERGED_KIND, reminder.intended, reminder.window)
                )
            elif index not in drop:
                survivors.append(reminder)
        active = survivors
        plan = leveller.plan(active)
    reasons = count_reasons(plan) + removed
    if sends:
        reasons["all", PAID] += sends
    return PolicyOutcome(
        plan,
        active,
        reasons,
        merged_people=merged_people,
        paid_sends=sends,
        rounds=rounds,
    )


def windows_by_kind(kinds: Iterable[tuple[str, int, int]]) -> dict[str, Window]:
    """{kind: Window} from (kind, minutes before, minutes after), e.g. content's reminders."""
    return {kind: Window.minutes(before, after) for kind, before, after in kinds}
