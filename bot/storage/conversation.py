"""Conversation state in the database: PTB's ``user_data`` and ``chat_data``, one JSON row per
person or chat (bot/conversation.py decides when to read and write them)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.models import CONVERSATIONS

Scope = Literal["user", "chat"]
Key = tuple[Scope, int]
Connect = Callable[..., AbstractAsyncContextManager[AsyncConnection]]

_C: Final = CONVERSATIONS.c


def _where(keys: Iterable[Key]) -> Any:
    return or_(*(and_(_C.scope == scope, _C.owner_id == owner) for scope, owner in keys))


class Conversations:
    """Load and save the state of the people and chats one update concerns."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    async def load(self, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
        """Each key's stored state; keys with none are left out."""
        keys = list(keys)
        if not keys:
            return {}
        async with self._connect(read_only=True) as connection:
            rows = await connection.execute(
                select(_C.scope, _C.owner_id, _C.data).where(_where(keys))
            )
            return {(row.scope, int(row.owner_id)): json.loads(row.data) for row in rows}

    async def save(self, states: Mapping[Key, Mapping[str, Any]], now: datetime) -> None:
        """Replace each key's state in one transaction; an empty state deletes the row.
        Raises TypeError before writing anything if a state is not JSON."""
        if not states:
            return
        rows = [
            {"scope": scope, "owner_id": owner, "data": json.dumps(dict(state)), "updated_at": now}
            for (scope, owner), state in states.items()
            if state
        ]
        async with self._connect() as connection:
            await connection.execute(delete(CONVERSATIONS).where(_where(states)))
            if rows:
                await connection.execute(insert(CONVERSATIONS), rows)


def erase_owner(owner_id: int) -> Any:
    """/deletedata: the person's and their private chat's state (same id)."""
    return delete(CONVERSATIONS).where(_C.owner_id == owner_id)
