"""The inbox: every incoming update is on disk before Telegram is told it arrived.

Telegram forgets an update once it is confirmed: in polling mode by the next getUpdates offset,
in webhook mode by the HTTP 200. PTB's Updater confirms a batch while it still waits in memory,
so a killed process lost it. Here the receiver calls :meth:`Inbox.store` (one transaction,
insert-or-ignore by update_id) and confirms only after it returned; a worker then takes
:meth:`Inbox.next_batch` in update_id order, handles each update and calls
:meth:`Inbox.mark_done` (one write per update; :meth:`Inbox.begin` counts attempts with one
write per group of updates handed on).

Guarantee: at least once, de-duplicated by update_id. An update handled before a crash is never
handled again (a re-delivered update_id is ignored); those whose handling was under way when the
process died (at most the worker's ``MAX_IN_FLIGHT``) are handled again by the next process.
An update that was under way in ``MAX_ATTEMPTS`` processes that all died is given up with a log
line, so one poisonous update cannot crash-loop the bot.

Privacy: a handled row keeps neither its payload (names, message text) nor its chat_id. The
bare update_id stays for ``KEEP_HANDLED`` (Telegram re-delivers unconfirmed updates for up to
24 hours) and is then pruned. Rows not yet handled are erased with the person's data
(:func:`erase_chat`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Delete, Update, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.dialects import insert_ignoring_conflicts
from bot.storage.models import DISPATCHERS, INBOX, InboxRow, InboxStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 3
KEEP_HANDLED: Final = timedelta(hours=24)

TransactionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class IncomingUpdate:
    """One update as received: its JSON, and whose it is (for /deletedata before handling)."""

    update_id: int
    chat_id: int | None
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Claimant:
    """A worker among replicas: its process's dispatcher owner id, and since when a heartbeat
    counts as alive. It begins only updates nobody alive began."""

    owner: str
    alive_since: datetime

    def may_begin(self) -> ColumnElement[bool]:
        alive = select(DISPATCHERS.c.owner).where(DISPATCHERS.c.heartbeat_at >= self.alive_since)
        return or_(
            InboxRow.owner.is_(None),
            and_(InboxRow.owner != self.owner, InboxRow.owner.not_in(alive)),
        )


@dataclass(frozen=True)
class StoredUpdate:
    update_id: int
    payload: dict[str, Any]
    attempts: int  # processes (or failures) that began it without finishing it


class Inbox:
    """Durable update queue; every method is one short transaction on the Store's engine."""

    def __init__(self, transaction: TransactionFactory, dialect: str) -> None:
        self._transaction = transaction
        self._dialect = dialect

    async def store(self, updates: Sequence[IncomingUpdate], now: datetime) -> None:
        """Commit a batch; an update_id already stored (pending or handled) is ignored."""
        if not updates:
            return
        rows = [
            {
                "update_id": incoming.update_id,
                "chat_id": incoming.chat_id,
                "payload": json.dumps(incoming.payload, ensure_ascii=False),
                "status": InboxStatus.PENDING,
                "attempts": 0,
                "received_at": now,
            }
            for incoming in updates
        ]
        statement = insert_ignoring_conflicts(self._dialect, INBOX, "update_id")
        async with self._transaction() as session:
            await session.execute(statement, rows)

    async def next_batch(
        self, limit: int = 100, *, after: int | None = None, claimant: Claimant | None = None
    ) -> list[StoredUpdate]:
        """The oldest pending updates (after update_id ``after``; with ``claimant``, only
        those it may begin), in update_id order."""
        statement = (
            select(InboxRow.update_id, InboxRow.payload, InboxRow.attempts)
            .where(InboxRow.status == InboxStatus.PENDING)
            .order_by(InboxRow.update_id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(InboxRow.update_id > after)
        if claimant is not None:
            statement = statement.where(claimant.may_begin())
        async with self._transaction() as session:
            rows = (await session.execute(statement)).all()
        return [
            StoredUpdate(int(update_id), json.loads(payload or "{}"), int(attempts))
            for update_id, payload, attempts in rows
        ]

    async def begin(
        self, updates: Sequence[StoredUpdate], now: datetime, *, claimant: Claimant | None = None
    ) -> list[StoredUpdate]:
        """Count one more attempt for each update about to be handled (one write for the
        group), and give up those that MAX_ATTEMPTS processes began without finishing: one
        poisonous update must not crash-loop the bot. Returns the ones to handle.

        With ``claimant`` (replicas), the same write claims them: an update another live
        worker began meanwhile is left out (the UPDATE re-checks the owner under the row
        lock, so of two workers racing for one update exactly one gets it)."""
        if not updates:
            return []
        ids = [item.update_id for item in updates]
        async with self._transaction() as session:
            statement = update(InboxRow).where(
                InboxRow.update_id.in_(ids), InboxRow.status == InboxStatus.PENDING
            )
            if claimant is None:
                await session.execute(statement.values(attempts=InboxRow.attempts + 1))
            else:
                claimed = set(
                    (
                        await session.execute(
                            statement.where(claimant.may_begin())
                            .values(attempts=InboxRow.attempts + 1, owner=claimant.owner)
                            .returning(InboxRow.update_id)
                            .execution_options(synchronize_session=False)
                        )
                    ).scalars()
                )
                updates = [item for item in updates if item.update_id in claimed]
            doomed = [item.update_id for item in updates if item.attempts >= MAX_ATTEMPTS]
            for update_id in doomed:
                await session.execute(_finish(update_id, InboxStatus.FAILED, now))
        for update_id in doomed:
            log.error(
                "update %d was begun by %d processes that all stopped; giving up on it",
                update_id,
                MAX_ATTEMPTS,
            )
        return [item for item in updates if item.update_id not in doomed]

    async def count_attempt(self, update_id: int, now: datetime) -> bool:
        """One more process began this update and did not finish it; False (and the update is
        given up) once MAX_ATTEMPTS did. (:meth:`begin` does the same for a group at once.)"""
        async with self._transaction() as session:
            attempts = (
                await session.execute(
                    update(InboxRow)
                    .where(InboxRow.update_id == update_id, InboxRow.status == InboxStatus.PENDING)
                    .values(attempts=InboxRow.attempts + 1)
                    .returning(InboxRow.attempts)
                )
            ).scalar_one_or_none()
            if attempts is None or attempts <= MAX_ATTEMPTS:
                return attempts is not None
            await session.execute(_finish(update_id, InboxStatus.FAILED, now))
        log.error(
            "update %d was begun by %d processes that all stopped; giving up on it",
            update_id,
            MAX_ATTEMPTS,
        )
        return False

    async def mark_done_many(self, update_ids: Sequence[int], now: datetime) -> None:
        """Several handled at once: one transaction (the worker's group commit)."""
        if not update_ids:
            return
        async with self._transaction() as session:
            await session.execute(
                update(InboxRow)
                .where(InboxRow.update_id.in_(update_ids), InboxRow.status == InboxStatus.PENDING)
                .values(status=InboxStatus.DONE, payload=None, chat_id=None, processed_at=now)
            )

    async def mark_done(self, update_id: int, now: datetime) -> None:
        """Handled: forget the payload and chat at once; the bare id guards against re-delivery."""
        async with self._transaction() as session:
            await session.execute(_finish(update_id, InboxStatus.DONE, now))

    async def give_up(self, update_id: int, now: datetime) -> None:
        """Never to be handled (e.g. not a valid update): forget it like a handled one."""
        async with self._transaction() as session:
            await session.execute(_finish(update_id, InboxStatus.FAILED, now))

    async def prune(self, now: datetime) -> int:
        """Delete handled rows older than KEEP_HANDLED; pending ones stay, whatever their age."""
        async with self._transaction() as session:
            result = await session.execute(
                delete(InboxRow).where(
                    InboxRow.status != InboxStatus.PENDING,
                    InboxRow.processed_at < now - KEEP_HANDLED,
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def counts(self) -> dict[str, int]:
        """Rows per status, for tests, logs and benchmarks."""
        async with self._transaction() as session:
            rows = (
                await session.execute(
                    select(InboxRow.status, func.count()).group_by(InboxRow.status)
                )
            ).all()
        counts = dict.fromkeys(InboxStatus.ALL, 0)
        counts.update({str(status): int(count) for status, count in rows})
        return counts


def _finish(update_id: int, status: str, now: datetime) -> Update:
    return (
        update(InboxRow)
        .where(InboxRow.update_id == update_id, InboxRow.status == InboxStatus.PENDING)
        .values(status=status, payload=None, chat_id=None, processed_at=now)
    )


def erase_chat(chat_id: int, *, through: int | None = None) -> Delete:
    """/deletedata: the chat's stored updates up to ``through`` (the request itself).

    Later updates are messages sent after the request: they are still to be answered (and lose
    their payload once handled). Handled rows hold no chat_id, so there is nothing else to find.
    """
    statement = delete(InboxRow).where(InboxRow.chat_id == chat_id)
    if through is not None:
        statement = statement.where(InboxRow.update_id <= through)
    return statement
