"""What the store hands out: plain frozen dataclasses, never ORM objects.

Handlers and the dispatcher can keep these across awaits and transactions without lazy loads,
detached-instance errors or accidental writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from bot.diary.checkin import CheckinFact
from bot.meals import meal_rides_with_exercise

# (diet, recent meal ids oldest first) -> the meal id to suggest tonight, or None.
MealChooser = Callable[[str, Sequence[str]], str | None]


@dataclass(frozen=True)
class ReminderSetting:
    kind: str
    enabled: bool
    offset_minutes: int
    next_fire_at: datetime | None  # aware UTC; None = not scheduled


@dataclass(frozen=True)
class Person:
    chat_id: int
    timezone: str | None
    bedtime: time | None
    weekend_bedtime: time | None
    diet: str
    subscribed: bool
    paused_until: datetime | None
    blocked: bool
    created_at: datetime
    reminders: tuple[ReminderSetting, ...]
    language: str | None = None  # chosen with /language; None = follow Telegram
    telegram_language: str | None = None  # the locale Telegram's language_code gave last time
    # The one evening message: meal idea and exercise note together, at the exercise time.
    evening_message: bool = False

    @property
    def locale(self) -> str | None:
        """The locale reminders go out in: the choice, else Telegram's; None = the default."""
        return self.language or self.telegram_language

    # The morning check-in (kind "checkin"); None until the person first switched it on.
    checkin: ReminderSetting | None = None
    # The weekly summary (kind "weekly"; offset_minutes holds the weekday, 0 = Monday).
    weekly: ReminderSetting | None = None

    @property
    def evening_merged(self) -> bool:
        """The one evening message is in effect: chosen, and both reminders it joins are on."""
        enabled = {r.kind: r.enabled for r in self.reminders}
        return meal_rides_with_exercise(self.evening_message, enabled)

    @property
    def checkin_on(self) -> bool:
        return self.checkin is not None and self.checkin.enabled

    @property
    def weekly_on(self) -> bool:
        return self.weekly is not None and self.weekly.enabled

    @property
    def ready(self) -> bool:
        """Reminders can only be scheduled once both the timezone and the bedtime are known."""
        return self.timezone is not None and self.bedtime is not None

    def reminder(self, kind: str) -> ReminderSetting | None:
        return next((r for r in self.reminders if r.kind == kind), None)


@dataclass(frozen=True, slots=True)
class PersonEdit:
    """What one action of a person changes, for ``Store.edit_person``; None keeps a field.

    ``subscribed=True`` creates every kind's row; ``subscribed=False`` and ``paused_until``
    cancel unsent messages (stop means stop); every change reschedules every reminder.
    """

    timezone: str | None = None
    bedtime: time | None = None
    weekend_bedtime: time | None = None
    clear_weekend_bedtime: bool = False
    subscribed: bool | None = None
    paused_until: datetime | None = None
    resume: bool = False  # clears paused_until


@dataclass(frozen=True, slots=True)
class Changed:
    """A person before and after one ``Store.edit_person`` transaction (``before`` is the
    row as locked: for someone new, as just created)."""

    before: Person
    after: Person

    @property
    def edited(self) -> bool:
        """False when the plan changed nothing (it returned None)."""
        return self.after is not self.before


@dataclass(frozen=True)
class CheckinMorning:
    """What one morning check-in needs to know (``Store.checkin_morning``)."""

    night: date  # the night it asks about (evening date)
    morning: date  # the local date it is sent on
    tz: tzinfo
    history: tuple[CheckinFact, ...]  # earlier check-ins sent, oldest first
    asked_to_stop_on: date | None
    night_logged: bool = False  # the person already logged that night (/checkin)


@dataclass(frozen=True)
class DeliveryView:
    id: int
    chat_id: int
    kind: str
    due_at: datetime
    meal_id: str | None
    status: str
    sent_at: datetime | None


ReminderPressAction = Literal["show", "done", "snooze", "off"]


@dataclass(frozen=True, slots=True)
class ReminderPress:
    """A button under a delivered reminder, as ``Store.press_reminder`` handled it."""

    delivery: DeliveryView  # as it was when pressed
    changed: bool  # done: it is (now) done; snooze: snoozed; off: the kind turned off
    snoozed_until: datetime | None = None  # snooze: when it comes back, the person's time


# --- dispatcher-facing -------------------------------------------------------------------


@dataclass(frozen=True)
class StaleOccurrence:
    """A nightly occurrence found too late (downtime): skipped, never sent as a burst."""

    chat_id: int
    kind: str
    due_at: datetime
    lateness: timedelta


@dataclass(frozen=True)
class MaterializeResult:
    claimed: int  # reminder rows examined; == limit means "there may be more"
    materialized: int  # pending deliveries created
    stale: tuple[StaleOccurrence, ...]


@dataclass(frozen=True, slots=True)
class Shed:
    """What overload shedding (``Store.shed``) did with one release's reminders: ``merged``
    meal ideas now ride with the person's exercise note, ``dropped`` ones are not sent, and
    ``carried_dropped`` meal ideas went with dropped exercise notes that carried them (merged
    earlier, lost now: counted apart, because they are meal ideas, not of the release's kind)."""

    merged: int = 0
    dropped: int = 0
    carried_dropped: int = 0

    @property
    def total(self) -> int:
        return self.merged + self.dropped


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    chat_id: int
    kind: str
    meal_id: str | None
    due_at: datetime
    attempts: int
    locale: str | None = None  # the person's (Person.locale), so the reminder speaks it


@dataclass(frozen=True)
class ClaimResult:
    claimed: tuple[ClaimedDelivery, ...]  # now "sending", owned by the claimer
    expired: tuple[ClaimedDelivery, ...]  # older than the grace period: marked expired
    deferred: int  # refused by the claimer's per-chat pacing: due again a little later
    scanned: int  # rows looked at; == limit means "there may be more"


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one claimed delivery; the store turns it into the row's new state.

    ``gone``: failed for good because the chat is unreachable (blocked, not found); the
    person is deactivated in the same transaction. ``skipped``: nothing to send after all
    (e.g. the night a check-in asks about was already logged), with the reason in ``error``.
    """

    delivery_id: int
    result: Literal["sent", "retry", "failed", "gone", "skipped"]
    at: datetime
    telegram_message_id: int | None = None
    retry_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class RecordedOutcome:
    """What ``record_outcomes`` wrote for one outcome.

    ``status`` is the row's new status, or None when the row was no longer this
    dispatcher's (erased, or taken over by another process). ``dropped`` names why a retry
    was not rescheduled (see ``bot.eligibility``). ``was_cancelled``: Telegram accepted a
    message whose row the person had cancelled while its request was on the wire.
    """

    delivery_id: int
    status: str | None
    dropped: str | None = None
    was_cancelled: bool = False


@dataclass(frozen=True)
class TickCheck:
    """What a dispatcher tick asks first (``Store.tick_check``): is anything due, and has a
    dispatcher died holding claims? (Not a bool on purpose: both answers matter.)"""

    due: bool
    dead_claims: bool


@dataclass(frozen=True)
class DeadClaims:
    """Claims of dispatchers whose heartbeat stopped, put back to pending for anyone."""

    released: int
    owners: tuple[str, ...]
