"""ORM tables. Only the storage package sees these; everyone else gets frozen dataclasses.

Alembic's migrations (0001_initial and the ones after it) create exactly this schema (a test
compares the two), so a change here needs a new migration next to it.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Final, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.content import DIETS as CONTENT_DIETS
from bot.storage.types import ClockTime, JSONStringList, UTCDateTime

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit id on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

DIETS: Final = CONTENT_DIETS  # one list: what content can tag is what a person can choose


class DeliveryStatus:
    """Life cycle of one message: pending → sending → sent → done | snoozed; or a dead end."""

    PENDING: Final = "pending"  # waiting for due_at / next_attempt_at
    SENDING: Final = "sending"  # claimed by dispatcher ``claimed_by`` (alive while it heartbeats)
    SENT: Final = "sent"  # Telegram accepted it
    DONE: Final = "done"  # the person pressed Done
    SNOOZED: Final = "snoozed"  # the person pressed Snooze; a new pending delivery exists
    SKIPPED: Final = "skipped"  # dropped at the last moment: the person's state forbade it
    EXPIRED: Final = "expired"  # became older than the grace period before it could go out
    FAILED: Final = "failed"  # Telegram refused it for good
    CANCELLED: Final = "cancelled"  # /stop, pause, turned off, or the chat went away

    ALL: Final = (
        PENDING,
        SENDING,
        SENT,
        DONE,
        SNOOZED,
        SKIPPED,
        EXPIRED,
        FAILED,
        CANCELLED,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PersonRow(Base):
    __tablename__ = "people"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    bedtime: Mapped[time | None] = mapped_column(ClockTime)
    weekend_bedtime: Mapped[time | None] = mapped_column(ClockTime)
    diet: Mapped[str] = mapped_column(String(16), default="omnivore", server_default="omnivore")
    # The locale chosen with /language; NULL = follow Telegram's, last seen in telegram_language
    # (kept for reminders, which have no incoming update to read it from).
    language: Mapped[str | None] = mapped_column(String(8))
    telegram_language: Mapped[str | None] = mapped_column(String(8))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_reason: Mapped[str | None] = mapped_column(String(200))
    # Oldest first, at most 7 meal ids: what the meal rotation must not repeat.
    recent_meals: Mapped[list[str]] = mapped_column(
        JSONStringList, default=list, server_default="[]"
    )
    # The morning the check-in last asked "turn check-ins off?" (bot.diary.checkin): asked
    # once per streak of unanswered mornings (migration 0008_diary).
    checkin_stop_asked_on: Mapped[date | None] = mapped_column(Date)
    # The one evening message (/settings): the meal idea rides with the exercise note while
    # both are on (bot.meals.meal_rides_with_exercise; migration 0009_evening_message).
    evening_message: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderRow(Base):
    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("chat_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("people.chat_id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    offset_minutes: Mapped[int] = mapped_column(Integer)
    # NULL = not scheduled (unsubscribed, disabled, blocked, settings incomplete).
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The last occurrence turned into a delivery: rescheduling never yields that night again.
    last_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        # One nightly occurrence can never be materialised twice (snoozes have reminder_id NULL).
        UniqueConstraint("reminder_id", "due_at"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in DeliveryStatus.ALL) + ")",
            name="status",
        ),
        # What the dispatcher's claim query scans: due pending rows in attempt order.
        Index(None, "status", "next_attempt_at"),
        # For the self-referencing foreign key (ON DELETE SET NULL looks up ``snoozed_from =
        # ?``) and the snoozes of a delivery. Partial (migration 0010): almost every row is
        # not a snooze, and each NULL entry cost every nightly INSERT a B-tree insertion;
        # ``snoozed_from = ?`` implies NOT NULL, so SQLite and PostgreSQL still use it.
        Index(
            None,
            "snoozed_from",
            sqlite_where=text("snoozed_from IS NOT NULL"),
            postgresql_where=text("snoozed_from IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("people.chat_id", ondelete="CASCADE"), index=True
    )
    reminder_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("reminders.id", ondelete="SET NULL")
    )
    snoozed_from: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(32))
    # Indexed for purging old history (migration 0002).
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    meal_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(16), default=DeliveryStatus.PENDING, server_default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The dispatcher that claimed it (``sending``); kept afterwards as history.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DispatcherRow(Base):
    """One running dispatcher process; a claim is alive while its owner's heartbeat is fresh."""

    __tablename__ = "dispatchers"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboxStatus:
    """An incoming update: stored (pending) → handled (done), or given up after repeated crashes."""

    PENDING: Final = "pending"
    DONE: Final = "done"
    FAILED: Final = "failed"

    ALL: Final = (PENDING, DONE, FAILED)


class InboxRow(Base):
    """One Telegram update, stored before Telegram is told it arrived (see storage.inbox).

    ``payload`` (the update's JSON, with names and message text) and ``chat_id`` are set to NULL
    once the update is handled; the bare row stays for a day so a re-delivered update_id is
    recognised, then it is pruned.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in InboxStatus.ALL) + ")", name="status"
        ),
        # What the worker scans: pending updates in update_id order.
        Index(None, "status", "update_id"),
    )

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # For /deletedata while the update is unhandled; NULL once handled.
    chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    payload: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(16), default=InboxStatus.PENDING, server_default=InboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The process handling it (its dispatcher's owner id, alive while that heartbeat is
    # fresh): with replicas, every worker sees every pending update, and only one may begin it.
    owner: Mapped[str | None] = mapped_column(String(64))


class DiaryEntryRow(Base):
    """One night of the sleep diary (bot.diary.models.DiaryEntry): one row per person per night.

    ``night`` is the evening date the night began. The habit columns are named after
    ``bot.diary.models.Habit`` values. Kept until the person deletes them (/deletedata, the
    person row's cascade); never purged.
    """

    __tablename__ = "diary_entries"
    __table_args__ = (
        UniqueConstraint("chat_id", "night"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint(
            "onset IS NULL OR onset IN ('lt15', '15to30', '30to60', 'gt60')", name="onset"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("people.chat_id", ondelete="CASCADE")
    )
    night: Mapped[date] = mapped_column(Date)
    rating: Mapped[int] = mapped_column(Integer)
    dimmed_lights: Mapped[bool] = mapped_column(Boolean)
    no_intense_exercise: Mapped[bool] = mapped_column(Boolean)
    b12_dinner: Mapped[bool] = mapped_column(Boolean)
    onset: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Core Table objects, typed as such, for bulk statements that bypass the ORM.
PEOPLE: Final = cast(Table, PersonRow.__table__)
REMINDERS: Final = cast(Table, ReminderRow.__table__)
DELIVERIES: Final = cast(Table, DeliveryRow.__table__)
DISPATCHERS: Final = cast(Table, DispatcherRow.__table__)
INBOX: Final = cast(Table, InboxRow.__table__)


class ConversationRow(Base):
    """What the handlers keep about a person (``user_data``) or a chat (``chat_data``)
    between two of their updates, e.g. the open prompt ("waiting for a timezone"), as JSON.

    In the database rather than in process memory so that a restart, or the next update
    landing on another replica, continues the conversation (bot/conversation.py). A row
    exists only while there is something to keep; /deletedata erases it.
    """

    __tablename__ = "conversations"
    __table_args__ = (CheckConstraint("scope IN ('user', 'chat')", name="scope"),)

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


CONVERSATIONS: Final = cast(Table, ConversationRow.__table__)
DIARY: Final = cast(Table, DiaryEntryRow.__table__)
