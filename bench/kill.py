"""Crash and stop drills: ``sleepbot run`` as a real process, killed mid-burst, counted at Telegram.

    python -m bench.kill                                   # SQLite: SIGKILL x3 + SIGTERM
    python -m bench.kill --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python -m bench.kill --sigterm-reminders 0             # the SIGKILL drill only

SIGKILL drill: 2,000 reminders are due at once; the fake Bot API runs in its own process and
answers 429 above 30 msg/s, as Telegram does. The bot is SIGKILLed three times mid-burst (after
300, 950 and 1,600 accepted messages by default) and restarted at once each time. Counted at
the fake: lost (a chat that never got its message), duplicates per kill (a chat that got it
twice, attributed to the kill that followed its first copy), how long after each restart the
dead process's claims were sent (the takeover), and the last message after the last restart.

SIGTERM drill: 10,000 due at once, SIGTERM after 1,000: the exit code and how long the
process took to exit, what it left claimed (must be nothing), then a restart that sends
the rest: lost and duplicates again.

With ``--database-url`` (PostgreSQL) each drill runs in a private database created on that
server and dropped afterwards, so nothing else on the server is touched. Numbers, not
pass/fail: the targets are printed next to them. Results go to ``bench/results/kill-*``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.fake_remote import TOKEN, RemoteFakeApi, SendRecord
from bench.population import insert_due_people
from bench.reminders import environment
from bot.storage import create_engine, open_store
from bot.storage.models import DELIVERIES

REPO: Final = Path(__file__).resolve().parent.parent
RESULTS_DIR: Final = REPO / "bench" / "results"
FIRST_CHAT: Final = 9_100_000_001
TELEGRAM_RATE: Final = 30
SEND_CONCURRENCY: Final = 16  # Dispatcher's default max_concurrency: the duplicate bound
TAKEOVER_MAX_S: Final = 15.0
STOP_MAX_S: Final = 10.0
LAST_AFTER_RESTART_MAX_S: Final = 30.0
POLL_S: Final = 0.1
# After every chat got its message: how long to keep counting, for late duplicates (a dead
# process's claim is taken over within 15 s of its death).
SETTLE_S: Final = 17.0


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sleepbot_command() -> list[str]:
    """The installed ``sleepbot`` entry point next to this interpreter, else ``-m bot``."""
    script = Path(sys.executable).with_name("sleepbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


@asynccontextmanager
async def private_database(base_url: str | None, workdir: Path, name: str) -> AsyncIterator[str]:
    """A fresh SQLite file, or a PostgreSQL database of its own (dropped afterwards)."""
    if base_url is None:
        yield f"sqlite+aiosqlite:///{workdir / f'{name}.sqlite3'}"
        return
    database = f"sleepbot_{name.replace('-', '_')}_{secrets.token_hex(4)}"
    admin = create_async_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{database}"'))
        try:
            yield make_url(base_url).set(database=database).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@dataclass
class Bot:
    """One ``sleepbot run`` process and its log file."""

    process: asyncio.subprocess.Process
    log_path: Path
    log_file: IO[str]
    started: float = field(default_factory=time.monotonic)

    async def exit_code(self, timeout: float) -> int:  # noqa: ASYNC109
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self.log_file.close()

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])


async def start_bot(api: RemoteFakeApi, database_url: str, workdir: Path, label: str) -> Bot:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONTENT_"))}
    environment = {
        **clean,
        "PYTHONPATH": str(REPO),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",
    }
    log_path = workdir / f"{label}.log"
    log_file = log_path.open("w")
    process = await asyncio.create_subprocess_exec(
        *sleepbot_command(),
        "run",
        cwd=workdir,
        env=environment,
        stdout=log_file,
        stderr=log_file,
    )
    return Bot(process, log_path, log_file)


async def accepted(api: RemoteFakeApi) -> list[SendRecord]:
    return (await api.report()).ok()


async def wait_until(
    api: RemoteFakeApi,
    done: Callable[[list[SendRecord]], bool],
    timeout: float,  # noqa: ASYNC109
    what: str,
    poll: float = POLL_S,
) -> list[SendRecord]:
    deadline = time.monotonic() + timeout
    while True:
        records = await accepted(api)
        if done(records):
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s ({len(records)} sent)")
        await asyncio.sleep(poll)


async def prepare(database_url: str, chats: Sequence[int]) -> None:
    """Schema by the real migrations, then every chat's reminder due now."""
    store = await open_store(database_url)
    try:
        await insert_due_people(store.engine, chats, datetime.now(UTC))
    finally:
        await store.close()


async def deliveries_by_status(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(DELIVERIES.c.status, func.count()).group_by(DELIVERIES.c.status)
            )
            return {str(status): int(count) for status, count in rows}
    finally:
        await engine.dispose()


async def claimed_chats(database_url: str) -> set[int]:
    """Chats whose delivery is ``sending`` right now: after a SIGKILL, the dead one's claims."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(DELIVERIES.c.chat_id).where(DELIVERIES.c.status == "sending")
            )
            return {int(chat) for chat in rows.scalars()}
    finally:
        await engine.dispose()


def counts(records: Sequence[SendRecord], chats: Sequence[int]) -> Counter[int]:
    per_chat = Counter(record.chat_id for record in records)
    return Counter({chat: per_chat.get(chat, 0) for chat in chats})


@dataclass
class Kill:
    after: int  # accepted messages when the signal was sent
    killed_at: float
    restarted_at: float
    claimed: set[int]  # the dead process's claims (sending rows) at the time of death


@asynccontextmanager
async def drill(
    base_url: str | None, workdir: Path, name: str, chats: Sequence[int]
) -> AsyncIterator[tuple[RemoteFakeApi, str]]:
    """The fake Telegram (30 msg/s, own process) and a private database with every chat's
    reminder due now."""
    async with (
        RemoteFakeApi(enforce_global_rate=TELEGRAM_RATE) as api,
        private_database(base_url, workdir, name) as url,
    ):
        await api.add_chats(chats)
        await prepare(url, chats)
        yield api, url


async def kill_drill(
    base_url: str | None, workdir: Path, reminders: int, kill_after: Sequence[int]
) -> dict[str, Any]:
    chats = list(range(FIRST_CHAT, FIRST_CHAT + reminders))
    async with drill(base_url, workdir, "kill", chats) as (api, url):
        bot = await start_bot(api, url, workdir, "kill-0")
        started = time.monotonic()
        kills: list[Kill] = []
        for number, point in enumerate(kill_after, 1):

            def reached(records: list[SendRecord], point: int = point) -> bool:
                return len(records) >= point

            records = await wait_until(api, reached, 300, f"{point} sent")
            bot.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await bot.exit_code(10)
            claimed = await claimed_chats(url)
            bot = await start_bot(api, url, workdir, f"kill-{number}")
            kills.append(Kill(len(records), killed_at, time.monotonic(), claimed))
            log(f"SIGKILL after {len(records)} messages; it held {len(claimed)} claims; restarted")
        budget = reminders / TELEGRAM_RATE * 2 + 120
        await wait_until(api, lambda r: len({x.chat_id for x in r}) >= reminders, budget, "all")
        await asyncio.sleep(SETTLE_S)
        records = await accepted(api)
        bot.process.send_signal(signal.SIGTERM)
        final_exit = await bot.exit_code(30)
        fake = await api.report()
        statuses = await deliveries_by_status(url)
    return _kill_result(chats, records, kills, started, final_exit, fake.count(429), statuses)


def _kill_result(
    chats: Sequence[int],
    records: Sequence[SendRecord],
    kills: Sequence[Kill],
    started: float,
    final_exit: int,
    http_429: int,
    statuses: dict[str, int],
) -> dict[str, Any]:
    per_chat = counts(records, chats)
    first_at: dict[int, float] = {}
    arrivals: dict[int, list[float]] = {}
    for record in records:
        first_at.setdefault(record.chat_id, record.at)
        arrivals.setdefault(record.chat_id, []).append(record.at)
    duplicated = [chat for chat, n in per_chat.items() if n > 1]
    per_kill = []
    for index, kill in enumerate(kills):
        since = kills[index - 1].restarted_at if index else started
        mine = [c for c in duplicated if since <= first_at[c] <= kill.killed_at]
        # The dead process's claims: when did each one (finally) get its message after the
        # restart? The last of those is the takeover.
        taken = sorted(
            max(arrivals[c]) - kill.restarted_at
            for c in kill.claimed
            if c in arrivals and max(arrivals[c]) > kill.restarted_at
        )
        late = {
            str(c): [round(at - kill.killed_at, 2) for at in arrivals[c]]
            for c in sorted(kill.claimed)
            if c in arrivals and max(arrivals[c]) - kill.killed_at > TAKEOVER_MAX_S
        }
        per_kill.append(
            {
                "after_messages": kill.after,
                "claims_sent_late": late,  # chat → its arrivals, seconds after the kill
                "claims_held_when_killed": len(kill.claimed),
                "duplicates": sum(per_chat[c] - 1 for c in mine),
                "restart_s": round(kill.restarted_at - kill.killed_at, 2),
                "first_claim_sent_s_after_restart": round(taken[0], 2) if taken else None,
                "claims_sent_by_s_after_restart": round(max(taken), 2) if taken else None,
            }
        )
    last_restart = kills[-1].restarted_at if kills else started
    last = max(record.at for record in records)
    return {
        "reminders": len(chats),
        "accepted_messages": len(records),
        "lost": sum(1 for n in per_chat.values() if n == 0),
        "duplicates": sum(n - 1 for n in per_chat.values() if n > 1),
        "kills": per_kill,
        "last_message_after_last_restart_s": round(last - last_restart, 2),
        "left_after_last_restart": sum(1 for r in records if r.at > last_restart),
        "http_429": http_429,
        "final_sigterm_exit_code": final_exit,
        "deliveries_by_status": statuses,
    }


async def sigterm_drill(
    base_url: str | None, workdir: Path, reminders: int, signal_after: int
) -> dict[str, Any]:
    chats = list(range(FIRST_CHAT, FIRST_CHAT + reminders))
    async with drill(base_url, workdir, "sigterm", chats) as (api, url):
        bot = await start_bot(api, url, workdir, "sigterm-0")
        poll = 0.25
        records = await wait_until(
            api, lambda r: len(r) >= signal_after, 600, f"{signal_after} sent", poll
        )
        bot.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        signalled_after = len(records)
        code = await bot.exit_code(120)
        took = time.monotonic() - signalled
        at_exit = await accepted(api)
        left = await deliveries_by_status(url)
        log(f"SIGTERM after {len(records)}: exit {code} in {took:.2f} s; rows {left}")
        stopped_log = bot.tail(6)
        bot = await start_bot(api, url, workdir, "sigterm-1")
        restarted = time.monotonic()
        budget = reminders / TELEGRAM_RATE * 2 + 120
        done = await wait_until(
            api, lambda r: len({x.chat_id for x in r}) >= reminders, budget, "all", poll
        )
        finished = max(record.at for record in done) - restarted
        await asyncio.sleep(5)
        records = await accepted(api)
        bot.process.send_signal(signal.SIGTERM)
        final_exit = await bot.exit_code(30)
        fake = await api.report()
    per_chat = counts(records, chats)
    return {
        "reminders": reminders,
        "accepted_when_signalled": signalled_after,
        "accepted_at_exit": len(at_exit),
        "exit_code": code,
        "exit_s": round(took, 2),
        "rows_at_exit": left,
        "stop_log_tail": stopped_log,
        "rest_sent_within_s_after_restart": round(finished, 1),
        "lost": sum(1 for n in per_chat.values() if n == 0),
        "duplicates": sum(n - 1 for n in per_chat.values() if n > 1),
        "http_429": fake.count(429),
        "final_sigterm_exit_code": final_exit,
    }


def _after_kill(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if value is None:
        return "— (none held)"
    return f"{value + item['restart_s']:.1f} s"


def render(meta: dict[str, Any], kill: dict[str, Any] | None, term: dict[str, Any] | None) -> str:
    lines = [
        f"## Kill drills ({meta['backend']}, commit {meta['commit']}, {meta['started']})",
        "",
        "| | value | target |",
        "| --- | --: | --- |",
    ]

    def row(name: str, value: object, target: str = "") -> None:
        lines.append(f"| {name} | {value} | {target} |")

    if kill is not None:
        row(
            f"SIGKILL ×{len(kill['kills'])} mid-burst of {kill['reminders']:,}: lost",
            kill["lost"],
            "0",
        )
        for number, item in enumerate(kill["kills"], 1):
            row(
                f"· kill {number} after {item['after_messages']:,} messages: duplicates "
                f"(claims it held)",
                f"{item['duplicates']} ({item['claims_held_when_killed']})",
                f"≤ {SEND_CONCURRENCY}",
            )
            row(
                f"· kill {number}: its claims taken over (first one sent) / all sent, "
                "seconds after the kill",
                f"{_after_kill(item, 'first_claim_sent_s_after_restart')} / "
                f"{_after_kill(item, 'claims_sent_by_s_after_restart')}",
                f"≤ {TAKEOVER_MAX_S:.0f} s",
            )
        row(
            "· last message after the last restart "
            f"({kill['left_after_last_restart']:,} sent after it)",
            f"{kill['last_message_after_last_restart_s']} s",
            f"≤ {LAST_AFTER_RESTART_MAX_S:.0f} s",
        )
        row("· 429 answers / final SIGTERM exit code", f"{kill['http_429']} / "
            f"{kill['final_sigterm_exit_code']}")  # fmt: skip
    if term is not None:
        row(
            f"SIGTERM after {term['accepted_when_signalled']:,} of {term['reminders']:,}: "
            "exit code / seconds to exit",
            f"{term['exit_code']} / {term['exit_s']} s",
            f"0 / ≤ {STOP_MAX_S:.0f} s",
        )
        row("· rows left by the stopped process", json.dumps(term["rows_at_exit"]), "no sending")
        row(
            "· the rest sent after the restart within / lost / duplicates",
            f"{term['rest_sent_within_s_after_restart']} s / {term['lost']} / {term['duplicates']}",
            "— / 0 / 0",
        )
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> int:
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"sleepbot-kill-{secrets.token_hex(3)}"
    workdir.mkdir(parents=True)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    meta = {
        "backend": backend,
        "commit": environment()["commit"],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "workdir": str(workdir),
    }
    print(f"kill drills on {backend}, logs in {workdir}", file=sys.stderr)
    kill = term = None
    if args.reminders:
        kill = await kill_drill(args.database_url, workdir, args.reminders, args.kill_after)
    if args.sigterm_reminders:
        term = await sigterm_drill(
            args.database_url, workdir, args.sigterm_reminders, args.sigterm_after
        )
    markdown = render(meta, kill, term)
    print(markdown)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / f"kill-{backend.lower()}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    stem.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "sigkill": kill, "sigterm": term}, indent=2)
    )
    stem.with_suffix(".md").write_text(markdown)
    print(f"wrote {stem}.json and .md", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kill", description=__doc__)
    parser.add_argument("--database-url", help="PostgreSQL server (a private database is made)")
    parser.add_argument("--reminders", type=int, default=2_000, help="SIGKILL drill size; 0: skip")
    # Not on multiples of 500 (the materialising batch), where nothing may be claimed.
    parser.add_argument("--kill-after", type=int, nargs="+", default=[300, 950, 1_600])
    parser.add_argument("--sigterm-reminders", type=int, default=10_000, help="0: skip")
    parser.add_argument("--sigterm-after", type=int, default=1_000)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
