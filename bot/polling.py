"""Updates in: getUpdates → the inbox on disk → confirm → handle. Replaces PTB's Updater.

PTB's Updater confirms a batch to Telegram (the next getUpdates offset) as soon as it fetches
the next one, while the batch still waits in memory: a process killed with a backlog lost it
(issue 7: 250 of 300 messages never answered). Here :class:`UpdatePoller` commits each batch to
the inbox first and only then asks with ``offset = last + 1``; :class:`InboxWorker` hands the
stored updates, in order, to the Application's update processor (chats concurrently, each
chat in order, flood control first) and marks each one handled. See
``bot.storage.inbox`` for the guarantee (at least once, de-duplicated by update_id).

A webhook endpoint (later) stores into the same inbox before answering 200 and calls
:meth:`InboxWorker.wake`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from bot.clock import Clock
from bot.context import SleepApplication
from bot.conversation import ConversationState
from bot.metrics import Metrics, kind_of
from bot.storage import Claimant, Inbox, IncomingUpdate, StoredUpdate
from bot.storage.conversation import Conversations

log = logging.getLogger(__name__)

POLL_TIMEOUT_S: Final = 10  # long polling: Telegram holds the request until an update arrives
BATCH: Final = 100  # getUpdates' maximum
RETRY_FIRST_S: Final = 0.5
RETRY_MAX_S: Final = 30.0
IDLE_RECHECK_S: Final = 5.0  # also notice updates stored by another process
PRUNE_EVERY_S: Final = 600.0
STOP_GRACE_S: Final = 5.0  # how long stop() lets the updates in hand finish
MAX_IN_FLIGHT: Final = 32  # updates handed to the processor and not finished yet
CONFIRM_TIMEOUT_S: Final = 2.0


def incoming(update: Update) -> IncomingUpdate:
    """The stored form of an update; the chat (or, with none, the user) is kept for erasure."""
    chat = update.effective_chat
    user = update.effective_user
    chat_id = chat.id if chat is not None else (user.id if user is not None else None)
    return IncomingUpdate(update.update_id, chat_id, update.to_dict())


def _problem(method: str, error: TelegramError) -> tuple[str, str]:
    """(kind, one log line) for a failed call: the operator learns what to do, not a traceback."""
    if isinstance(error, Conflict):
        return "conflict", (
            f"409 Conflict from {method}: another process is polling with this bot token, "
            "or a webhook is set; stop the other one"
        )
    if isinstance(error, InvalidToken):
        return "token", f"{method}: Telegram no longer accepts TELEGRAM_BOT_TOKEN"
    if isinstance(error, NetworkError):  # includes TimedOut
        return "network", f"{method} failed: {type(error).__name__}"
    return "telegram", f"{method} failed: {error}"


class _Backoff:
    """Exponential retry delay, and one log line per streak of failures instead of one each."""

    def __init__(self) -> None:
        self.delay = RETRY_FIRST_S
        self.failing: str | None = None

    def failed(self, kind: str, message: str) -> float:
        if self.failing != kind:
            log.error("%s; retrying until it works", message)
            self.failing = kind
        delay, self.delay = self.delay, min(self.delay * 2, RETRY_MAX_S)
        return delay

    def succeeded(self) -> None:
        if self.failing is not None:
            log.info("polling works again")
        self.failing, self.delay = None, RETRY_FIRST_S


class UpdatePoller:
    """Long polling that confirms a batch only once it is committed to the inbox."""

    def __init__(
        self,
        bot: Bot,
        inbox: Inbox,
        clock: Clock,
        *,
        on_stored: asyncio.Event,
        timeout: int = POLL_TIMEOUT_S,
        metrics: Metrics | None = None,
    ) -> None:
        self._bot = bot
        self._inbox = inbox
        self._clock = clock
        self._on_stored = on_stored
        self._timeout = timeout
        self._metrics = metrics
        self._offset: int | None = None  # next update_id to ask for: confirms all before it
        self._confirmed: int | None = None  # the offset Telegram has last seen

    async def run(self) -> None:
        """Poll until cancelled. Cancelling at any point loses nothing: an unstored batch was
        never confirmed, so Telegram sends it again."""
        backoff = _Backoff()
        await self._delete_webhook(backoff)
        while True:
            try:
                updates = await self._bot.get_updates(
                    offset=self._offset,
                    timeout=self._timeout,
                    limit=BATCH,
                    allowed_updates=Update.ALL_TYPES,
                )
            except TelegramError as error:
                await asyncio.sleep(backoff.failed(*_problem("getUpdates", error)))
                continue
            except Exception as error:  # e.g. PTB could not parse the batch: never die silently
                problem = f"getUpdates failed: {type(error).__name__}"
                await asyncio.sleep(backoff.failed("unexpected", problem))
                continue
            self._confirmed = self._offset
            if updates:
                try:
                    await self._inbox.store([incoming(u) for u in updates], self._clock.now())
                except Exception as error:
                    # Not stored, so not confirmed either: Telegram sends the batch again.
                    message = f"could not store updates in the inbox: {type(error).__name__}"
                    await asyncio.sleep(backoff.failed("inbox", message))
                    continue
                self._offset = max(u.update_id for u in updates) + 1
                self._on_stored.set()
                if self._metrics is not None:
                    for update in updates:
                        self._metrics.update_received(kind_of(update))
            backoff.succeeded()

    async def confirm(self) -> None:
        """On the way out: tell Telegram about the last stored batch (best effort, bounded).

        Not needed for correctness (a re-delivered update is ignored), it just saves the next
        process from downloading the batch again.
        """
        if self._offset is None or self._offset == self._confirmed:
            return
        with contextlib.suppress(TelegramError, TimeoutError):
            async with asyncio.timeout(CONFIRM_TIMEOUT_S):
                await self._bot.get_updates(offset=self._offset, timeout=0, limit=1)

    async def _delete_webhook(self, backoff: _Backoff) -> None:
        """getUpdates refuses to work while a webhook is set (PTB's Updater does the same)."""
        while True:
            try:
                await self._bot.delete_webhook(drop_pending_updates=False)
            except TelegramError as error:
                await asyncio.sleep(backoff.failed(*_problem("deleteWebhook", error)))
                continue
            backoff.succeeded()
            return


@dataclass(frozen=True)
class Ownership:
    """Replicas share one inbox: this process claims what it begins as `owner` (its
    dispatcher's id, whose heartbeat says it is alive) and takes over another owner's pending
    updates once that heartbeat is `dead_after` old."""

    owner: str
    dead_after: timedelta


class InboxWorker:
    """Hands stored updates, in update_id order, to the Application's update processor.

    The processor (``bot.updates.ChatUpdateProcessor``) handles different chats concurrently
    and one chat's updates in the order they are handed on, and applies flood control; so the
    worker hands updates on in order and lets up to ``MAX_IN_FLIGHT`` be in hand at once, each
    marked handled when it finishes (dropped by flood control counts as finished).
    """

    def __init__(
        self,
        application: SleepApplication,
        inbox: Inbox,
        clock: Clock,
        *,
        wake: asyncio.Event,
        on_handled: Sequence[Callable[[int], None]] = (),
        max_in_flight: int = MAX_IN_FLIGHT,
        conversation: ConversationState | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        """`conversation`: user_data/chat_data read from and written to the database around
        each update (bot/conversation.py); without it they live in memory only.
        `ownership`: several processes share the inbox (each update is begun by one); without
        it this process is the only reader, and reads on from its last update_id."""
        self._application = application
        self._ownership = ownership
        self._conversation = conversation
        self._on_handled = on_handled
        self._inbox = inbox
        self._clock = clock
        self._wake = wake
        self._stopping = asyncio.Event()
        self._last_prune: float | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._handed_on: int | None = None  # the newest update_id handed on by this process
        # Handled, not yet recorded: written together by _record_done (a group commit), so
        # the window in which an answered update could be answered again after a kill stays
        # one short transaction even with many chats answered at once.
        self._done: list[int] = []
        self._done_now = asyncio.Event()
        self._recorder_closing = False

    def wake(self) -> None:
        """New updates were stored (by the poller or a webhook endpoint)."""
        self._wake.set()

    def stop(self) -> None:
        """Hand nothing more on; run() then waits for the updates in hand."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        self._recorder_closing = False
        recorder = asyncio.create_task(self._record_done(), name="inbox-done")
        try:
            while not self._stopping.is_set():
                # Cleared before looking, so an update stored meanwhile still wakes the wait.
                self._wake.clear()
                try:
                    handed = await self._hand_on_next()
                    await self._prune_now_and_then()
                except Exception:
                    # The database failed outside any handler: what was not handed on stays
                    # pending and is retried, until MAX_ATTEMPTS gives it up.
                    log.exception("the inbox worker failed; retrying shortly")
                    await asyncio.sleep(RETRY_FIRST_S)
                    continue
                if not handed:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_RECHECK_S):
                            await self._wake.wait()
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            # Not cancelled: a write cancelled half-way is rolled back with a traceback in the
            # log. The recorder finishes the write in progress, if any, then returns.
            self._recorder_closing = True
            self._done_now.set()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._flush_done()  # what finished last is recorded before we return

    async def _record_done(self) -> None:
        """Write finished update ids as they come, all that finished meanwhile at once."""
        while True:
            await self._done_now.wait()
            self._done_now.clear()
            if self._recorder_closing:
                return  # run() records what is left itself
            try:
                await self._flush_done()
            except Exception:
                # Not recorded: after a restart they would be handled again. Try again soon.
                log.exception("could not record handled updates; retrying")
                await asyncio.sleep(RETRY_FIRST_S)
                self._done_now.set()

    async def _flush_done(self) -> None:
        done, self._done = self._done, []
        if not done:
            return
        try:
            await self._inbox.mark_done_many(done, self._clock.now())
        except BaseException:
            self._done[:0] = done
            raise
        for update_id in done:
            for listener in self._on_handled:
                listener(update_id)

    async def _hand_on_next(self) -> int:
        """Hand on the next stored updates, as slots free up; how many were handed on."""
        claimant = self._claimant()
        after = None if claimant is not None else self._handed_on  # claims tell what is ours
        batch = await self._inbox.next_batch(BATCH, after=after, claimant=claimant)
        handed = 0
        while batch and not self._stopping.is_set():
            await self._slots.acquire()
            # Every slot free now is taken by one update of this group: one write counts them.
            group = [batch.pop(0)]
            while batch and not self._slots.locked():
                await self._slots.acquire()
                group.append(batch.pop(0))
            try:
                starting = await self._inbox.begin(group, self._clock.now(), claimant=claimant)
            except BaseException:
                for _ in group:
                    self._slots.release()
                raise
            self._handed_on = group[-1].update_id
            for _ in range(len(group) - len(starting)):
                self._slots.release()  # given up: never handed on
            for item in starting:
                task = asyncio.create_task(self._handle(item), name=f"update-{item.update_id}")
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                handed += 1
        return handed

    def _claimant(self) -> Claimant | None:
        if self._ownership is None:
            return None
        alive_since = self._clock.now() - self._ownership.dead_after
        return Claimant(self._ownership.owner, alive_since)

    async def _handle(self, item: StoredUpdate) -> None:
        try:
            try:
                update = Update.de_json(item.payload, self._application.bot)
            except Exception as error:  # only a webhook could store one; getUpdates parsed it
                problem = type(error).__name__
                log.error("update %d is not a valid Update (%s); skipped", item.update_id, problem)
                await self._inbox.give_up(item.update_id, self._clock.now())
                return
            log.debug("handling update %d", item.update_id)
            application = self._application
            await application.update_processor.process_update(update, self._handling(update))
        except Exception:
            # Not marked handled: the next process handles it again (or gives it up).
            log.exception("update %d could not be finished", item.update_id)
            return
        finally:
            self._slots.release()
        self._done.append(item.update_id)
        self._done_now.set()

    async def _handling(self, update: Update) -> None:
        """The handlers, inside the update's chat line: with the conversation state loaded
        before them and saved after them."""
        if self._conversation is None:
            await self._application.process_update(update)
            return
        await self._conversation.around(update, lambda: self._application.process_update(update))

    async def _prune_now_and_then(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._last_prune is not None and now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        pruned = await self._inbox.prune(self._clock.now())
        if pruned:
            log.info("pruned %d handled updates from the inbox", pruned)


class Intake:
    """The poller and the worker as one unit, started and stopped in a fixed order.

    Built with the Application (``Services.intake``) so that listeners can be added before the
    first update arrives; started by ``bot.app.running`` once the store is open.
    """

    def __init__(self, application: SleepApplication, *, metrics: Metrics | None = None) -> None:
        self._application = application
        self._metrics = metrics
        # Called with each handled update_id, after it is marked done (the tests wait on it).
        self.on_handled: list[Callable[[int], None]] = []
        self.poller: UpdatePoller | None = None
        self.worker: InboxWorker | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(
        self,
        inbox: Inbox,
        clock: Clock,
        *,
        poll: bool = True,
        conversations: Conversations | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        """Start the worker, and with `poll` the poller (webhook mode: the webhook stores
        into the inbox and wakes the worker). With `conversations`, user_data and chat_data
        are kept in the database (bot/conversation.py)."""
        stored = asyncio.Event()
        state = None
        if conversations is not None:
            state = ConversationState(self._application, lambda: conversations, clock)
        self.worker = InboxWorker(
            self._application,
            inbox,
            clock,
            wake=stored,
            on_handled=self.on_handled,
            conversation=state,
            ownership=ownership,
        )
        self._tasks = [asyncio.create_task(self.worker.run(), name="inbox-worker")]
        if poll:
            self.poller = UpdatePoller(
                self._application.bot, inbox, clock, on_stored=stored, metrics=self._metrics
            )
            self._tasks.append(asyncio.create_task(self.poller.run(), name="update-poller"))

    async def stop(self) -> None:
        """1. stop asking Telegram (cancel the long poll), confirm what is stored;
        2. let the worker finish the updates in hand (≤ STOP_GRACE_S, then cancel them: they
        are handled again by the next process). Unhandled updates stay in the inbox."""
        if not self._tasks or self.worker is None:
            return
        worker, *poller = self._tasks
        self._tasks = []
        if poller and self.poller is not None:
            poller[0].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller[0]
            await self.poller.confirm()
        self.worker.stop()
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await asyncio.shield(worker)
        except TimeoutError:
            log.warning("stopping: updates in hand did not finish; the next start handles them")
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
