"""Prometheus metrics for one bot process: what it received, how fast it answered, how late
its reminders went out, and how hard Telegram and flooding chats pushed back.

Every `Metrics` has its own ``CollectorRegistry`` (not prometheus_client's global one), so
tests, benchmarks and several applications in one process never collide over metric names.

Two kinds of numbers:

* **Recorded** where they happen, through small methods (``update_received``,
  ``reminder_sent``, ``tick_finished``...). Label children are cached, so a call is a dict
  lookup plus prometheus_client's own locked increment (``python -m bench.metrics`` measures
  each).
* **Observed** when scraped, from sources the app registers: flood control's
  ``FloodCounters`` (bot/flood.py), the send limiter's ``SendStats`` (bot/ratelimit.py),
  whether this replica leads, and the due backlog. The backlog needs a database query, so
  it is read by ``refresh()`` (async, bounded by a timeout) just before ``exposition()``;
  while no query has answered, the gauge reads NaN rather than a made-up number.

Label values are bounded: update types are Telegram's (others become ``other``), reminder
kinds come from content/reminders.toml, outcomes from the dispatcher's fixed set.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from telegram import Update

from bot.flood import FloodCounters
from bot.ratelimit import SendStats

log = logging.getLogger(__name__)

NAMESPACE: Final = "sleepbot"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
UPDATE_TYPES: Final = frozenset(str(kind) for kind in Update.ALL_TYPES)
OTHER: Final = "other"
# What the dispatcher can do with one reminder (bot/dispatch.py): sent; rescheduled after a
# 429 or a network error; failed for good; the chat is gone; too late to send; dropped by the
# overload policy, or merged into the person's exercise note by it (bot/levelling.py). They
# count actions: a merged meal idea lost later with the note carrying it is merged, then dropped.
OUTCOMES: Final = frozenset(
    {"sent", "retry", "failed", "deactivated", "expired", "stale", "dropped", "merged"}
)
# Handler latency: a reply is a database read or two plus one paced send.
HANDLER_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Reminder lateness: within the tick interval is normal, minutes mean a backlog, the grace
# period (30 min by default) is the end of the scale.
LATENESS_BUCKETS: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
TICK_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PROBE_TIMEOUT_S: Final = 2.0


def kind_of(update: Update) -> str:
    """The same kind as :func:`update_type`, for a parsed PTB Update."""
    for kind in UPDATE_TYPES:
        if getattr(update, kind, None) is not None:
            return kind
    return OTHER


def update_type(update: Mapping[str, Any]) -> str:
    """The kind of an update as Telegram sends it (``message``, ``callback_query``...): the
    field besides ``update_id``; ``other`` for kinds this PTB version does not know."""
    for key in update:
        if key in UPDATE_TYPES:
            return key
    return OTHER


class _Observed(Collector):
    """The numbers other components already count, read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self._metrics
        flood = metrics.flood_source() if metrics.flood_source else None
        if flood is not None:
            updates = CounterMetricFamily(
                f"{NAMESPACE}_flood_updates",
                "Incoming updates by flood control's verdict (bot/flood.py)",
                labels=["verdict"],
            )
            for verdict, value in (
                ("admitted", flood.admitted),
                ("dropped", flood.dropped),
                ("coalesced", flood.coalesced),
                ("exempted", flood.exempted),
            ):
                updates.add_metric([verdict], value)
            yield updates
            yield CounterMetricFamily(
                f"{NAMESPACE}_flood_bursts",
                "Floods detected (each got one 'slow down' notice)",
                value=flood.floods,
            )
        stats = metrics.limiter_source() if metrics.limiter_source else None
        if stats is not None:
            yield CounterMetricFamily(
                f"{NAMESPACE}_telegram_429",
                "Answers of 429 Too Many Requests from Telegram (each held its chat back)",
                value=stats.held_chats,
            )
            yield CounterMetricFamily(
                f"{NAMESPACE}_send_slowdowns",
                "Times 429s from several chats halved the global send rate",
                value=stats.slowdowns,
            )
            yield CounterMetricFamily(
                f"{NAMESPACE}_send_pauses",
                "Times every send was paused (429s even at the floor rate)",
                value=stats.pauses,
            )
            yield CounterMetricFamily(
                f"{NAMESPACE}_send_deferred",
                "Sends refused before sending because their chat was held too long",
                value=stats.deferred,
            )
            yield CounterMetricFamily(
                f"{NAMESPACE}_paid_broadcasts",
                "Reminders sent as paid broadcasts (0.1 Telegram Stars each): the free lane "
                "could not send them within their send window",
                value=stats.paid,
            )
        if metrics.leader_source is not None:
            yield GaugeMetricFamily(
                f"{NAMESPACE}_leader",
                "1 while this replica is the elected reminder sender, else 0",
                value=1.0 if metrics.leader_source() else 0.0,
            )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_due_backlog",
            "Reminders due now and not sent yet (NaN until the database answered)",
            value=metrics.backlog,
        )


class Metrics:
    """The process's metrics and the calls that record them; see the module docstring."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._updates = Counter(
            "updates", "Updates received, by type", ["type"], namespace=NAMESPACE, registry=registry
        )
        self._handler_seconds = Histogram(
            "handler_seconds",
            "Time from an update's arrival at the handlers to its last handler's return",
            ["type"],
            namespace=NAMESPACE,
            registry=registry,
            buckets=HANDLER_BUCKETS,
        )
        self._reminders = Counter(
            "reminders_sent",
            "Reminder send attempts, by kind and outcome",
            ["kind", "outcome"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._lateness = Histogram(
            "reminder_lateness_seconds",
            "How long after its due time a reminder reached Telegram",
            ["kind"],
            namespace=NAMESPACE,
            registry=registry,
            buckets=LATENESS_BUCKETS,
        )
        self._deactivations = Counter(
            "deactivations",
            "People whose reminders were turned off because their chat is gone",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._tick_seconds = Histogram(
            "dispatcher_tick_seconds",
            "Duration of one dispatcher tick (materialise, claim, send, record)",
            namespace=NAMESPACE,
            registry=registry,
            buckets=TICK_BUCKETS,
        )
        self._last_tick = Gauge(
            "dispatcher_last_tick_timestamp_seconds",
            "Unix time the dispatcher last finished a tick",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._webhook = Counter(
            "webhook_requests",
            "Requests to the webhook path, by HTTP status answered",
            ["status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._capacity_messages = Gauge(
            "capacity_messages",
            "Messages scheduled in the next 24 h, at the last daily capacity check",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._capacity_busiest = Gauge(
            "capacity_busiest_minute_messages",
            "Messages due in the busiest minute of the next 24 h (the rate allows 60 x rate)",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._capacity_expired = Gauge(
            "capacity_projected_expired",
            "Reminders projected to expire in the next 24 h: as_today, levelled, paid",
            ["projection"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._capacity_over = Gauge(
            "capacity_over",
            "1 when the next 24 h are projected over capacity even levelled, else 0",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._capacity_checked = Gauge(
            "capacity_checked_timestamp_seconds",
            "Unix time of the last daily capacity check",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._children: dict[tuple[object, ...], Any] = {}
        self.flood_source: Callable[[], FloodCounters] | None = None
        self.limiter_source: Callable[[], SendStats] | None = None
        self.leader_source: Callable[[], bool] | None = None
        self.backlog_probe: Callable[[], Awaitable[int]] | None = None
        self.backlog = math.nan
        registry.register(_Observed(self))

    # --- wiring: where the observed numbers come from ---------------------------------------

    def observe(
        self,
        *,
        flood: Callable[[], FloodCounters] | None = None,
        limiter: Callable[[], SendStats] | None = None,
        leader: Callable[[], bool] | None = None,
        backlog: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        """Register sources read at scrape time; a source left out is not exported (the
        backlog gauge reads NaN without one)."""
        if flood is not None:
            self.flood_source = flood
        if limiter is not None:
            self.limiter_source = limiter
        if leader is not None:
            self.leader_source = leader
        if backlog is not None:
            self.backlog_probe = backlog

    # --- recording: called where things happen ------------------------------------------

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def update_received(self, kind: str) -> None:
        """One update arrived (webhook or getUpdates); `kind` from :func:`update_type`."""
        self._child(self._updates, kind if kind in UPDATE_TYPES else OTHER).inc()

    def update_handled(self, kind: str, seconds: float) -> None:
        """The handlers are done with one update, `seconds` after it reached them."""
        kind = kind if kind in UPDATE_TYPES else OTHER
        self._child(self._handler_seconds, kind).observe(seconds)

    def reminder_sent(self, kind: str, outcome: str, lateness: float | None = None) -> None:
        """One attempt to deliver a reminder of `kind` ended with `outcome` (see OUTCOMES);
        `lateness` (seconds after due) when Telegram accepted it."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown reminder outcome {outcome!r}")
        self._child(self._reminders, kind, outcome).inc()
        if lateness is not None:
            self._child(self._lateness, kind).observe(max(lateness, 0.0))

    def deactivated(self, count: int = 1) -> None:
        """Chats turned off because Telegram said they are gone (blocked, not found)."""
        self._deactivations.inc(count)

    def tick_finished(self, seconds: float) -> None:
        """One dispatcher tick took `seconds` (bot.health.TickWatch calls it)."""
        self._tick_seconds.observe(seconds)
        self._last_tick.set(time.time())

    def capacity_checked(
        self, *, messages: int, busiest_minute: int, expired: Mapping[str, int], over: bool
    ) -> None:
        """The daily capacity check's figures (bot.capacity_plan.CapacityWatch)."""
        self._capacity_messages.set(messages)
        self._capacity_busiest.set(busiest_minute)
        for projection, count in expired.items():
            self._child(self._capacity_expired, projection).set(count)
        self._capacity_over.set(1 if over else 0)
        self._capacity_checked.set(time.time())

    def webhook_answered(self, status: int) -> None:
        self._child(self._webhook, str(status)).inc()

    # --- scraping ----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the sources that need I/O (the backlog query), bounded by PROBE_TIMEOUT_S; on
        failure the gauge reads NaN, and the reason is logged at DEBUG (the database's
        health is /healthz's business)."""
        if self.backlog_probe is None:
            return
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                self.backlog = float(await self.backlog_probe())
        except Exception as error:  # a scrape must not fail because the database did
            log.debug("backlog probe failed: %s", type(error).__name__)
            self.backlog = math.nan

    def exposition(self) -> bytes:
        """Everything in Prometheus's text format (serve with CONTENT_TYPE)."""
        return generate_latest(self.registry)
