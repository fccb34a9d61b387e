"""Incoming flood control, pure: who is sending faster than a person types.

A chat that sends more than ``max_updates`` updates within ``window`` (20 in 10 s by default:
several messages a second, for ten seconds) is not a person typing. Its excess updates are
dropped before they queue (a reply to each would take the chat's send pace, one a second,
while the backlog grew without bound), it gets one polite notice per burst, and the burst is
logged once when it starts and once when it is over. Every update counts, dropped or not: a
script that keeps flooding stays dropped until it slows down.

Two more rules bound what one chat can queue:

* at most ``max_updates`` admitted updates of one chat may be waiting or running at once;
* a button pressed again while the same press (chat, message, data) is still waiting or
  running is coalesced into it (the caller still answers the callback query).

Updates the ``exempt`` rule of the caller admits (crisis text) always pass, are never
coalesced, and do not count towards the chat's rate.

Time comes from an injected ``Clock`` (bot/clock.py), so tests flood at a frozen instant.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Final

from bot.clock import Clock

log = logging.getLogger(__name__)

# Whose rate is counted: a private chat's id; in a group, (chat id, user id), so one person
# flooding a group does not silence everyone else in it.
Source = Hashable
PRUNE_ABOVE: Final = 1024


class Verdict(Enum):
    """What to do with one incoming update."""

    ADMIT = "admit"
    COALESCE = "coalesce"  # the same button press is already in hand: answer it, drop it
    DROP = "drop"  # part of a flood: drop it (answer it if it is a button press)
    NOTIFY = "notify"  # the first drop of a flood: drop it and say "slow down", once


@dataclass
class FloodCounters:
    """Running totals, for the metrics issue to export."""

    admitted: int = 0
    dropped: int = 0  # including the NOTIFY ones
    coalesced: int = 0
    floods: int = 0  # bursts, i.e. notices sent
    exempted: int = 0  # admitted although the chat was flooding (crisis text)


@dataclass
class _Burst:
    started: float
    last_drop: float
    dropped: int = 0


@dataclass
class _SourceState:
    arrivals: deque[float] = field(default_factory=deque)  # the last max_updates + 1
    pending: int = 0  # admitted, not finished
    buttons: set[Hashable] = field(default_factory=set)  # presses waiting or running
    burst: _Burst | None = None


class FloodGate:
    """Decides, per update, whether it is handled; remembers what is in hand per chat."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_updates: int = 20,
        window: timedelta = timedelta(seconds=10),
    ) -> None:
        if max_updates < 1 or window <= timedelta(0):
            raise ValueError("max_updates and window must be positive")
        self.clock = clock
        self.max_updates = max_updates
        self.window = window.total_seconds()
        self.counters = FloodCounters()
        self._sources: dict[Source, _SourceState] = {}

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def arrive(
        self, source: Source, *, button: Hashable | None = None, exempt: bool = False
    ) -> Verdict:
        """Count one update from `source`; a button press carries its (message, data) key."""
        now = self._now()
        state = self._sources.get(source)
        if state is None:
            if len(self._sources) >= PRUNE_ABOVE:
                self._prune(now)
            state = self._sources[source] = _SourceState()
        self._end_burst_if_quiet(source, state, now)
        arrivals = state.arrivals
        while arrivals and now - arrivals[0] >= self.window:
            arrivals.popleft()
        if exempt:
            # Answered whatever the rate, and not counted towards it: someone in crisis who
            # writes a lot must not have their next, ordinary message dropped for it.
            flooding = len(arrivals) >= self.max_updates or state.pending >= self.max_updates
            state.pending += 1
            self.counters.admitted += 1
            self.counters.exempted += flooding
            return Verdict.ADMIT
        arrivals.append(now)
        if len(arrivals) > self.max_updates + 1:
            arrivals.popleft()
        flooding = len(arrivals) > self.max_updates or state.pending >= self.max_updates
        if button is not None and button in state.buttons:
            self.counters.coalesced += 1
            return Verdict.COALESCE
        if flooding:
            return self._drop(source, state, now)
        state.pending += 1
        if button is not None:
            state.buttons.add(button)
        self.counters.admitted += 1
        return Verdict.ADMIT

    def finished(self, source: Source, *, button: Hashable | None = None) -> None:
        """An admitted update of `source` has been handled (or failed)."""
        state = self._sources.get(source)
        if state is None:
            return
        state.pending = max(0, state.pending - 1)
        if button is not None:
            state.buttons.discard(button)

    def _drop(self, source: Source, state: _SourceState, now: float) -> Verdict:
        self.counters.dropped += 1
        burst = state.burst
        if burst is not None:
            burst.dropped += 1
            burst.last_drop = now
            return Verdict.DROP
        state.burst = _Burst(started=now, last_drop=now, dropped=1)
        self.counters.floods += 1
        log.warning(
            "chat %s sent more than %d updates within %.0f s: dropping its excess updates "
            "until it slows down (it is told so once)",
            source,
            self.max_updates,
            self.window,
        )
        return Verdict.NOTIFY

    def _end_burst_if_quiet(self, source: Source, state: _SourceState, now: float) -> None:
        """A burst is over once a whole window passed without a drop; say how big it was."""
        burst = state.burst
        if burst is None or now - burst.last_drop < self.window:
            return
        state.burst = None
        log.info(
            "chat %s flood over: %d updates dropped in %.0f s",
            source,
            burst.dropped,
            burst.last_drop - burst.started,
        )

    def _prune(self, now: float) -> None:
        """Forget quiet chats with nothing in hand (their burst, if any, is logged as over)."""
        for source, state in list(self._sources.items()):
            self._end_burst_if_quiet(source, state, now)
            quiet = not state.arrivals or now - state.arrivals[-1] >= self.window
            if quiet and state.pending == 0 and state.burst is None:
                del self._sources[source]
