"""Sending at Telegram's pace, fairly: every chat at its own pace, chats taking turns, and a
429 paused where it applies rather than everywhere.

The limits, and where they come from:

* **One message a second per chat, short bursts tolerated.** Telegram's Bot FAQ, "My bot is
  hitting limits, how do I avoid this?" (https://core.telegram.org/bots/faq): "When sending
  messages inside a particular chat, avoid sending more than one message per second. We may
  allow short bursts that go over this limit, but eventually you'll begin receiving 429
  errors." A private chat gets a bucket of 3 refilled every 1.1 s (10% under 1/s, so network
  jitter between our clock and Telegram's arrival time does not turn into 429s).
* **20 messages a minute per group.** Same FAQ: "your bot will not be able to send more than
  20 messages per minute to the same group." Groups and channels (negative or @username chat
  ids, as PTB's ``AIORateLimiter`` tells them apart) get a bucket of 3 refilled every 3.9 s:
  at most 3 + 60/3.9 ≈ 18 in any minute.
* **About 30 messages a second in all.** Same FAQ: "If you're sending bulk notifications to
  multiple users, the API will not allow more than 30 messages per second or so." Sends are
  spaced evenly, 1% wider than 1/rate (``SEND_RATE_PER_SECOND``, 30 by default): PTB's
  ``AIORateLimiter`` lets a second's worth out at once, which drew 2,034 × 429 on 10,000 due
  reminders against a fake enforcing 30/s (bench/README.md).

What counts: requests that put or change a message in a chat (``send*`` except
``sendChatAction``, ``edit*``, ``copy*``, ``forward*``) with a ``chat_id``. Everything else
(``answerCallbackQuery``, so a button's spinner stops at once; ``getUpdates``; ``getMe``;
``deleteMessage``; inline-message edits without a chat) goes straight through.

**Fair queueing.** Requests wait in one FIFO queue per chat; chats whose pace allows a send
take turns (round robin) for the global budget. A chat with 300 pending replies gets one turn
in each round, so a newcomer's ``/start`` waits one round (the other chats with something to
send), not 300 messages; due reminders share the rounds the same way.

**A 429, by scope.** Telegram's answer says how long to wait (``retry_after``), not which limit
was hit. PTB's ``AIORateLimiter`` docs say its halt-everything reaction "may be stricter than
necessary in some cases, e.g. the bot may hit a rate limit in one group but might still be
allowed to send messages in another group". So (``FloodScope``):

1. a 429 holds back **that chat** for ``retry_after``; other chats go on;
2. 429s from ``EVIDENCE_CHATS`` (3) different chats within ``EVIDENCE_WINDOW`` (2 s) mean the
   bot as a whole is over its limit: the global rate is **halved** (not below 1/s), then
   grows back by 1 msg/s every second (AIMD, as TCP does), logged as a warning with the
   evidence;
3. only if that evidence comes again while the rate is already at its floor is **every** send
   paused for the longest ``retry_after`` seen, logged with why.

Replies wait their turn (and retry a 429 up to ``max_retries`` times, ahead of their chat's
later messages). The reminder dispatcher passes ``SendOptions(max_retries=0, max_wait=...)``
so a chat held longer than ``max_wait`` gets ``RetryAfter`` at once, without sending, and the
delivery is rescheduled instead of holding a send slot.

**Stop means stop.** ``SendOptions.still_wanted`` is asked when a request's turn has come,
right before each attempt goes out; a "no" withdraws it (``Withdrawn``, nothing sent). The
dispatcher checks there whether the person stopped, paused or erased since the reminder was
claimed. A check takes a few milliseconds, and checks of varying length would let two
requests leave closer than the global spacing, so every paced request also leaves at least
one spacing after the previous one (``_depart``).

**Paid only for the overflow.** With a paid lane (``paid_per_second`` > 0, ALLOW_PAID_BROADCAST)
there are two global slots: the free one at ``per_second`` (at most Telegram's ~30 msg/s) and a
paid one. Every request waits for the free lane. A request whose ``SendOptions.paid_after``
has run out (the dispatcher sets it to the moment a reminder would otherwise leave its send
window, see bot/dispatch.py) and whose turn comes while the free slot is taken goes through
the paid slot instead, and only then is ``allow_paid_broadcast`` added to its request data
(0.1 Telegram Stars each); ``SendOptions.on_paid`` hears of it once Telegram accepted it. The
rule is the free lane's own answer, not a forecast: whatever the free slot can take goes
free (replies, other replicas' sends, a 429 slowdown included), and a request goes paid only
at the moment it would have to wait for the free slot past its limit. Requests without
``paid_after`` (every reply to a person) are never flagged. A chat's own pace and holds
apply in both lanes; an AIMD slowdown scales both rates by the same factor.

The shared state (the global slots, each chat's bucket, holds) sits behind ``SendBudget``;
``LocalSendBudget`` keeps it in this process. Backed by Redis or PostgreSQL it would hold the
limits across replicas; the queueing and the AIMD policy stay local to each process.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal, Protocol

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
ChatKey = int | str
Lane = Literal["free", "paid"]
PAID_FLAG: Final = "allow_paid_broadcast"  # the Bot API field that makes a send a paid broadcast
SAFETY: Final = 1.01  # global spacing is 1% wider than 1/rate
EVIDENCE_CHATS: Final = 3
EVIDENCE_WINDOW: Final = 2.0  # seconds
MIN_RATE: Final = 1.0  # msg/s: the AIMD floor
RATE_INCREASE_PER_SECOND: Final = 1.0  # msg/s gained per second without new evidence
HOLD_MARGIN: Final = 0.1  # seconds added to a retry_after, as PTB's AIORateLimiter does
TIME_EPSILON: Final = 1e-6  # seconds: float rounding in a refill is not a reason to wait


def retry_after_seconds(error: RetryAfter) -> float:
    """RetryAfter.retry_after in seconds, whether PTB gives an int or a timedelta."""
    value: object = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pace:
    """A token bucket: `burst` sends at once, then one every `interval` seconds."""

    burst: int
    interval: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.interval <= 0:
            raise ValueError("a pace needs burst >= 1 and a positive interval")


PRIVATE_CHAT: Final = Pace(burst=3, interval=1.1)
GROUP_CHAT: Final = Pace(burst=3, interval=3.9)


def is_group(chat: ChatKey) -> bool:
    """Groups, supergroups and channels have negative ids or are addressed by @username."""
    return isinstance(chat, str) or chat < 0


def paced_chat(endpoint: str, data: JSONDict) -> ChatKey | None:
    """The chat a request puts a message into, or None when it is not a paced message."""
    chat_id = data.get("chat_id")
    if chat_id is None or endpoint == "sendChatAction":
        return None
    if not endpoint.startswith(("send", "edit", "copy", "forward")):
        return None
    if isinstance(chat_id, str):
        try:
            return int(chat_id)
        except ValueError:
            return chat_id
    return int(chat_id)


@dataclass(frozen=True)
class SendOptions:
    """Per-call `rate_limit_args`: retries of a 429, the longest a chat's hold may last
    before the call fails fast with RetryAfter instead of waiting (None: wait), and a check
    asked right before each attempt leaves (False: withdraw it, see `Withdrawn`).

    ``paid_after``: seconds from the call after which, when its turn comes and the free slot
    is taken, the request may go as a paid broadcast (None: never; ignored without a paid
    lane). ``on_paid`` is called once a paid attempt was accepted by Telegram;
    ``on_paid_error`` with the error when one was not (then raised as usual), so the caller
    can tell a refusal to charge from the same error on the free lane."""

    max_retries: int | None = None
    max_wait: float | None = None
    still_wanted: Callable[[], Awaitable[bool]] | None = None
    paid_after: float | None = None
    on_paid: Callable[[], None] | None = None
    on_paid_error: Callable[[Exception], None] | None = None


def may_go_paid(now: float, paid_from: float | None, free_wait: float) -> bool:
    """The lane rule: paid only when the free slot is not free now (``free_wait`` > 0) and the
    request's limit (``paid_from``) has come. Waiting is always preferred while waiting is
    still in time, so a paid send is one the free lane could not have carried in time."""
    return paid_from is not None and free_wait > TIME_EPSILON and now >= paid_from - TIME_EPSILON


class Withdrawn(Exception):
    """A request's `still_wanted` check said no when its turn came: nothing was sent."""


@dataclass(frozen=True)
class Refusal:
    """Why a send may not go now, and for how many seconds at least."""

    scope: Literal["chat", "global"]
    wait: float


class SendBudget(Protocol):
    """The state every sender of one bot token must share: the global slot and each chat's
    pace and holds. Times are relative seconds, so an implementation may keep its own clock
    (a database's or Redis's) and several processes can share it."""

    async def take(self, chat: ChatKey, per_second: float, lane: Lane = "free") -> Refusal | None:
        """Take a send for `chat` if its pace and `lane`'s global rate allow it now (both or
        neither); otherwise take nothing and say which limit refused and for how long. Each
        lane has its own global slot; a chat's pace and the holds are shared by both."""
        ...

    async def wait_hint(self, chat: ChatKey) -> float:
        """Seconds until `chat` may send as far as holds and its own pace go (not counting
        the global spacing); 0 when it could send now."""
        ...

    async def hold(self, chat: ChatKey | None, seconds: float) -> None:
        """Let nothing go to `chat` (None: to any chat, in either lane) for `seconds`."""
        ...


@dataclass
class _Bucket:
    tokens: float
    at: float
    pace: Pace
    held_until: float = 0.0

    def refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.pace.burst, self.tokens + (now - self.at) / self.pace.interval)
            self.at = now

    def wait(self, now: float) -> float:
        self.refill(now)
        wait = max(self.held_until - now, (1 - self.tokens) * self.pace.interval)
        return wait if wait > TIME_EPSILON else 0.0


class LocalSendBudget:
    """`SendBudget` in this process's memory (one bot process per token)."""

    PRUNE_ABOVE: Final = 1024

    def __init__(
        self,
        *,
        private: Pace = PRIVATE_CHAT,
        group: Pace = GROUP_CHAT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._private = private
        self._group = group
        self._now = monotonic
        self._next_slot: dict[Lane, float] = {"free": 0.0, "paid": 0.0}
        self._held_until = 0.0
        self._chats: dict[ChatKey, _Bucket] = {}

    def _bucket(self, chat: ChatKey, now: float) -> _Bucket:
        bucket = self._chats.get(chat)
        if bucket is None:
            if len(self._chats) >= self.PRUNE_ABOVE:
                self._prune(now)
            pace = self._group if is_group(chat) else self._private
            bucket = self._chats[chat] = _Bucket(float(pace.burst), now, pace)
        return bucket

    def _prune(self, now: float) -> None:
        """Forget chats whose bucket is full again and not held: they are back to default."""
        for chat, bucket in list(self._chats.items()):
            if bucket.wait(now) == 0 and bucket.tokens >= bucket.pace.burst:
                del self._chats[chat]

    async def take(self, chat: ChatKey, per_second: float, lane: Lane = "free") -> Refusal | None:
        now = self._now()
        bucket = self._bucket(chat, now)
        chat_wait = bucket.wait(now)
        if chat_wait > 0:
            return Refusal("chat", chat_wait)
        global_wait = max(self._held_until, self._next_slot[lane]) - now
        if global_wait > TIME_EPSILON:
            return Refusal("global", global_wait)
        bucket.tokens = max(bucket.tokens - 1, 0.0)
        self._next_slot[lane] = now + SAFETY / per_second
        return None

    async def wait_hint(self, chat: ChatKey) -> float:
        now = self._now()
        return max(self._bucket(chat, now).wait(now), self._held_until - now, 0.0)

    async def hold(self, chat: ChatKey | None, seconds: float) -> None:
        now = self._now()
        if chat is None:
            self._held_until = max(self._held_until, now + seconds)
        else:
            bucket = self._bucket(chat, now)
            bucket.held_until = max(bucket.held_until, now + seconds)


@dataclass(frozen=True)
class FloodDecision:
    """What a 429 means: hold one chat, also slow everyone down, or pause everything."""

    action: Literal["chat", "slow_down", "pause_all"]
    rate: float
    pause: float = 0.0
    chats: int = 1
    window: float = 0.0  # seconds the evidence came within


@dataclass
class FloodScope:
    """AIMD on the global rate, driven by how many chats answer 429 close together."""

    max_rate: float
    min_rate: float = MIN_RATE
    evidence_chats: int = EVIDENCE_CHATS
    evidence_window: float = EVIDENCE_WINDOW
    increase_per_second: float = RATE_INCREASE_PER_SECOND
    _base: float = field(init=False)
    _since: float = field(default=-math.inf, init=False)
    _recent: deque[tuple[float, ChatKey, float]] = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        self.min_rate = min(self.min_rate, self.max_rate)
        self._base = self.max_rate

    def rate(self, now: float) -> float:
        """The global rate now: the last decrease plus what it regained since."""
        regained = (now - self._since) * self.increase_per_second
        return min(self.max_rate, self._base + regained)

    def observe(self, chat: ChatKey, retry_after: float, now: float) -> FloodDecision:
        recent = self._recent
        recent.append((now, chat, retry_after))
        current = self.rate(now)
        # At a low rate, a few sends take longer than the window: widen it to cover them.
        window = max(self.evidence_window, self.evidence_chats / current)
        while recent and now - recent[0][0] > window:
            recent.popleft()
        chats = {c for _, c, _ in recent}
        if len(chats) < self.evidence_chats:
            return FloodDecision("chat", current)
        longest = max(seconds for _, _, seconds in recent)
        recent.clear()  # the next decision needs fresh evidence
        if current <= self.min_rate:
            self._base, self._since = self.min_rate, now
            return FloodDecision("pause_all", self.min_rate, longest, len(chats), window)
        self._base, self._since = max(self.min_rate, current / 2), now
        return FloodDecision("slow_down", self._base, chats=len(chats), window=window)


@dataclass
class SendStats:
    """Counters for the metrics issue to export."""

    held_chats: int = 0  # 429s that held back one chat
    slowdowns: int = 0  # global rate halvings
    pauses: int = 0  # every-chat pauses
    deferred: int = 0  # calls refused with RetryAfter before sending (max_wait exceeded)
    paid: int = 0  # sends accepted as paid broadcasts (allow_paid_broadcast, charged in Stars)


@dataclass(slots=True)
class _Waiter:
    """A request waiting for its turn: told its lane; ``paid_from`` (monotonic) or None."""

    future: asyncio.Future[Lane]
    paid_from: float | None


class FairRateLimiter(BaseRateLimiter[SendOptions]):
    """Per-chat pace, global rate, round robin between chats, 429s handled by scope; with
    ``paid_per_second``, a paid lane for what the free one cannot carry in time."""

    def __init__(
        self,
        per_second: float,
        *,
        paid_per_second: float = 0.0,
        budget: SendBudget | None = None,
        max_retries: int = 3,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`per_second` is the free lane's rate, `paid_per_second` the paid lane's (0: none;
        ALLOW_PAID_BROADCAST). `monotonic` and `sleep` are for tests (a simulated pair); the
        budget shares them unless one is given."""
        if per_second <= 0 or paid_per_second < 0:
            raise ValueError("per_second must be positive and paid_per_second not negative")
        self.scope = FloodScope(per_second)
        self.paid_per_second = paid_per_second
        self.budget: SendBudget = budget or LocalSendBudget(monotonic=monotonic)
        self.max_retries = max_retries
        self.stats = SendStats()
        self._now = monotonic
        self._sleep = sleep
        self._queues: dict[ChatKey, deque[_Waiter]] = {}
        self._turns: deque[ChatKey] = deque()  # chats that may try now, in turn order
        self._resting: list[tuple[float, int, ChatKey]] = []  # (until, tie, chat): paced out
        self._ties = itertools.count()
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_departure: dict[Lane, float] = {"free": -math.inf, "paid": -math.inf}
        self._departures: dict[Lane, asyncio.Lock] = {
            "free": asyncio.Lock(),
            "paid": asyncio.Lock(),
        }

    async def initialize(self) -> None:
        """Nothing to set up: the first request starts the queue."""

    async def shutdown(self) -> None:
        """Stop the queue; requests still waiting are cancelled."""
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        for queue in self._queues.values():
            for waiter in queue:
                waiter.future.cancel()
        self._queues.clear()
        self._turns.clear()
        self._resting.clear()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: SendOptions | None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Pace one request. A paid attempt adds ``allow_paid_broadcast`` to ``data``: ExtBot
        passes that same dict to ``callback`` (``args=(endpoint, data)``), which serialises
        it only when called, so the flag goes out with this attempt and no other."""
        chat = paced_chat(endpoint, data)
        if chat is None:
            return await callback(*args, **kwargs)
        options = rate_limit_args or SendOptions()
        retries = self.max_retries if options.max_retries is None else options.max_retries
        paid_from = None
        if options.paid_after is not None and self.paid_per_second > 0:
            paid_from = self._now() + options.paid_after
        retry = False
        for attempt in range(retries + 1):
            lane = await self._turn(
                chat, ahead=retry, max_wait=options.max_wait, paid_from=paid_from
            )
            if options.still_wanted is not None and not await options.still_wanted():
                raise Withdrawn(endpoint)
            await self._depart(lane)
            if lane == "paid":
                data[PAID_FLAG] = True
            try:
                result = await callback(*args, **kwargs)
            except Exception as error:
                if lane == "paid" and options.on_paid_error is not None:
                    options.on_paid_error(error)
                if not isinstance(error, RetryAfter):
                    raise
                await self._flooded(chat, endpoint, retry_after_seconds(error))
                if attempt == retries:
                    raise
                retry = True
                continue
            finally:
                if lane == "paid":
                    data.pop(PAID_FLAG, None)  # a retry chooses its lane again
            if lane == "paid":
                self.stats.paid += 1
                if options.on_paid is not None:
                    options.on_paid()
            return result
        raise AssertionError("unreachable: the loop returns or raises")

    # --- waiting for a turn -----------------------------------------------------------------

    async def _turn(
        self, chat: ChatKey, *, ahead: bool, max_wait: float | None, paid_from: float | None
    ) -> Lane:
        """Wait until this chat's request may go, and say in which lane: FIFO within the
        chat, round robin across chats. `ahead` puts a retry before the chat's later
        requests."""
        if max_wait is not None:
            wait = await self.budget.wait_hint(chat)
            if wait > max_wait:
                self.stats.deferred += 1
                raise RetryAfter(max(1, math.ceil(wait)))
        if not self._queues and await self.budget.take(chat, self._rate()) is None:
            return "free"  # nobody waiting and the budget allows it: no queueing at all
        waiter = _Waiter(asyncio.get_running_loop().create_future(), paid_from)
        queue = self._queues.get(chat)
        if queue is None:
            queue = self._queues[chat] = deque()
            self._turns.append(chat)
            self._wake.set()
        elif paid_from is not None:
            self._wake.set()  # it may be due for the paid lane sooner than the pump naps
        if ahead:
            queue.appendleft(waiter)
        else:
            queue.append(waiter)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_pump(), name="send-queue")
        return await waiter.future

    def _rate(self, lane: Lane = "free") -> float:
        rate = self.scope.rate(self._now())
        if lane == "free":
            return rate
        return self.paid_per_second * rate / self.scope.max_rate  # a slowdown slows both

    async def _depart(self, lane: Lane) -> None:
        """Leave at least one of the lane's spacings after its previous request, however long
        the last-moment checks between turn and departure took."""
        async with self._departures[lane]:
            wait = self._last_departure[lane] + SAFETY / self._rate(lane) - self._now()
            if wait > TIME_EPSILON:
                await self._sleep(wait)
            self._last_departure[lane] = self._now()

    async def _run_pump(self) -> None:
        try:
            while True:
                wait = await self._grant()
                if wait is None:
                    return
                await self._nap(wait)
        except Exception as error:  # a shared budget's backend failed: fail the waiters
            log.exception("the send queue stopped; failing the requests waiting in it")
            for queue in self._queues.values():
                for waiter in queue:
                    if not waiter.future.done():
                        waiter.future.set_exception(error)
            self._queues.clear()
            self._turns.clear()
            self._resting.clear()

    def _head(self, chat: ChatKey) -> _Waiter | None:
        """The chat's first request still waiting (cancelled ones are dropped); None: the
        chat has nothing left and is forgotten."""
        queue = self._queues[chat]
        while queue and queue[0].future.done():  # cancelled while waiting
            queue.popleft()
        if not queue:
            del self._queues[chat]
            return None
        return queue[0]

    def _give(self, chat: ChatKey, lane: Lane) -> None:
        """Hand the chat's turn to its first request; the chat goes to the back of the line."""
        self._turns.remove(chat)
        queue = self._queues[chat]
        queue.popleft().future.set_result(lane)
        if queue:
            self._turns.append(chat)  # back of the line: the others go first
        else:
            del self._queues[chat]

    async def _grant(self) -> float | None:
        """Hand out turns while the budget allows; the seconds until the next chance, or None
        when nobody is waiting."""
        now = self._now()
        while self._resting and self._resting[0][0] <= now:
            self._turns.append(heapq.heappop(self._resting)[2])
        while self._turns:
            chat = self._turns[0]
            if self._head(chat) is None:
                self._turns.popleft()
                continue
            refusal = await self.budget.take(chat, self._rate())
            if refusal is None:
                self._give(chat, "free")
                continue
            if refusal.scope == "global":
                paid_wait = await self._grant_paid(now, refusal.wait)
                if not self._queues:
                    return None  # the paid lane took everyone: nothing to wait for
                return refusal.wait if paid_wait is None else min(refusal.wait, paid_wait)
            self._turns.popleft()  # paced out: rests until its next token
            heapq.heappush(self._resting, (now + refusal.wait, next(self._ties), chat))
        if self._resting:
            return max(self._resting[0][0] - now, 0.0)
        return None if not self._queues else 0.0

    async def _grant_paid(self, now: float, free_wait: float) -> float | None:
        """The free slot is taken for ``free_wait`` seconds: the chats in line whose first
        request may go paid (``may_go_paid``) take the paid slot, in turn order. Returns the
        seconds until the paid lane may grant again (its slot, or the next ``paid_from``), or
        None when nobody in line may ever go paid."""
        if self.paid_per_second <= 0:
            return None
        soonest: float | None = None
        for chat in list(self._turns):
            head = self._head(chat)
            if head is None:
                self._turns.remove(chat)
                continue
            if head.paid_from is None:
                continue
            if not may_go_paid(now, head.paid_from, free_wait):
                wait = head.paid_from - now
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            refusal = await self.budget.take(chat, self._rate("paid"), "paid")
            if refusal is None:
                self._give(chat, "paid")
            elif refusal.scope == "global":
                return refusal.wait if soonest is None else min(soonest, refusal.wait)
            # a chat refusal: the free lane's next look rests the chat
        return soonest

    async def _nap(self, seconds: float) -> None:
        """Sleep until the next chance, or until a new chat starts waiting."""
        self._wake.clear()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    # --- a 429 ------------------------------------------------------------------------------

    async def _flooded(self, chat: ChatKey, endpoint: str, retry_after: float) -> None:
        hold = retry_after + HOLD_MARGIN
        await self.budget.hold(chat, hold)
        self.stats.held_chats += 1
        decision = self.scope.observe(chat, retry_after, self._now())
        if decision.action == "chat":
            log.info(
                "flood control on %s to chat %s: that chat waits %.1f s, the others go on",
                endpoint,
                chat,
                hold,
            )
        elif decision.action == "slow_down":
            self.stats.slowdowns += 1
            log.warning(
                "%d chats answered 429 within %.0f s: the bot as a whole is over Telegram's "
                "limit, so the send rate drops to %.1f msg/s and climbs back by %.0f msg/s each "
                "second",
                decision.chats,
                decision.window,
                decision.rate,
                self.scope.increase_per_second,
            )
        else:
            self.stats.pauses += 1
            await self.budget.hold(None, decision.pause + HOLD_MARGIN)
            log.warning(
                "%d chats answered 429 within %.0f s even at the floor rate of %.1f msg/s: "
                "pausing every send for %.1f s (the longest retry_after asked)",
                decision.chats,
                decision.window,
                decision.rate,
                decision.pause + HOLD_MARGIN,
            )
