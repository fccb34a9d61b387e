"""Fuzz: Hypothesis-generated Telegram updates through the real Application, over HTTP.

Each example is a short scenario (1-8 updates) of one person in a private chat, a group, a
supergroup or a channel: commands with junk arguments, odd Unicode digits ("²", "٣", "３"),
huge and empty texts, locations, stickers, edited messages, anonymous group admins (no
``from``), channel posts, membership changes, and button presses with real, stale or forged
callback data (every pattern in bot/callback_data.py) on messages that exist, are gone, are
inaccessible (too old), or are inline messages (no chat at all). Half the people set up
reminders first and time passes, so real reminders and their buttons are pressed too. Updates
go through the fake Bot API's getUpdates, the inbox and the worker, exactly as in production.

Properties: the error handler is never called; every callback query is answered; every new
message in a private chat is answered; in groups the bot speaks only to its own commands, and
never to edits, channel posts or membership changes.

CI runs ``FUZZ_EXAMPLES`` (default 150) derandomized examples (Hypothesis' fixed seed, so a
failure in CI fails the same way on a laptop). A longer random run:
``FUZZ_EXAMPLES=3000 FUZZ_SEED=1 python -m pytest tests/test_fuzz.py -s``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
import traceback
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from telegram import Update

from bot import callback_data
from bot.app import COMMAND_NAMES
from bot.context import BotContext
from bot.fake_telegram import ApiCall, FakeBotApi
from bot.handlers.common import CANNOT_EDIT
from bot.telegram_html import utf16_length
from tests.conftest import TEST_TOKEN
from tests.harness import BotHarness, bot_harness

EXAMPLES: Final = int(os.environ.get("FUZZ_EXAMPLES", "150"))
BOT_DIR: Final = Path(__file__).resolve().parents[1] / "bot"
SEED: Final = os.environ.get("FUZZ_SEED")
T = TypeVar("T")

ChatKind = Literal["private", "group", "supergroup"]
Target = Literal["last", "gone", "inaccessible", "inline"]
CHAT_KINDS: Final[tuple[ChatKind, ...]] = ("private", "group", "supergroup")
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
OUR_COMMANDS: Final = frozenset(COMMAND_NAMES)


# --- the scenario language ---------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    where: ChatKind
    text: str
    edited: bool = False
    anonymous: bool = False  # an anonymous group admin: no `from`, a sender_chat instead


@dataclass(frozen=True)
class Share:
    where: ChatKind
    what: Literal["location", "sticker"]
    latitude: float = 0.0
    longitude: float = 0.0


@dataclass(frozen=True)
class Press:
    where: ChatKind
    data: str | int | None  # int: the n-th real button on the bot's last message
    target: Target


@dataclass(frozen=True)
class ChannelPost:
    text: str
    edited: bool


@dataclass(frozen=True)
class Membership:
    where: ChatKind
    status: Literal["member", "kicked", "left"]


@dataclass(frozen=True)
class Wait:
    """Time passes (the dispatcher ticks every 15 min): reminders arrive, with their buttons."""

    hours: int


Step = Say | Share | Press | ChannelPost | Membership | Wait
# Set-up as a person would type it, so that reminders (and their buttons) come into play.
SET_UP: Final = (Say("private", "/timezone Europe/Berlin"), Say("private", "/bedtime 22:30"))


# --- strategies --------------------------------------------------------------------------

ODD_ARGUMENTS: Final = (
    "²",
    "٣",
    "３",
    "⁴²",
    "22:30",
    "２２:３０",
    "²²:³⁰",
    "weekend ²³:⁰⁰",
    "weekend off",
    "99999999999999999999999",
    "-1",
    "0",
    "61",
    "setup",
    "settings",
    "mechanisms",
    "foods",
    "<b>x",
    "&amp; </i>",
    "Europe/Berlin",
    "UTC+05:30",
    "UTC+99:99",
    "berlin",
    "springfield",
)
chat_kinds = st.sampled_from(CHAT_KINDS)
arguments = st.one_of(
    st.just(""),
    st.sampled_from(ODD_ARGUMENTS).map(lambda a: " " + a),
    st.text(max_size=30).map(lambda a: " " + a),
)
commands = st.builds(
    lambda name, suffix, argument: f"/{name}{suffix}{argument}",
    st.sampled_from(sorted(OUR_COMMANDS | {"frobnicate", "Start", "HELP"})),
    st.sampled_from(["", "", "@sleepbot_test", "@other_bot"]),
    arguments,
)
texts = st.one_of(
    commands,
    st.text(max_size=80),
    st.sampled_from(("", " ", *ODD_ARGUMENTS)),
    st.integers(4090, 5000).map(lambda n: "z" * n),  # longer than Telegram's 4096
)
SETTINGS_ACTIONS: Final = (
    "delete",
    "tz",
    "bed",
    "wbed",
    "pick_bed",
    "pick_wbed",
    "ask_tz",
    "toggle",
    "earlier",
    "later",
    "diet",
    "pause",
    "resume",
    "stop",
    "view",
)
SETTINGS_VALUES: Final = (
    "yes",
    "no",
    "2230",
    "0000",
    "2400",
    "9999",
    "off",
    "Europe/Berlin",
    "UTC+05:30",
    "UTC+99:99",
    "Etc/GMT+14",
    "1",
    "7",
    "60",
    "61",
    "0",
    "omnivore",
    "vegetarian",
    "vegan",
    "meal",
    "exercise",
    "wind_down",
)
forged_data = st.one_of(
    # Anything each pattern admits (its \d also admits "٣" and "３").
    *(
        st.from_regex(pattern, fullmatch=True)
        for pattern in (
            callback_data.MECHANISM,
            callback_data.FOODS,
            callback_data.NAVIGATE,
            callback_data.REMINDER,
            callback_data.SETTINGS,
        )
    ),
    st.builds(
        lambda action, value: f"set:{action}" if value is None else f"set:{action}:{value}",
        st.sampled_from(SETTINGS_ACTIONS),
        st.none() | st.sampled_from(SETTINGS_VALUES),
    ),
    st.builds(
        lambda action, number: f"rem:{action}:{number}",
        st.sampled_from(["done", "snooze", "why", "back", "off"]),
        st.integers(0, 10**18 - 1),
    ),
    st.text(max_size=64),
)
presses = st.builds(
    Press,
    chat_kinds,
    st.one_of(st.integers(0, 15), st.integers(0, 15), forged_data, st.none()),
    st.sampled_from(["last", "last", "last", "gone", "inaccessible", "inline"]),
)
steps: st.SearchStrategy[Step] = st.one_of(
    st.builds(Say, chat_kinds, texts, st.booleans(), st.booleans()),
    st.builds(Say, st.just("private"), texts),
    st.builds(
        Share,
        chat_kinds,
        st.just("location"),
        st.floats(-90, 90, allow_nan=False),
        st.floats(-180, 180, allow_nan=False),
    ),
    st.builds(Share, chat_kinds, st.just("sticker")),
    presses,
    presses,
    st.builds(ChannelPost, texts, st.booleans()),
    st.builds(Membership, chat_kinds, st.sampled_from(["member", "kicked", "left"])),
    st.builds(Wait, st.integers(1, 12)),
)
names = st.text(min_size=1, max_size=20).filter(str.strip)
Who = tuple[str, str | None, str | None]  # first name, last name, username
people: st.SearchStrategy[Who] = st.tuples(
    names, st.none() | names, st.none() | st.from_regex(r"[a-z][a-z0-9_]{4,20}", fullmatch=True)
)
# A third of the people just poke around; a third set up first; a third also wait a day for
# their reminders and press a button on the last one.
PRELUDES: Final[tuple[tuple[Step, ...], ...]] = (
    (),
    SET_UP,
    (*SET_UP, Wait(24), Press("private", 0, "last")),
    (*SET_UP, Wait(24), Press("private", 1, "last")),
    (*SET_UP, Wait(24), Press("private", 3, "last")),
)
stories = st.tuples(st.sampled_from(PRELUDES), st.lists(steps, min_size=1, max_size=6)).map(
    lambda story: [*story[0], *story[1]]
)


# --- the bot on a loop of its own, so Hypothesis' synchronous examples can drive it ---------


class BackgroundBot:
    """The fake Bot API and the real Application on an event loop in a thread."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-bot", daemon=True)
        self.errors: list[BaseException] = []
        self.updates = 0
        self._people = itertools.count(1)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> BackgroundBot:
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()

    async def _start(self) -> None:
        self.api = FakeBotApi(TEST_TOKEN)
        await self.api.start()
        self._harness = bot_harness(self.api, self.workdir, TEST_TOKEN)
        self.bot: BotHarness = await self._harness.__aenter__()
        assert self.bot.app is not None
        self.bot.app.add_error_handler(self._record_error)

    async def _stop(self) -> None:
        await self._harness.__aexit__(None, None, None)
        await self.api.stop()

    async def _record_error(self, update: object, context: BotContext) -> None:
        assert context.error is not None
        self.errors.append(context.error)

    async def retire(self, person: Person) -> None:
        """After an example: no more reminders for this person, or every later example's Wait
        would send the reminders of everybody before it (quadratic time)."""
        store = self.bot.services.store
        if await store.get_person(person.user_id) is not None:
            await store.unsubscribe(person.user_id, self.bot.clock.now())

    def new_person(self, who: Who) -> Person:
        """A new user (fresh ids, so examples do not share state) named as generated."""
        first_name, last_name, username = who
        user_id = 900_000 + next(self._people)
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        return Person(user_id, user)


@dataclass
class Person:
    user_id: int
    user: dict[str, Any]

    def chat(self, kind: ChatKind) -> dict[str, Any]:
        if kind == "private":
            return {"id": self.user_id, "type": "private", "first_name": self.user["first_name"]}
        if kind == "group":
            return {"id": -self.user_id, "type": "group", "title": "Night owls"}
        return {"id": -1_000_000_000_000 - self.user_id, "type": "supergroup", "title": "Owls"}

    def channel(self) -> dict[str, Any]:
        return {"id": -1_002_000_000_000 - self.user_id, "type": "channel", "title": "News"}


@dataclass(frozen=True)
class Problem:
    kind: str  # what property broke, and where: the tally key of bench/fuzz.py
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


async def play(runner: BackgroundBot, person: Person, step: Step) -> list[Problem]:
    """Push one update, wait until it is handled, and say what went wrong (if anything)."""
    api, bot = runner.api, runner.bot
    errors_before = len(runner.errors)
    if isinstance(step, Wait):
        calls = await bot.advance(timedelta(hours=step.hours), step=timedelta(minutes=15))
        failed = [c for c in calls if not c.ok and c.method != "getUpdates"]
        return [Problem(f"{c.method} refused", f"{c.status} {c.description}") for c in failed]
    update, expect = build_update(api, person, step)
    runner.updates += 1
    calls = await bot._handled(api.push_update(update))
    problems = [
        Problem(f"error handler: {type(error).__name__} at {_where(error)}", str(error)[:120])
        for error in runner.errors[errors_before:]
    ]
    sent = [c for c in calls if c.method == "sendMessage" and c.ok]
    failed = [c for c in calls if not c.ok and c.method != "getUpdates" and not _tolerated(c)]
    shape = type(step).__name__
    if isinstance(step, Press):
        query_id = update["callback_query"]["id"]
        if api.answered_callback(query_id) is None:
            problems.append(Problem(f"button press not answered ({step.target})", str(step)))
    elif expect == "answer" and not sent:
        problems.append(Problem(f"no answer in a private chat ({shape})", str(step)))
    elif expect == "silence" and sent:
        problems.append(Problem(f"spoke where it should be silent ({shape})", str(step)))
    problems.extend(Problem(f"{c.method} refused", f"{c.status} {c.description}") for c in failed)
    return problems


def _where(error: BaseException) -> str:
    """The innermost frame in the bot's own code: where the error surfaced."""
    where = "?"
    for frame, line in traceback.walk_tb(error.__traceback__):
        path = Path(frame.f_code.co_filename)
        if "bot" in path.parts and "site-packages" not in path.parts:
            where = f"bot/{path.relative_to(BOT_DIR).as_posix()}:{line} {frame.f_code.co_name}"
    return where


def _tolerated(call: ApiCall) -> bool:
    """Edits Telegram refuses that edit_in_place handles: a double tap (nothing changed) and a
    message that is gone (the answer then comes as a fresh message)."""
    reason = (call.description or "").lower()
    expected = ("message is not modified", *CANNOT_EDIT)
    return call.method == "editMessageText" and any(known in reason for known in expected)


def _texts(calls: list[ApiCall]) -> list[str]:
    return [str(c.params.get("text", ""))[:80] for c in calls]


Expectation = Literal["answer", "silence", "either"]


UpdateStep = Say | Share | Press | ChannelPost | Membership


def build_update(
    api: FakeBotApi, person: Person, step: UpdateStep
) -> tuple[dict[str, Any], Expectation]:
    """The update's JSON, as Telegram would send it, and what the bot owes in reply."""
    now = 1_790_000_000
    if isinstance(step, ChannelPost):
        chat = person.channel()
        post = {
            "message_id": api.next_message_id(chat["id"]),
            "chat": chat,
            "sender_chat": chat,
            "date": now,
            **_text_fields(step.text),
        }
        if step.edited:
            post["edit_date"] = now
        return {"edited_channel_post" if step.edited else "channel_post": post}, "silence"
    if isinstance(step, Membership):
        chat = person.chat(step.where)
        member: dict[str, Any] = {"user": api.bot_user, "status": step.status}
        if step.status == "kicked":
            member["until_date"] = 0
        change = {
            "chat": chat,
            "from": person.user,
            "date": now,
            "old_chat_member": {"user": api.bot_user, "status": "member"},
            "new_chat_member": member,
        }
        return {"my_chat_member": change}, "silence"
    chat = person.chat(step.where)
    if isinstance(step, Press):
        return _press(api, person, chat, step), "either"
    message: dict[str, Any] = {
        "message_id": api.next_message_id(chat["id"]),
        "chat": chat,
        "date": now,
    }
    anonymous = isinstance(step, Say) and step.anonymous and step.where != "private"
    if anonymous:
        message["sender_chat"] = chat
    else:
        message["from"] = person.user
    if isinstance(step, Share):
        if step.what == "location":
            message["location"] = {"latitude": step.latitude, "longitude": step.longitude}
        else:
            message["sticker"] = {
                "file_id": "CAACAgIAAxk",
                "file_unique_id": "AgADcQ",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        expect: Expectation = "answer" if step.where == "private" else "silence"
        return {"message": message}, expect
    message.update(_text_fields(step.text))
    if step.edited:
        message["edit_date"] = now
        return {"edited_message": message}, "silence"
    if step.where == "private":
        return {"message": message}, "answer"
    return {"message": message}, ("answer" if _ours(step.text) else "silence")


def _text_fields(text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"text": text}
    match = _COMMAND.match(text)
    if match:
        length = utf16_length(match.group(0))
        fields["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return fields


def _ours(text: str) -> bool:
    """A command of ours, addressed to us or to nobody in particular."""
    match = _COMMAND.match(text)
    if not match:
        return False
    name, _, addressee = match.group(0)[1:].partition("@")
    return name.lower() in OUR_COMMANDS and addressee.lower() in {"", "sleepbot_test"}


def _press(api: FakeBotApi, person: Person, chat: dict[str, Any], step: Press) -> dict[str, Any]:
    last = api.last_message(chat["id"])
    data = step.data
    if isinstance(data, int):
        buttons = last.buttons if last is not None else []
        data = buttons[data % len(buttons)][1] if buttons else "mech:1"
    query: dict[str, Any] = {
        "id": f"fuzz-{api.next_message_id(person.user_id)}-{person.user_id}",
        "from": person.user,
        "chat_instance": str(abs(chat["id"])),
    }
    if data is not None:
        query["data"] = data
    target = step.target if last is not None or step.target != "last" else "gone"
    if target == "inline":
        query["inline_message_id"] = "BAAAAFk0AAB6Mz4_c2xlZXA"
    elif target == "inaccessible":
        query["message"] = {"chat": chat, "message_id": 1, "date": 0}
    elif target == "gone":
        query["message"] = {
            "message_id": 10**9,
            "from": api.bot_user,
            "chat": chat,
            "date": 1_790_000_000,
            "text": "An old message",
        }
    else:
        assert last is not None
        message: dict[str, Any] = {
            "message_id": last.message_id,
            "from": api.bot_user,
            "chat": chat,
            "date": last.date,
            "text": last.text or "",
        }
        if last.reply_markup:
            message["reply_markup"] = last.reply_markup
        query["message"] = message
    return {"callback_query": query}


# --- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundBot]:
    with BackgroundBot(tmp_path_factory.mktemp("fuzz")) as background:
        yield background
        print(f"\nfuzz: {background.updates} updates, {len(background.errors)} errors")


def _fuzz_settings(test: Any) -> Any:
    configured = settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )(test)
    return seed(int(SEED))(configured) if SEED is not None else configured


@_fuzz_settings
@given(who=people, story=stories)
def test_any_update_gets_a_polite_answer_and_never_an_error(
    runner: BackgroundBot, who: Who, story: list[Step]
) -> None:
    person = runner.new_person(who)
    try:
        for step in story:
            problems = runner.run(play(runner, person, step))
            assert not problems, f"{step}: {[str(p) for p in problems]}"
    finally:
        runner.run(runner.retire(person))


def test_the_fuzz_generator_covers_every_update_shape(runner: BackgroundBot) -> None:
    """The shapes the docstring promises are really produced (a guard against a dead strategy)."""
    person = Person(1, {"id": 1, "is_bot": False, "first_name": "Ada"})
    kinds = set()
    for step in (
        Say("private", "/pause ²"),
        Say("group", "/settings", anonymous=True),
        Say("supergroup", "hello", edited=True),
        Share("private", "location", 52.5, 13.4),
        Share("group", "sticker"),
        Press("private", "mech:1", "inline"),
        Press("group", "set:delete:yes", "gone"),
        Press("private", None, "inaccessible"),
        ChannelPost("news", edited=False),
        Membership("private", "kicked"),
    ):
        update, _ = build_update(runner.api, person, step)
        parsed = Update.de_json({"update_id": 1, **update}, None)
        kinds.add(next(iter(update)))
        assert parsed is not None
    assert kinds == {
        "message",
        "edited_message",
        "callback_query",
        "channel_post",
        "my_chat_member",
    }
