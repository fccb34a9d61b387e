"""`SendBudget` in Redis: the 30 msg/s slot, each chat's pace and 429 holds, shared by every
replica that sends with one bot token.

Semantics are `LocalSendBudget`'s exactly (tests/test_send_budget.py runs one contract
against both): a chat is a token bucket (``burst``, one token per ``interval``) with an
optional hold; the bot has one global slot, spaced ``SAFETY / per_second`` apart, and an
optional global hold; with a paid lane (bot/ratelimit.py, ALLOW_PAID_BROADCAST) a second
global slot, ``global:paid``, shared the same way, so the free lane stays under Telegram's
free rate across every replica and the paid one under its own; a global hold is written to
both. Each operation is one Lua script, so "check the chat, check the global
slot, take both" is atomic across replicas. Time is Redis's own clock (``TIME``), so replicas
whose clocks disagree still agree on every wait; tests may pass a clock instead.

State lives in hashes under ``sleepbot:{<bot id>}:`` (one hash tag, so a Redis Cluster keeps
a bot's keys in one slot, as multi-key scripts require). A chat's hash expires once its
bucket is full again and its hold is over, which is exactly when it equals a fresh bucket,
so nothing needs pruning.

When Redis fails (down, timeout), sending must not stop: the budget logs one warning and
falls back to a `LocalSendBudget` (limits per process until Redis answers again), tries Redis
again after ``RETRY_AFTER_S``, and logs when it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.ratelimit import (
    GROUP_CHAT,
    PRIVATE_CHAT,
    SAFETY,
    TIME_EPSILON,
    ChatKey,
    Lane,
    LocalSendBudget,
    Pace,
    Refusal,
    is_group,
)

log = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 5.0
UNAVAILABLE: Final = object()  # Redis did not answer: use the fallback
SOCKET_TIMEOUT_S: Final = 0.5  # Redis answers in well under a millisecond when it is well
# Seconds are counted from here, so a Lua double (and "%.17g") keeps sub-microsecond detail.
EPOCH: Final = 1_700_000_000

# Shared by the scripts: the clock, the number format that loses nothing, and a chat's
# bucket refilled to `now` with the seconds it must wait (LocalSendBudget's _Bucket.wait).
_PRELUDE: Final = f"""
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return (tonumber(t[1]) - {EPOCH}) + tonumber(t[2]) / 1000000
end
local function num(x) return string.format('%.17g', x) end
local EPS = {TIME_EPSILON!r}
local function bucket(key, burst, interval, now)
  local c = redis.call('HMGET', key, 'tokens', 'at', 'held')
  local tokens, at, held = tonumber(c[1]) or burst, tonumber(c[2]) or now, tonumber(c[3]) or 0
  if now > at then
    tokens = math.min(burst, tokens + (now - at) / interval)
    at = now
  end
  local wait = math.max(held - now, (1 - tokens) * interval)
  if wait <= EPS then wait = 0 end
  return tokens, at, held, wait
end
"""

# KEYS: chat, global. ARGV: burst, interval, spacing, now ('' = Redis TIME).
_TAKE: Final = (
    _PRELUDE
    + """
local now = clock(ARGV[4])
local burst, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, at, held, wait = bucket(KEYS[1], burst, interval, now)
if wait > 0 then return {'chat', num(wait)} end
local g = redis.call('HMGET', KEYS[2], 'next', 'held')
local next_slot, global_held = tonumber(g[1]) or 0, tonumber(g[2]) or 0
local global_wait = math.max(global_held, next_slot) - now
if global_wait > EPS then return {'global', num(global_wait)} end
tokens = math.max(tokens - 1, 0)
next_slot = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'tokens', num(tokens), 'at', num(at), 'held', num(held))
redis.call('PEXPIRE', KEYS[1],
  math.ceil((math.max(held - now, 0) + (burst - tokens) * interval + 1) * 1000))
redis.call('HSET', KEYS[2], 'next', num(next_slot), 'held', num(global_held))
redis.call('PEXPIRE', KEYS[2], math.ceil((math.max(global_held, next_slot) - now + 1) * 1000))
return false
"""
)

# KEYS: chat, global. ARGV: burst, interval, now.
_WAIT_HINT: Final = (
    _PRELUDE
    + """
local now = clock(ARGV[3])
local _, _, _, wait = bucket(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
local global_held = tonumber(redis.call('HGET', KEYS[2], 'held')) or 0
return num(math.max(wait, global_held - now, 0))
"""
)

# KEYS: the chat's or the global hash. ARGV: seconds, now, burst, interval ('' for global).
_HOLD: Final = (
    _PRELUDE
    + """
local now = clock(ARGV[2])
local until_ = now + tonumber(ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[1], 'held')) or 0
held = math.max(held, until_)
local keep = held - now + 1
if ARGV[3] ~= '' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'tokens', ARGV[3], 'at', num(now))
  end
  keep = keep + tonumber(ARGV[3]) * tonumber(ARGV[4])
else
  local next_slot = tonumber(redis.call('HGET', KEYS[1], 'next')) or 0
  keep = math.max(keep, next_slot - now + 1)
end
redis.call('HSET', KEYS[1], 'held', num(held))
redis.call('PEXPIRE', KEYS[1], math.ceil(keep * 1000))
return false
"""
)


def connect(url: str) -> Redis:
    """A client for REDIS_URL that gives up fast: one immediate retry (a pooled connection
    may be stale after a Redis restart), short timeouts. Sends wait on it, so a dead Redis
    may stall them for about a second, once per RETRY_AFTER_S, not for redis-py's default
    backed-off retries."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
    )
    return client


class RedisSendBudget:
    """`SendBudget` shared through Redis; see the module docstring."""

    def __init__(
        self,
        client: Redis,
        *,
        namespace: str,
        private: Pace = PRIVATE_CHAT,
        group: Pace = GROUP_CHAT,
        clock: Callable[[], float] | None = None,
        fallback: LocalSendBudget | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`namespace` separates bots (use the bot's id, the token's public part); `clock`
        replaces Redis's TIME in tests; `monotonic` times the fallback's retries."""
        self._client = client
        self._prefix = f"sleepbot:{{{namespace}}}:"
        self._private = private
        self._group = group
        self._clock = clock
        self._fallback = fallback or LocalSendBudget(
            private=private, group=group, monotonic=clock or time.monotonic
        )
        self._monotonic = monotonic
        self._failed_at: float | None = None
        self._take = client.register_script(_TAKE)
        self._wait_hint = client.register_script(_WAIT_HINT)
        self._hold = client.register_script(_HOLD)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and limits are kept per process."""
        return self._failed_at is not None

    def _key(self, chat: ChatKey) -> str:
        kind = "s" if isinstance(chat, str) else "i"
        return f"{self._prefix}chat:{kind}:{chat}"

    @property
    def _global_key(self) -> str:
        return f"{self._prefix}global"

    def _lane_key(self, lane: Lane) -> str:
        return self._global_key if lane == "free" else f"{self._prefix}global:{lane}"

    def _pace(self, chat: ChatKey) -> Pace:
        return self._group if is_group(chat) else self._private

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    def _use_redis(self) -> bool:
        if self._failed_at is None:
            return True
        return self._monotonic() - self._failed_at >= RETRY_AFTER_S

    async def _run(self, script: Any, keys: list[str], args: list[str]) -> Any:
        """A script's result, or UNAVAILABLE (after switching to the fallback) when Redis
        fails."""
        if not self._use_redis():
            return UNAVAILABLE
        try:
            result = await script(keys=keys, args=args)
        except (RedisError, OSError) as error:
            if self._failed_at is None:
                log.warning(
                    "Redis is unreachable (%s): send limits are kept per process until it "
                    "answers again",
                    type(error).__name__,
                )
            self._failed_at = self._monotonic()
            return UNAVAILABLE
        if self._failed_at is not None:
            log.warning("Redis answers again: send limits are shared across replicas again")
            self._failed_at = None
        return result

    async def take(self, chat: ChatKey, per_second: float, lane: Lane = "free") -> Refusal | None:
        pace = self._pace(chat)
        args = [str(pace.burst), repr(pace.interval), repr(SAFETY / per_second), self._now()]
        result = await self._run(self._take, [self._key(chat), self._lane_key(lane)], args)
        if result is UNAVAILABLE:
            return await self._fallback.take(chat, per_second, lane)
        if result is None:
            return None
        scope, wait = result
        return Refusal("chat" if scope == b"chat" else "global", float(wait))

    async def wait_hint(self, chat: ChatKey) -> float:
        pace = self._pace(chat)
        args = [str(pace.burst), repr(pace.interval), self._now()]
        wait = await self._run(self._wait_hint, [self._key(chat), self._global_key], args)
        if wait is UNAVAILABLE:
            return await self._fallback.wait_hint(chat)
        return float(wait)

    async def hold(self, chat: ChatKey | None, seconds: float) -> None:
        # Held in the fallback too, so a 429 is still obeyed if Redis fails right after.
        await self._fallback.hold(chat, seconds)
        if chat is None:
            for lane in ("free", "paid"):
                args = [repr(seconds), self._now(), "", ""]
                await self._run(self._hold, [self._lane_key(lane)], args)
            return
        pace = self._pace(chat)
        args = [repr(seconds), self._now(), str(pace.burst), repr(pace.interval)]
        await self._run(self._hold, [self._key(chat)], args)
