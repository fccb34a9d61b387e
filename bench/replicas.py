"""Two webhook replicas, one PostgreSQL, the fake Bot API, and this script as the load balancer.

    python -m bench.replicas --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/0
    python -m bench.replicas --quick ...      # the smoke size tests/test_replicas_e2e.py runs

Two ``sleepbot run`` processes in webhook mode (their own ports, one WEBHOOK_SECRET, one
database, send limits shared through Redis). The fake Telegram runs in its own process and
answers 429 above 30 msg/s. Steps:

1. **Updates split**: ``--people`` people each send one message, posted alternately to the
   two replicas (round robin, as a load balancer would): each must be answered exactly once.
2. **Burst**: ``--reminders`` reminders become due at once; only the elected replica sends.
3. **SIGKILL** the sending replica after ``--kill-after`` messages; the standby takes the
   advisory lock and, once the dead one's heartbeat is 8 s old, its claims.

Counted at the fake, across both replicas: duplicates and missing reminders, the most
messages accepted in any sliding second and in any second per chat, and the takeover
(kill → the standby reports itself leader → the dead one's claims all sent). A private
database is created on the server and dropped afterwards; the bot id is the benchmark's own,
so its Redis keys and locks are nobody else's. Results go to ``bench/results/replicas-*``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx

from bench.fake_remote import RemoteFakeApi, SendRecord
from bench.kill import (
    RESULTS_DIR,
    Bot,
    claimed_chats,
    deliveries_by_status,
    log,
    private_database,
    sleepbot_command,
)
from bench.population import insert_due_people
from bot.storage import create_engine, open_store

REPO: Final = Path(__file__).resolve().parent.parent
# A bot id of its own: the Redis send budget and the leader lock are keyed by it.
TOKEN: Final = "987650001:AAReplicaBenchTokenNeverValid_abcdefgh"
SECRET: Final = "replicas-bench_secret"
PATH: Final = "/telegram/hook"
TELEGRAM_RATE: Final = 30
FIRST_PERSON: Final = 9_300_000_001
FIRST_REMINDER_CHAT: Final = 9_400_000_001
START_TIMEOUT_S: Final = 60.0
POLL_S: Final = 0.1
POST_CONCURRENCY: Final = 20


@dataclass(frozen=True)
class Size:
    people: int
    reminders: int
    kill_after: int


FULL: Final = Size(people=200, reminders=2000, kill_after=600)
QUICK: Final = Size(people=20, reminders=150, kill_after=40)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Replica:
    name: str
    port: int
    bot: Bot

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_replica(
    api: RemoteFakeApi, database_url: str, redis_url: str | None, workdir: Path, name: str
) -> Replica:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONTENT_"))}
    environment = {
        **clean,
        "PYTHONPATH": str(REPO),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "DATABASE_URL": database_url,
        # The address Telegram would call: the load balancer's (this script's), one for all.
        "WEBHOOK_URL": f"http://127.0.0.1:9{PATH}",
        "WEBHOOK_SECRET": SECRET,
        "LISTEN_HOST": "127.0.0.1",
        "LISTEN_PORT": str(port),
        "DISPATCH_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }
    if redis_url:
        environment["REDIS_URL"] = redis_url
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("w")
    process = await asyncio.create_subprocess_exec(
        *sleepbot_command(), "run", cwd=workdir, env=environment, stdout=log_file, stderr=log_file
    )
    return Replica(name, port, Bot(process, log_path, log_file))


async def health(http: httpx.AsyncClient, replica: Replica) -> dict[str, Any] | None:
    try:
        answer = await http.get(f"{replica.url}/healthz", timeout=2)
    except httpx.HTTPError:
        return None
    report: dict[str, Any] = answer.json()
    report["http"] = answer.status_code
    return report


async def wait_for(what: str, timeout: float, check: Any) -> Any:  # noqa: ASYNC109
    """Poll `check()` (async) until it returns something truthy, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(POLL_S)


def message_update(update_id: int, chat_id: int) -> dict[str, Any]:
    """What Telegram posts when a person sends "/mechanisms q<n>" (answered with one message)."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Person"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Person"},
            "from": person,
            "text": f"/mechanisms q{update_id}",
            "entities": [{"type": "bot_command", "offset": 0, "length": 11}],
        },
    }


async def post_split(
    http: httpx.AsyncClient, replicas: Sequence[Replica], people: Sequence[int]
) -> Counter[str]:
    """The load balancer: person k's update to replica k mod 2. Returns statuses per replica."""
    slots = asyncio.Semaphore(POST_CONCURRENCY)
    statuses: Counter[str] = Counter()

    async def post(index: int, chat_id: int) -> None:
        replica = replicas[index % len(replicas)]
        async with slots:
            answer = await http.post(
                f"{replica.url}{PATH}",
                json=message_update(1_000 + index, chat_id),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
        statuses[f"{replica.name}:{answer.status_code}"] += 1

    await asyncio.gather(*(post(index, chat) for index, chat in enumerate(people)))
    return statuses


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most events in any sliding window of `window` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run(
    size: Size, database_url: str, redis_url: str | None, workdir: Path
) -> dict[str, Any]:
    people = list(range(FIRST_PERSON, FIRST_PERSON + size.people))
    reminder_chats = list(range(FIRST_REMINDER_CHAT, FIRST_REMINDER_CHAT + size.reminders))
    async with (
        RemoteFakeApi(enforce_global_rate=TELEGRAM_RATE, token=TOKEN) as api,
        private_database(database_url, workdir, "replicas") as url,
        httpx.AsyncClient() as http,
    ):
        await api.add_chats(people + reminder_chats)
        await (await open_store(url)).close()  # the schema, by the real migrations
        replicas = [await start_replica(api, url, redis_url, workdir, name) for name in ("a", "b")]
        try:
            return await _drill(api, url, http, replicas, people, reminder_chats, size)
        finally:
            for replica in replicas:
                if replica.bot.process.returncode is None:
                    replica.bot.process.send_signal(signal.SIGTERM)
                await replica.bot.exit_code(30)


async def _drill(
    api: RemoteFakeApi,
    url: str,
    http: httpx.AsyncClient,
    replicas: list[Replica],
    people: list[int],
    reminder_chats: list[int],
    size: Size,
) -> dict[str, Any]:
    for replica in replicas:

        async def healthy(replica: Replica = replica) -> bool:
            report = await health(http, replica)
            return report is not None and report["http"] == 200

        await wait_for(f"replica {replica.name} healthy", START_TIMEOUT_S, healthy)
    log("both replicas answer /healthz")

    # 1. Updates split across the replicas.
    person_set = set(people)
    posted = await post_split(http, replicas, people)

    async def replies() -> list[SendRecord]:
        return [r for r in (await api.report()).ok() if r.chat_id in person_set]

    await wait_for("every person answered", 120, lambda: _all_chats(replies, person_set))
    log(f"{len(people)} updates posted {dict(posted)}; every person answered")

    # 2. The burst.
    engine = create_engine(url)
    try:
        await insert_due_people(engine, reminder_chats, datetime.now(UTC))
    finally:
        await engine.dispose()
    reminder_set = set(reminder_chats)
    burst_started = time.monotonic()

    async def sent_reminders() -> list[SendRecord]:
        return [r for r in (await api.report()).ok() if r.chat_id in reminder_set]

    async def reached() -> bool:
        return len(await sent_reminders()) >= size.kill_after

    await wait_for(f"{size.kill_after} reminders sent", 300, reached)

    # 3. SIGKILL the sender.
    roles = {r.name: (await health(http, r) or {}).get("role") for r in replicas}
    leaders = [r for r in replicas if roles[r.name] == "leader"]
    if len(leaders) != 1:
        raise AssertionError(f"expected one leader, roles: {roles}")
    dead = leaders[0]
    survivor = next(r for r in replicas if r is not dead)
    dead.bot.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await dead.bot.process.wait()
    sent_at_kill = len(await sent_reminders())
    claimed = await claimed_chats(url)
    log(f"SIGKILL {dead.name} after {sent_at_kill} reminders; it held {len(claimed)} claims")

    async def survivor_leads() -> bool:
        return (await health(http, survivor) or {}).get("role") == "leader"

    await wait_for("the survivor leads", 60, survivor_leads)
    leader_after_s = time.monotonic() - killed_at

    async def settled() -> bool:
        statuses = await deliveries_by_status(url)
        done = not statuses.get("pending") and not statuses.get("sending")
        return done and len({r.chat_id for r in await sent_reminders()}) >= len(reminder_chats)

    await wait_for("every reminder sent", size.reminders / TELEGRAM_RATE * 3 + 120, settled)
    finished_at = time.monotonic()
    report = await api.report()
    statuses = await deliveries_by_status(url)
    return _result(
        report.ok(),
        people,
        reminder_chats,
        posted,
        dead,
        claimed,
        killed_at,
        leader_after_s,
        burst_started,
        finished_at,
        sent_at_kill,
        report.count(429),
        statuses,
    )


async def _all_chats(fetch: Any, chats: set[int]) -> bool:
    return len({r.chat_id for r in await fetch()}) >= len(chats)


def _result(
    records: list[SendRecord],
    people: list[int],
    reminder_chats: list[int],
    posted: Counter[str],
    dead: Replica,
    claimed: set[int],
    killed_at: float,
    leader_after_s: float,
    burst_started: float,
    finished_at: float,
    sent_at_kill: int,
    http_429: int,
    statuses: dict[str, int],
) -> dict[str, Any]:
    per_chat = Counter(r.chat_id for r in records)
    arrivals: dict[int, list[float]] = defaultdict(list)
    for record in records:
        arrivals[record.chat_id].append(record.at)
    answers = [per_chat[c] for c in people]
    reminders = [per_chat[c] for c in reminder_chats]
    claims_sent = [max(arrivals[c]) - killed_at for c in claimed if c in arrivals]
    after_kill = sorted(r.at for r in records if r.at > killed_at)
    gaps = [b - a for a, b in zip([killed_at, *after_kill], after_kill, strict=False)]
    return {
        "people": len(people),
        "updates_posted": dict(posted),
        "people_answered_once": sum(1 for n in answers if n == 1),
        "people_unanswered": sum(1 for n in answers if n == 0),
        "people_answered_twice_or_more": sum(1 for n in answers if n > 1),
        "reminders": len(reminder_chats),
        "reminders_missing": sum(1 for n in reminders if n == 0),
        "reminders_duplicated": sum(n - 1 for n in reminders if n > 1),
        "killed": dead.name,
        "sent_at_kill": sent_at_kill,
        "claims_held_by_the_dead": len(claimed),
        "standby_leads_after_s": round(leader_after_s, 2),
        "longest_send_pause_after_kill_s": round(max(gaps), 2) if gaps else None,
        "dead_claims_all_sent_after_s": round(max(claims_sent), 2) if claims_sent else None,
        "burst_s": round(finished_at - burst_started, 1),
        "max_msgs_in_any_second": max_in_window([r.at for r in records]),
        "max_msgs_per_chat_in_any_second": max(
            (max_in_window(times) for times in arrivals.values()), default=0
        ),
        "http_429": http_429,
        "deliveries_by_status": statuses,
    }


def render(result: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"# Two webhook replicas ({meta['size']}), {meta['when']}", ""]
    lines += [f"- {key}: {value}" for key, value in result.items()]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> int:
    size = QUICK if args.quick else Size(args.people, args.reminders, args.kill_after)
    workdir = Path(args.workdir or RESULTS_DIR / "replicas-work")
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    result = await run(size, args.database_url, args.redis_url, workdir)
    meta = {"size": asdict(size), "when": datetime.now(UTC).isoformat(timespec="seconds")}
    print(json.dumps({"meta": meta, "result": result}, indent=2))
    if not args.quick:
        latest = RESULTS_DIR / "replicas-latest.md"
        await asyncio.to_thread(RESULTS_DIR.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(latest.write_text, render(result, meta))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--database-url", required=True, help="PostgreSQL server (asyncpg URL)")
    parser.add_argument("--redis-url", help="shared send limits (recommended)")
    parser.add_argument("--people", type=int, default=FULL.people)
    parser.add_argument("--reminders", type=int, default=FULL.reminders)
    parser.add_argument("--kill-after", type=int, default=FULL.kill_after)
    parser.add_argument("--quick", action="store_true", help="the smoke size")
    parser.add_argument("--workdir", help="where the replicas' logs go")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
