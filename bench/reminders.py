"""Reminder scalability benchmark: ``python -m bench.reminders [--quick] [--only NAME ...]``.

Runs every scenario in its own fresh ``python -m bench.reminders --scenario NAME`` process (so
RSS is the scenario's own), all within one invocation (so ratios compare numbers from the same
machine state), then prints one Markdown report and writes it with the raw JSON to
``bench/results/``. Numbers, not pass/fail: targets are printed next to them with ✓/✗.

Scenarios, in run order (``--only`` pulls in what a scenario needs, e.g. its database):

* ``import``          RSS of a process that only imported the bot (the baseline for deltas)
* ``populate-100k``   bulk-load 100k people x 3 reminders (schema from the real migrations)
* ``app-100k``        production start-up: build_app + running() + first tick, and its RSS
* ``jobqueue-100k``   the naive design: one PTB ``run_daily`` job per person
* ``store-100k``      start-up, RSS, empty-tick cost, and one tick with 1% of reminders due
* ``populate-1m``, ``app-1m``, ``store-1m``   the same at 1M people (skipped by ``--quick``)
* ``send-unlimited``  our own send ceiling through Dispatcher.tick, no rate limiter
* ``send-limited``    the bot's rate limiter vs a fake enforcing 30 msg/s and 1 msg/s per chat:
                      rate, 429s, lateness
* ``send-limited-paced``  the same with the previous limiter (bench/paced_limiter.py): before/after
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

ORDER: Final = (
    "import",
    "populate-100k",
    "app-100k",
    "jobqueue-100k",
    "store-100k",
    "populate-1m",
    "app-1m",
    "store-1m",
    "send-unlimited",
    "send-limited",
    "send-limited-paced",
)
NEEDS: Final[dict[str, tuple[str, ...]]] = {
    "app-100k": ("populate-100k",),
    "jobqueue-100k": ("populate-100k",),
    "store-100k": ("populate-100k",),
    "app-1m": ("populate-1m",),
    "store-1m": ("populate-1m",),
}
FULL_ONLY: Final = frozenset({"populate-1m", "app-1m", "store-1m"})
# Generous per-scenario limits (seconds): a hung scenario is killed, the rest still run.
TIMEOUTS: Final[dict[str, float]] = {
    "populate-1m": 900,
    "store-1m": 1500,
    "send-limited": 1200,
    "send-limited-paced": 1200,
    "jobqueue-100k": 900,
}
DEFAULT_TIMEOUT: Final = 600.0
REPO: Final = Path(__file__).resolve().parent.parent
RESULTS_DIR: Final = REPO / "bench" / "results"


def plan(only: Sequence[str] | None, quick: bool) -> list[str]:
    """The scenarios to run, in order: the selection plus what it needs, plus ``import``."""
    wanted = set(only) if only else {name for name in ORDER if not quick or name not in FULL_ONLY}
    unknown = wanted - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}; known: {ORDER}")
    pending = list(wanted)
    while pending:
        for need in NEEDS.get(pending.pop(), ()):
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    wanted.add("import")
    return [name for name in ORDER if name in wanted]


def run_child(name: str, workdir: Path, quick: bool) -> dict[str, Any]:
    """One scenario in a fresh interpreter, killed (with its fake server) if it hangs."""
    output = workdir / f"{name}.result.json"
    command = [
        sys.executable,
        "-m",
        "bench.reminders",
        "--scenario",
        name,
        "--workdir",
        str(workdir),
    ]
    if quick:
        command.append("--quick")
    timeout = TIMEOUTS.get(name, DEFAULT_TIMEOUT)
    started = time.perf_counter()
    # Own session: on a timeout the whole group (the scenario and its fake Telegram) is killed.
    with subprocess.Popen(command, cwd=REPO, start_new_session=True) as child:
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return {"error": f"timed out after {timeout:.0f} s", "wall_s": timeout}
    wall = time.perf_counter() - started
    if output.exists():
        result: dict[str, Any] = json.loads(output.read_text())
    else:
        result = {"error": f"exited with code {code} and wrote no result"}
    result["wall_s"] = round(wall, 2)
    return result


def environment() -> dict[str, Any]:
    import sqlite3

    import sqlalchemy
    import telegram

    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "python_telegram_bot": telegram.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "commit": commit,
        "load_average": os.getloadavg(),
    }


def orchestrate(only: Sequence[str] | None, quick: bool, keep: bool) -> int:
    from bench.report import render  # the parent never imports the bot or the scenarios

    names = plan(only, quick)
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="sleepbot-bench-"))
    results: dict[str, dict[str, Any]] = {}
    print(f"sleepbot reminder benchmark: {', '.join(names)} (work dir {workdir})", file=sys.stderr)
    try:
        for name in names:
            missing = [need for need in NEEDS.get(name, ()) if "error" in results.get(need, {})]
            if missing:
                results[name] = {"error": f"skipped: {', '.join(missing)} failed"}
                continue
            print(f"▶ {name}", file=sys.stderr, flush=True)
            results[name] = run_child(name, workdir, quick)
            status = results[name].get("error") or "ok"
            print(f"  {name}: {status} ({results[name]['wall_s']} s)", file=sys.stderr)
    finally:
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "mode": ("quick" if quick else "full") + (", --only" if only else ""),
        "scenarios": names,
        "total_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "environment": environment(),
    }
    markdown = render(meta, results)
    print(markdown)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    kind = "only" if only else ("quick" if quick else "full")
    stem = f"reminders-{started.strftime('%Y%m%d-%H%M%S')}-{kind}"
    (RESULTS_DIR / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, default=str)
    )
    (RESULTS_DIR / f"{stem}.md").write_text(markdown)
    print(f"wrote {RESULTS_DIR / stem}.json and .md", file=sys.stderr)
    return 1 if any("error" in result for result in results.values()) else 0


def run_scenario(name: str, workdir: Path, quick: bool) -> int:
    """Child side: run one scenario, write its JSON next to the databases."""
    from bench.scenarios import SCENARIOS, Context

    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    output = workdir / f"{name}.result.json"
    try:
        result = asyncio.run(SCENARIOS[name](Context(workdir=workdir, quick=quick)))
    except BaseException as error:  # report it in the table; the parent goes on
        traceback.print_exc()
        output.write_text(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    output.write_text(json.dumps(result, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reminders", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k only, 1,000 limited sends")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=ORDER, help="scenarios")
    parser.add_argument("--keep", action="store_true", help="keep the temporary databases")
    parser.add_argument("--scenario", choices=ORDER, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scenario is not None:
        if args.workdir is None:
            parser.error("--scenario needs --workdir")
        return run_scenario(args.scenario, args.workdir, args.quick)
    return orchestrate(args.only, args.quick, args.keep)


if __name__ == "__main__":
    sys.exit(main())
