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
  replica leads;
* the Replica is the dispatcher's ``DispatchObserver`` (bot/dispatch.py): each tick itself
  (not the JobQueue callback, which only starts it in the background) is timed for /healthz
  and ``sleepbot_dispatcher_tick_seconds``, and each reminder's outcome is counted;
* ``Replica.claim_polling()``: one polling process per bot and database (two would fight
  over getUpdates with 409 Conflict): a PostgreSQL advisory lock, or a lock file beside a
  SQLite database, held for the process's life and freed by the OS however it ends;
* ``Replica.register_webhook(bot)``: setWebhook with ``secret_token`` (every replica sends
  the same; the poller's deleteWebhook undoes it when an operator goes back to polling).

``bot.app.build_app(..., replica=True)`` (what ``sleepbot run`` uses) does all of this.

Health pings and the backlog gauge read through an engine of their own that cannot write
(``create_read_only_engine``): on SQLite they take no write lock, so a busy bot never makes
its own health check time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, Update

from bot.capacity_plan import CapacityFigures
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.flood import FloodCounters
from bot.health import Health, TickWatch
from bot.leader import Elector, PostgresElector, elector_for
from bot.metrics import Metrics
from bot.polling import incoming
from bot.ratelimit import SendBudget, SendStats
from bot.storage import Inbox, IncomingUpdate
from bot.storage.dialects import create_read_only_engine
from bot.storage.stats import due_backlog
from bot.web import StoreUpdate, Webhook, WebServer, create_app, webhook_path

log = logging.getLogger(__name__)

Job = Callable[[Any], Coroutine[Any, Any, None]]
# How long a starting poller waits for the polling lock: a process SIGKILLed just before a
# restart frees its PostgreSQL session within a moment; a live one never does.
POLLING_LOCK_WAIT_S: Final = 6.0


class PollingTaken(Exception):
    """Another live process polls Telegram for this bot on this database."""

    def __init__(self) -> None:
        super().__init__(
            "another `sleepbot run` is already polling Telegram for this bot on this database "
            "(two would fight over getUpdates with 409 Conflict); stop it, or run replicas in "
            "webhook mode (WEBHOOK_URL)"
        )


class _FileLock:
    """SQLite: an exclusive lock on a file beside the database (flock: the kernel drops
    it when the process dies, SIGKILL included)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _sqlite_file(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database)).resolve()


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
        self._bot_id = bot_id(token)
        self._polling_lock: _FileLock | None = None
        self._polling_elector: PostgresElector | None = None
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
        if self._polling_elector is not None:
            await self._polling_elector.stop()
            self._polling_elector = None
        if self._polling_lock is not None:
            self._polling_lock.release()
            self._polling_lock = None
        if self._monitor is not None:
            await self._monitor.dispose()
            self._monitor = None

    def leader_only(self, job: Job) -> Job:
        """Wrap the dispatcher's JobQueue callback: standbys skip it. (The tick is timed
        where it runs, through ``ticking()``.)"""

        async def run(context: Any) -> None:
            if not self.elector.is_leader:
                return
            await job(context)

        return run

    # --- bot.dispatch.DispatchObserver ------------------------------------------------------

    def ticking(self) -> AbstractAsyncContextManager[None]:
        return self.ticks.ticking()

    def progress(self) -> None:
        self.ticks.progress()

    def capacity_checked(self, figures: CapacityFigures) -> None:
        """The daily capacity check's figures, for /metrics."""
        self.metrics.capacity_checked(
            messages=figures.messages,
            busiest_minute=figures.busiest_minute,
            expired=figures.expired,
            over=figures.over_capacity,
        )

    def outcome(self, kind: str, outcome: str, lateness: float | None) -> None:
        self.metrics.reminder_sent(kind, outcome, lateness)
        if outcome == "deactivated":
            self.metrics.deactivated()

    # --- one poller per bot and database; the webhook's registration ------------------------

    async def claim_polling(self, *, wait: float = POLLING_LOCK_WAIT_S) -> None:
        """Hold the polling lock until ``stop()``, or raise PollingTaken."""
        sqlite = _sqlite_file(self.settings.database_url)
        if sqlite is not None:
            lock = _FileLock(sqlite.with_name(sqlite.name + ".poller.lock"))
            if not lock.acquire():
                raise PollingTaken
            self._polling_lock = lock
            return
        if make_url(self.settings.database_url).get_backend_name() != "postgresql":
            return
        elector = PostgresElector(
            self.settings.database_url, namespace=f"poller:{self._bot_id}", retry_interval=1.0
        )
        await elector.start()
        try:
            async with asyncio.timeout(wait):
                await elector.wait_until_leader()
        except TimeoutError:
            await elector.stop()
            raise PollingTaken from None
        self._polling_elector = elector

    async def register_webhook(self, bot: Bot) -> None:
        """setWebhook: WEBHOOK_URL, with WEBHOOK_SECRET as ``secret_token``."""
        assert self.settings.webhook_url is not None and self.settings.webhook_secret is not None
        await bot.set_webhook(
            self.settings.webhook_url,
            secret_token=self.settings.webhook_secret.get_secret_value(),
            allowed_updates=Update.ALL_TYPES,
        )
        log.info("webhook registered; Telegram posts updates to this deployment's WEBHOOK_URL")
