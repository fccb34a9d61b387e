"""One elected reminder sender among replicas, and standbys that take over when it dies.

Every replica handles updates; only the leader runs the dispatcher. (Two dispatchers would
still not send a reminder twice — claims are ``FOR UPDATE SKIP LOCKED`` — but they would
split the 30 msg/s between them and double the database work.)

**PostgreSQL** (``PostgresElector``): a session-level advisory lock,
``pg_try_advisory_lock(key)``, taken on a connection of its own and held while leading.
PostgreSQL releases it when that session ends, however the process ended. Standbys try for
the lock every ``retry_interval``; the leader checks its connection every
``check_interval`` and hears at once when the server closes it (asyncpg's termination
listener). How fast a dead leader's lock is freed depends on how it died:

* killed, even by SIGKILL, on a live host: the kernel closes its socket, the server sees
  EOF at once; a standby leads within ``retry_interval`` (2 s);
* frozen (SIGSTOP, a blocked event loop): ``idle_session_timeout`` (10 s, PostgreSQL 14+)
  ends the silent session; within 10 + 2 s;
* its host or network gone (no FIN ever arrives): the server's TCP keepalives
  (``tcp_keepalives_idle/interval/count`` = 5 s / 2 s / 3) drop it after ~11 s; within
  ~13 s.

All three stay within the 15 s the issue asks for (``python -m bench.leader`` measures
them). A leader that lost its session may believe it leads for up to ``check_interval``
more; claims in the database keep that harmless. The connection must reach PostgreSQL
directly or through a session-pooling proxy: a transaction pooler (PgBouncer
``pool_mode=transaction``) cannot hold a session lock.

**SQLite** (``LocalElector``): one process owns the file, so it always leads.

Wiring: ``await elector.start()`` after start-up and ``await elector.stop()`` before
shutdown; the dispatcher's job returns at once unless ``elector.is_leader``, or runs inside
``async with elector.leading(): ...``, which waits for leadership and cancels the block
(raising ``LeadershipLost``) when it is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Literal

from sqlalchemy import make_url

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

Role = Literal["leader", "standby", "single"]

CHECK_INTERVAL_S: Final = 2.0
RETRY_INTERVAL_S: Final = 2.0
CONNECT_TIMEOUT_S: Final = 5.0
IDLE_SESSION_TIMEOUT: Final = "10s"
# Server-side keepalives for the lock's session: a vanished client is dropped after
# idle + interval * count = 5 + 2 * 3 = 11 s.
KEEPALIVES: Final = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}
APPLICATION_NAME: Final = "sleepbot-leader"


class LeadershipLost(Exception):
    """Raised out of ``leading()`` when this replica stopped being the leader."""


def lock_key(namespace: str) -> int:
    """The advisory lock's 64-bit key: one per bot (pass the bot's id), stable forever."""
    digest = hashlib.sha256(f"sleepbot-reminder-sender:{namespace}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Elector:
    """Leadership state and the ways to wait on it; subclasses campaign for it."""

    single: bool = False

    def __init__(self) -> None:
        self._leader = False
        self._leading = asyncio.Event()
        self._standing_by = asyncio.Event()
        self._standing_by.set()
        self._on_loss: list[Callable[[], None]] = []

    @property
    def is_leader(self) -> bool:
        return self._leader

    def role(self) -> Role:
        """For /healthz: "single" when there is nobody to elect, else leader or standby."""
        if self.single:
            return "single"
        return "leader" if self._leader else "standby"

    def _set_leader(self, leading: bool) -> None:
        if leading == self._leader:
            return
        self._leader = leading
        if leading:
            self._standing_by.clear()
            self._leading.set()
            return
        self._leading.clear()
        self._standing_by.set()
        for callback in list(self._on_loss):
            callback()

    async def wait_until_leader(self) -> None:
        await self._leading.wait()

    async def wait_until_standby(self) -> None:
        await self._standing_by.wait()

    @asynccontextmanager
    async def leading(self) -> AsyncIterator[None]:
        """Wait until this replica leads, run the block, and cancel it if leadership is
        lost meanwhile (the block then ends with ``LeadershipLost``)."""
        await self.wait_until_leader()
        task = asyncio.current_task()
        assert task is not None
        lost = False

        def on_loss() -> None:
            nonlocal lost
            lost = True
            task.cancel()

        self._on_loss.append(on_loss)
        try:
            if not self._leader:  # lost between waking and registering
                raise LeadershipLost
            yield
        except asyncio.CancelledError:
            if lost and task.uncancel() == 0:
                raise LeadershipLost from None
            raise
        finally:
            self._on_loss.remove(on_loss)
        if lost:  # the block swallowed our cancellation
            task.uncancel()
            raise LeadershipLost

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class LocalElector(Elector):
    """SQLite: one process, so it leads from start to stop."""

    single = True

    async def start(self) -> None:
        self._set_leader(True)

    async def stop(self) -> None:
        self._set_leader(False)


class PostgresElector(Elector):
    """Leadership through a PostgreSQL session-level advisory lock; see the module docstring."""

    def __init__(
        self,
        database_url: str,
        *,
        namespace: str,
        check_interval: float = CHECK_INTERVAL_S,
        retry_interval: float = RETRY_INTERVAL_S,
        idle_session_timeout: str = IDLE_SESSION_TIMEOUT,
    ) -> None:
        super().__init__()
        url = make_url(database_url)
        if url.get_backend_name() != "postgresql":
            raise ValueError("PostgresElector needs a postgresql:// URL")
        url = url.set(drivername="postgresql+asyncpg")
        _, self._connect_args = url.get_dialect()().create_connect_args(url)
        self.key = lock_key(namespace)
        self.check_interval = check_interval
        self.retry_interval = retry_interval
        self.idle_session_timeout = idle_session_timeout
        self.backend_pid: int | None = None  # of the session holding or seeking the lock
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self._closed = asyncio.Event()

    async def start(self) -> None:
        """Begin campaigning in the background (returns at once; see ``wait_until_leader``)."""
        if self._task is None:
            self._task = asyncio.create_task(self._campaign(), name="leader-election")

    async def stop(self) -> None:
        """Stop campaigning; a leader closes its session, which frees the lock at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect(graceful=True)
        self._set_leader(False)

    async def _connect(self) -> asyncpg.Connection:
        import asyncpg  # the postgres extra: only a PostgreSQL deployment elects a leader

        connection: asyncpg.Connection = await asyncpg.connect(
            **self._connect_args,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": APPLICATION_NAME, **KEEPALIVES},
        )
        try:
            await connection.execute(
                "SELECT set_config('idle_session_timeout', $1, false)", self.idle_session_timeout
            )
        except asyncpg.PostgresError:  # before PostgreSQL 14
            log.warning(
                "this PostgreSQL has no idle_session_timeout (added in 14): a frozen leader "
                "keeps the lock until its process dies"
            )
        self._closed.clear()
        connection.add_termination_listener(lambda _: self._closed.set())
        self.backend_pid = connection.get_server_pid()
        return connection

    async def _disconnect(self, *, graceful: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        if graceful:
            with contextlib.suppress(Exception):
                await connection.close(timeout=CONNECT_TIMEOUT_S)
                return
        connection.terminate()

    async def _campaign(self) -> None:
        failing: str | None = None
        while True:
            try:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await self._connect()
                await self._seek_or_keep(self._connection)
                if failing is not None:
                    log.info("leader election reaches the database again")
                    failing = None
            except Exception as error:  # whatever broke, the campaign goes on
                problem = type(error).__name__
                if self._leader:
                    log.warning(
                        "lost the reminder-sender lock (%s): another replica may take over",
                        problem,
                    )
                elif failing is None:
                    log.warning("leader election cannot reach the database (%s)", problem)
                failing = problem
                self._set_leader(False)
                await self._disconnect(graceful=False)
                await asyncio.sleep(self.retry_interval)

    async def _seek_or_keep(self, connection: asyncpg.Connection) -> None:
        """One step: a standby tries for the lock; a leader checks it still has its session.
        Connection problems raise."""
        if not self._leader:
            got = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1)", self.key, timeout=self.check_interval
            )
            if got:
                log.info("this replica now sends the reminders (lock %d)", self.key)
                self._set_leader(True)
                return
            await asyncio.sleep(self.retry_interval)
            return
        # Leading: sleep until the next check, or until the server closes our session.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), self.check_interval)
        if self._closed.is_set():
            raise ConnectionResetError("the server closed the lock's session")
        await connection.fetchval("SELECT 1", timeout=self.check_interval)


def elector_for(database_url: str, *, namespace: str) -> Elector:
    """The elector a deployment needs: PostgreSQL's lock, or trivially local on SQLite."""
    backend = make_url(database_url).get_backend_name()
    if backend == "postgresql":
        return PostgresElector(database_url, namespace=namespace)
    return LocalElector()
