"""The one storage API handlers and the dispatcher use.

The database is the single source of truth: people, their settings and every reminder's next
fire time (UTC, indexed). Every method that changes anything scheduling-related recomputes
``next_fire_at`` in the same transaction, so there is never anything to restore on restart.

Concurrency: each method is one short transaction. Rows that a method reads and then writes
are locked first (``FOR NO KEY UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, see
``dialects``), always in the order person → reminders → deliveries. The dispatcher's claims
use ``SKIP LOCKED`` and never wait, so several processes can share one PostgreSQL database
without double-sending and without deadlocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any, Final

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import schedule
from bot.storage.dialects import (
    create_engine,
    insert_ignoring_conflicts,
    is_single_connection,
    wipe_erased_data,
)
from bot.storage.inbox import Inbox, erase_chat
from bot.storage.migrate import upgrade_to_head
from bot.storage.models import (
    DELIVERIES,
    DIETS,
    PEOPLE,
    DeliveryRow,
    DeliveryStatus,
    PersonRow,
    ReminderRow,
)
from bot.storage.records import (
    ClaimedDelivery,
    ClaimResult,
    DeliveryView,
    MaterializeResult,
    MealChooser,
    Person,
    ReminderSetting,
    SendOutcome,
    StaleOccurrence,
)
from bot.storage.types import UTCDateTime
from bot.timezones import UnknownTimezone, tzinfo_for

log = logging.getLogger(__name__)

MEAL_KIND: Final = "meal"
RECENT_MEALS_KEPT: Final = 7
MAX_OFFSET_MINUTES: Final = schedule.MAX_OFFSET_MINUTES
MAX_SNOOZE_MINUTES: Final = 12 * 60
# Used only when open_store() is not told the content's kinds (the app always tells it).
FALLBACK_OFFSETS: Final[Mapping[str, int]] = {"meal": 240, "exercise": 180, "wind_down": 60}

_D = DeliveryRow
_R = ReminderRow
_P = PersonRow


async def open_store(
    url: str,
    *,
    default_offsets: Mapping[str, int] | None = None,
    schema: str | None = None,
    echo: bool = False,
) -> Store:
    """Connect, apply pending Alembic migrations (``upgrade head``) and return a Store.

    ``default_offsets`` maps each reminder kind to its default minutes before bedtime (from
    ``Content.reminder_kinds``). ``schema`` selects a PostgreSQL schema via ``search_path``.
    """
    engine = create_engine(url, schema=schema, echo=echo)
    try:
        await upgrade_to_head(engine)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine, default_offsets=default_offsets or FALLBACK_OFFSETS)


class Store:
    """Transactions over people, reminders and deliveries; returns frozen dataclasses."""

    def __init__(self, engine: AsyncEngine, *, default_offsets: Mapping[str, int]) -> None:
        for kind, offset in default_offsets.items():
            _check_offset(offset, kind)
        if not default_offsets:
            raise ValueError("default_offsets must name at least one reminder kind")
        self.engine = engine
        self._offsets: dict[str, int] = dict(default_offsets)
        self._kind_order = {kind: index for index, kind in enumerate(default_offsets)}
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        # An in-memory SQLite database is one shared connection: sessions must take turns.
        self._serial = asyncio.Lock() if is_single_connection(engine) else None
        self._dialect = engine.dialect.name
        self.inbox = Inbox(self._transaction, self._dialect)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._offsets)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        if self._serial is None:
            async with self._sessions() as session, session.begin():
                yield session
        else:
            async with self._serial, self._sessions() as session, session.begin():
                yield session

    # --- people --------------------------------------------------------------------------

    async def get_person(self, chat_id: int) -> Person | None:
        async with self._transaction() as session:
            person = await session.get(PersonRow, chat_id)
            if person is None:
                return None
            return self._person(person, await self._reminders(session, chat_id, lock=False))

    async def ensure_person(self, chat_id: int, now: datetime) -> Person:
        """Create the person if new. Someone marked blocked is talking to us again: unblock."""
        return await self._mutate(chat_id, now, lambda person, reminders: None)

    async def set_timezone(self, chat_id: int, key: str, now: datetime) -> Person:
        """Store an IANA name or "UTC+05:30" (validated) and reschedule every reminder."""
        tzinfo_for(key)  # raises UnknownTimezone before anything is written

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.timezone = key

        return await self._mutate(chat_id, now, change)

    async def set_bedtime(
        self, chat_id: int, bedtime: time, now: datetime, *, weekend: bool = False
    ) -> Person:
        """Set the usual (or Friday/Saturday) bedtime, a naive local time, and reschedule."""
        value = _whole_minutes(bedtime)

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            if weekend:
                person.weekend_bedtime = value
            else:
                person.bedtime = value

        return await self._mutate(chat_id, now, change)

    async def clear_weekend_bedtime(self, chat_id: int, now: datetime) -> Person:
        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.weekend_bedtime = None

        return await self._mutate(chat_id, now, change)

    async def set_diet(self, chat_id: int, diet: str, now: datetime) -> Person:
        if diet not in DIETS:
            raise ValueError(f"unknown diet {diet!r}; expected one of {', '.join(DIETS)}")

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.diet = diet

        return await self._mutate(chat_id, now, change)

    async def subscribe(self, chat_id: int, now: datetime) -> Person:
        """Turn reminders on: rows for every kind (default offsets) exist, scheduled if ready."""

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.subscribed = True

        return await self._mutate(chat_id, now, change, all_kinds=True)

    async def set_reminder(
        self,
        chat_id: int,
        kind: str,
        now: datetime,
        *,
        enabled: bool | None = None,
        offset_minutes: int | None = None,
    ) -> Person:
        """Turn one kind on/off or move it; a disabled kind's pending messages are cancelled."""
        self._check_kind(kind)
        if offset_minutes is not None:
            _check_offset(offset_minutes, kind)

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            row = next(r for r in reminders if r.kind == kind)
            if enabled is not None:
                row.enabled = enabled
            if offset_minutes is not None:
                row.offset_minutes = offset_minutes

        cancel = [kind] if enabled is False else None
        return await self._mutate(chat_id, now, change, kinds=(kind,), cancel_kinds=cancel)

    async def pause(self, chat_id: int, until: datetime, now: datetime) -> Person:
        """No reminders before ``until``; pending ones are cancelled, next fire times recomputed."""
        _require_aware(until, "until")

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.paused_until = until

        return await self._mutate(chat_id, now, change, cancel_all=True)

    async def resume(self, chat_id: int, now: datetime) -> Person:
        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.paused_until = None

        return await self._mutate(chat_id, now, change)

    async def unsubscribe(self, chat_id: int, now: datetime) -> Person:
        """/stop: nothing scheduled, pending messages cancelled — no more messages at all."""

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.subscribed = False

        return await self._mutate(chat_id, now, change, cancel_all=True)

    async def deactivate(self, chat_id: int, reason: str, now: datetime) -> None:
        """The chat is gone for us (blocked the bot, chat not found): stop everything.

        Not an action of the person, so unlike every other mutator it never creates or
        unblocks anyone; the next thing they say to the bot (``ensure_person``) undoes it.
        """
        async with self._transaction() as session:
            person = await self._lock_person(session, chat_id)
            if person is None:
                return
            person.blocked_at = now
            person.blocked_reason = reason[:200]
            person.updated_at = now
            for reminder in await self._reminders(session, chat_id, lock=True):
                reminder.next_fire_at = None
            await self._cancel_pending(session, chat_id, None, f"deactivated: {reason}")

    async def export_person(self, chat_id: int) -> dict[str, Any] | None:
        """/mydata: every stored row about the person, JSON-able (ISO 8601 strings)."""
        async with self._transaction() as session:
            person = await session.get(PersonRow, chat_id)
            if person is None:
                return None
            reminders = await self._reminders(session, chat_id, lock=False)
            deliveries = (
                await session.scalars(
                    select(DeliveryRow).where(_D.chat_id == chat_id).order_by(_D.id)
                )
            ).all()
            return {
                "person": {
                    "chat_id": person.chat_id,
                    "timezone": person.timezone,
                    "bedtime": _hhmm(person.bedtime),
                    "weekend_bedtime": _hhmm(person.weekend_bedtime),
                    "diet": person.diet,
                    "subscribed": person.subscribed,
                    "paused_until": _iso(person.paused_until),
                    "blocked_at": _iso(person.blocked_at),
                    "blocked_reason": person.blocked_reason,
                    "recent_meals": list(person.recent_meals),
                    "created_at": _iso(person.created_at),
                    "updated_at": _iso(person.updated_at),
                },
                "reminders": [
                    {
                        "kind": r.kind,
                        "enabled": r.enabled,
                        "offset_minutes": r.offset_minutes,
                        "next_fire_at": _iso(r.next_fire_at),
                        "last_due_at": _iso(r.last_due_at),
                    }
                    for r in reminders
                ],
                "deliveries": [
                    {
                        "id": d.id,
                        "kind": d.kind,
                        "due_at": _iso(d.due_at),
                        "meal_id": d.meal_id,
                        "status": d.status,
                        "attempts": d.attempts,
                        "sent_at": _iso(d.sent_at),
                        "telegram_message_id": d.telegram_message_id,
                        "snoozed_from": d.snoozed_from,
                        "last_error": d.last_error,
                        "created_at": _iso(d.created_at),
                    }
                    for d in deliveries
                ],
            }

    async def delete_person(self, chat_id: int, *, inbox_through: int | None = None) -> bool:
        """/deletedata: the person row goes, reminders and deliveries with it (FK cascade), and
        their stored updates up to ``inbox_through`` (see ``inbox.erase_chat``); then the freed
        bytes are wiped from the database files, not just unlinked (``wipe_erased_data``)."""
        async with self._transaction() as session:
            result = await session.execute(delete(PersonRow).where(_P.chat_id == chat_id))
            await session.execute(erase_chat(chat_id, through=inbox_through))
        await wipe_erased_data(self.engine)
        return _rowcount(result) > 0

    # --- deliveries, from the person's side (buttons) ---------------------------------------

    async def get_delivery(self, delivery_id: int, chat_id: int) -> DeliveryView | None:
        """The delivery if it belongs to ``chat_id``: forged callback data finds nothing."""
        async with self._transaction() as session:
            row = await self._owned_delivery(session, delivery_id, chat_id)
            return None if row is None else _delivery_view(row)

    async def mark_done(self, delivery_id: int, chat_id: int, now: datetime) -> bool:
        """Done pressed: True if the delivery is (now) done; Done after Snooze cancels it."""
        async with self._transaction() as session:
            row = await self._owned_delivery(session, delivery_id, chat_id, lock=True)
            if row is None:
                return False
            if row.status == DeliveryStatus.DONE:
                return True
            if row.status not in (DeliveryStatus.SENT, DeliveryStatus.SNOOZED):
                return False
            if row.status == DeliveryStatus.SNOOZED:
                await session.execute(
                    update(DeliveryRow)
                    .where(_D.snoozed_from == delivery_id, _D.status == DeliveryStatus.PENDING)
                    .values(status=DeliveryStatus.CANCELLED, last_error="done before snooze")
                )
            row.status = DeliveryStatus.DONE
            return True

    async def snooze(
        self, delivery_id: int, chat_id: int, now: datetime, minutes: int
    ) -> datetime | None:
        """Snooze pressed: one new pending delivery due ``now + minutes`` (same kind and meal).

        The ``sent → snoozed`` UPDATE is conditional, so two presses (two devices, a retried
        callback) create one snooze. None if unknown, not ours, not sent, or the person has
        stopped reminders / blocked the bot since.
        """
        if not 1 <= minutes <= MAX_SNOOZE_MINUTES:
            raise ValueError(f"snooze minutes must be 1..{MAX_SNOOZE_MINUTES}, got {minutes}")
        _require_aware(now, "now")
        async with self._transaction() as session:
            person = await session.get(PersonRow, chat_id)
            if person is None or not person.subscribed or person.blocked_at is not None:
                return None
            result = await session.execute(
                update(DeliveryRow)
                .where(
                    _D.id == delivery_id,
                    _D.chat_id == chat_id,
                    _D.status == DeliveryStatus.SENT,
                )
                .values(status=DeliveryStatus.SNOOZED)
                .returning(_D.kind, _D.meal_id)
            )
            original = result.one_or_none()
            if original is None:
                return None
            due = now + timedelta(minutes=minutes)
            session.add(
                DeliveryRow(
                    chat_id=chat_id,
                    reminder_id=None,
                    snoozed_from=delivery_id,
                    kind=original.kind,
                    due_at=due,
                    meal_id=original.meal_id,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=due,
                    created_at=now,
                )
            )
            return due

    async def turn_off_from_delivery(
        self, delivery_id: int, chat_id: int, now: datetime
    ) -> str | None:
        """The "Turn this off" button: disable that kind for the owner; returns the kind."""
        async with self._transaction() as session:
            row = await self._owned_delivery(session, delivery_id, chat_id)
            if row is None or row.kind not in self._offsets:
                return None
            kind = row.kind
        await self.set_reminder(chat_id, kind, now, enabled=False)
        return kind

    async def purge_deliveries(self, older_than: datetime) -> int:
        """Forget finished deliveries due before `older_than`: history is kept for a while only.

        Pending and in-flight rows are never purged, whatever their age, so nothing due is lost.
        """
        _require_aware(older_than, "older_than")
        finished = [s for s in DeliveryStatus.ALL if s not in _UNFINISHED]
        async with self._transaction() as session:
            result = await session.execute(
                delete(DeliveryRow).where(
                    DeliveryRow.due_at < older_than, DeliveryRow.status.in_(finished)
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def stats(self) -> dict[str, int]:
        """Counts for logs and benchmarks: people, schedule and deliveries per status."""
        async with self._transaction() as session:
            people = (
                await session.execute(
                    select(
                        func.count(),
                        func.count().filter(_P.subscribed.is_(True)),
                        func.count().filter(_P.blocked_at.is_not(None)),
                    ).select_from(PersonRow)
                )
            ).one()
            scheduled = await session.scalar(
                select(func.count()).select_from(ReminderRow).where(_R.next_fire_at.is_not(None))
            )
            by_status = (
                await session.execute(select(_D.status, func.count()).group_by(_D.status))
            ).all()
        counts = {
            "people": int(people[0]),
            "subscribed": int(people[1]),
            "blocked": int(people[2]),
            "reminders_scheduled": int(scheduled or 0),
        }
        for status in DeliveryStatus.ALL:
            counts[f"deliveries_{status}"] = 0
        for status, count in by_status:
            counts[f"deliveries_{status}"] = int(count)
        return counts

    # --- dispatcher ----------------------------------------------------------------------

    async def materialize_due(
        self, now: datetime, *, grace: timedelta, limit: int, choose_meal: MealChooser
    ) -> MaterializeResult:
        """Turn up to ``limit`` due reminders into pending deliveries, in one transaction.

        Each claimed reminder (locked with SKIP LOCKED on PostgreSQL) gets its delivery row —
        for meals with tonight's meal chosen and remembered — and its ``next_fire_at`` moved
        to the next night. An occurrence more than ``grace`` late (downtime) gets no delivery:
        it is reported as stale and the reminder jumps to the next future night, so a restart
        never sends a burst of outdated messages.
        """
        _require_aware(now, "now")
        async with self._transaction() as session:
            rows = (
                await session.execute(
                    select(ReminderRow, PersonRow)
                    .join(PersonRow, _P.chat_id == _R.chat_id)
                    .where(_R.next_fire_at <= now)
                    .order_by(_R.next_fire_at, _R.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True, key_share=True, of=[ReminderRow, PersonRow])
                )
            ).all()
            new_deliveries: list[dict[str, Any]] = []
            stale: list[StaleOccurrence] = []
            for reminder, person in rows:
                due = reminder.next_fire_at
                assert due is not None
                if self._next_fire(person, reminder, now) is None:
                    # Not schedulable any more (defensive: mutators keep this NULL already).
                    reminder.next_fire_at = None
                    continue
                lateness = now - due
                if lateness > grace:
                    stale.append(StaleOccurrence(person.chat_id, reminder.kind, due, lateness))
                    reminder.next_fire_at = self._next_fire(person, reminder, now, after=now)
                    continue
                meal_id = None
                if reminder.kind == MEAL_KIND:
                    meal_id = choose_meal(person.diet, tuple(person.recent_meals))
                    if meal_id is not None:
                        person.recent_meals = [*person.recent_meals, meal_id][-RECENT_MEALS_KEPT:]
                new_deliveries.append(
                    {
                        "chat_id": person.chat_id,
                        "reminder_id": reminder.id,
                        "kind": reminder.kind,
                        "due_at": due,
                        "meal_id": meal_id,
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": due,
                        "created_at": now,
                    }
                )
                reminder.last_due_at = due
                reminder.next_fire_at = self._next_fire(person, reminder, now, after=due)
            created = 0
            if new_deliveries:
                # The UNIQUE(reminder_id, due_at) backstop: a night that somehow was already
                # materialised is silently not inserted again.
                statement = insert_ignoring_conflicts(
                    self._dialect, DELIVERIES, "reminder_id", "due_at"
                ).returning(DELIVERIES.c.id)
                created = len((await session.execute(statement, new_deliveries)).all())
            return MaterializeResult(len(rows), created, tuple(stale))

    async def claim_deliveries(
        self,
        now: datetime,
        *,
        lease: timedelta,
        grace: timedelta,
        limit: int,
        after: tuple[datetime, int] | None = None,
        accept: Callable[[int], bool] = lambda chat_id: True,
    ) -> ClaimResult:
        """Claim up to ``limit`` due deliveries for sending, in one transaction.

        Due means pending (or sending with an expired lease: its process died) with
        ``next_attempt_at <= now``. Rows are scanned in (next_attempt_at, id) order after
        ``after`` and locked with SKIP LOCKED; ``accept(chat_id)`` decides per row (the
        dispatcher's per-chat pacing), rejected rows stay pending untouched. Accepted rows
        become ``sending`` with ``lease_until = now + lease``; rows older than ``grace``
        become ``expired`` instead and are returned so the caller can log them.
        """
        _require_aware(now, "now")
        async with self._transaction() as session:
            statement = select(
                _D.id, _D.chat_id, _D.kind, _D.meal_id, _D.due_at, _D.attempts, _D.next_attempt_at
            ).where(
                _D.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
                _D.next_attempt_at <= now,
                or_(_D.lease_until.is_(None), _D.lease_until < now),
            )
            if after is not None:
                statement = statement.where(
                    or_(
                        _D.next_attempt_at > after[0],
                        and_(_D.next_attempt_at == after[0], _D.id > after[1]),
                    )
                )
            statement = (
                statement.order_by(_D.next_attempt_at, _D.id)
                .limit(limit)
                .with_for_update(skip_locked=True, key_share=True)
            )
            rows = (await session.execute(statement)).all()
            claimed: list[ClaimedDelivery] = []
            expired: list[ClaimedDelivery] = []
            for row in rows:
                delivery = ClaimedDelivery(
                    row.id, row.chat_id, row.kind, row.meal_id, row.due_at, row.attempts
                )
                if now - row.due_at > grace:
                    expired.append(delivery)
                elif accept(row.chat_id):
                    claimed.append(delivery)
            if claimed:
                await session.execute(
                    update(DeliveryRow)
                    .where(_D.id.in_([d.id for d in claimed]))
                    .values(status=DeliveryStatus.SENDING, lease_until=now + lease)
                )
            if expired:
                await session.execute(
                    update(DeliveryRow)
                    .where(_D.id.in_([d.id for d in expired]))
                    .values(
                        status=DeliveryStatus.EXPIRED,
                        lease_until=None,
                        last_error="expired: older than the grace period before it could be sent",
                    )
                )
            cursor = (rows[-1].next_attempt_at, rows[-1].id) if rows else None
            return ClaimResult(tuple(claimed), tuple(expired), len(rows), cursor)

    async def record_outcomes(self, outcomes: Sequence[SendOutcome]) -> None:
        """Write back what sending did, for a whole batch in one transaction.

        Only rows still ``sending`` are touched. Success → ``sent``; retry → back to
        ``pending`` at ``retry_at`` with one more attempt; failed → ``failed`` with the error.
        """
        if not outcomes:
            return
        statement = (
            update(DELIVERIES)
            .where(
                DELIVERIES.c.id == bindparam("b_id"),
                DELIVERIES.c.status == DeliveryStatus.SENDING,
            )
            .values(
                status=bindparam("b_status"),
                lease_until=None,
                attempts=DELIVERIES.c.attempts + bindparam("b_attempted"),
                sent_at=func.coalesce(
                    bindparam("b_sent_at", type_=UTCDateTime()), DELIVERIES.c.sent_at
                ),
                telegram_message_id=func.coalesce(
                    bindparam("b_message_id"), DELIVERIES.c.telegram_message_id
                ),
                next_attempt_at=func.coalesce(
                    bindparam("b_retry_at", type_=UTCDateTime()),
                    DELIVERIES.c.next_attempt_at,
                ),
                last_error=bindparam("b_error"),
            )
        )
        parameters = [
            {
                "b_id": outcome.delivery_id,
                "b_status": _OUTCOME_STATUS[outcome.result],
                "b_attempted": 1,
                "b_sent_at": outcome.at if outcome.result == "sent" else None,
                "b_message_id": outcome.telegram_message_id,
                "b_retry_at": outcome.retry_at if outcome.result == "retry" else None,
                "b_error": outcome.error,
            }
            for outcome in outcomes
        ]
        async with self._transaction() as session:
            connection = await session.connection()
            await connection.execute(statement, parameters)

    # --- internals -----------------------------------------------------------------------

    async def _mutate(
        self,
        chat_id: int,
        now: datetime,
        change: Callable[[PersonRow, list[ReminderRow]], None],
        *,
        kinds: Iterable[str] = (),
        all_kinds: bool = False,
        cancel_kinds: Iterable[str] | None = None,
        cancel_all: bool = False,
    ) -> Person:
        """Load-or-create the person and their reminders (locked), apply ``change``,
        reschedule every reminder, optionally cancel pending deliveries, return the result.

        Every caller is an action of the person, so a person marked blocked is unblocked.
        """
        _require_aware(now, "now")
        async with self._transaction() as session:
            person = await self._lock_person(session, chat_id, create_at=now)
            assert person is not None
            reminders = await self._reminders(session, chat_id, lock=True)
            wanted = set(self._offsets) if all_kinds else set(kinds)
            missing = sorted(wanted - {r.kind for r in reminders}, key=self._kind_sort_key)
            for kind in missing:
                row = ReminderRow(
                    chat_id=chat_id, kind=kind, enabled=True, offset_minutes=self._offsets[kind]
                )
                session.add(row)
                reminders.append(row)
            if missing:
                await session.flush()
            if person.blocked_at is not None:
                person.blocked_at = None
                person.blocked_reason = None
            change(person, reminders)
            person.updated_at = now
            for reminder in reminders:
                reminder.next_fire_at = self._next_fire(person, reminder, now, keep_due=True)
            if cancel_all:
                await self._cancel_pending(session, chat_id, None, "reminders stopped")
            elif cancel_kinds is not None:
                await self._cancel_pending(session, chat_id, tuple(cancel_kinds), "cancelled")
            return self._person(person, reminders)

    async def _lock_person(
        self, session: AsyncSession, chat_id: int, *, create_at: datetime | None = None
    ) -> PersonRow | None:
        """The person row, locked; created first (race-free) when ``create_at`` is given."""
        if create_at is not None:
            await session.execute(
                insert_ignoring_conflicts(self._dialect, PEOPLE, "chat_id").values(
                    chat_id=chat_id,
                    diet=DIETS[0],
                    subscribed=False,
                    recent_meals=[],
                    created_at=create_at,
                    updated_at=create_at,
                )
            )
        return (
            await session.scalars(
                select(PersonRow)
                .where(_P.chat_id == chat_id)
                .with_for_update(key_share=True)
                .execution_options(populate_existing=True)
            )
        ).one_or_none()

    async def _reminders(
        self, session: AsyncSession, chat_id: int, *, lock: bool
    ) -> list[ReminderRow]:
        statement = select(ReminderRow).where(_R.chat_id == chat_id)
        if lock:
            statement = statement.with_for_update(key_share=True)
        rows = list((await session.scalars(statement)).all())
        rows.sort(key=lambda r: self._kind_sort_key(r.kind))
        return rows

    async def _owned_delivery(
        self, session: AsyncSession, delivery_id: int, chat_id: int, *, lock: bool = False
    ) -> DeliveryRow | None:
        statement = select(DeliveryRow).where(_D.id == delivery_id, _D.chat_id == chat_id)
        if lock:
            statement = statement.with_for_update(key_share=True)
        return (await session.scalars(statement)).one_or_none()

    async def _cancel_pending(
        self, session: AsyncSession, chat_id: int, kinds: tuple[str, ...] | None, why: str
    ) -> None:
        statement = update(DeliveryRow).where(
            _D.chat_id == chat_id, _D.status == DeliveryStatus.PENDING
        )
        if kinds is not None:
            statement = statement.where(_D.kind.in_(kinds))
        await session.execute(
            statement.values(status=DeliveryStatus.CANCELLED, last_error=why[:500])
        )

    def _next_fire(
        self,
        person: PersonRow,
        reminder: ReminderRow,
        now: datetime,
        *,
        after: datetime | None = None,
        keep_due: bool = False,
    ) -> datetime | None:
        """The next instant this reminder should fire, or None when it must not fire at all.

        Starts strictly after max(now, paused_until, after). With ``keep_due`` (settings
        changes), an occurrence that is already due but not yet materialised by the dispatcher
        is kept rather than lost: the search starts just before it instead of at ``now``.
        A night that already produced a delivery (``last_due_at``) is never produced again,
        even if the bedtime or timezone moved later that same evening.
        """
        if (
            not person.subscribed
            or person.blocked_at is not None
            or not reminder.enabled
            or reminder.kind not in self._offsets
            or person.timezone is None
            or person.bedtime is None
        ):
            return None
        try:
            tz = tzinfo_for(person.timezone)
        except UnknownTimezone:
            log.warning("chat %s has an unknown timezone: not scheduled", person.chat_id)
            return None
        start = now
        current = reminder.next_fire_at
        if keep_due and current is not None and current <= now:
            start = current - _JUST_BEFORE
        if person.paused_until is not None:
            start = max(start, person.paused_until)
        if after is not None:
            start = max(start, after)

        def following(moment: datetime) -> datetime:
            assert person.bedtime is not None
            return schedule.next_fire_at(
                bedtime=person.bedtime,
                weekend_bedtime=person.weekend_bedtime,
                offset_minutes=reminder.offset_minutes,
                tz=tz,
                after=moment,
            )

        candidate = following(start)
        last = reminder.last_due_at
        for _ in range(3):  # at most one night is ever skipped; the bound is defensive
            if last is None or not (
                candidate <= last or _same_night(candidate, last, reminder.offset_minutes, tz)
            ):
                break
            candidate = following(candidate)
        return candidate

    def _person(self, row: PersonRow, reminders: Sequence[ReminderRow]) -> Person:
        return Person(
            chat_id=row.chat_id,
            timezone=row.timezone,
            bedtime=row.bedtime,
            weekend_bedtime=row.weekend_bedtime,
            diet=row.diet,
            subscribed=row.subscribed,
            paused_until=row.paused_until,
            blocked=row.blocked_at is not None,
            created_at=row.created_at,
            reminders=tuple(
                ReminderSetting(r.kind, r.enabled, r.offset_minutes, r.next_fire_at)
                for r in sorted(reminders, key=lambda r: self._kind_sort_key(r.kind))
            ),
        )

    def _kind_sort_key(self, kind: str) -> tuple[int, str]:
        return (self._kind_order.get(kind, len(self._kind_order)), kind)

    def _check_kind(self, kind: str) -> None:
        if kind not in self._offsets:
            raise ValueError(f"unknown reminder kind {kind!r}; known: {', '.join(self._offsets)}")


_JUST_BEFORE: Final = timedelta(microseconds=1)
_UNFINISHED: Final = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})
_OUTCOME_STATUS: Final = {
    "sent": DeliveryStatus.SENT,
    "retry": DeliveryStatus.PENDING,
    "failed": DeliveryStatus.FAILED,
}


def _same_night(a: datetime, b: datetime, offset_minutes: int, tz: tzinfo) -> bool:
    """Nights are named by their bedtime's evening, not the fire time's (which may cross noon)."""

    def night(moment: datetime) -> object:
        return schedule.reminder_night(moment, offset_minutes=offset_minutes, tz=tz)

    return night(a) == night(b)


def _check_offset(offset: int, kind: str) -> None:
    if isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET_MINUTES:
        raise ValueError(f"offset for {kind!r} must be 0..{MAX_OFFSET_MINUTES} minutes: {offset}")


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment!r}")


def _whole_minutes(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError(f"a bedtime is a naive local time, got {value!r}")
    return value.replace(second=0, microsecond=0)


def _delivery_view(row: DeliveryRow) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        chat_id=row.chat_id,
        kind=row.kind,
        due_at=row.due_at,
        meal_id=row.meal_id,
        status=row.status,
        sent_at=row.sent_at,
    )


def _rowcount(result: Any) -> int:
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) else 0


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")
