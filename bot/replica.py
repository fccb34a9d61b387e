"""What one replica runs beside PTB's Application, assembled from settings in one place.

The pieces (bot/web.py, bot/health.py, bot/metrics.py, bot/leader.py, bot/redis_budget.py)
each take their collaborators as arguments; this module makes the production choices, so
the app's wiring stays a few lines (issue 10):

* ``send_budget(settings, token)``: ``RedisSendBudget`` when ``REDIS_URL`` is set, else None
  (``FairRateLimiter`` then keeps its in-process budget);
* ``inbox_store_update(inbox, clock, stored=worker.wake)``: the webhook's store call — the
  update, as Telegram sent it, committed to the inbox (bot/storage/inbox.py) before the
  webhook may answer 200, then the inbox worker woken;
* ``Replica(settings, token, store_update=...)``: metrics, the elector for the database,
  the dispatcher's heartbeat, /healthz and /metrics, and in webhook mode the webhook route —
  served on ``LISTEN_PORT`` (webhook mode) or ``METRICS_PORT`` (polling; none if unset);
* ``Replica.leader_only(job)``: the dispatcher's JobQueue callback, run only while this
  replica leads and timed for /healthz and ``sleepbot_dispatcher_tick_seconds``.

Health pings and the backlog gauge read through an engine of their own that cannot write
(``create_read_only_engine``): on SQLite they take no write lock, so a busy bot never makes
its own health check time out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.flood import FloodCounters
from bot.health import Health, TickWatch
from bot.leader import Elector, elector_for
from bot.metrics import Metrics
from bot.polling import incoming
from bot.ratelimit import SendBudget, SendStats
from bot.storage import Inbox, IncomingUpdate
from bot.storage.dialects import create_read_only_engine
from bot.storage.stats import due_backlog
from bot.web import StoreUpdate, Webhook, WebServer, create_app, webhook_path

log = logging.getLogger(__name__)

Job = Callable[[Any], Coroutine[Any, Any, None]]


def bot_id(token: str) -> str:
    """The public part of a token (the bot's user id): names this bot's shared state."""
    return token.split(":", 1)[0]


def send_budget(settings: Settings, token: str) -> SendBudget | None:
    """The send limiter's shared state: in Redis when REDIS_URL is set."""
    if settings.redis_url is None:
        return None
    from bot.redis_budget import RedisSendBudget, connect  # the redis extra (bot/extras.py)

    client = connect(settings.redis_url.get_secret_value())
    return RedisSendBudget(client, namespace=bot_id(token))


def inbox_store_update(
    inbox: Inbox, clock: Clock, *, stored: Callable[[], None] | None = None
) -> StoreUpdate:
    """The webhook's store call: returns once the update is committed (insert-or-ignore by
    update_id, so Telegram's redeliveries are harmless), then calls `stored`."""

    async def store_update(update: dict[str, Any]) -> None:
        await inbox.store([_incoming(update)], clock.now())
        if stored is not None:
            stored()

    return store_update


def _incoming(update: dict[str, Any]) -> IncomingUpdate:
    """The update exactly as Telegram sent it, with its chat for /deletedata; one PTB cannot
    parse is stored all the same (the worker gives it up with a log line)."""
    try:
        parsed = Update.de_json(update, None)
    except Exception:
        return IncomingUpdate(int(update["update_id"]), None, update)
    return IncomingUpdate(parsed.update_id, incoming(parsed).chat_id, update)


class Replica:
    """Metrics, election, health and the HTTP server of one bot process."""

    def __init__(
        self,
        settings: Settings,
        token: str,
        *,
        store_update: StoreUpdate | None = None,
        clock: Clock | None = None,
        elector: Elector | None = None,
        monitor_engine: Callable[[], AsyncEngine] | None = None,
    ) -> None:
        """`store_update` is the inbox's store call (required in webhook mode); `clock` is
        the app's (what "due" means for the backlog); `elector` and `monitor_engine` replace
        the production choices in tests."""
        if settings.webhook_mode and store_update is None:
            raise ValueError("webhook mode needs the inbox's store_update")
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.elector = elector or elector_for(settings.database_url, namespace=bot_id(token))
        self.ticks = TickWatch(self.metrics)
        self._monitor_factory = monitor_engine or (
            lambda: create_read_only_engine(settings.database_url)
        )
        self._monitor: AsyncEngine | None = None
        self.health = Health(
            self.ping,
            settings.dispatch_interval_seconds,
            self.ticks,
            role=self.elector.role,
        )
        webhook = None
        if settings.webhook_mode:
            assert settings.webhook_url is not None and settings.webhook_secret is not None
            assert store_update is not None
            webhook = Webhook(
                webhook_path(settings.webhook_url),
                settings.webhook_secret.get_secret_value(),
                store_update,
            )
        self.app = create_app(metrics=self.metrics, health=self.health, webhook=webhook)
        port = settings.listen_port if settings.webhook_mode else settings.metrics_port
        self.server = WebServer(self.app, settings.listen_host, port) if port is not None else None
        self.metrics.observe(leader=lambda: self.elector.is_leader, backlog=self._backlog)

    def observe(
        self,
        *,
        flood: Callable[[], FloodCounters] | None = None,
        limiter: Callable[[], SendStats] | None = None,
    ) -> None:
        """Export flood control's and the send limiter's counters (once they exist)."""
        self.metrics.observe(flood=flood, limiter=limiter)

    def _engine(self) -> AsyncEngine:
        if self._monitor is None:
            self._monitor = self._monitor_factory()
        return self._monitor

    async def ping(self) -> None:
        async with self._engine().connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def _backlog(self) -> int:
        return await due_backlog(self._engine(), self.clock.now())

    async def start(self) -> None:
        """Campaign for leadership and listen (after the database is open)."""
        await self.elector.start()
        if self.server is not None:
            await self.server.start()
            log.info("listening on %s:%d", self.settings.listen_host, self.server.port)

    async def stop(self) -> None:
        """Stop listening (requests in flight finish), then give up leadership."""
        if self.server is not None:
            await self.server.stop()
        await self.elector.stop()
        if self._monitor is not None:
            await self._monitor.dispose()
            self._monitor = None

    def leader_only(self, job: Job) -> Callable[[Any], Awaitable[None]]:
        """Wrap the dispatcher's JobQueue callback: standbys skip it; each run is a tick."""

        async def run(context: Any) -> None:
            if not self.elector.is_leader:
                return
            async with self.ticks.ticking():
                await job(context)

        return run
