"""What a person can do, one function per use case: the rules, and one store transaction each.

Handlers parse an update, call one of these and render the result from the catalogue; storage
only stores. Nothing here knows Telegram: plain values in, small frozen results out, the time
from the injected Clock. The rules that used to sit in handlers live here: the first complete
set-up turns reminders on (and no later change does), and how long a pause lasts.

Each function calls exactly one Store method, so each tap is one transaction: the person is
read, decided about and written under one lock (``Store.edit_person`` takes the rule as
``plan`` and applies it to the person as stored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import time

from bot.clock import Clock
from bot.meals import MEAL_KIND
from bot.onboarding import MAX_PAUSE_NIGHTS, OFFSET_STEP_MINUTES, clamp_offset, pause_until
from bot.storage import Changed, Person, PersonEdit, ReminderPress, Store
from bot.timezones import tzinfo_for

Plan = Callable[[Person], PersonEdit | None]


@dataclass(frozen=True, slots=True)
class SetupStep:
    """A set-up answer stored. ``first_setup``: the person was not set up before it, so the
    handler shows the set-up's headline (and, once complete, asks the diet) rather than
    "Saved"."""

    person: Person
    first_setup: bool


def _setup_step(changed: Changed | None) -> SetupStep:
    assert changed is not None  # the person is created if new
    return SetupStep(changed.after, first_setup=not changed.before.ready)


def _completing(edit: PersonEdit) -> Plan:
    """``edit``, plus: the change that first makes a person ready (timezone and bedtime) turns
    reminders on. Later changes never do: someone who sent /stop stays stopped until /resume."""

    def plan(before: Person) -> PersonEdit:
        after = replace(
            before,
            timezone=edit.timezone or before.timezone,
            bedtime=edit.bedtime or before.bedtime,
        )
        if not before.ready and after.ready and not before.subscribed:
            return replace(edit, subscribed=True)
        return edit

    return plan


async def set_timezone(store: Store, clock: Clock, chat_id: int, key: str) -> SetupStep:
    """A timezone chosen (a city, a region, a location, "UTC+05:30"); raises UnknownTimezone."""
    plan = _completing(PersonEdit(timezone=key))
    return _setup_step(await store.edit_person(chat_id, clock.now(), plan))


async def set_bedtime(
    store: Store, clock: Clock, chat_id: int, bedtime: time, *, weekend: bool = False
) -> SetupStep:
    """The usual bedtime, or with ``weekend`` Friday's and Saturday's."""
    edit = PersonEdit(weekend_bedtime=bedtime) if weekend else PersonEdit(bedtime=bedtime)
    return _setup_step(await store.edit_person(chat_id, clock.now(), _completing(edit)))


async def clear_weekend_bedtime(store: Store, clock: Clock, chat_id: int) -> SetupStep:
    """Weekends as weekdays again."""
    plan = _completing(PersonEdit(clear_weekend_bedtime=True))
    return _setup_step(await store.edit_person(chat_id, clock.now(), plan))


async def subscribe(store: Store, clock: Clock, chat_id: int) -> SetupStep:
    """ "Set up nightly reminders": turns them on if the set-up is complete; otherwise the
    person exists afterwards and the handler asks what is missing (``person.ready``)."""

    def plan(before: Person) -> PersonEdit | None:
        return PersonEdit(subscribed=True) if before.ready else None

    return _setup_step(await store.edit_person(chat_id, clock.now(), plan))


async def pause(store: Store, clock: Clock, chat_id: int, nights: int) -> Person | None:
    """Skip ``nights`` whole nights starting tonight (until local noon after the last one).

    None, and nothing stored, when there is nothing to pause: nobody, not set up, stopped, or
    a number of nights out of 1..MAX_PAUSE_NIGHTS (a forged button)."""
    now = clock.now()

    def plan(before: Person) -> PersonEdit | None:
        if not (1 <= nights <= MAX_PAUSE_NIGHTS and before.ready and before.subscribed):
            return None
        assert before.timezone is not None
        return PersonEdit(paused_until=pause_until(now, tzinfo_for(before.timezone), nights))

    changed = await store.edit_person(chat_id, now, plan, create=False)
    if changed is None or not changed.edited:
        return None
    return changed.after


async def resume(store: Store, clock: Clock, chat_id: int) -> Person | None:
    """/resume and "Turn reminders on": reminders on and any pause lifted, in one go.

    None when the person is not set up yet (they exist afterwards): the handler starts the
    set-up instead."""

    def plan(before: Person) -> PersonEdit | None:
        return PersonEdit(subscribed=True, resume=True) if before.ready else None

    changed = await store.edit_person(chat_id, clock.now(), plan)
    assert changed is not None
    return changed.after if changed.after.ready else None


async def stop(store: Store, clock: Clock, chat_id: int) -> Person | None:
    """/stop: no more messages at all, at once; settings are kept for /resume. None if the
    person was never stored (nothing is created for them)."""
    changed = await store.edit_person(
        chat_id, clock.now(), lambda before: PersonEdit(subscribed=False), create=False
    )
    return None if changed is None else changed.after


async def toggle_reminder(store: Store, clock: Clock, person: Person, kind: str) -> Person | None:
    """Turn one reminder kind on or off (off cancels its unsent messages). None if the person
    has no such kind (a forged or stale button)."""
    setting = person.reminder(kind)
    if setting is None:
        return None
    return await store.set_reminder(person.chat_id, kind, clock.now(), enabled=not setting.enabled)


def time_follows_exercise(person: Person, kind: str) -> bool:
    """The meal idea has no time of its own while it rides with the exercise note (the one
    evening message in effect): moving it would change nothing the person gets, so /settings
    offers no Earlier/Later for it and a forged or stale one is refused."""
    return kind == MEAL_KIND and person.evening_merged


async def move_reminder(
    store: Store, clock: Clock, person: Person, kind: str, *, earlier: bool
) -> Person | None:
    """One step (OFFSET_STEP_MINUTES) earlier or later, within the bounds. None as above."""
    setting = person.reminder(kind)
    if setting is None:
        return None
    step = OFFSET_STEP_MINUTES if earlier else -OFFSET_STEP_MINUTES
    offset = clamp_offset(setting.offset_minutes + step)
    return await store.set_reminder(person.chat_id, kind, clock.now(), offset_minutes=offset)


async def set_diet(store: Store, clock: Clock, chat_id: int, diet: str) -> Person:
    """The diet meal ideas follow (the person is created if new); ValueError if unknown."""
    return await store.set_diet(chat_id, diet, clock.now())


async def set_evening_message(store: Store, clock: Clock, chat_id: int, on: bool) -> Person:
    """One evening message: the meal idea rides with the exercise note (bot.meals' rule)."""
    return await store.set_evening_message(chat_id, on, clock.now())


async def set_language(store: Store, clock: Clock, chat_id: int, language: str | None) -> Person:
    """The language chosen with /language; None follows Telegram's again."""
    return await store.set_language(chat_id, language, clock.now())


async def show_reminder(
    store: Store, clock: Clock, chat_id: int, delivery_id: int
) -> ReminderPress | None:
    """Why? or Back under a reminder: the delivery, if it is theirs (a forged id finds
    nothing: None)."""
    return await store.press_reminder(delivery_id, chat_id, clock.now(), "show")


async def mark_done(
    store: Store, clock: Clock, chat_id: int, delivery_id: int
) -> ReminderPress | None:
    """Done pressed under a reminder (``changed``: it is now done); Done after Snooze cancels
    the snoozed copy. None if not theirs."""
    return await store.press_reminder(delivery_id, chat_id, clock.now(), "done")


async def snooze(
    store: Store, clock: Clock, chat_id: int, delivery_id: int, minutes: int
) -> ReminderPress | None:
    """Snooze pressed: the reminder again in ``minutes`` (``snoozed_until``, the person's
    time; None when it cannot be snoozed: not sent, already snoozed, reminders stopped since).
    None if not theirs."""
    return await store.press_reminder(
        delivery_id, chat_id, clock.now(), "snooze", snooze_minutes=minutes
    )


async def turn_off_kind(
    store: Store, clock: Clock, chat_id: int, delivery_id: int
) -> ReminderPress | None:
    """ "Turn this off" under a reminder: that kind off for its owner. None if not theirs."""
    return await store.press_reminder(delivery_id, chat_id, clock.now(), "off")
