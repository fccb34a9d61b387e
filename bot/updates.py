"""How updates are processed: chats in parallel, each chat in order, floods cut off early.

PTB handles one update at a time unless told otherwise, so 300 commands from one chat, each
reply paced at one message a second per chat, would keep everybody else waiting for minutes.
`ChatUpdateProcessor` (a PTB ``BaseUpdateProcessor``) runs different chats' updates
concurrently and one chat's updates one after another (so a person's messages are still
answered in order, and the open prompt in ``user_data`` sees them in order). Before an update
joins its chat's line, the ``FloodGate`` (bot/flood.py) decides whether it is handled at all:
a flood's excess is dropped in O(1) without queueing, a repeated press of a button is
coalesced, and both still answer their callback query so the person's spinner stops.

Updates without a chat or user (none that this bot subscribes to today) run concurrently,
unchecked. Every update is handled inside ``bot.logs.update_context`` (JSON log lines carry its
id and hashed chat), and with ``metrics`` the time from its arrival here to its last handler's
return is recorded (flood-dropped updates are not: they are counted by flood control).
``sleepbot chat`` feeds ``Application.process_update`` directly and does not pass through here.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseUpdateProcessor

from bot.flood import FloodGate, Source, Verdict
from bot.logs import update_context
from bot.metrics import Metrics, kind_of

log = logging.getLogger(__name__)

# Updates running at once (across chats). Each holds little: a handler awaiting its send
# pace or a database session from the pool (queued there if the pool is busy).
MAX_RUNNING: Final = 64
# PTB's own bound on updates inside the processor; ours is per chat (the gate's max_updates).
MAX_IN_PROCESSOR: Final = 4096

Exempt = Callable[[Update], bool]


def never_exempt(update: Update) -> bool:
    """The default rule: no update bypasses flood control."""
    return False


def update_text(update: Update) -> str:
    """The text or caption an update carries, for an `exempt` rule that reads it."""
    message = update.effective_message
    if message is None:
        return ""
    return message.text or message.caption or ""


def line_of(update: Update) -> int | None:
    """The chat whose updates are handled in order (the user's id when there is no chat)."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


def source_of(update: Update) -> Source | None:
    """Whose rate flood control counts: the chat, or in a group the person in that chat."""
    chat, user = update.effective_chat, update.effective_user
    if chat is not None and chat.type != chat.PRIVATE and user is not None:
        return (chat.id, user.id)
    return line_of(update)


def button_of(update: Update) -> Hashable | None:
    """What makes two button presses "the same": the message pressed and the button's data."""
    query = update.callback_query
    if query is None:
        return None
    message = query.message
    where: Hashable = query.inline_message_id or (message.message_id if message else None)
    return ("button", where, query.data)


class ChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, ordered within a chat, flood-gated before queueing."""

    def __init__(
        self,
        gate: FloodGate,
        slow_down: Callable[[Update], str],
        *,
        exempt: Exempt = never_exempt,
        max_running: int = MAX_RUNNING,
        metrics: Metrics | None = None,
    ) -> None:
        """`slow_down` renders the one notice a flooding chat gets (in the sender's language);
        `exempt` names updates that always pass (crisis text must never be dropped); `metrics`
        gets each handled update's latency."""
        super().__init__(MAX_IN_PROCESSOR)
        self.gate = gate
        self.metrics = metrics
        self._slow_down = slow_down
        self._exempt = exempt
        self._running = asyncio.BoundedSemaphore(max_running)
        self._lines: dict[int, tuple[asyncio.Lock, int]] = {}

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release: PTB waits for the updates in progress."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):
            async with self._running:
                await coroutine
            return
        with update_context(update.update_id, line_of(update)):
            await self._process(update, coroutine)

    async def _process(self, update: Update, coroutine: Awaitable[Any]) -> None:
        arrived = time.monotonic()
        line, source = line_of(update), source_of(update)
        if line is None or source is None:
            async with self._running:
                await coroutine
            self._handled(update, arrived)
            return
        button = button_of(update)
        verdict = self.gate.arrive(source, button=button, exempt=self._is_exempt(update))
        if verdict is not Verdict.ADMIT:
            if inspect.iscoroutine(coroutine):
                coroutine.close()  # never started: nothing to clean up
            await self._refuse(update, line, verdict)
            return
        try:
            async with _ChatLine(self._lines, line), self._running:
                await coroutine
        finally:
            self.gate.finished(source, button=button)
            self._handled(update, arrived)

    def _handled(self, update: Update, arrived: float) -> None:
        if self.metrics is not None:
            self.metrics.update_handled(kind_of(update), time.monotonic() - arrived)

    def _is_exempt(self, update: Update) -> bool:
        try:
            return self._exempt(update)
        except Exception:
            # Fail open: a broken rule must not be the reason crisis text is dropped.
            log.exception("the flood-control exemption rule failed; letting the update through")
            return True

    async def _refuse(self, update: Update, chat: int, verdict: Verdict) -> None:
        """Answer a dropped button press (so its spinner stops); tell a new flood once."""
        try:
            if update.callback_query is not None:
                await update.callback_query.answer()
            if verdict is Verdict.NOTIFY and update.effective_chat is not None:
                await update.get_bot().send_message(chat, self._slow_down(update))
        except TelegramError as error:
            log.info("could not answer a dropped update from chat %s: %s", chat, error)


class _ChatLine:
    """One chat's lock, shared by its updates in hand and forgotten when none is left."""

    def __init__(self, lines: dict[int, tuple[asyncio.Lock, int]], source: int) -> None:
        self._lines = lines
        self._source = source
        lock, users = lines.get(source) or (asyncio.Lock(), 0)
        lines[source] = (lock, users + 1)
        self._lock = lock

    async def __aenter__(self) -> None:
        try:
            await self._lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        lock, users = self._lines[self._source]
        if users <= 1:
            del self._lines[self._source]
        else:
            self._lines[self._source] = (lock, users - 1)
