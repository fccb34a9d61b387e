"""Everything that differs between SQLite and PostgreSQL lives here, and only here.

* SQLite: WAL, ``synchronous=NORMAL``, foreign keys, a busy timeout, ``secure_delete`` (erased
  rows are overwritten with zeros, not just unlinked), a private file (0600 in a 0700 directory
  when we create them), and ``BEGIN IMMEDIATE`` for every transaction. The sqlite3 driver
  would otherwise start a transaction only at the first write, so a read-then-write (load a
  person, recompute, update) could act on stale reads; taking the write lock up front
  serialises writers the way ``SELECT ... FOR UPDATE`` does on PostgreSQL. Within one process
  writers queue on an asyncio lock before that (``writer_lock``), so they never meet in
  SQLite's busy handler, which sleeps between retries. Transactions marked
  ``READ_ONLY`` begin deferred and read a WAL snapshot, so a read that must be quick (the
  dispatcher's check before each send) never queues behind a writer. SQLite has no row
  locks, so ``FOR UPDATE [SKIP LOCKED]`` is simply omitted by SQLAlchemy there, which is right:
  one writer at a time can't double-claim anything.
* PostgreSQL: optional schema (``search_path``), and an advisory lock so that two processes
  starting at once don't both run the same migration.
* ``INSERT ... ON CONFLICT DO NOTHING`` exists in both, under different constructors.
* ``execute_many``: on SQLite, a hot statement for many rows goes to the driver's own
  ``executemany`` with its values already converted; elsewhere SQLAlchemy runs it as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState, StaticPool
from sqlalchemy.sql.dml import Insert, UpdateBase

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
# Execution option for a transaction that will not write (SQLite: a plain, deferred BEGIN).
READ_ONLY: Final = "sleepbot_read_only"
# With READ_ONLY, for a transaction of one SELECT: SQLite runs it without BEGIN (autocommit:
# one statement reads one snapshot anyway), saving the BEGIN's round trips to the driver thread.
SINGLE_STATEMENT: Final = "sleepbot_single_statement"
# Arbitrary but fixed: "sleepbot" migrations, one at a time per database.
_MIGRATION_LOCK_KEY: Final = 0x51EE9B07


class UnsupportedDatabaseError(ValueError):
    """The URL names a database this bot does not support (only SQLite and PostgreSQL)."""


def create_engine(url: str | URL, *, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs.

    For SQLite files the parent directory is created, so ``sqlite+aiosqlite:///./data/x.sqlite3``
    works on a fresh checkout. ``schema`` (PostgreSQL only) sets ``search_path``, so one server
    can host several isolated instances (the tests use one schema per test).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise UnsupportedDatabaseError("schema= is a PostgreSQL option")
        if parsed.drivername != "sqlite+aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        _ensure_sqlite_parent(parsed)
        # The pool's rollback-on-return is replaced by _on_reset (only when still needed).
        engine = create_async_engine(parsed, echo=echo, pool_reset_on_return=None)
        _install_sqlite_hooks(engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername != "postgresql+asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        connect_args: dict[str, Any] = {}
        if schema is not None:
            connect_args["server_settings"] = {"search_path": schema}
        return create_async_engine(
            parsed, echo=echo, connect_args=connect_args, pool_pre_ping=True, pool_size=10
        )
    raise UnsupportedDatabaseError(
        f"unsupported database {parsed.drivername!r}: use sqlite+aiosqlite:///path or "
        "postgresql+asyncpg://user@host/db"
    )


def create_read_only_engine(url: str | URL, *, schema: str | None = None) -> AsyncEngine:
    """An engine that cannot write, for reports beside a running bot (``sleepbot stats``).

    SQLite: the file opened with ``mode=ro`` (never created), ``query_only``, and a deferred
    ``BEGIN``, so a report reads one WAL snapshot and never waits for, or blocks, the bot's
    writers. PostgreSQL: ``default_transaction_read_only``. Raises ``FileNotFoundError`` for a
    SQLite file that does not exist.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = Path(parsed.database or "").expanduser()
        if not parsed.database or parsed.database == ":memory:" or not path.is_file():
            raise FileNotFoundError(f"no SQLite database at {parsed.database or '(none)'}")
        uri = path.resolve().as_uri().replace("file://", "file:", 1)
        readonly = URL.create("sqlite+aiosqlite", database=f"{uri}?mode=ro", query={"uri": "true"})
        engine = create_async_engine(readonly)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA query_only=ON")
            finally:
                cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN")

        return engine
    if backend == "postgresql":
        settings = {"default_transaction_read_only": "on"}
        if schema is not None:
            settings["search_path"] = schema
        return create_async_engine(
            parsed.set(drivername="postgresql+asyncpg"),
            connect_args={"server_settings": settings},
        )
    raise UnsupportedDatabaseError(f"unsupported database {parsed.drivername!r}")


def writer_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """Where this process's writers to a SQLite file take turns (None: not needed).

    SQLite has one writer at a time. A second connection's ``BEGIN IMMEDIATE`` waits in
    SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries whether or not the lock
    was freed meanwhile; the dispatcher's claims, materialising and per-send rounds, and the
    handlers' updates, all in one process, kept colliding there. Queued on this lock instead, the
    next writer starts the moment the last one commits. Other processes (a second bot on the
    same file, the CLI) still meet in the busy handler. One lock per engine, so every Store on
    it shares it; PostgreSQL has row locks, and the in-memory database serialises everything
    already (``is_single_connection``).
    """
    if engine.dialect.name != "sqlite" or is_single_connection(engine):
        return None
    lock = _WRITER_LOCKS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITER_LOCKS[engine.sync_engine] = asyncio.Lock()
    return lock


_WRITER_LOCKS: Final[weakref.WeakKeyDictionary[Engine, asyncio.Lock]] = weakref.WeakKeyDictionary()


def is_single_connection(engine: AsyncEngine) -> bool:
    """True for an in-memory SQLite database: one shared connection, so sessions must queue."""
    return isinstance(engine.sync_engine.pool, StaticPool)


def _ensure_sqlite_parent(url: URL) -> None:
    """Create the directory (0700) and the file (0600) before SQLite does, so people's data is
    readable by this user only; SQLite gives the -wal and -shm files the database's mode."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        # O_EXCL: whoever creates it first decides the mode; a concurrent creator is fine too.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction starts (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so everything after it waits for other connections' locks.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode")
            row = cursor.fetchone()
            # WAL is a property of the file: switch once, not per connect. Switching needs the
            # database to itself; if another connection holds it (two processes creating the
            # file at once), that one switches it and this connection follows on its next read.
            if row is None or str(row[0]).lower() != "wal":
                try:
                    cursor.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error):
                        raise
                    log.debug("journal_mode=WAL deferred: database busy (%s)", error)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted and overwritten content is zeroed in the file, not just marked free.
            cursor.execute("PRAGMA secure_delete=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, state: PoolResetState
    ) -> None:
        # A connection goes back to the pool after every transaction, almost always committed
        # or rolled back already: the pool's unconditional ROLLBACK was one more round trip
        # to aiosqlite's thread per transaction (a tenth of a dispatcher round). SQLite says
        # whether a transaction is still open (a plain read of the C connection's state).
        if state.terminate_only or not state.asyncio_safe:
            return  # being closed anyway, or outside the event loop: no I/O (as the pool)
        adapted: Any = dbapi_connection
        if adapted.driver_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Take the write lock at BEGIN: read-modify-write transactions never see stale rows
        # and never fail half-way with "database is locked" on lock upgrade. A transaction
        # that only reads (READ_ONLY) takes a snapshot instead and waits for no writer.
        options = connection.get_execution_options()
        if options.get(SINGLE_STATEMENT):
            return
        if options.get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


async def wipe_erased_data(engine: AsyncEngine) -> None:
    """After an erasure: make sure the erased bytes are gone from every database file.

    SQLite (with ``secure_delete``) zeroes them in the pages it writes, but in WAL mode those
    pages, and older copies still holding the data, sit in the -wal file until a checkpoint.
    ``wal_checkpoint(TRUNCATE)`` copies them into the database file and empties the -wal file.
    PostgreSQL has no equivalent a client can force: see the README (Privacy) for what VACUUM
    does and does not guarantee.
    """
    if engine.dialect.name != "sqlite" or is_single_connection(engine):
        return
    async with engine.connect() as connection:
        # The driver's own connection: SQLAlchemy would open a transaction (BEGIN IMMEDIATE),
        # inside which a checkpoint cannot complete.
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, _frames, _copied = await cursor.fetchone()
        await cursor.close()
    if busy:
        log.warning(
            "erased data may stay in the SQLite -wal file until the next checkpoint: the database "
            "was busy"
        )


def insert_ignoring_conflicts(dialect_name: str, table: Table, *columns: str) -> Insert:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for the named dialect."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(columns))
    if dialect_name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(columns))
    raise UnsupportedDatabaseError(dialect_name)


async def execute_many(
    connection: AsyncConnection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Run ``statement`` (an INSERT or UPDATE without RETURNING) once per row; on SQLite the
    number of rows it changed (an ``INSERT … ON CONFLICT DO NOTHING`` counts only the rows
    inserted), elsewhere the driver's row count, which asyncpg's executemany does not give
    reliably (a count needed there comes from RETURNING, as in ``_insert_deliveries``).

    On SQLite the driver's own ``executemany`` runs the statement, compiled once, with each
    row's values converted by the columns' own bind processors into a tuple: SQLAlchemy's
    per-row parameter work (``construct_params``, the processors through a dict of every
    column, insertmanyvalues' batching) was about half of the Python time of the statements
    ``materialize_due`` runs for every reminder every night (issue 11, bench/materialize.py).
    SQLite counts rows changed per execution (``sqlite3_changes``: a row DO NOTHING skipped
    is not one), and the driver sums them, so the count needs no RETURNING. Every row must
    have the keys of the first. Other dialects: SQLAlchemy's usual executemany.
    """
    if not rows:
        return 0
    if connection.dialect.name != "sqlite":
        result = await connection.execute(statement, list(rows))
        return int(result.rowcount)
    plan = _driver_plan(statement, tuple(rows[0]), connection.dialect)
    # Column by column (a comprehension each), then zipped into the rows' tuples: about half
    # the cost of a tuple built per row through a generator.
    columns = [
        [row[key] for row in rows] if convert is None else [convert(row[key]) for row in rows]
        for key, convert in zip(plan.keys, plan.converters, strict=True)
    ]
    result = await connection.exec_driver_sql(plan.sql, list(zip(*columns, strict=True)))
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class _DriverPlan:
    """A statement compiled for the driver: its SQL, and per positional parameter the row key
    and the bind processor of its type (None: passed as it is)."""

    sql: str
    keys: tuple[str, ...]
    converters: tuple[Callable[[Any], Any] | None, ...]


@functools.lru_cache(maxsize=64)
def _driver_plan(statement: UpdateBase, keys: tuple[str, ...], dialect: Dialect) -> _DriverPlan:
    """Compile ``statement`` for rows with ``keys`` (an INSERT names those columns), once.

    A parameter the rows do not give (a Python-side column default, a bound literal) is
    refused rather than guessed: SQLAlchemy's own path would have filled it in.
    """
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    order = compiled.positiontup
    if order is None:
        raise ValueError(f"{dialect.name} does not use positional parameters")
    missing = [name for name in order if name not in keys]
    if missing:
        raise ValueError(f"rows do not give {missing} for: {compiled.string}")
    converters = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
    )
    return _DriverPlan(compiled.string, tuple(order), converters)


def lock_for_migration(connection: Connection) -> None:
    """Serialise concurrent start-ups on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
