"""`sleepbot chat`: the real Application and handlers, offline, in a terminal.

A local fake Bot API server stands in for Telegram on 127.0.0.1, so every reply really goes
through PTB's HTTP client; what the bot sends is printed, and its buttons can be pressed by
number. Time is simulated: `:wait 3h` moves the clock and runs the reminder dispatcher.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import Update

from bot.app import build_app, running
from bot.clock import FakeClock, SystemClock
from bot.config import Settings
from bot.context import SERVICES_KEY, Services
from bot.dispatch import run_simulated
from bot.fake_telegram import FakeBotApi
from bot.telegram_html import visible_text

CHAT_ID = 1000001
HELP = (
    "Type a command (/start, /mechanisms, /foods, /settings, ...) or text; a number presses that\n"
    "button. `:location 52.52 13.40` shares a location; `:wait 2h30m` moves time forward and\n"
    "sends due reminders; `:quit` (or Ctrl-D) leaves."
)
_DURATION = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m(?:in)?)?$")

ReadLine = Callable[[], Awaitable[str | None]]
Write = Callable[[str], None]


async def _stdin_line() -> str | None:
    try:
        line = await asyncio.to_thread(input, "you> ")
    except EOFError:
        return None
    if not sys.stdin.isatty():
        print(line)  # piped input is not echoed: show it, so transcripts read like a chat
    return line


def parse_duration(text: str) -> timedelta | None:
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None:
        return None
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


class ChatSession:
    """Feeds typed lines to the Application and renders what it sent back."""

    def __init__(self, api: FakeBotApi, application: Any, clock: FakeClock, write: Write) -> None:
        self.api = api
        self.application = application
        self.clock = clock
        self.write = write
        self._seen_calls = 0
        self._buttons: list[tuple[int, str]] = []  # (message_id, callback_data) by number

    async def handle(self, line: str) -> bool:
        """One line of input; False when the person wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line in {":quit", ":q", "/quit"}:
            return False
        if line == ":help":
            self.write(HELP)
        elif line.isdecimal():  # not isdigit: int() refuses '²'
            await self._press(int(line))
        elif line.startswith(":location"):
            await self._location(line.removeprefix(":location"))
        elif line.startswith(":wait"):
            await self._wait(line.removeprefix(":wait"))
        else:
            await self._process(self.api.send_text(CHAT_ID, line))
        self._render_new_calls()
        return True

    async def _process(self, update_json: dict[str, Any]) -> None:
        update = Update.de_json(update_json, self.application.bot)
        await self.application.process_update(update)

    async def _press(self, number: int) -> None:
        if not 1 <= number <= len(self._buttons):
            self.write(f"(no button {number}; the last message has {len(self._buttons)})")
            return
        message_id, data = self._buttons[number - 1]
        try:
            self.api.press_button(CHAT_ID, message_id, data)
        except ValueError:
            self.write(f"(button {number} is gone: the bot changed that message)")
            return
        await self._process(self.api.updates[-1])

    async def _location(self, text: str) -> None:
        try:
            latitude, longitude = (float(part) for part in text.replace(",", " ").split())
        except ValueError:
            self.write("(usage: :location 52.52 13.40)")
            return
        await self._process(self.api.send_location(CHAT_ID, latitude, longitude))

    async def _wait(self, text: str) -> None:
        delta = parse_duration(text)
        if delta is None:
            self.write("(usage: :wait 2h30m — also 45m, 1d)")
            return
        services: Services = self.application.bot_data[SERVICES_KEY]
        if services.dispatcher is not None:
            await run_simulated(services.dispatcher, self.clock, delta)
        else:
            self.clock.advance(delta)
        self.write(f"(time is now {self.clock.now():%Y-%m-%d %H:%M} UTC)")

    def _render_new_calls(self) -> None:
        calls = self.api.calls[self._seen_calls :]
        self._seen_calls = len(self.api.calls)
        for call in calls:
            params = call.params
            if call.method == "sendMessage":
                self._render_message("bot", params)
            elif call.method == "editMessageText":
                self._render_message("bot (edited)", params)
            elif call.method == "answerCallbackQuery" and params.get("text"):
                self.write(f"  [popup] {params['text']}")
            elif call.method in ("sendPhoto", "sendDocument") and call.ok:
                self._save_file(call)

    def _save_file(self, call: Any) -> None:
        """A photo (/progress's chart) or document (/mydata's export): saved to a file that
        outlives the session, its path printed, its caption shown."""
        result = call.result or {}
        message = self.api.message(int(result["chat"]["id"]), int(result["message_id"]))
        data = message.photo if message is not None and message.photo else None
        name = "progress.png"
        if data is None and message is not None and message.document:
            data, name = message.document, message.file_name or "document"
        if data is None:
            return
        handle, path = tempfile.mkstemp(prefix="sleepbot-", suffix="-" + Path(name).name)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        kind = "photo" if call.method == "sendPhoto" else "file"
        self.write(f"\nbot> [{kind} saved to {path}]")
        caption = message.caption if message is not None else None
        if caption:
            self.write("     " + visible_text(caption).replace("\n", "\n     "))

    def _render_message(self, who: str, params: dict[str, Any]) -> None:
        text = str(params.get("text", ""))
        self.write(f"\n{who}> " + visible_text(text).replace("\n", "\n     "))
        markup = params.get("reply_markup") or {}
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        message_id = self._message_id_for(params)
        if not rows:
            if self._buttons and self._buttons[0][0] == message_id:
                self._buttons = []  # an edit removed the buttons we were showing
            return
        self._buttons = []
        rendered: list[str] = []
        for row in rows:
            cells = []
            for button in row:
                self._buttons.append((message_id, str(button.get("callback_data", ""))))
                cells.append(f"[{len(self._buttons)}] {button.get('text', '')}")
            rendered.append("  ".join(cells))
        self.write("     " + "\n     ".join(rendered))

    def _message_id_for(self, params: dict[str, Any]) -> int:
        if "message_id" in params:
            return int(params["message_id"])
        last = self.api.last_message(CHAT_ID)
        return int(last.message_id) if last is not None else 0


async def chat(
    settings: Settings,
    *,
    database_url: str | None = None,
    read_line: ReadLine = _stdin_line,
    write: Write = print,
) -> int:
    """Run an offline session until :quit or end of input."""
    with tempfile.TemporaryDirectory(prefix="sleepbot-chat-") as scratch:
        url = database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'chat.sqlite3'}"
        clock = FakeClock(SystemClock().now())
        async with FakeBotApi() as api:
            chat_settings = settings.model_copy(
                update={"telegram_api_base_url": api.base_url, "database_url": url}
            )
            application = build_app(chat_settings, token=api.token, clock=clock, rate_limit=False)
            async with running(application, poll=False):
                session = ChatSession(api, application, clock, write)
                write("sleepbot chat — offline; the same bot, a fake Telegram. " + HELP)
                while (line := await read_line()) is not None:
                    if not await session.handle(line):
                        break
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(chat(Settings())))
