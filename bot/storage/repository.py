"""The one storage API handlers and the dispatcher use.

The database is the single source of truth: people, their settings and every reminder's next
fire time (UTC, indexed). Every method that changes anything scheduling-related recomputes
``next_fire_at`` in the same transaction, so there is never anything to restore on restart.

Concurrency: each method is one short transaction. Rows that a method reads and then writes
are locked first (``FOR NO KEY UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, see
``dialects``), always in the order person → reminders → deliveries. The dispatcher's claims
use ``SKIP LOCKED`` and never wait, so several processes can share one PostgreSQL database
without double-sending and without deadlocks.

Stop means stop: every action that stops messages (/stop, /deletedata, /pause, a kind turned
off, a block) cancels the person's unsent deliveries — pending, waiting for a retry, and
claimed by a dispatcher — in the transaction that changes the person; the dispatcher checks
each claimed delivery against ``bot.eligibility`` right before sending it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final, Protocol, TypedDict, Unpack

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute, aliased

from bot import eligibility, schedule
from bot.capacity import DROPPED, MERGED
from bot.diary import wake, weekly
from bot.diary.checkin import CheckinFact
from bot.diary.models import HABIT_FOR_REMINDER, DiaryEntry, Habit, OnsetBucket
from bot.diary.wake import CHECKIN_KIND
from bot.diary.weekly import WEEKLY_KIND
from bot.levelling import Load, Release
from bot.meals import EXERCISE_KIND, MEAL_KIND, kinds_covered, meal_rides_with_exercise
from bot.storage.conversation import Conversations, erase_owner
from bot.storage.dialects import (
    READ_ONLY,
    SINGLE_STATEMENT,
    create_engine,
    execute_many,
    insert_ignoring_conflicts,
    is_single_connection,
    wipe_erased_data,
    writer_lock,
)
from bot.storage.inbox import Inbox, erase_chat
from bot.storage.migrate import upgrade_to_head
from bot.storage.models import (
    DELIVERIES,
    DIARY,
    DIETS,
    DISPATCHERS,
    PEOPLE,
    REMINDERS,
    ConversationRow,
    DeliveryRow,
    DeliveryStatus,
    DiaryEntryRow,
    PersonRow,
    ReminderRow,
)
from bot.storage.records import (
    Changed,
    CheckinMorning,
    ClaimedDelivery,
    ClaimResult,
    DeadClaims,
    DeliveryView,
    MaterializeResult,
    MealChooser,
    Person,
    PersonEdit,
    RecordedOutcome,
    ReminderPress,
    ReminderPressAction,
    ReminderSetting,
    SendOutcome,
    Shed,
    StaleOccurrence,
    TickCheck,
)
from bot.storage.send_load import MinuteLoad, read_send_load_in, read_split
from bot.storage.types import JSONStringList, UTCDateTime, string_list
from bot.timezones import UnknownTimezone, tzinfo_for

log = logging.getLogger(__name__)

RECENT_MEALS_KEPT: Final = 7
MAX_OFFSET_MINUTES: Final = schedule.MAX_OFFSET_MINUTES
MAX_SNOOZE_MINUTES: Final = 12 * 60
# Used only when open_store() is not told the content's kinds (the app always tells it).
FALLBACK_OFFSETS: Final[Mapping[str, int]] = {"meal": 240, "exercise": 180, "wind_down": 60}

_D = DeliveryRow
_NO_MEAL: Final[MealChooser] = lambda diet, recent: None  # noqa: E731  (a dropped meal idea)
_R = ReminderRow
_P = PersonRow
_W = DISPATCHERS.c  # the dispatchers table's columns


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


class _Effects(TypedDict, total=False):
    """What a person's change does besides ``change`` itself (``Store._apply``): rows for
    ``kinds`` (or every kind), and unsent messages cancelled (all, or ``cancel_kinds``')."""

    kinds: Iterable[str]
    all_kinds: bool
    cancel_kinds: Iterable[str] | None
    cancel_all: str | None


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
        self._writer = writer_lock(engine)  # SQLite file: this process's writers queue here
        self._dialect = engine.dialect.name
        # One statement object for every batch: execute_many compiles it once (by identity).
        self._insert_delivery = insert_ignoring_conflicts(
            self._dialect, DELIVERIES, "reminder_id", "due_at"
        )
        self.inbox = Inbox(self._transaction, self._dialect)
        self.conversations = Conversations(self._core)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._offsets)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One ORM transaction. ``read_only``: it will not write, so on SQLite it reads a
        snapshot instead of queueing for the write lock behind every other handler."""
        async with contextlib.AsyncExitStack() as stack:
            if self._serial is not None:
                await stack.enter_async_context(self._serial)
            if self._writer is not None and not read_only:
                await stack.enter_async_context(self._writer)
            if read_only:
                connection = await stack.enter_async_context(self.engine.connect())
                connection = await connection.execution_options(**{READ_ONLY: True})
                session = await stack.enter_async_context(
                    AsyncSession(bind=connection, expire_on_commit=False)
                )
            else:
                session = await stack.enter_async_context(self._sessions())
            await stack.enter_async_context(session.begin())
            yield session

    @asynccontextmanager
    async def _core(
        self, *, read_only: bool = False, single_statement: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A transaction without the ORM: the dispatcher's per-send statements are hot.

        ``read_only``: it will not write, so on SQLite it need not wait for the write lock.
        ``single_statement`` (read-only): it runs one SELECT, which needs no BEGIN on SQLite.
        """
        async with contextlib.AsyncExitStack() as stack:
            if self._serial is not None:
                await stack.enter_async_context(self._serial)
            if self._writer is not None and not (read_only or single_statement):
                await stack.enter_async_context(self._writer)
            connection = await stack.enter_async_context(self.engine.connect())
            if read_only or single_statement:
                options = {READ_ONLY: True, SINGLE_STATEMENT: single_statement}
                connection = await connection.execution_options(**options)
            await stack.enter_async_context(connection.begin())
            yield connection

    # --- people --------------------------------------------------------------------------

    async def get_person(self, chat_id: int) -> Person | None:
        async with self._transaction(read_only=True) as session:
            person = await session.get(PersonRow, chat_id)
            if person is None:
                return None
            return self._person(person, await self._reminders(session, chat_id, lock=False))

    async def ensure_person(self, chat_id: int, now: datetime) -> Person:
        """Create the person if new. Someone marked blocked is talking to us again: unblock."""
        return await self._mutate(chat_id, now, lambda person, reminders: None)

    async def edit_person(
        self,
        chat_id: int,
        now: datetime,
        plan: Callable[[Person], PersonEdit | None],
        *,
        create: bool = True,
    ) -> Changed | None:
        """One action of a person, in one transaction: lock them (created first unless
        ``create`` is False: None if there is nobody), ask ``plan`` what to change given the
        person as stored, apply it and reschedule. ``plan`` is the use case's rule
        (``bot.usecases``); None from it changes nothing."""
        _require_aware(now, "now")
        async with self._transaction() as session:
            person = await self._lock_person(session, chat_id, create_at=now if create else None)
            if person is None:
                return None
            reminders = await self._reminders(session, chat_id, lock=True)
            before = self._person(person, reminders)
            edit = plan(before)
            if edit is None:
                return Changed(before, before)
            if edit.timezone is not None:
                tzinfo_for(edit.timezone)  # raises UnknownTimezone; the rollback undoes all
            if edit.paused_until is not None:
                _require_aware(edit.paused_until, "paused_until")
            cancel = (
                "unsubscribed"
                if edit.subscribed is False
                else "paused"
                if edit.paused_until is not None
                else None
            )
            after = await self._apply(
                session,
                person,
                reminders,
                now,
                functools.partial(_apply_edit, edit),
                all_kinds=edit.subscribed is True,
                cancel_all=cancel,
            )
            return Changed(before, after)

    async def _edit(self, chat_id: int, now: datetime, edit: PersonEdit) -> Person:
        """``edit`` whatever the person's state: the person after it (created if new)."""
        changed = await self.edit_person(chat_id, now, lambda person: edit)
        assert changed is not None
        return changed.after

    async def set_timezone(self, chat_id: int, key: str, now: datetime) -> Person:
        """Store an IANA name or "UTC+05:30" (validated) and reschedule every reminder."""
        tzinfo_for(key)  # raises UnknownTimezone before anything is written
        return await self._edit(chat_id, now, PersonEdit(timezone=key))

    async def set_bedtime(
        self, chat_id: int, bedtime: time, now: datetime, *, weekend: bool = False
    ) -> Person:
        """Set the usual (or Friday/Saturday) bedtime, a naive local time, and reschedule."""
        edit = PersonEdit(weekend_bedtime=bedtime) if weekend else PersonEdit(bedtime=bedtime)
        return await self._edit(chat_id, now, edit)

    async def clear_weekend_bedtime(self, chat_id: int, now: datetime) -> Person:
        return await self._edit(chat_id, now, PersonEdit(clear_weekend_bedtime=True))

    async def set_diet(self, chat_id: int, diet: str, now: datetime) -> Person:
        if diet not in DIETS:
            raise ValueError(f"unknown diet {diet!r}; expected one of {', '.join(DIETS)}")

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.diet = diet

        return await self._mutate(chat_id, now, change)

    async def set_language(self, chat_id: int, language: str | None, now: datetime) -> Person:
        """The person's chosen locale; None goes back to following Telegram's."""

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.language = language

        return await self._mutate(chat_id, now, change)

    async def set_evening_message(self, chat_id: int, on: bool, now: datetime) -> Person:
        """The one evening message on/off: rescheduling (``_mutate``) unschedules the meal
        reminder while it rides with the exercise note, and schedules it again after."""

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            person.evening_message = on

        return await self._mutate(chat_id, now, change)

    async def note_telegram_language(self, chat_id: int, language: str) -> None:
        """Remember the locale Telegram reports for an existing person (for reminders); one
        UPDATE that neither creates the person nor touches their schedule."""
        async with self._core() as connection:
            await connection.execute(
                update(PersonRow)
                .where(_P.chat_id == chat_id, _P.telegram_language.is_distinct_from(language))
                .values(telegram_language=language)
            )

    async def subscribe(self, chat_id: int, now: datetime) -> Person:
        """Turn reminders on: rows for every kind (default offsets) exist, scheduled if ready."""
        return await self._edit(chat_id, now, PersonEdit(subscribed=True))

    async def set_reminder(
        self,
        chat_id: int,
        kind: str,
        now: datetime,
        *,
        enabled: bool | None = None,
        offset_minutes: int | None = None,
    ) -> Person:
        """Turn one kind on/off or move it; a disabled kind's unsent messages are cancelled."""
        self._check_kind(kind)
        if offset_minutes is not None:
            _check_offset(offset_minutes, kind)

        return await self._set_row(chat_id, kind, now, enabled=enabled, offset=offset_minutes)

    async def pause(self, chat_id: int, until: datetime, now: datetime) -> Person:
        """No reminders before ``until``; unsent ones are cancelled, next fire times recomputed."""
        _require_aware(until, "until")
        return await self._edit(chat_id, now, PersonEdit(paused_until=until))

    async def resume(self, chat_id: int, now: datetime) -> Person:
        return await self._edit(chat_id, now, PersonEdit(resume=True))

    async def unsubscribe(self, chat_id: int, now: datetime) -> Person:
        """/stop: nothing scheduled, unsent messages cancelled — no more messages at all."""
        return await self._edit(chat_id, now, PersonEdit(subscribed=False))

    async def deactivate(self, chat_id: int, reason: str, now: datetime) -> None:
        """The chat is gone for us (blocked the bot, chat not found): stop everything.

        Not an action of the person, so unlike every other mutator it never creates or
        unblocks anyone; the next thing they say to the bot (``ensure_person``) undoes it.
        """
        async with self._core() as connection:
            await _deactivate(connection, chat_id, reason, now)

    async def export_person(self, chat_id: int) -> dict[str, Any] | None:
        """/mydata: every stored row about the person, JSON-able (ISO 8601 strings)."""
        async with self._transaction(read_only=True) as session:
            person = await session.get(PersonRow, chat_id)
            if person is None:
                return None
            reminders = await self._reminders(session, chat_id, lock=False)
            deliveries = (
                await session.scalars(
                    select(DeliveryRow).where(_D.chat_id == chat_id).order_by(_D.id)
                )
            ).all()
            conversation = await session.scalars(
                select(ConversationRow).where(ConversationRow.owner_id == chat_id)
            )
            diary = await _diary_rows(session, chat_id, since=None)
            return {
                # What the bot keeps between two messages, e.g. the question it last asked.
                "conversation": {row.scope: json.loads(row.data) for row in conversation},
                "person": {
                    "chat_id": person.chat_id,
                    "timezone": person.timezone,
                    "bedtime": _hhmm(person.bedtime),
                    "weekend_bedtime": _hhmm(person.weekend_bedtime),
                    "diet": person.diet,
                    "language": person.language,
                    "telegram_language": person.telegram_language,
                    "evening_message": person.evening_message,
                    "subscribed": person.subscribed,
                    "paused_until": _iso(person.paused_until),
                    "blocked_at": _iso(person.blocked_at),
                    "blocked_reason": person.blocked_reason,
                    "recent_meals": list(person.recent_meals),
                    "checkin_stop_asked_on": _day(person.checkin_stop_asked_on),
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
                "diary": [_diary_json(row) for row in diary],
            }

    async def delete_person(self, chat_id: int, *, inbox_through: int | None = None) -> bool:
        """/deletedata: the person row goes, reminders and deliveries with it (FK cascade), and
        their stored updates up to ``inbox_through`` (see ``inbox.erase_chat``); then the freed
        bytes are wiped from the database files, not just unlinked (``wipe_erased_data``)."""
        async with self._transaction() as session:
            result = await session.execute(delete(PersonRow).where(_P.chat_id == chat_id))
            await session.execute(erase_chat(chat_id, through=inbox_through))
            await session.execute(erase_owner(chat_id))
        await wipe_erased_data(self.engine)
        return _rowcount(result) > 0

    # --- the sleep diary and its morning check-in (issue 9) ---------------------------------

    async def set_checkin(
        self,
        chat_id: int,
        now: datetime,
        *,
        enabled: bool | None = None,
        wake_time: time | None = None,
    ) -> Person:
        """Turn the morning check-in on/off, or set its weekday wake time (kept as minutes
        after the bedtime, so the weekend wake time follows the weekend bedtime). It goes
        through the dispatcher like the reminders: same switches, same DST rule."""

        def change(person: PersonRow, reminders: list[ReminderRow]) -> None:
            row = next(r for r in reminders if r.kind == CHECKIN_KIND)
            if enabled is not None:
                # checkin_stop_asked_on is kept: the streak it asked about was answered by
                # this switch, so only a new streak (after a logged night) can ask again.
                row.enabled = enabled
            if wake_time is not None:
                if person.bedtime is None:
                    raise ValueError("a wake time needs a bedtime first")
                row.offset_minutes = wake.sleep_minutes_between(
                    person.bedtime, _whole_minutes(wake_time)
                )

        cancel = [CHECKIN_KIND] if enabled is False else None
        return await self._mutate(chat_id, now, change, kinds=(CHECKIN_KIND,), cancel_kinds=cancel)

    async def set_weekly(
        self,
        chat_id: int,
        now: datetime,
        *,
        enabled: bool | None = None,
        weekday: int | None = None,
    ) -> Person:
        """The weekly summary (opt-in): on/off, and the morning it comes (0 = Monday)."""
        if weekday is not None:
            weekly.check_weekday(weekday)

        return await self._set_row(chat_id, WEEKLY_KIND, now, enabled=enabled, offset=weekday)

    async def save_diary_entry(self, chat_id: int, entry: DiaryEntry) -> bool:
        """Log one night; a second entry for the same night replaces the first (the handler
        asks before). True when it replaced one. Creates the person if new."""
        now = entry.logged_at
        async with self._transaction() as session:
            await self._lock_person(session, chat_id, create_at=now)
            row = (
                await session.scalars(
                    select(DiaryEntryRow)
                    .where(DIARY.c.chat_id == chat_id, DIARY.c.night == entry.night)
                    .with_for_update()
                )
            ).one_or_none()
            replaced = row is not None
            if row is None:
                row = DiaryEntryRow(chat_id=chat_id, night=entry.night, created_at=now)
                session.add(row)
            row.rating = entry.rating
            for habit, done in entry.habit_flags().items():
                setattr(row, habit.value, done)
            row.onset = None if entry.onset is None else entry.onset.value
            row.updated_at = now
            return replaced

    async def diary_entry(self, chat_id: int, night: date) -> DiaryEntry | None:
        async with self._transaction(read_only=True) as session:
            rows = await _diary_rows(session, chat_id, since=night, until=night)
            return _diary_entry(rows[0]) if rows else None

    async def diary(self, chat_id: int, *, since: date | None = None) -> list[DiaryEntry]:
        """The person's nights from ``since`` (all when None), oldest first."""
        async with self._transaction(read_only=True) as session:
            return [_diary_entry(row) for row in await _diary_rows(session, chat_id, since=since)]

    async def done_reminder_kinds(self, chat_id: int, night: date, tz: tzinfo) -> set[str]:
        """The reminder kinds of ``night`` that the person marked "Done ✅" (for the
        check-in's pre-filled habits). A night's reminders fire at most 12 h before its
        bedtime, so the search window is that evening and the day around it."""
        start = datetime.combine(night, time(0), tz).astimezone(UTC)
        end = start + timedelta(days=2)
        async with self._transaction(read_only=True) as session:
            rows = (
                await session.execute(
                    select(_D.kind, _D.meal_id, _D.due_at, _R.offset_minutes)
                    .select_from(DeliveryRow)
                    .outerjoin(ReminderRow, and_(_R.chat_id == _D.chat_id, _R.kind == _D.kind))
                    .where(
                        _D.chat_id == chat_id,
                        _D.status == DeliveryStatus.DONE,
                        _D.kind.in_(list(HABIT_FOR_REMINDER)),
                        _D.due_at >= start,
                        _D.due_at < end,
                    )
                )
            ).all()
        kinds: set[str] = set()
        for kind, meal_id, due_at, offset in rows:
            offset = self._offsets.get(kind, 0) if offset is None else offset
            if schedule.reminder_night(due_at, offset_minutes=offset, tz=tz) == night:
                kinds.update(kinds_covered(kind, meal_id))  # an evening message is both
        return kinds

    async def checkin_morning(self, chat_id: int, due_at: datetime) -> CheckinMorning | None:
        """What the check-in due at ``due_at`` needs: its night, the earlier check-ins sent
        (answered or not) and when the bot last asked to stop. None: the person is gone or
        has no timezone any more."""
        async with self._transaction(read_only=True) as session:
            person = await session.get(PersonRow, chat_id)
            if person is None or person.timezone is None:
                return None
            try:
                tz = tzinfo_for(person.timezone)
            except UnknownTimezone:
                return None
            setting = (
                await session.scalars(
                    select(ReminderRow).where(_R.chat_id == chat_id, _R.kind == CHECKIN_KIND)
                )
            ).one_or_none()
            sleep = wake.DEFAULT_SLEEP_MINUTES if setting is None else setting.offset_minutes
            sent = (
                await session.scalars(
                    select(_D.due_at).where(
                        _D.chat_id == chat_id,
                        _D.kind == CHECKIN_KIND,
                        _D.status.in_([DeliveryStatus.SENT, DeliveryStatus.DONE]),
                        _D.due_at < due_at,
                    )
                )
            ).all()
            logged = set(
                (
                    await session.scalars(select(DIARY.c.night).where(DIARY.c.chat_id == chat_id))
                ).all()
            )
            asked = person.checkin_stop_asked_on
        facts: dict[date, CheckinFact] = {}
        for moment in sent:
            morning = moment.astimezone(tz).date()
            if morning == asked:
                continue  # that morning's message was the question, not a check-in
            night = wake.checkin_night(moment, sleep_minutes=sleep, tz=tz)
            facts[morning] = CheckinFact(morning, night in logged)
        night = wake.checkin_night(due_at, sleep_minutes=sleep, tz=tz)
        return CheckinMorning(
            night=night,
            morning=due_at.astimezone(tz).date(),
            tz=tz,
            history=tuple(facts[m] for m in sorted(facts)),
            asked_to_stop_on=asked,
            night_logged=night in logged,
        )

    async def mark_checkin_stop_asked(self, chat_id: int, morning: date) -> None:
        """This morning's message is the "turn check-ins off?" question: ask once a streak."""
        async with self._core() as connection:
            await connection.execute(
                update(PersonRow).where(_P.chat_id == chat_id).values(checkin_stop_asked_on=morning)
            )

    # --- deliveries, from the person's side (buttons) ---------------------------------------

    async def get_delivery(self, delivery_id: int, chat_id: int) -> DeliveryView | None:
        """The delivery if it belongs to ``chat_id``: forged callback data finds nothing."""
        async with self._transaction(read_only=True) as session:
            row = await self._owned_delivery(session, delivery_id, chat_id)
            return None if row is None else _delivery_view(row)

    async def mark_done(self, delivery_id: int, chat_id: int, now: datetime) -> bool:
        """Done pressed: True if the delivery is (now) done; Done after Snooze cancels it."""
        press = await self.press_reminder(delivery_id, chat_id, now, "done")
        return press is not None and press.changed

    async def snooze(
        self, delivery_id: int, chat_id: int, now: datetime, minutes: int
    ) -> datetime | None:
        """Snooze pressed: one new pending delivery due ``now + minutes`` (same kind and meal).

        The ``sent → snoozed`` UPDATE is conditional, so two presses (two devices, a retried
        callback) create one snooze. None if unknown, not ours, not sent, or the person has
        stopped reminders / blocked the bot since.
        """
        press = await self.press_reminder(
            delivery_id, chat_id, now, "snooze", snooze_minutes=minutes
        )
        if press is None or press.snoozed_until is None:
            return None
        return press.snoozed_until.astimezone(UTC)

    async def turn_off_from_delivery(
        self, delivery_id: int, chat_id: int, now: datetime
    ) -> str | None:
        """The "Turn this off" button: disable that kind for the owner; returns the kind."""
        press = await self.press_reminder(delivery_id, chat_id, now, "off")
        return press.delivery.kind if press is not None and press.changed else None

    async def press_reminder(
        self,
        delivery_id: int,
        chat_id: int,
        now: datetime,
        action: ReminderPressAction,
        *,
        snooze_minutes: int | None = None,
    ) -> ReminderPress | None:
        """A button under a delivered reminder, in one transaction: the delivery if it belongs
        to ``chat_id`` (forged callback data finds nothing: None) and, for "done", "snooze"
        and "off", that change ("show" only reads: Why? and Back)."""
        if action == "snooze" and not 1 <= (snooze_minutes or 0) <= MAX_SNOOZE_MINUTES:
            raise ValueError(
                f"snooze minutes must be 1..{MAX_SNOOZE_MINUTES}, got {snooze_minutes}"
            )
        _require_aware(now, "now")
        async with self._transaction(read_only=action == "show") as session:
            row = await self._owned_delivery(session, delivery_id, chat_id, lock=action == "done")
            if row is None:
                return None
            view = _delivery_view(row)
            if action == "done":
                return ReminderPress(view, await _mark_done(session, row))
            if action == "snooze":
                assert snooze_minutes is not None
                due = await self._snooze(session, row, now, snooze_minutes)
                return ReminderPress(view, due is not None, snoozed_until=due)
            if action == "off":
                return ReminderPress(view, await self._turn_off(session, row, now))
            return ReminderPress(view, changed=False)

    async def _snooze(
        self, session: AsyncSession, original: DeliveryRow, now: datetime, minutes: int
    ) -> datetime | None:
        """``snooze``'s work: the time it comes back in the person's timezone (UTC if none)."""
        person = await session.get(PersonRow, original.chat_id)
        if person is None or not person.subscribed or person.blocked_at is not None:
            return None
        result = await session.execute(
            update(DeliveryRow)
            .where(
                _D.id == original.id,
                _D.chat_id == original.chat_id,
                _D.status == DeliveryStatus.SENT,
            )
            .values(status=DeliveryStatus.SNOOZED)
            .returning(_D.kind, _D.meal_id)
        )
        snoozed = result.one_or_none()
        if snoozed is None:
            return None
        due = now + timedelta(minutes=minutes)
        session.add(
            DeliveryRow(
                chat_id=original.chat_id,
                reminder_id=None,
                snoozed_from=original.id,
                kind=snoozed.kind,
                due_at=due,
                meal_id=snoozed.meal_id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=due,
                created_at=now,
            )
        )
        return due.astimezone(tzinfo_for(person.timezone) if person.timezone else UTC)

    async def _turn_off(self, session: AsyncSession, row: DeliveryRow, now: datetime) -> bool:
        """ "Turn this off"'s work: that kind's row off and its unsent messages cancelled."""
        kind = row.kind
        if kind not in self._offsets:
            return False
        person = await self._lock_person(session, row.chat_id)
        if person is None:
            return False
        reminders = await self._reminders(session, row.chat_id, lock=True)
        await self._apply(
            session,
            person,
            reminders,
            now,
            functools.partial(_set_row, kind, False, None),
            kinds=(kind,),
            cancel_kinds=[kind],
        )
        return True

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
        async with self._transaction(read_only=True) as session:
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

    async def anything_due(self, now: datetime) -> bool:
        """Is a reminder due to materialise, or a pending delivery due to claim, at ``now``?

        One indexed read without locks, so the dispatcher's tick with nothing to do (almost
        every tick) takes no write lock and opens no write transaction (bench.reminders'
        empty tick). Whatever becomes due just after it is seen by the next tick.
        """
        _require_aware(now, "now")
        async with self._core(single_statement=True) as connection:
            return bool(await connection.scalar(select(_anything_due(now))))

    async def tick_check(self, now: datetime, dead_after: timedelta) -> TickCheck:
        """``anything_due`` and "did a dispatcher die holding claims?" in the same one read:
        the two questions of a tick with nothing to do, every heartbeat interval (bench.idle:
        the second read was half the cost of such a tick)."""
        _require_aware(now, "now")
        async with self._core(single_statement=True) as connection:
            row = (
                await connection.execute(select(_anything_due(now), _anyone_died(now - dead_after)))
            ).one()
        return TickCheck(due=bool(row[0]), dead_claims=bool(row[1]))

    async def materialize_due(
        self, now: datetime, *, grace: timedelta, limit: int, choose_meal: MealChooser
    ) -> MaterializeResult:
        """Turn up to ``limit`` due reminders into pending deliveries, in one transaction.

        Each claimed reminder (locked with SKIP LOCKED on PostgreSQL) gets its delivery row —
        for meals, and for the exercise note of someone in evening mode (the one evening
        message), with tonight's meal chosen and remembered — and its ``next_fire_at`` moved
        to the next night. An occurrence more than ``grace`` late (downtime) gets no delivery:
        it is reported as stale and the reminder jumps to the next future night, so a restart
        never sends a burst of outdated messages.

        SQLAlchemy Core, not the ORM: it runs for every reminder every night, and ORM rows
        cost more than the schedule itself (bench/materialize.py).
        """
        _require_aware(now, "now")
        async with self._core() as connection:
            rows = [
                _DueReminder(*row)
                for row in await connection.execute(
                    _due_reminders(lock=True), {"b_now": now, "b_limit": limit}
                )
            ]
            new_deliveries: list[dict[str, Any]] = []
            moves: list[dict[str, Any]] = []  # stale or unschedulable: next_fire_at only
            handed: list[dict[str, Any]] = []  # a delivery made: last_due_at moves too
            meals: dict[int, list[str]] = {}  # chat → recent meals, when a meal was chosen
            stale: list[StaleOccurrence] = []
            schedules: dict[tuple[object, ...], datetime] = {}  # see _shared_next_instant
            evening = await _evening_chats(
                connection, [d.chat_id for d in rows if _may_carry_meal(d.kind, d.evening_message)]
            )
            for due in rows:
                fire_at = due.next_fire_at
                assert fire_at is not None
                tz = self._fire_zone(due, due)
                if tz is None:
                    # Not schedulable any more (defensive: mutators keep this NULL already).
                    moves.append({"b_id": due.id, "b_next": None})
                    continue
                lateness = now - fire_at
                if lateness > grace:
                    stale.append(StaleOccurrence(due.chat_id, due.kind, fire_at, lateness))
                    following = _shared_next_instant(schedules, due, tz, now, after=now)
                    moves.append({"b_id": due.id, "b_next": following})
                    continue
                meal_id = None
                if due.kind == MEAL_KIND or (due.kind == EXERCISE_KIND and due.chat_id in evening):
                    recent = meals.get(due.chat_id)
                    if recent is None:
                        recent = string_list(due.recent_meals_json) or []
                    meal_id = choose_meal(due.diet, tuple(recent))
                    if meal_id is not None:
                        meals[due.chat_id] = [*recent, meal_id][-RECENT_MEALS_KEPT:]
                new_deliveries.append(
                    _delivery_values(due.chat_id, due.id, due.kind, fire_at, meal_id, now)
                )
                due.last_due_at = fire_at
                following = _shared_next_instant(schedules, due, tz, now, after=fire_at)
                handed.append({"b_id": due.id, "b_next": following})
            await execute_many(connection, _MOVE_REMINDER, moves)
            await execute_many(connection, _HAND_OVER, handed)
            await execute_many(
                connection,
                _REMEMBER_MEALS,
                [{"b_chat": chat, "b_meals": recent} for chat, recent in meals.items()],
            )
            created = await self._insert_deliveries(connection, new_deliveries)
            return MaterializeResult(len(rows), created, tuple(stale))

    async def materialize_early(
        self, now: datetime, releases: Sequence[Release], *, choose_meal: MealChooser
    ) -> list[int]:
        """Levelling (bot/levelling.py): release reminders due later as deliveries sendable
        now, in one transaction; how many were released, per release.

        For each release, up to ``count`` reminders of its kind due in its minute become
        pending deliveries with their own ``due_at`` (so lateness and expiry still count
        from their time) and ``next_attempt_at = now``. A person's reminder is never released
        ahead of their own earlier one that is still waiting, scheduled or pending (an
        exercise note already made for its time by ``shed``, a retry): their order never
        changes.
        """
        _require_aware(now, "now")
        released: list[dict[str, Any]] = []
        counts: list[int] = []
        async with self._transaction() as session:
            for release in releases:
                rows = (
                    await session.execute(
                        self._release_query(release, now, release.count).where(
                            _nothing_earlier_waiting(_R.chat_id, _R.next_fire_at)
                        )
                    )
                ).all()
                evening = await _evening_chats(
                    session,
                    [p.chat_id for r, p in rows if _may_carry_meal(r.kind, p.evening_message)],
                )
                for reminder, person in rows:
                    if self._next_fire(person, reminder, now) is None:
                        reminder.next_fire_at = None
                        continue
                    released.append(
                        self._occurrence(
                            person, reminder, now, choose_meal, send_at=now, evening=evening
                        )
                    )
                counts.append(len(released) - sum(counts))
                if counts[-1] < release.count:
                    counts[-1] += await _release_waiting(
                        session, release, now, release.count - counts[-1]
                    )
            await self._insert_deliveries(session, released)
            return counts

    async def shed(
        self,
        now: datetime,
        releases: Sequence[Release],
        *,
        choose_meal: MealChooser,
        merge_within: timedelta,
    ) -> list[Shed]:
        """Overload (bot/levelling.py): take ``count`` reminders of each release out of the
        congested stretch, in one transaction — merged where the person loses nothing,
        dropped otherwise; what was done, per release.

        Policy (b): a meal idea whose person has an exercise note scheduled after it, within
        ``merge_within``, rides with that note — tonight's meal is chosen now and the note is
        made now as a pending delivery for its own time, which then says both (the "one
        evening message"). People who can merge are chosen first. Policy (c): the rest are
        dropped. Either way the occurrence is recorded as ``skipped`` with its reason (counted,
        never sent) and the reminder moves on to its next night.
        """
        _require_aware(now, "now")
        rows_out: list[dict[str, Any]] = []
        results: list[Shed] = []
        async with self._transaction() as session:
            for release in releases:
                start = datetime.fromtimestamp(release.at, UTC)
                merge_until = start + timedelta(minutes=1) + merge_within
                query = self._release_query(release, now, release.count)
                if release.kind == MEAL_KIND:
                    exercise = aliased(ReminderRow)
                    mergeable = (
                        select(exercise.id)
                        .where(
                            exercise.chat_id == _R.chat_id,
                            exercise.kind == EXERCISE_KIND,
                            exercise.next_fire_at > _R.next_fire_at,
                            exercise.next_fire_at < merge_until,
                        )
                        .exists()
                    )
                    query = query.order_by(None).order_by(mergeable.desc(), _R.next_fire_at, _R.id)
                elif release.kind == EXERCISE_KIND:
                    # A person in evening mode has their meal idea in this note: theirs last.
                    query = query.order_by(None).order_by(
                        _P.evening_message, _R.next_fire_at, _R.id
                    )
                rows = (await session.execute(query)).all()
                notes = await self._exercise_notes(
                    session,
                    [p.chat_id for r, p in rows if r.kind == MEAL_KIND],
                    after=start,
                    before=merge_until,
                )
                merged = dropped = 0
                for reminder, person in rows:
                    if self._next_fire(person, reminder, now) is None:
                        reminder.next_fire_at = None
                        continue
                    note = notes.get(person.chat_id)
                    due = reminder.next_fire_at
                    can_merge = (
                        note is not None
                        and due is not None
                        and note.next_fire_at is not None
                        and note.next_fire_at > due
                        and self._next_fire(person, note, now) is not None
                    )
                    row = self._occurrence(person, reminder, now, _NO_MEAL, send_at=now)
                    row.update(
                        status=DeliveryStatus.SKIPPED,
                        last_error=MERGED if can_merge else DROPPED,
                    )
                    rows_out.append(row)
                    if can_merge:
                        assert note is not None and note.next_fire_at is not None
                        carrier = self._occurrence(
                            person,
                            note,
                            now,
                            choose_meal,
                            send_at=note.next_fire_at,
                            evening=(person.chat_id,),
                        )
                        rows_out.append({**carrier, "last_error": None})  # one row shape
                        merged += 1
                    else:
                        dropped += 1
                carried = 0
                if release.kind == EXERCISE_KIND and merged + dropped < release.count:
                    notes_dropped, carried = await _drop_merged_notes(
                        session, release, now, release.count - merged - dropped, merge_within
                    )
                    dropped += notes_dropped
                results.append(Shed(merged, dropped, carried))
            await self._insert_deliveries(session, rows_out)
            return results

    @staticmethod
    def _release_query(
        release: Release, now: datetime, limit: int
    ) -> Select[ReminderRow, PersonRow]:
        """Up to ``limit`` reminders of the release's kind due in its minute (and not before
        ``now``), with their people, locked (SKIP LOCKED: another process may be on them)."""
        start = datetime.fromtimestamp(release.at, UTC)
        return (
            select(ReminderRow, PersonRow)
            .join(PersonRow, _P.chat_id == _R.chat_id)
            .where(
                _R.kind == release.kind,
                _R.next_fire_at >= max(start, now),
                _R.next_fire_at < start + timedelta(minutes=1),
            )
            .order_by(_R.next_fire_at, _R.id)
            .limit(limit)
            .with_for_update(skip_locked=True, key_share=True, of=[ReminderRow, PersonRow])
        )

    @staticmethod
    async def _exercise_notes(
        session: AsyncSession, chat_ids: Sequence[int], *, after: datetime, before: datetime
    ) -> dict[int, ReminderRow]:
        """These people's exercise notes scheduled in (after, before), locked; one that another
        process holds is left out (that person's meal idea is then dropped, not merged)."""
        if not chat_ids:
            return {}
        notes = (
            await session.scalars(
                select(ReminderRow)
                .where(
                    _R.chat_id.in_(chat_ids),
                    _R.kind == EXERCISE_KIND,
                    _R.next_fire_at > after,
                    _R.next_fire_at < before,
                )
                .with_for_update(skip_locked=True, key_share=True)
            )
        ).all()
        return {note.chat_id: note for note in notes}

    def _occurrence(
        self,
        person: PersonRow,
        reminder: ReminderRow,
        now: datetime,
        choose_meal: MealChooser,
        *,
        send_at: datetime,
        evening: Collection[int] = (),
    ) -> dict[str, Any]:
        """The delivery row for the reminder's due occurrence (tonight's meal chosen, also for
        the exercise note of a person in ``evening``: the one evening message), and the
        reminder moved on to its next night."""
        due = reminder.next_fire_at
        assert due is not None
        meal_id = None
        if reminder.kind == MEAL_KIND or (
            reminder.kind == EXERCISE_KIND and person.chat_id in evening
        ):
            meal_id = choose_meal(person.diet, tuple(person.recent_meals))
            if meal_id is not None:
                person.recent_meals = [*person.recent_meals, meal_id][-RECENT_MEALS_KEPT:]
        reminder.last_due_at = due
        reminder.next_fire_at = self._next_fire(person, reminder, now, after=due)
        return _delivery_values(
            person.chat_id, reminder.id, reminder.kind, due, meal_id, now, send_at=send_at
        )

    async def _insert_deliveries(
        self, session: AsyncSession | AsyncConnection, rows: list[dict[str, Any]]
    ) -> int:
        """Insert pending deliveries; how many were new.

        The UNIQUE(reminder_id, due_at) backstop: a night that somehow was already
        materialised is silently not inserted again, and not counted. materialize_due's
        connection on SQLite goes through ``execute_many`` (SQLite counts what DO NOTHING
        skipped correctly without RETURNING); PostgreSQL's executemany row count is not
        reliable, so there RETURNING counts, as it does for the ORM sessions of levelling.
        """
        if not rows:
            return 0
        if isinstance(session, AsyncConnection) and self._dialect == "sqlite":
            return await execute_many(session, self._insert_delivery, rows)
        returning = self._insert_delivery.returning(DELIVERIES.c.id)
        return len((await session.execute(returning, rows)).all())

    async def send_load(self, start: datetime, end: datetime) -> list[MinuteLoad]:
        """Everything due in [start, end) per kind and minute (the daily capacity check)."""
        async with self._core(read_only=True) as connection:
            return await read_send_load_in(connection, start, end)

    async def upcoming_load(self, start: datetime, end: datetime, now: datetime) -> list[Load]:
        """The load levelling plans (bot/levelling.py): reminders scheduled and deliveries
        pending in [start, end), per kind and minute, in one read-only snapshot; a delivery
        waiting for a minute after ``now`` (a merged note) counts as scheduled."""
        async with self._core(read_only=True) as connection:
            scheduled, pending = await read_split(connection, start, end, now=now)
        return [
            *(Load(m.kind, m.minute * 60, m.count) for m in scheduled),
            *(Load(m.kind, m.minute * 60, m.count, scheduled=False) for m in pending),
        ]

    async def claim_deliveries(
        self,
        now: datetime,
        *,
        owner: str,
        grace: timedelta,
        limit: int,
        accept: Callable[[int], bool] = lambda chat_id: True,
        defer: timedelta = timedelta(seconds=1),
    ) -> ClaimResult:
        """Claim up to ``limit`` due pending deliveries for ``owner``, in one transaction.

        Rows are scanned in (next_attempt_at, id) order and locked with SKIP LOCKED, so two
        processes never claim one row. ``accept(chat_id)`` decides per row (the dispatcher's
        per-chat pacing); a refused row is pushed back by ``defer``, so the next claim does
        not scan it again. Accepted rows become ``sending`` with ``claimed_by = owner``; rows
        older than ``grace`` become ``expired`` instead and are returned for logging.
        """
        _require_aware(now, "now")
        async with self._core() as session:
            rows = (
                await session.execute(
                    select(
                        _D.id,
                        _D.chat_id,
                        _D.kind,
                        _D.meal_id,
                        _D.due_at,
                        _D.attempts,
                        # A subquery, not a join: FOR UPDATE then locks deliveries only.
                        select(func.coalesce(_P.language, _P.telegram_language))
                        .where(_P.chat_id == _D.chat_id)
                        .scalar_subquery()
                        .label("locale"),
                    )
                    .where(_D.status == DeliveryStatus.PENDING, _D.next_attempt_at <= now)
                    .order_by(_D.next_attempt_at, _D.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True, key_share=True)
                )
            ).all()
            claimed: list[ClaimedDelivery] = []
            expired: list[ClaimedDelivery] = []
            deferred: list[int] = []
            for row in rows:
                delivery = ClaimedDelivery(
                    row.id,
                    row.chat_id,
                    row.kind,
                    row.meal_id,
                    row.due_at,
                    row.attempts,
                    row.locale,
                )
                if now - row.due_at > grace:
                    expired.append(delivery)
                elif accept(row.chat_id):
                    claimed.append(delivery)
                else:
                    deferred.append(row.id)
            if claimed:
                await session.execute(
                    update(DeliveryRow)
                    .where(_D.id.in_([d.id for d in claimed]))
                    .values(status=DeliveryStatus.SENDING, claimed_by=owner)
                )
            if deferred:
                await session.execute(
                    update(DeliveryRow)
                    .where(_D.id.in_(deferred))
                    .values(next_attempt_at=now + defer)
                )
            if expired:
                await session.execute(
                    update(DeliveryRow)
                    .where(_D.id.in_([d.id for d in expired]))
                    .values(
                        status=DeliveryStatus.EXPIRED,
                        last_error="expired: older than the grace period before it could be sent",
                    )
                )
            return ClaimResult(tuple(claimed), tuple(expired), len(deferred), len(rows))

    async def check_deliveries(
        self, owner: str, delivery_ids: Sequence[int]
    ) -> dict[int, str | None]:
        """The last look before sending: may each of ``owner``'s claimed deliveries still go?

        Maps each id to None (send it) or the ``bot.eligibility`` reason it must not. A
        refused row still claimed by ``owner`` becomes ``skipped`` with the reason, in the
        same transaction; cancelled, erased or taken-over rows are left as they are.
        """
        if not delivery_ids:
            return {}
        async with self._core(read_only=True) as connection:
            states = await _delivery_states(connection, delivery_ids, lock=False)
        verdicts = _verdicts(states, owner, delivery_ids)
        if any(_skippable(states.get(i), owner, reason) for i, reason in verdicts.items()):
            async with self._core() as connection:  # guarded: only rows still claimed by us
                await _skip(connection, owner, states, verdicts)
        return verdicts

    async def record_outcomes(
        self, owner: str, outcomes: Sequence[SendOutcome]
    ) -> list[RecordedOutcome]:
        """Write back what sending did, for a few sends at once, in one transaction.

        Only rows still claimed by ``owner`` are touched. Success → ``sent`` (also when the
        person cancelled it while the request was on the wire: the history says what
        happened). Retry → back to ``pending`` at ``retry_at``, unless ``bot.eligibility``
        says it may no longer go (then ``skipped``, or left ``cancelled``). Failed →
        ``failed``; gone → ``failed`` and the person deactivated, in this transaction.
        """
        if not outcomes:
            return []
        async with self._core() as connection:
            _, recorded = await _settle(connection, owner, (), outcomes)
            return recorded

    async def settle(
        self, owner: str, check_ids: Sequence[int], outcomes: Sequence[SendOutcome]
    ) -> tuple[dict[int, str | None], list[RecordedOutcome]]:
        """``record_outcomes(outcomes)``, then ``check_deliveries(check_ids)``, in one
        transaction: the dispatcher's per-send database work, a round at a time.

        Each transaction costs more than its statements (on SQLite about ten driver round
        trips), so a round that has both kinds of work runs them together: one lock, one
        SELECT of the rows' states (the checked rows are locked too, until the commit), one
        commit. A round with only one kind takes that method's own path.
        """
        if not outcomes:
            return await self.check_deliveries(owner, check_ids), []
        if not check_ids:
            return {}, await self.record_outcomes(owner, outcomes)
        async with self._core() as connection:
            return await _settle(connection, owner, check_ids, outcomes)

    # --- dispatchers: who owns a claim, and whether it is still alive ------------------------

    async def heartbeat(self, owner: str, now: datetime) -> None:
        """``owner`` is alive at ``now`` (registered on its first beat)."""
        _require_aware(now, "now")
        async with self._core() as session:
            result = await session.execute(
                update(DISPATCHERS).where(_W.owner == owner).values(heartbeat_at=now)
            )
            if _rowcount(result) == 0:
                await session.execute(
                    insert_ignoring_conflicts(self._dialect, DISPATCHERS, "owner").values(
                        owner=owner, started_at=now, heartbeat_at=now
                    )
                )

    async def release_dead_claims(self, now: datetime, dead_after: timedelta) -> DeadClaims:
        """Put back to pending every claim whose owner has not beaten for ``dead_after``.

        A live owner's claims are never touched, however slowly it sends. Dead owners' rows
        are forgotten; one that was only stalled registers again with its next heartbeat,
        and its own last-moment check then finds its old claims taken over.
        """
        _require_aware(now, "now")
        cutoff = now - dead_after
        orphaned = _orphaned_claim(cutoff)
        # Almost always nothing died: find that out with one read, without the write lock.
        async with self._core(single_statement=True) as connection:
            if not await connection.scalar(select(_anyone_died(cutoff))):
                return DeadClaims(0, ())
        async with self._core() as session:
            dead = (
                (await session.execute(select(_D.claimed_by).where(orphaned).distinct()))
                .scalars()
                .all()
            )
            released = 0
            if dead:
                result = await session.execute(
                    update(DeliveryRow)
                    .where(orphaned)
                    .values(status=DeliveryStatus.PENDING, claimed_by=None)
                )
                released = _rowcount(result)
            await session.execute(delete(DISPATCHERS).where(_W.heartbeat_at < cutoff))
            owners = tuple(sorted(owner or "(no owner)" for owner in dead))
            return DeadClaims(released, owners)

    async def release_claims(self, owner: str, delivery_ids: Sequence[int] | None = None) -> int:
        """Give ``owner``'s unsent claims (all, or these) back: pending, due as before."""
        async with self._core() as session:
            return await _release(session, owner, delivery_ids)

    async def retire_dispatcher(self, owner: str) -> int:
        """Graceful exit: release every claim ``owner`` still holds and forget it."""
        async with self._core() as session:
            released = await _release(session, owner, None)
            await session.execute(delete(DISPATCHERS).where(_W.owner == owner))
            return released

    async def backfill_kinds(self, now: datetime, *, batch: int = 500) -> int:
        """Give every person who has reminders the kinds added since (enabled, default offset).

        Rows are otherwise created only on subscribe or when a kind is changed, so a kind added
        to ``content/reminders.toml`` would never reach existing subscribers. Run at start-up:
        one indexed ``GROUP BY`` when nothing is missing. Returns the rows added.
        """
        _require_aware(now, "now")
        known = set(self._offsets)
        async with self._core(read_only=True) as connection:
            lacking = (
                await connection.scalars(
                    select(_R.chat_id)
                    .where(_R.kind.in_(known))
                    .group_by(_R.chat_id)
                    .having(func.count() < len(known))
                )
            ).all()
        added = 0
        for start in range(0, len(lacking), batch):
            async with self._transaction() as session:
                for chat_id in lacking[start : start + batch]:
                    person = await self._lock_person(session, chat_id)
                    if person is None:  # erased meanwhile
                        continue
                    reminders = await self._reminders(session, chat_id, lock=True)
                    missing = sorted(known - {r.kind for r in reminders}, key=self._kind_sort_key)
                    for kind in missing:
                        row = ReminderRow(
                            chat_id=chat_id,
                            kind=kind,
                            enabled=True,
                            offset_minutes=self._offsets[kind],
                        )
                        row.next_fire_at = self._next_fire(person, row, now)
                        session.add(row)
                    added += len(missing)
        if added:
            log.info("added %d reminder(s) of new kinds for %d people", added, len(lacking))
        return added

    # --- internals -----------------------------------------------------------------------

    async def _set_row(
        self, chat_id: int, kind: str, now: datetime, *, enabled: bool | None, offset: int | None
    ) -> Person:
        """Switch one scheduled kind on/off and/or set its row's ``offset_minutes`` (minutes
        before bedtime for reminders, the weekday for the weekly chart); switching off cancels
        its unsent deliveries in the same transaction."""

        change = functools.partial(_set_row, kind, enabled, offset)
        cancel = [kind] if enabled is False else None
        return await self._mutate(chat_id, now, change, kinds=(kind,), cancel_kinds=cancel)

    async def _mutate(
        self,
        chat_id: int,
        now: datetime,
        change: Callable[[PersonRow, list[ReminderRow]], None],
        **effects: Unpack[_Effects],
    ) -> Person:
        """Load-or-create the person and their reminders (locked), apply ``change``,
        reschedule every reminder, optionally cancel unsent deliveries (all of them, with
        ``cancel_all`` as the reason, or those of ``cancel_kinds``), return the result.

        Every caller is an action of the person, so a person marked blocked is unblocked.
        """
        _require_aware(now, "now")
        async with self._transaction() as session:
            person = await self._lock_person(session, chat_id, create_at=now)
            assert person is not None
            reminders = await self._reminders(session, chat_id, lock=True)
            return await self._apply(session, person, reminders, now, change, **effects)

    async def _apply(
        self,
        session: AsyncSession,
        person: PersonRow,
        reminders: list[ReminderRow],
        now: datetime,
        change: Callable[[PersonRow, list[ReminderRow]], None],
        *,
        kinds: Iterable[str] = (),
        all_kinds: bool = False,
        cancel_kinds: Iterable[str] | None = None,
        cancel_all: str | None = None,
    ) -> Person:
        """``_mutate``'s work inside a transaction, on the locked person and reminders (the
        keywords are ``_Effects``)."""
        chat_id = person.chat_id
        wanted = set(self._offsets) if all_kinds else set(kinds)
        missing = sorted(wanted - {r.kind for r in reminders}, key=self._kind_sort_key)
        for kind in missing:
            offset = self._offsets.get(kind, _DIARY_DEFAULTS.get(kind, 0))
            row = ReminderRow(chat_id=chat_id, kind=kind, enabled=True, offset_minutes=offset)
            session.add(row)
            reminders.append(row)
        if missing:
            await session.flush()
        if person.blocked_at is not None:
            person.blocked_at = None
            person.blocked_reason = None
        change(person, reminders)
        person.updated_at = now
        await self._take_back_early(session, chat_id, reminders, now)
        enabled = {reminder.kind: reminder.enabled for reminder in reminders}
        merged = meal_rides_with_exercise(person.evening_message, enabled)
        for reminder in reminders:
            if merged and reminder.kind == MEAL_KIND:
                reminder.next_fire_at = None  # tonight's idea comes with the exercise note
                continue
            reminder.next_fire_at = self._next_fire(person, reminder, now, keep_due=True)
        if cancel_all:
            await _cancel_unsent(session, chat_id, None, cancel_all)
        elif cancel_kinds is not None:
            await _cancel_unsent(session, chat_id, tuple(cancel_kinds), "turned off")
        return self._person(person, reminders)

    async def _take_back_early(
        self, session: AsyncSession, chat_id: int, reminders: list[ReminderRow], now: datetime
    ) -> None:
        """Undo levelling's early releases (bot/levelling.py) not yet claimed: the change may
        move or stop that occurrence, so it goes back to being scheduled and is planned again
        from the new settings (a levelled release comes back at the next plan)."""
        taken = (
            await session.execute(
                delete(DeliveryRow)
                .where(
                    _D.chat_id == chat_id,
                    _D.status == DeliveryStatus.PENDING,
                    _D.attempts == 0,
                    _D.reminder_id.is_not(None),
                    _D.due_at > now,
                )
                .returning(_D.reminder_id, _D.due_at, _D.kind, _D.meal_id)
            )
        ).all()
        for reminder_id, due_at, kind, meal_id in taken:
            for reminder in reminders:
                if reminder.id == reminder_id and reminder.last_due_at == due_at:
                    # The night was not handed over after all; None only ever allows an
                    # occurrence after the previous one, which was sent before ``now``.
                    reminder.last_due_at = None
                    reminder.next_fire_at = due_at
            if kind == EXERCISE_KIND and meal_id is not None:
                await self._give_back_merged_meal(session, reminders, before=due_at)

    @staticmethod
    async def _give_back_merged_meal(
        session: AsyncSession, reminders: list[ReminderRow], *, before: datetime
    ) -> None:
        """A taken-back exercise note may carry a meal idea merged into it under overload
        (``shed``): the meal idea's skipped occurrence is undone too, so it is planned again
        with the new settings (sent late within the grace, or at its new time) — not lost
        with the note it rode on. An evening-mode note has no skipped meal row: nothing to do."""
        for meal in reminders:
            if meal.kind != MEAL_KIND or meal.last_due_at is None or meal.last_due_at >= before:
                continue
            undone = await session.execute(
                delete(DeliveryRow).where(
                    _D.reminder_id == meal.id,
                    _D.due_at == meal.last_due_at,
                    _D.status == DeliveryStatus.SKIPPED,
                    _D.last_error == MERGED,
                )
            )
            if undone.rowcount:  # type: ignore[attr-defined]
                meal.next_fire_at = meal.last_due_at
                meal.last_due_at = None

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

    def _next_fire(
        self,
        person: _PersonTiming,
        reminder: _ReminderTiming,
        now: datetime,
        *,
        after: datetime | None = None,
        keep_due: bool = False,
    ) -> datetime | None:
        """The next instant this reminder should fire, or None when it must not fire at all:
        whether it fires is ``_fire_zone``'s question, when is ``_next_instant``'s."""
        tz = self._fire_zone(person, reminder)
        if tz is None:
            return None
        return _next_instant(person, reminder, tz, now, after=after, keep_due=keep_due)

    def _fire_zone(self, person: _PersonTiming, reminder: _ReminderTiming) -> tzinfo | None:
        """The person's time zone when this reminder fires at all, else None (unsubscribed,
        blocked, turned off, an unknown kind, settings incomplete or an unknown zone)."""
        if (
            not person.subscribed
            or person.blocked_at is not None
            or not reminder.enabled
            or (reminder.kind not in self._offsets and reminder.kind not in _DIARY_DEFAULTS)
            or person.timezone is None
            or person.bedtime is None
        ):
            return None
        try:
            return tzinfo_for(person.timezone)
        except UnknownTimezone:
            log.warning("chat %s has an unknown timezone: not scheduled", person.chat_id)
            return None

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
            language=row.language,
            telegram_language=row.telegram_language,
            evening_message=row.evening_message,
            reminders=tuple(
                ReminderSetting(r.kind, r.enabled, r.offset_minutes, r.next_fire_at)
                for r in sorted(reminders, key=lambda r: self._kind_sort_key(r.kind))
                if r.kind not in _DIARY_DEFAULTS
            ),
            checkin=next(
                (
                    ReminderSetting(r.kind, r.enabled, r.offset_minutes, r.next_fire_at)
                    for r in reminders
                    if r.kind == CHECKIN_KIND
                ),
                None,
            ),
            weekly=next(
                (
                    ReminderSetting(r.kind, r.enabled, r.offset_minutes, r.next_fire_at)
                    for r in reminders
                    if r.kind == WEEKLY_KIND
                ),
                None,
            ),
        )

    def _kind_sort_key(self, kind: str) -> tuple[int, str]:
        return (self._kind_order.get(kind, len(self._kind_order)), kind)

    def _check_kind(self, kind: str) -> None:
        if kind not in self._offsets:
            raise ValueError(f"unknown reminder kind {kind!r}; known: {', '.join(self._offsets)}")


# The diary's scheduled kinds, beside the nightly reminders, and their row's default
# ``offset_minutes``: the check-in's minutes after bedtime, the summary's weekday.
_DIARY_DEFAULTS: Final[Mapping[str, int]] = {
    CHECKIN_KIND: wake.DEFAULT_SLEEP_MINUTES,
    WEEKLY_KIND: weekly.DEFAULT_WEEKDAY,
}
_UNFINISHED: Final = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})
_UNSENT: Final = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
_OUTCOME_STATUS: Final = {
    "sent": DeliveryStatus.SENT,
    "retry": DeliveryStatus.PENDING,
    "failed": DeliveryStatus.FAILED,
    "gone": DeliveryStatus.FAILED,
    "skipped": DeliveryStatus.SKIPPED,
}


def _outcome_parameters(owner: str, outcome: SendOutcome) -> dict[str, Any]:
    return {
        "b_id": outcome.delivery_id,
        "b_owner": owner,
        "b_sent_at": outcome.at if outcome.result == "sent" else None,
        "b_message_id": outcome.telegram_message_id,
        "b_retry_at": outcome.retry_at,
        "b_error": outcome.error,
    }


@functools.cache
def _record_statement(status: str) -> Any:
    """One UPDATE per new status, executed for many rows; only the owner's rows match.

    A retry releases the claim (pending for anyone, at ``retry_at``); a sent or failed row
    keeps ``claimed_by`` as history. A cancelled row may still become sent or failed.
    Cached: it runs after every send.
    """
    d = DELIVERIES.c
    values: dict[str, Any] = {
        "status": status,
        "attempts": d.attempts + 1,
        "last_error": bindparam("b_error"),
    }
    statuses = [DeliveryStatus.SENDING]
    if status == DeliveryStatus.SENT:
        values["sent_at"] = bindparam("b_sent_at", type_=UTCDateTime())
        values["telegram_message_id"] = bindparam("b_message_id")
        statuses.append(DeliveryStatus.CANCELLED)
    elif status == DeliveryStatus.PENDING:
        values["next_attempt_at"] = bindparam("b_retry_at", type_=UTCDateTime())
        values["claimed_by"] = None
    else:
        statuses.append(DeliveryStatus.CANCELLED)
    return (
        update(DELIVERIES)
        # OR, not IN: an expanding IN cannot be used with executemany.
        .where(
            d.id == bindparam("b_id"),
            d.claimed_by == bindparam("b_owner"),
            or_(*(d.status == allowed for allowed in statuses)),
        )
        .values(**values)
    )


async def _release(
    connection: AsyncConnection, owner: str, delivery_ids: Sequence[int] | None
) -> int:
    statement = update(DeliveryRow).where(
        _D.status == DeliveryStatus.SENDING, _D.claimed_by == owner
    )
    if delivery_ids is not None:
        if not delivery_ids:
            return 0
        statement = statement.where(_D.id.in_(list(delivery_ids)))
    result = await connection.execute(
        statement.values(status=DeliveryStatus.PENDING, claimed_by=None)
    )
    return _rowcount(result)


# Built once: the last-moment check runs before every send.
_STATES: Final = (
    select(
        _D.id,
        _D.kind,
        _D.due_at,
        _D.status,
        _D.claimed_by,
        _P.chat_id.label("person"),
        _P.subscribed,
        _P.blocked_at,
        _P.paused_until,
        _R.enabled,
    )
    .select_from(DeliveryRow)
    .outerjoin(PersonRow, _P.chat_id == _D.chat_id)
    .outerjoin(ReminderRow, and_(_R.chat_id == _D.chat_id, _R.kind == _D.kind))
    .where(_D.id.in_(bindparam("ids", expanding=True)))
)
_STATES_LOCKED: Final = _STATES.with_for_update(of=DeliveryRow, key_share=True)


async def _delivery_states(
    connection: AsyncConnection, delivery_ids: Sequence[int], *, lock: bool
) -> dict[int, eligibility.DeliveryState]:
    """What ``bot.eligibility`` needs about each delivery: its row, person and switch."""
    statement = _STATES_LOCKED if lock else _STATES
    states: dict[int, eligibility.DeliveryState] = {}
    for row in await connection.execute(statement, {"ids": list(delivery_ids)}):
        recipient = (
            None
            if row.person is None
            else eligibility.Recipient(
                subscribed=row.subscribed,
                blocked=row.blocked_at is not None,
                paused_until=row.paused_until,
            )
        )
        states[row.id] = eligibility.DeliveryState(
            delivery_id=row.id,
            kind=row.kind,
            due_at=row.due_at,
            status=row.status,
            claimed_by=row.claimed_by,
            recipient=recipient,
            kind_enabled=row.enabled,
        )
    return states


def _verdicts(
    states: Mapping[int, eligibility.DeliveryState], owner: str, delivery_ids: Iterable[int]
) -> dict[int, str | None]:
    return {i: eligibility.why_not(states.get(i), owner) for i in delivery_ids}


async def _settle(
    connection: AsyncConnection,
    owner: str,
    check_ids: Sequence[int],
    outcomes: Sequence[SendOutcome],
) -> tuple[dict[int, str | None], list[RecordedOutcome]]:
    """Record ``outcomes`` and check ``check_ids`` (see ``Store.record_outcomes`` and
    ``Store.check_deliveries``) in the caller's write transaction.

    Gone chats are deactivated first, so a check sees them; one locked read of every row's
    state; then refused rows become ``skipped`` and outcomes are written.
    """
    await _deactivate_gone(connection, [o for o in outcomes if o.result == "gone"])
    ids = [outcome.delivery_id for outcome in outcomes]
    states = await _delivery_states(connection, [*ids, *check_ids], lock=True)
    verdicts = _verdicts(states, owner, check_ids)
    recorded: list[RecordedOutcome] = []
    writes: dict[str, list[dict[str, Any]]] = {}
    refused = dict(verdicts)
    for outcome in outcomes:
        state = states.get(outcome.delivery_id)
        ours = (
            state is not None
            and state.claimed_by == owner
            and state.status in (DeliveryStatus.SENDING, DeliveryStatus.CANCELLED)
        )
        if state is None or not ours:
            recorded.append(RecordedOutcome(outcome.delivery_id, None))
            continue
        cancelled = state.status == DeliveryStatus.CANCELLED
        if outcome.result == "retry":
            reason = eligibility.why_not(state, owner)
            if reason is not None:
                refused[outcome.delivery_id] = reason
                status = DeliveryStatus.SKIPPED if not cancelled else state.status
                recorded.append(RecordedOutcome(outcome.delivery_id, status, reason))
                continue
        status = _OUTCOME_STATUS[outcome.result]
        writes.setdefault(status, []).append(_outcome_parameters(owner, outcome))
        recorded.append(
            RecordedOutcome(
                outcome.delivery_id,
                status,
                was_cancelled=cancelled and outcome.result == "sent",
            )
        )
    await _skip(connection, owner, states, refused)
    for status, parameters in writes.items():
        await connection.execute(_record_statement(status), parameters)
    return verdicts, recorded


async def _skip(
    connection: AsyncConnection,
    owner: str,
    states: Mapping[int, eligibility.DeliveryState],
    verdicts: Mapping[int, str | None],
) -> None:
    """Refused rows still claimed by ``owner`` become ``skipped``, with the reason."""
    by_reason: dict[str, list[int]] = {}
    for delivery_id, reason in verdicts.items():
        if reason is not None and _skippable(states.get(delivery_id), owner, reason):
            by_reason.setdefault(reason, []).append(delivery_id)
    for reason, delivery_ids in by_reason.items():
        await connection.execute(
            update(DeliveryRow)
            .where(
                _D.id.in_(delivery_ids),
                _D.status == DeliveryStatus.SENDING,
                _D.claimed_by == owner,
            )
            .values(status=DeliveryStatus.SKIPPED, last_error=f"not sent: {reason}")
        )


def _skippable(state: eligibility.DeliveryState | None, owner: str, reason: str | None) -> bool:
    """A refused delivery that is still ours to mark: claimed by ``owner``, still sending."""
    return (
        reason is not None
        and state is not None
        and state.status == DeliveryStatus.SENDING
        and state.claimed_by == owner
    )


async def _diary_rows(
    session: AsyncSession, chat_id: int, *, since: date | None, until: date | None = None
) -> list[DiaryEntryRow]:
    statement = select(DiaryEntryRow).where(DIARY.c.chat_id == chat_id)
    if since is not None:
        statement = statement.where(DIARY.c.night >= since)
    if until is not None:
        statement = statement.where(DIARY.c.night <= until)
    return list((await session.scalars(statement.order_by(DIARY.c.night))).all())


def _diary_entry(row: DiaryEntryRow) -> DiaryEntry:
    return DiaryEntry(
        night=row.night,
        rating=row.rating,
        logged_at=row.updated_at,
        habits=frozenset(habit for habit in Habit if getattr(row, habit.value)),
        onset=None if row.onset is None else OnsetBucket(row.onset),
    )


def _diary_json(row: DiaryEntryRow) -> dict[str, Any]:
    return {
        "night": row.night.isoformat(),
        "rating": row.rating,
        **{habit.value: bool(getattr(row, habit.value)) for habit in Habit},
        "onset": row.onset,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


async def _drop_merged_notes(
    session: AsyncSession, release: Release, now: datetime, limit: int, merge_within: timedelta
) -> tuple[int, int]:
    """Policy (c) past the plain exercise notes: exercise notes carrying a merged meal idea,
    made ahead for the release's minute and not yet sendable, are dropped too — the planner's
    drop order (meal, exercise, the merged evening message, wind-down last). Without this,
    an overload that merging has turned into carried notes could drop nothing more before the
    wind-downs expire. The meal idea it carried is relabelled dropped as well: it is lost.
    How many notes, and how many meal ideas with them."""
    start = datetime.fromtimestamp(release.at, UTC)
    notes = (
        await session.execute(
            select(_D.id, _D.chat_id)
            .where(_waiting_for(release, now), _D.meal_id.is_not(None))
            .order_by(_D.next_attempt_at, _D.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not notes:
        return 0, 0
    await session.execute(
        update(DeliveryRow)
        .where(_D.id.in_([note.id for note in notes]))
        .values(status=DeliveryStatus.SKIPPED, last_error=DROPPED)
    )
    # The meal ideas they carried: each person's merged one, due within ``merge_within``
    # before these notes (all due in the release's minute) — one statement for all of them.
    meals = await session.execute(
        update(DeliveryRow)
        .where(
            _D.chat_id.in_([note.chat_id for note in notes]),
            _D.kind == MEAL_KIND,
            _D.status == DeliveryStatus.SKIPPED,
            _D.last_error == MERGED,
            _D.due_at >= start - merge_within,
            _D.due_at < start + timedelta(minutes=1),
        )
        .values(last_error=DROPPED)
    )
    return len(notes), _rowcount(meals)


def _anything_due(now: datetime) -> ColumnElement[bool]:
    """A reminder to materialise or a pending delivery to claim at ``now`` (two EXISTS, each
    on its index: ``next_fire_at``, ``(status, next_attempt_at)``)."""
    reminder_due = select(_R.id).where(_R.next_fire_at <= now).limit(1).exists()
    delivery_due = (
        select(_D.id)
        .where(_D.status == DeliveryStatus.PENDING, _D.next_attempt_at <= now)
        .limit(1)
        .exists()
    )
    return or_(reminder_due, delivery_due)


def _anyone_died(cutoff: datetime) -> ColumnElement[bool]:
    """A claim whose owner has not beaten since ``cutoff`` (or has none), or such an owner
    still registered: ``Store.release_dead_claims`` has work."""
    orphaned = select(_D.id).where(_orphaned_claim(cutoff)).limit(1).exists()
    silent = select(_W.owner).where(_W.heartbeat_at < cutoff).limit(1).exists()
    return or_(orphaned, silent)


def _orphaned_claim(cutoff: datetime) -> ColumnElement[bool]:
    """A delivery being sent by nobody alive: its owner has not beaten since ``cutoff``, or
    it has no owner."""
    alive = select(_W.owner).where(_W.heartbeat_at >= cutoff)
    return and_(
        _D.status == DeliveryStatus.SENDING,
        or_(_D.claimed_by.is_(None), _D.claimed_by.not_in(alive)),
    )


def _waiting_for(release: Release, now: datetime) -> ColumnElement[bool]:
    """Deliveries of the release's kind made ahead for its minute and never tried (merged
    notes, ``Store.shed``), not yet sendable: what levelling may release or drop in their
    reminder's stead (``read_split`` counts the same rows as scheduled)."""
    start = datetime.fromtimestamp(release.at, UTC)
    return and_(
        _D.kind == release.kind,
        _D.status == DeliveryStatus.PENDING,
        _D.attempts == 0,
        _D.next_attempt_at > now,
        _D.next_attempt_at >= start,
        _D.next_attempt_at < start + timedelta(minutes=1),
    )


def _nothing_earlier_waiting(
    chat_id: InstrumentedAttribute[int], moment: InstrumentedAttribute[datetime | None]
) -> ColumnElement[bool]:
    """Levelling's ordering rule: nothing of this person due before ``moment`` still waits,
    scheduled (a reminder) or pending (a delivery made for its time, a retry), so an early
    release never overtakes their own earlier message."""
    reminder, delivery = aliased(ReminderRow), aliased(DeliveryRow)
    return and_(
        ~select(reminder.id)
        .where(reminder.chat_id == chat_id, reminder.next_fire_at < moment)
        .exists(),
        ~select(delivery.id)
        .where(
            delivery.chat_id == chat_id,
            delivery.status == DeliveryStatus.PENDING,
            delivery.due_at < moment,
        )
        .exists(),
    )


async def _release_waiting(
    session: AsyncSession, release: Release, now: datetime, limit: int
) -> int:
    """Levelling's early release of deliveries made ahead for the release's minute and never
    tried (merged notes, ``Store.shed``): sendable now, with the same ordering rule as the
    reminders — none goes ahead of its person's earlier reminder or delivery still waiting."""
    ids = (
        await session.scalars(
            select(_D.id)
            .where(_waiting_for(release, now), _nothing_earlier_waiting(_D.chat_id, _D.due_at))
            .order_by(_D.next_attempt_at, _D.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if ids:
        await session.execute(update(DeliveryRow).where(_D.id.in_(ids)).values(next_attempt_at=now))
    return len(ids)


def _may_carry_meal(kind: str, evening_message: bool) -> bool:
    return kind == EXERCISE_KIND and evening_message


async def _evening_chats(
    connection: AsyncSession | AsyncConnection, chat_ids: Sequence[int]
) -> set[int]:
    """Of these people (due exercise notes of people who chose the one evening message),
    those whose meal idea is on: their exercise note carries tonight's meal
    (``bot.meals.meal_rides_with_exercise``). No query when there are none."""
    if not chat_ids:
        return set()
    result = await connection.execute(
        select(_R.chat_id).where(_R.chat_id.in_(chat_ids), _R.kind == MEAL_KIND, _R.enabled)
    )
    return set(result.scalars())


async def _deactivate_gone(connection: AsyncConnection, gone: Sequence[SendOutcome]) -> None:
    """Deactivate the people behind ``gone`` outcomes, person rows first as everywhere."""
    if not gone:
        return
    ids = [outcome.delivery_id for outcome in gone]
    rows = await connection.execute(select(_D.id, _D.chat_id).where(_D.id.in_(ids)))
    chats: dict[int, int] = {row.id: row.chat_id for row in rows}
    reasons = {chats[o.delivery_id]: o for o in gone if o.delivery_id in chats}
    for chat_id in sorted(reasons):
        outcome = reasons[chat_id]
        await _deactivate(connection, chat_id, outcome.error or "gone", outcome.at)


async def _deactivate(
    connection: AsyncConnection, chat_id: int, reason: str, now: datetime
) -> None:
    """The chat is gone for us: blocked, nothing scheduled, every unsent delivery cancelled.

    The UPDATE on the person row locks it first: person → reminders → deliveries, as
    everywhere.
    """
    result = await connection.execute(
        update(PersonRow)
        .where(_P.chat_id == chat_id)
        .values(blocked_at=now, blocked_reason=reason[:200], updated_at=now)
    )
    if _rowcount(result) == 0:
        return
    await connection.execute(
        update(ReminderRow).where(_R.chat_id == chat_id).values(next_fire_at=None)
    )
    await _cancel_unsent(connection, chat_id, None, f"deactivated: {reason}")


async def _cancel_unsent(
    connection: AsyncConnection | AsyncSession,
    chat_id: int,
    kinds: tuple[str, ...] | None,
    why: str,
) -> None:
    """Cancel what has not left yet: pending, waiting for a retry, or claimed for sending.

    A claimed row keeps ``claimed_by``: its dispatcher's last-moment check sees the
    cancellation, and if its request was already on the wire the outcome is still recorded
    (as sent) on this row.
    """
    statement = update(DeliveryRow).where(_D.chat_id == chat_id, _D.status.in_(_UNSENT))
    if kinds is not None:
        statement = statement.where(_D.kind.in_(kinds))
    await connection.execute(
        statement.values(status=DeliveryStatus.CANCELLED, last_error=f"cancelled: {why}"[:500])
    )


class _PersonTiming(Protocol):
    """What the schedule reads of a person: a PersonRow, or a ``_DueReminder``."""

    @property
    def chat_id(self) -> int: ...
    @property
    def subscribed(self) -> bool: ...
    @property
    def blocked_at(self) -> datetime | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def bedtime(self) -> time | None: ...
    @property
    def weekend_bedtime(self) -> time | None: ...
    @property
    def paused_until(self) -> datetime | None: ...


class _ReminderTiming(Protocol):
    """What the schedule reads of one reminder: a ReminderRow, or a ``_DueReminder``."""

    @property
    def kind(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def offset_minutes(self) -> int: ...
    @property
    def next_fire_at(self) -> datetime | None: ...
    @property
    def last_due_at(self) -> datetime | None: ...


@dataclass(slots=True)
class _DueReminder:
    """One due reminder with its person's columns: what ``materialize_due`` reads, without
    ORM rows. It is both the person and the reminder for ``_fire_zone``/``_next_instant``."""

    id: int
    chat_id: int
    kind: str
    enabled: bool
    offset_minutes: int
    next_fire_at: datetime | None
    last_due_at: datetime | None
    subscribed: bool
    blocked_at: datetime | None
    timezone: str | None
    bedtime: time | None
    weekend_bedtime: time | None
    paused_until: datetime | None
    diet: str
    # The column's JSON text, decoded only for a meal (most due rows are other kinds).
    recent_meals_json: str
    evening_message: bool


@functools.cache
def _due_reminders(*, lock: bool) -> Select[Any]:
    """Up to ``b_limit`` reminders due at ``b_now``, oldest first, in ``_DueReminder``'s
    column order; ``lock``: the reminder and person rows, skipping those another process
    holds. Built once: constructing the SELECT cost each batch about 1 µs a reminder."""
    r, p = REMINDERS.c, PEOPLE.c
    statement = (
        select(
            r.id,
            r.chat_id,
            r.kind,
            r.enabled,
            r.offset_minutes,
            r.next_fire_at,
            r.last_due_at,
            p.subscribed,
            p.blocked_at,
            p.timezone,
            p.bedtime,
            p.weekend_bedtime,
            p.paused_until,
            p.diet,
            type_coerce(p.recent_meals, Text()),  # JSON text: see _DueReminder
            p.evening_message,
        )
        .join_from(REMINDERS, PEOPLE, p.chat_id == r.chat_id)
        .where(r.next_fire_at <= bindparam("b_now", type_=UTCDateTime()))
        .order_by(r.next_fire_at, r.id)
        .limit(bindparam("b_limit", type_=Integer()))
    )
    if lock:
        statement = statement.with_for_update(
            skip_locked=True, key_share=True, of=[REMINDERS, PEOPLE]
        )
    return statement


def _delivery_values(
    chat_id: int,
    reminder_id: int,
    kind: str,
    due_at: datetime,
    meal_id: str | None,
    now: datetime,
    *,
    send_at: datetime | None = None,
) -> dict[str, Any]:
    """A pending delivery row for one occurrence: sendable at ``send_at`` (levelling's early
    release) or at its own ``due_at``. Shared by ``materialize_due`` and ``_occurrence``."""
    return {
        "chat_id": chat_id,
        "reminder_id": reminder_id,
        "kind": kind,
        "due_at": due_at,
        "meal_id": meal_id,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": due_at if send_at is None else send_at,
        "created_at": now,
    }


# materialize_due's moves (``b_id``, ``b_next``): a reminder to its next fire time; and one
# whose occurrence became a delivery, whose last due night is then that occurrence: the row's
# own next_fire_at before this UPDATE (SET reads the old row on SQLite and PostgreSQL alike),
# so the occurrence is not bound a second time.
_MOVE_REMINDER: Final = (
    update(REMINDERS)
    .where(REMINDERS.c.id == bindparam("b_id"))
    .values(next_fire_at=bindparam("b_next", type_=UTCDateTime()))
)
_HAND_OVER: Final = (
    update(REMINDERS)
    .where(REMINDERS.c.id == bindparam("b_id"))
    .values(
        last_due_at=REMINDERS.c.next_fire_at,
        next_fire_at=bindparam("b_next", type_=UTCDateTime()),
    )
)
_REMEMBER_MEALS: Final = (
    update(PEOPLE)
    .where(PEOPLE.c.chat_id == bindparam("b_chat"))
    .values(recent_meals=bindparam("b_meals", type_=JSONStringList()))
)


def _next_instant(
    person: _PersonTiming,
    reminder: _ReminderTiming,
    tz: tzinfo,
    now: datetime,
    *,
    after: datetime | None = None,
    keep_due: bool = False,
) -> datetime:
    """When a reminder that fires at all fires next: ``schedule.next_occurrence``'s policy,
    with the diary kinds' own clocks."""
    assert person.bedtime is not None
    state = schedule.ReminderState(
        bedtime=person.bedtime,
        weekend_bedtime=person.weekend_bedtime,
        offset_minutes=reminder.offset_minutes,
        tz=tz,
        next_fire_at=reminder.next_fire_at,
        last_due_at=reminder.last_due_at,
        paused_until=person.paused_until,
    )
    if reminder.kind not in _DIARY_DEFAULTS:
        return schedule.next_occurrence(state, now, after=after, keep_due=keep_due)
    following, night = _diary_timing(person, reminder, tz)
    return schedule.next_occurrence_of(following, night, state, now, after=after, keep_due=keep_due)


def _shared_next_instant(
    shared: dict[tuple[object, ...], datetime],
    due: _DueReminder,
    tz: tzinfo,
    now: datetime,
    *,
    after: datetime,
) -> datetime:
    """``_next_instant`` for one ``materialize_due`` call (one ``now``), answered once per
    schedule: the reminders due together mostly share a zone, bedtimes and offset.

    The key is everything the answer reads besides ``now`` (without ``keep_due`` the stored
    ``next_fire_at`` is not read). Its datetimes come from the database in UTC, or are
    ``now``, so equal keys are equal instants (no fold, PEP 495).
    """
    key = (
        due.kind if due.kind in _DIARY_DEFAULTS else None,  # the other kinds share one clock
        due.timezone,
        due.bedtime,
        due.weekend_bedtime,
        due.offset_minutes,
        due.paused_until,
        due.last_due_at,
        after,
    )
    found = shared.get(key)
    if found is None:
        found = shared[key] = _next_instant(due, due, tz, now, after=after)
    return found


def _diary_timing(
    person: _PersonTiming, reminder: _ReminderTiming, tz: tzinfo
) -> tuple[Callable[[datetime], datetime], Callable[[datetime], object]]:
    """The check-in's and the weekly summary's ``following`` and ``night`` for
    ``schedule.next_occurrence_of``: the same policy, the diary's own clocks."""
    offset = reminder.offset_minutes
    if reminder.kind == CHECKIN_KIND:
        return (
            lambda moment: _next_checkin(person, offset, tz, moment),
            lambda moment: wake.checkin_night(moment, sleep_minutes=offset, tz=tz),
        )
    return (
        lambda moment: weekly.next_weekly_at(offset, tz=tz, after=moment),
        lambda moment: weekly.weekly_last_night(moment, tz),
    )


def _next_checkin(
    person: _PersonTiming, sleep_minutes: int, tz: tzinfo, after: datetime
) -> datetime:
    """The morning check-in's next instant: wake time = bedtime + ``sleep_minutes``, the
    weekend wake time following the weekend bedtime (``bot.diary.wake``)."""
    assert person.bedtime is not None
    wakes = wake.wake_times(
        bedtime=person.bedtime,
        weekend_bedtime=person.weekend_bedtime,
        wake_time=wake.wake_time_after(person.bedtime, sleep_minutes),
    )
    _, instant = wake.next_checkin_at(
        bedtime=person.bedtime,
        weekend_bedtime=person.weekend_bedtime,
        wake=wakes,
        tz=tz,
        after=after,
    )
    return instant


async def _mark_done(session: AsyncSession, row: DeliveryRow) -> bool:
    """Done's work on the locked delivery: True if it is (now) done; Done after Snooze cancels
    the snoozed copy still to come."""
    if row.status == DeliveryStatus.DONE:
        return True
    if row.status not in (DeliveryStatus.SENT, DeliveryStatus.SNOOZED):
        return False
    if row.status == DeliveryStatus.SNOOZED:
        await session.execute(
            update(DeliveryRow)
            .where(_D.snoozed_from == row.id, _D.status.in_(_UNSENT))
            .values(status=DeliveryStatus.CANCELLED, last_error="done before snooze")
        )
    row.status = DeliveryStatus.DONE
    return True


def _set_row(
    kind: str,
    enabled: bool | None,
    offset: int | None,
    person: PersonRow,
    reminders: list[ReminderRow],
) -> None:
    """Switch one kind's row on/off and/or set its ``offset_minutes`` (``Store._set_row``)."""
    row = next(r for r in reminders if r.kind == kind)
    if enabled is not None:
        row.enabled = enabled
    if offset is not None:
        row.offset_minutes = offset


def _apply_edit(edit: PersonEdit, person: PersonRow, reminders: list[ReminderRow]) -> None:
    """Write ``edit``'s fields onto the locked row (``Store.edit_person``)."""
    if edit.timezone is not None:
        person.timezone = edit.timezone
    if edit.bedtime is not None:
        person.bedtime = _whole_minutes(edit.bedtime)
    if edit.weekend_bedtime is not None:
        person.weekend_bedtime = _whole_minutes(edit.weekend_bedtime)
    if edit.clear_weekend_bedtime:
        person.weekend_bedtime = None
    if edit.subscribed is not None:
        person.subscribed = edit.subscribed
    if edit.resume:
        person.paused_until = None
    if edit.paused_until is not None:
        person.paused_until = edit.paused_until


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


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")
