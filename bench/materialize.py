"""What does materialising one due reminder cost? ``python -m bench.materialize``.

``Store.materialize_due`` runs for every reminder every night (issue 11 item 4: target
≤ 50 µs per reminder). This loads the benchmark population (``bench/population.py``) into a
migrated SQLite database, moves the clock 25 hours on so every reminder is due, and calls
``materialize_due`` in the dispatcher's batches (500) until nothing is left, with a grace
long enough that every occurrence becomes a delivery (the meal ones choosing and remembering
a meal); then once more on a fresh copy with no grace, so every occurrence is stale (the
downtime path). Wall time per reminder, µs, and the CPU time of the process (the driver
thread included): on a shared machine the wall time mostly measures the wait for a core.
Before the clock starts the child does what ``sleepbot run`` does after start-up (``gc.freeze``
of the start-up heap, ``bot.app.freeze_start_up_heap``), where the checkout has it.

``--baseline DIR`` also measures the ``bot`` package of another checkout (e.g. a worktree of
main), in the same invocation, alternating rounds on fresh copies of the same population, so
before and after see the same machine state. Each measurement is a child process: the child
is this file run as a script with ``PYTHONPATH`` set to the checkout, so it imports that
checkout's ``bot``. Each checkout's database is migrated by that checkout (a child too: its
schema may differ, e.g. one migration fewer), then the same people and reminders go in.

``--database-url postgresql+asyncpg://…`` measures PostgreSQL instead: a private database is
created on that server for each measurement (``CREATE DATABASE``, dropped afterwards) and the
population is copied in through SQLAlchemy Core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
T0: Final = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)  # bench.scenarios.T0
DUE_AT: Final = T0 + timedelta(hours=25)  # after every reminder's first fire time
BATCH: Final = 500  # Dispatcher.batch_size's default


def _offsets() -> dict[str, int]:
    from bot.content import load_content

    content = load_content(REPO / "content")
    return {kind.kind: kind.default_offset_minutes for kind in content.reminder_kinds}


def _chooser() -> Any:
    """The dispatcher's meal chooser (bot.dispatch.Dispatcher._materialize), on real content."""
    from bot.content import load_content
    from bot.meals import choose_meal

    ideas = load_content(REPO / "content").meal_ideas

    def chooser(diet: str, recent: Sequence[str]) -> str | None:
        try:
            return choose_meal(ideas, diet, recent).id
        except ValueError:
            return None

    return chooser


async def _measure(url: str, grace: timedelta) -> dict[str, Any]:
    """Child side: materialise everything due at DUE_AT on ``url``; seconds and counts."""
    from bot.storage import open_store

    store = await open_store(url, default_offsets=_offsets())
    chooser = _chooser()
    # What `sleepbot run` does once started (bot.app.serve): everything start-up built is
    # frozen out of the cyclic collector's reach. bot.app is imported for every checkout, so
    # the heaps compare; a checkout from before freeze_start_up_heap (a baseline) skips it.
    import bot.app

    freeze = getattr(bot.app, "freeze_start_up_heap", None)
    if freeze is not None:
        freeze()
    claimed = created = stale = batches = 0
    started = time.perf_counter()
    cpu = time.process_time()
    try:
        while True:
            result = await store.materialize_due(
                DUE_AT, grace=grace, limit=BATCH, choose_meal=chooser
            )
            batches += 1
            claimed += result.claimed
            created += result.materialized
            stale += len(result.stale)
            if result.claimed < BATCH:
                break
    finally:
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        await store.close()
    return {
        "claimed": claimed,
        "created": created,
        "stale": stale,
        "batches": batches,
        "wall_s": wall,
        "cpu_s": cpu,
        "us_per_reminder": wall / max(claimed, 1) * 1e6,
    }


def _populate_sqlite(path: Path, people: int, bot_from: Path) -> int:
    """The benchmark population in a database migrated by ``bot_from``'s ``bot``."""
    from bench.population import populate

    env = {**os.environ, "PYTHONPATH": str(bot_from)}
    command = [sys.executable, str(Path(__file__).resolve()), "--migrate", str(path)]
    output = subprocess.run(
        command, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=False
    )
    if output.returncode != 0:
        raise RuntimeError(f"migration failed ({bot_from}):\n{output.stderr}")
    population = populate(path, people, list(_offsets().items()), T0)
    return population.reminders_scheduled


def _migrate_main(path: str) -> int:
    """``materialize.py --migrate PATH``: create and migrate an SQLite database, nothing else."""
    from bot.storage import open_store

    async def migrate() -> None:
        store = await open_store(f"sqlite+aiosqlite:///{path}", default_offsets=_offsets())
        await store.close()

    asyncio.run(migrate())
    return 0


async def _copy_to_postgres(source: Path, url: str) -> None:
    """Copy the populated SQLite tables into the (migrated) PostgreSQL database at ``url``."""
    from sqlalchemy import insert, select

    from bot.storage.dialects import create_engine
    from bot.storage.models import PEOPLE, REMINDERS

    reader = create_engine(f"sqlite+aiosqlite:///{source}")
    writer = create_engine(url)
    try:
        async with reader.connect() as src, writer.begin() as dst:
            for table in (PEOPLE, REMINDERS):
                result = await src.stream(select(table))
                async for chunk in result.mappings().partitions(20_000):
                    await dst.execute(insert(table), [dict(row) for row in chunk])
            await dst.exec_driver_sql("ANALYZE")
    finally:
        await reader.dispose()
        await writer.dispose()


async def _private_database(server_url: str, name: str, *, drop: bool) -> str:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            if not drop:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def child_main(argv: Sequence[str]) -> int:
    """``materialize.py --child URL GRACE_S [SQLITE_SOURCE]``: one measurement, JSON on stdout."""
    url, grace_s = argv[0], float(argv[1])
    if url.startswith("postgresql"):
        from bot.storage import open_store

        async def prepare() -> None:
            store = await open_store(url, default_offsets=_offsets())
            await store.close()
            await _copy_to_postgres(Path(argv[2]), url)

        asyncio.run(prepare())
    result = asyncio.run(_measure(url, timedelta(seconds=grace_s)))
    print(json.dumps(result))
    return 0


def _run_child(bot_from: Path, url: str, grace: timedelta, source: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(bot_from)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", url]
    command += [str(grace.total_seconds()), str(source)]
    output = subprocess.run(
        command, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=False
    )
    if output.returncode != 0:
        raise RuntimeError(f"measurement failed ({bot_from}):\n{output.stderr}")
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.materialize", description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per checkout")
    parser.add_argument("--baseline", type=Path, help="another checkout's root, e.g. /work/main")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: SQLite)")
    args = parser.parse_args(argv)
    checkouts = {"this": REPO}
    if args.baseline is not None:
        checkouts = {"baseline": args.baseline.resolve(), "this": REPO}
    workdir = Path(tempfile.mkdtemp(prefix="sleepbot-materialize-"))
    try:
        pristines = {name: workdir / f"pristine-{name}.sqlite3" for name in checkouts}
        counts = {_populate_sqlite(pristines[n], args.people, r) for n, r in checkouts.items()}
        if len(counts) != 1:
            raise RuntimeError(f"the checkouts' populations differ: {counts} reminders")
        (scheduled,) = counts
        print(f"{args.people:,} people, {scheduled:,} reminders due at {DUE_AT:%Y-%m-%d %H:%M}Z")
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _ in range(args.rounds):
            for path_name, grace in (("fresh", timedelta(days=2)), ("stale", timedelta(0))):
                for name, root in checkouts.items():
                    if args.database_url:
                        url = asyncio.run(
                            _private_database(args.database_url, "bench_materialize", drop=False)
                        )
                    else:
                        run = workdir / "run.sqlite3"
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{run}{suffix}").unlink(missing_ok=True)
                        shutil.copyfile(pristines[name], run)
                        url = f"sqlite+aiosqlite:///{run}"
                    try:
                        result = _run_child(root, url, grace, pristines[name])
                    finally:
                        if args.database_url:
                            asyncio.run(
                                _private_database(args.database_url, "bench_materialize", drop=True)
                            )
                    runs.setdefault((path_name, name), []).append(result)
                    print(
                        f"  {path_name:5} {name:8} {result['us_per_reminder']:7.1f} µs/reminder "
                        f"({result['claimed']:,} claimed, {result['created']:,} created, "
                        f"{result['stale']:,} stale, {result['wall_s']:.2f} s wall, "
                        f"{result['cpu_s']:.2f} s CPU)",
                        flush=True,
                    )
        backend = "PostgreSQL" if args.database_url else "SQLite"
        print(f"\n{backend}, median µs per reminder over {args.rounds} round(s), wall (CPU):")
        print("| path | " + " | ".join(checkouts) + " |")
        print("| --- |" + " ---: |" * len(checkouts))
        for path_name in ("fresh", "stale"):
            cells = []
            for name in checkouts:
                done = runs[(path_name, name)]
                wall = statistics.median(r["us_per_reminder"] for r in done)
                cpu = statistics.median(r["cpu_s"] / max(r["claimed"], 1) * 1e6 for r in done)
                cells.append(f"{wall:.1f} ({cpu:.1f})")
            print(f"| {path_name} | " + " | ".join(cells) + " |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        # Run as a script: drop bench/ itself from the path, PYTHONPATH picks the checkout.
        sys.path.pop(0)
        sys.exit(child_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "--migrate":
        sys.path.pop(0)
        sys.exit(_migrate_main(sys.argv[2]))
    sys.exit(main())
