"""Server side of :mod:`bench.fake_remote`: runs ``FakeBotApi`` in its own process.

Imported only in that process, so the benchmarked bot process never loads aiohttp and its RSS
and CPU are the bot's alone, as they would be with api.telegram.org on another machine.
"""

from __future__ import annotations

import asyncio
import time
from multiprocessing.connection import Connection
from typing import Any

from bot.fake_telegram import ChatRate, FakeBotApi


def serve(
    connection: Connection,
    token: str,
    enforce_global_rate: int | None,
    chat_rate: tuple[float, int] | None,
    latency: float = 0.0,
) -> None:
    asyncio.run(_serve(connection, token, enforce_global_rate, chat_rate, latency))


async def _serve(
    connection: Connection,
    token: str,
    enforce_global_rate: int | None,
    chat_rate: tuple[float, int] | None,
    latency: float,
) -> None:
    per_chat = ChatRate(*chat_rate) if chat_rate else None
    async with FakeBotApi(
        token, enforce_global_rate=enforce_global_rate, enforce_chat_rate=per_chat, latency=latency
    ) as api:
        connection.send(("ready", api.base_url))
        while True:
            try:
                command, argument = await asyncio.to_thread(connection.recv)
            except (EOFError, OSError):  # the bot process went away: stop serving
                return
            if command == "add_chats":
                for chat_id in argument:
                    api.add_chat(int(chat_id))
                connection.send(("ok", len(argument)))
            elif command == "cpu":
                connection.send(("ok", time.process_time()))
            elif command == "report":
                connection.send(("ok", _report(api)))
            elif command == "stop":
                connection.send(("ok", None))
                return
            else:
                connection.send(("error", f"unknown command {command!r}"))


def _report(api: FakeBotApi) -> dict[str, Any]:
    """Every answered sendMessage as (arrival monotonic time, HTTP status, chat id), plus flood
    checks. Requests still being answered are left out (polled mid-burst, they have no status)."""
    sends = [call for call in api.calls_to("sendMessage") if call.done]
    violations = api.flood_violations(per_chat_interval=1.0, global_per_second=30, per_chat_burst=3)
    return {
        "sends": [(call.at, call.status, call.chat_id) for call in sends],
        "per_chat_violations": sum(1 for v in violations if v.kind == "per_chat"),
        "global_violations": sum(1 for v in violations if v.kind == "global"),
        "cpu_s": time.process_time(),
    }
