"""How many database transactions one tap costs: a use case owns one store transaction.

Counted over the real Application and the fake Bot API: the Store's own transactions (its
``_transaction`` and ``_core``, whichever methods open them) that a handler opens while one
bedtime button is handled. Background work of the same moment (the dispatcher's capacity
check) is not the tap's; the inbox and the open-prompt state have transactions of their own
per update, the same for every update and not the use case's.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bot.storage import Store
from tests.harness import BotHarness

ADA: Final = 4_200_001
BEDTIME_TAP_TRANSACTIONS: Final = 2
"""One to read the person before any handler (welcome_back: unblocking, language), one for
the use case (set the bedtime, reschedule, subscribe on a first complete set-up). Before the
use-case layer: 6 for the tap that completed the set-up, 5 for a later one."""
BUTTON_TRANSACTIONS: Final = 2
"""A reminder button: welcome_back's read, then the use case's one transaction."""


@contextmanager
def counting(store: Store) -> Iterator[list[str]]:
    """The transactions handlers open on ``store`` inside the block: for each, the handler
    function that led to it (the nearest frame in bot/handlers/)."""
    opened: list[str] = []
    originals = {name: getattr(store, name) for name in ("_transaction", "_core")}

    def counted(name: str) -> Callable[..., AbstractAsyncContextManager[Any]]:
        @asynccontextmanager
        async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            handler = next(
                (f.function for f in inspect.stack(0) if "/bot/handlers/" in f.filename), None
            )
            if handler is not None:
                opened.append(f"{handler}: {name}")
            async with originals[name](*args, **kwargs) as handle:
                yield handle

        return wrapper

    for name in originals:
        setattr(store, name, counted(name))
    try:
        yield opened
    finally:
        for name in originals:
            delattr(store, name)


async def _press(bot: BotHarness, data: str) -> None:
    bot.clock.advance(timedelta(seconds=1))
    for message in reversed(bot.api.messages(ADA)):
        if any(button == data for _, button in message.buttons):
            await bot.press(ADA, message.message_id, data)
            return
    raise AssertionError(f"no button {data!r}")


async def test_one_bedtime_tap_is_one_use_case_transaction(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone Europe/Berlin")
    await bot.send(ADA, "/bedtime")
    with counting(bot.services.store) as first:
        await _press(bot, "set:bed:2230")  # completes the set-up: subscribes
    person = await bot.services.store.get_person(ADA)
    assert person is not None and person.subscribed and person.ready
    await bot.send(ADA, "/settings")
    await _press(bot, "set:pick_bed")
    with counting(bot.services.store) as later:
        await _press(bot, "set:bed:2300")  # a later change, from the settings page
    person = await bot.services.store.get_person(ADA)
    assert person is not None and str(person.bedtime) == "23:00:00"
    assert len(first) == BEDTIME_TAP_TRANSACTIONS, first
    assert len(later) == BEDTIME_TAP_TRANSACTIONS, later


async def test_each_reminder_button_is_one_use_case_transaction(bot: BotHarness) -> None:
    """Why?, Back, Snooze, Done and Turn this off: the use case reads the delivery (ownership)
    and changes it in one transaction (before: 1, 1, 3, 2 and 3)."""
    await bot.send(ADA, "/timezone Europe/Berlin")
    await bot.send(ADA, "/bedtime 22:30")
    # 22:30 in Berlin: the meal idea comes at 18:30 local, 17:30 UTC.
    meal_time = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    await bot.advance(meal_time - bot.clock.now(), step=timedelta(minutes=30))
    reminder = bot.last(ADA)
    delivery = {data.split(":")[1]: data for _, data in reminder.buttons}["done"].split(":")[2]
    counts = {}
    for action in ("why", "back", "snooze", "done", "off"):
        bot.clock.advance(timedelta(seconds=1))
        with counting(bot.services.store) as opened:
            # Back sits on the Why? page, Turn this off goes with Done: pressed on the message.
            await bot.press(ADA, reminder.message_id, f"rem:{action}:{delivery}", check=False)
        counts[action] = opened
    assert all(len(opened) == BUTTON_TRANSACTIONS for opened in counts.values()), counts
    person = await bot.services.store.get_person(ADA)
    assert person is not None
    meal = person.reminder("meal")
    assert meal is not None and not meal.enabled  # "off" reached the store
