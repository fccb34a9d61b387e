"""The fake Telegram Bot API in a separate process, driven over a pipe.

Telegram is another machine in production. Serving the fake from the bot's own event loop would
bill the server's JSON parsing and HTML validation to the bot, and its aiohttp import to the
bot's RSS; a child process keeps both out. Timestamps stay comparable: ``ApiCall.at`` is
``time.monotonic()``, which on Linux is one clock for every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Final, Self

# Same shape as a real token (tests/conftest.py uses it too); never valid anywhere.
TOKEN: Final = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
REPLY_TIMEOUT_S: Final = 120.0


def _serve_entry(
    connection: Connection,
    token: str,
    enforce_global_rate: int | None,
    chat_rate: tuple[float, int] | None,
    latency: float,
) -> None:
    # Imported here, not at the top: only the server process may load aiohttp.
    from bench.fake_server import serve

    serve(connection, token, enforce_global_rate, chat_rate, latency)


@dataclass(frozen=True)
class SendRecord:
    at: float  # time.monotonic() when the request reached the server
    status: int  # HTTP status: 200, 429, 400, ...
    chat_id: int


@dataclass(frozen=True)
class FakeReport:
    sends: tuple[SendRecord, ...]
    per_chat_violations: int
    global_violations: int
    cpu_s: float  # the server process's CPU time so far (to tell whose CPU is the bottleneck)

    def ok(self) -> list[SendRecord]:
        return sorted((s for s in self.sends if s.status == 200), key=lambda s: s.at)

    def count(self, status: int) -> int:
        return sum(1 for s in self.sends if s.status == status)


class RemoteFakeApi:
    """``async with RemoteFakeApi() as api:`` → ``api.base_url`` serves the Bot API."""

    def __init__(
        self,
        *,
        enforce_global_rate: int | None = None,
        enforce_chat_rate: tuple[float, int] | None = None,
        token: str = TOKEN,
        latency: float = 0.0,
    ) -> None:
        """`enforce_chat_rate` is (messages per second, burst) per chat, as ChatRate;
        `latency` (seconds) delays every answer, as a network round trip would."""
        self.token = token
        self._latency = latency
        self._rate = enforce_global_rate
        self._chat_rate = enforce_chat_rate
        self._connection: Connection | None = None
        self._process: Any = None
        self.base_url = ""

    async def __aenter__(self) -> Self:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve_entry,
            args=(theirs, self.token, self._rate, self._chat_rate, self._latency),
            name="fake-telegram",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        self._connection = ours
        kind, value = await self._receive()
        if kind != "ready":
            raise RuntimeError(f"fake Telegram did not start: {value!r}")
        self.base_url = str(value)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._connection is not None and self._process.is_alive():
                with contextlib.suppress(Exception):  # it is killed below if it did not stop
                    await self._call("stop", None)
        finally:
            if self._connection is not None:
                self._connection.close()
            if self._process is not None:
                self._process.join(timeout=10)
                if self._process.is_alive():
                    self._process.kill()
                    self._process.join(timeout=5)

    async def _receive(self) -> tuple[str, Any]:
        assert self._connection is not None
        connection = self._connection
        ready = await asyncio.wait_for(
            asyncio.to_thread(connection.poll, REPLY_TIMEOUT_S), REPLY_TIMEOUT_S + 5
        )
        if not ready:
            raise TimeoutError("fake Telegram did not answer in time")
        try:
            message: tuple[str, Any] = connection.recv()
        except EOFError:
            self._process.join(timeout=5)
            code = self._process.exitcode
            raise RuntimeError(f"the fake Telegram process died (exit code {code})") from None
        return message

    async def _call(self, command: str, argument: Any) -> Any:
        assert self._connection is not None
        self._connection.send((command, argument))
        kind, value = await self._receive()
        if kind != "ok":
            raise RuntimeError(f"fake Telegram: {value}")
        return value

    @property
    def file_url(self) -> str:
        return self.base_url.removesuffix("/bot") + "/file/bot"

    async def add_chats(self, chat_ids: Sequence[int]) -> None:
        """Make chats known; the fake answers "chat not found" for any other chat."""
        for start in range(0, len(chat_ids), 50_000):
            await self._call("add_chats", list(chat_ids[start : start + 50_000]))

    async def cpu_seconds(self) -> float:
        """CPU time the server process has used so far."""
        return float(await self._call("cpu", None))

    async def report(self) -> FakeReport:
        raw = await self._call("report", None)
        return FakeReport(
            sends=tuple(SendRecord(float(a), int(s), int(c)) for a, s, c in raw["sends"]),
            per_chat_violations=int(raw["per_chat_violations"]),
            global_violations=int(raw["global_violations"]),
            cpu_s=float(raw["cpu_s"]),
        )
