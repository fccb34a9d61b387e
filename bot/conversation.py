"""The open prompt survives restarts and replicas: ``user_data``/``chat_data`` live in the
database, read before each update's handlers run and written after, if they changed.

Why not a PTB ``BasePersistence`` subclass over SQLAlchemy? PTB reads persisted
``user_data`` once, in ``Application.initialize()``, and writes changes back every
``update_interval`` (60 s by default) from a background job. Both break what this is for:

* a replica would never see the state another replica wrote after it started (someone
  asked for a timezone on replica A types "berlin" on replica B, which answers as if no
  question was open);
* a process killed within the interval loses what it had not flushed, so a restart right
  after a question forgets it.

So the state is read and written *per update*, inside the update's chat line
(bot.updates.ChatUpdateProcessor runs one chat's updates one after another, so two
updates of one person never interleave their read and write in one process), by the
inbox worker (bot/polling.py) that hands every update on, whether it came by getUpdates or
by webhook. Handlers keep using ``context.user_data`` unchanged. The cost is one read by
primary key per update with a user or chat, and one write only when the state changed (a
prompt opened or closed).

Across replicas the last writer wins: two messages of one person handled at the same moment
by two replicas could lose one prompt change. Prompts open only in private chats, in answer
to what the person just did, so this needs a person typing two messages within one handler's
run; the worst outcome is a prompt asked again.

State must be JSON (strings, numbers, lists, dicts): a handler that stores anything else
gets a TypeError in the log and the state is not saved, rather than a pickle in the database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update

from bot.clock import Clock
from bot.context import SleepApplication
from bot.storage.conversation import Conversations, Key

log = logging.getLogger(__name__)


def keys_of(update: Update) -> list[Key]:
    """Whose state an update may read or change: its user's and its chat's."""
    keys: list[Key] = []
    if update.effective_user is not None:
        keys.append(("user", update.effective_user.id))
    if update.effective_chat is not None:
        keys.append(("chat", update.effective_chat.id))
    return keys


def _canonical(state: Any) -> str:
    return json.dumps(state, sort_keys=True, default=repr)


class ConversationState:
    """Loads an update's ``user_data``/``chat_data`` from the database and saves changes."""

    def __init__(
        self,
        application: SleepApplication,
        conversations: Callable[[], Conversations],
        clock: Clock,
    ) -> None:
        self._application = application
        self._conversations = conversations
        self._clock = clock

    def _memory(self, key: Key) -> dict[Any, Any]:
        scope, owner = key
        application = self._application
        # The proxies PTB exposes create the entry on first access (defaultdicts).
        return application.user_data[owner] if scope == "user" else application.chat_data[owner]

    async def around(self, update: Update, handle: Callable[[], Awaitable[object]]) -> None:
        """Load, run `handle` (the Application's handlers), save what changed."""
        keys = keys_of(update)
        if not keys:
            await handle()
            return
        conversations = self._conversations()
        stored = await conversations.load(keys)
        before: dict[Key, str] = {}
        for key in keys:
            memory = self._memory(key)
            memory.clear()
            memory.update(stored.get(key, {}))
            before[key] = _canonical(memory)
        await handle()
        changed = {
            key: dict(self._memory(key))
            for key in keys
            if _canonical(self._memory(key)) != before[key]
        }
        if not changed:
            return
        try:
            await conversations.save(changed, self._clock.now())
        except TypeError:
            log.exception("conversation state is not JSON; not saved (store plain values only)")
