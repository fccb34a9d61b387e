"""The fake Bot API must look like Telegram to the real PTB client, errors included."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from bot.fake_telegram import ChatRate, FakeApiTimeoutError, FakeBotApi
from tests.conftest import TEST_TOKEN

CHAT = 4242


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data)] for text, data in pairs]
    )


# PTB 22's RetryAfter warns about int time periods whenever it is built or read.
ignore_int_period_warning = pytest.mark.filterwarnings(
    "ignore::telegram.warnings.PTBDeprecationWarning"
)


def retry_seconds(err: RetryAfter) -> float:
    """``retry_after`` is an int or a timedelta depending on PTB_TIMEDELTA; accept both."""
    value = err.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@pytest.fixture
async def tg(fake_api: FakeBotApi) -> AsyncIterator[Bot]:
    """A real PTB Bot talking HTTP to the fake, with one known private chat."""
    fake_api.add_chat(CHAT, first_name="Ada")
    bot = Bot(TEST_TOKEN, base_url=fake_api.base_url, base_file_url=fake_api.base_file_url)
    async with bot:
        yield bot


async def test_get_me(fake_api: FakeBotApi, tg: Bot) -> None:
    me = await tg.get_me()
    assert me.is_bot
    assert me.username == "sleepbot_test"
    assert me.id == 123456789
    assert tg.username == "sleepbot_test"
    assert fake_api.calls_to("getMe")[0].ok


async def test_send_message_round_trips_into_a_ptb_message(fake_api: FakeBotApi, tg: Bot) -> None:
    fake_api.send_text(CHAT, "/start")  # user message takes message_id 1
    html = "<b>Hi</b> &amp; bye"
    msg = await tg.send_message(
        CHAT, html, parse_mode=ParseMode.HTML, reply_markup=keyboard(("Yes", "y"), ("No", "n"))
    )
    assert isinstance(msg, Message)
    assert msg.message_id == 2
    assert msg.text == "Hi & bye"
    assert msg.chat.id == CHAT
    assert msg.chat.type == "private"
    assert msg.chat.first_name == "Ada"
    assert msg.from_user is not None and msg.from_user.is_bot
    assert msg.reply_markup is not None
    assert msg.reply_markup.inline_keyboard[1][0].callback_data == "n"

    assert fake_api.sent_texts(CHAT) == [html]
    assert fake_api.buttons(CHAT, 2) == [("Yes", "y"), ("No", "n")]
    stored = fake_api.last_message(CHAT)
    assert stored is not None and stored.text == "Hi & bye" and stored.raw_text == html
    call = fake_api.calls_to("sendMessage")[0]
    assert call.params["chat_id"] == CHAT  # decoded back to int
    assert isinstance(call.params["reply_markup"], dict)  # JSON string decoded


async def test_invalid_html_is_rejected_like_telegram(fake_api: FakeBotApi, tg: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await tg.send_message(CHAT, "<b>unclosed", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await tg.send_message(CHAT, "a < b", parse_mode=ParseMode.HTML)
    assert fake_api.messages(CHAT) == []
    assert fake_api.calls_to("sendMessage")[0].status == 400


async def test_length_limits(fake_api: FakeBotApi, tg: Bot) -> None:
    await tg.send_message(CHAT, "a" * 4096)
    # Tags do not count, only the visible text does.
    await tg.send_message(CHAT, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await tg.send_message(CHAT, "a" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await tg.send_message(CHAT, "  \n ")
    assert len(fake_api.messages(CHAT)) == 2


async def test_unknown_chat_and_callback_data_limit(fake_api: FakeBotApi, tg: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await tg.send_message(999, "hello")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await tg.send_message(CHAT, "pick", reply_markup=keyboard(("x", "é" * 33)))  # 66 bytes
    await tg.send_message(CHAT, "pick", reply_markup=keyboard(("x", "d" * 64)))


async def test_edit_in_place_keeps_message_id(fake_api: FakeBotApi, tg: Bot) -> None:
    sent = await tg.send_message(CHAT, "Question?", reply_markup=keyboard(("A", "a")))
    edited = await tg.edit_message_text(
        "Answered: <i>A</i>",
        chat_id=CHAT,
        message_id=sent.message_id,
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(("Undo", "undo")),
    )
    assert isinstance(edited, Message)
    assert edited.message_id == sent.message_id
    assert edited.edit_date is not None
    [stored] = fake_api.messages(CHAT)
    assert stored.message_id == sent.message_id
    assert stored.text == "Answered: A"
    assert fake_api.buttons(CHAT, sent.message_id) == [("Undo", "undo")]

    # Editing the text without reply_markup removes the keyboard, as Telegram does.
    await tg.edit_message_text("Done", chat_id=CHAT, message_id=sent.message_id)
    assert fake_api.buttons(CHAT, sent.message_id) == []
    await tg.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard(("B", "b")))
    assert fake_api.buttons(CHAT, sent.message_id) == [("B", "b")]


async def test_edit_errors(fake_api: FakeBotApi, tg: Bot) -> None:
    sent = await tg.send_message(CHAT, "Same", reply_markup=keyboard(("A", "a")))
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await tg.edit_message_text(
            "Same", chat_id=CHAT, message_id=sent.message_id, reply_markup=keyboard(("A", "a"))
        )
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await tg.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard(("A", "a")))
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await tg.edit_message_text("x", chat_id=CHAT, message_id=sent.message_id + 50)


async def test_unknown_method_wrong_case_and_bodies_via_httpx(fake_api: FakeBotApi) -> None:
    fake_api.add_chat(CHAT)
    root = f"{fake_api.base_url}{TEST_TOKEN}"
    async with httpx.AsyncClient() as client:
        missing = await client.post(f"{root}/sendTelepathy", data={"chat_id": str(CHAT)})
        assert missing.status_code == 404
        assert missing.json() == {"ok": False, "error_code": 404, "description": "Not Found"}

        me = await client.get(f"{root}/GETME")  # Telegram ignores the case of method names
        assert me.json()["result"]["username"] == "sleepbot_test"

        markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
        as_json = await client.post(
            f"{root}/sendMessage",
            json={"chat_id": CHAT, "text": "json body", "reply_markup": json.dumps(markup)},
        )
        body: dict[str, Any] = as_json.json()
        assert body["ok"] is True
        assert body["result"]["reply_markup"] == markup

        as_form = await client.post(
            f"{root}/sendMessage",
            data={"chat_id": str(CHAT), "text": "form body", "reply_markup": json.dumps(markup)},
        )
        assert as_form.json()["result"]["message_id"] == body["result"]["message_id"] + 1
    assert fake_api.sent_texts(CHAT) == ["json body", "form body"]
    assert fake_api.calls_to("sendTelepathy")[0].status == 404


@ignore_int_period_warning
async def test_flood_error_becomes_retry_after(fake_api: FakeBotApi, tg: Bot) -> None:
    fake_api.fail_next("sendMessage", error_code=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await tg.send_message(CHAT, "too fast")
    assert retry_seconds(caught.value) == 7
    assert fake_api.calls_to("sendMessage")[0].description == "Too Many Requests: retry after 7"
    await tg.send_message(CHAT, "later")  # only the next call failed
    assert fake_api.sent_texts(CHAT) == ["later"]


async def test_fail_next_can_target_one_chat(fake_api: FakeBotApi, tg: Bot) -> None:
    fake_api.add_chat(7)
    fake_api.fail_next("sendMessage", error_code=400, description="Bad Request: boom", chat_id=7)
    await tg.send_message(CHAT, "unaffected")
    with pytest.raises(BadRequest, match=r"(?i)boom"):
        await tg.send_message(7, "hit")


async def test_blocked_chat_is_forbidden(fake_api: FakeBotApi, tg: Bot) -> None:
    sent = await tg.send_message(CHAT, "before")
    fake_api.block_chat(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await tg.send_message(CHAT, "after")
    with pytest.raises(Forbidden):
        await tg.edit_message_text("edit", chat_id=CHAT, message_id=sent.message_id)
    fake_api.unblock_chat(CHAT)
    await tg.send_message(CHAT, "again")


async def test_dropped_connection_is_a_network_error(fake_api: FakeBotApi, tg: Bot) -> None:
    fake_api.drop_connection_next("sendMessage")
    with pytest.raises(NetworkError) as caught:
        await tg.send_message(CHAT, "lost")
    assert type(caught.value) is NetworkError
    assert fake_api.messages(CHAT) == []
    await tg.send_message(CHAT, "next one works")

    # The answer is lost but the message was delivered: a retry would duplicate it.
    fake_api.drop_connection_next("sendMessage", after_processing=True)
    with pytest.raises(NetworkError):
        await tg.send_message(CHAT, "delivered")
    assert [m.text for m in fake_api.messages(CHAT)] == ["next one works", "delivered"]


async def test_a_hold_keeps_requests_at_the_door_until_released(
    fake_api: FakeBotApi, tg: Bot
) -> None:
    other = CHAT + 1
    fake_api.add_chat(other)
    hold = fake_api.hold("sendMessage", chat_ids=[CHAT], limit=2)
    held = [asyncio.create_task(tg.send_message(CHAT, f"held {n}")) for n in (1, 2)]
    await fake_api.wait_for(lambda: hold.arrived == 2)
    await tg.send_message(other, "another chat passes")
    await tg.send_message(CHAT, "beyond the limit passes")
    assert [m.text for m in fake_api.messages(CHAT)] == ["beyond the limit passes"]
    assert not any(task.done() for task in held)
    hold.release()
    await asyncio.gather(*held)
    assert sorted(m.text or "" for m in fake_api.messages(CHAT))[:2] == [
        "beyond the limit passes",
        "held 1",
    ]
    assert len(fake_api.messages(CHAT)) == 3


async def test_long_poll_returns_a_pushed_update(fake_api: FakeBotApi, tg: Bot) -> None:
    poll = asyncio.create_task(tg.get_updates(timeout=5))
    await fake_api.wait_for(lambda: fake_api.long_polls_waiting == 1)
    started = time.monotonic()
    fake_api.send_text(CHAT, "/start@sleepbot_test now")
    updates = await poll
    assert time.monotonic() - started < 2  # woken by the push, not by the timeout

    [update] = updates
    assert isinstance(update, Update)
    assert update.message is not None
    assert update.message.text == "/start@sleepbot_test now"
    assert update.message.entities[0].type == "bot_command"
    assert update.message.entities[0].length == len("/start@sleepbot_test")
    assert update.effective_user is not None and update.effective_user.first_name == "Ada"

    assert await tg.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert fake_api.pending_updates() == 0


async def test_second_poller_terminates_the_first(fake_api: FakeBotApi, tg: Bot) -> None:
    first = asyncio.create_task(tg.get_updates(timeout=5))
    await fake_api.wait_for(lambda: fake_api.long_polls_waiting == 1)
    # A second bot instance (PTB allows one getUpdates per Bot) polls the same token.
    async with Bot(TEST_TOKEN, base_url=fake_api.base_url) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


async def test_stop_releases_a_pending_long_poll() -> None:
    api = FakeBotApi()
    await api.start()
    async with Bot(TEST_TOKEN, base_url=api.base_url) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await api.wait_for(lambda: api.long_polls_waiting == 1)
        started = time.monotonic()
        await api.stop()
        assert await poll == ()
        assert time.monotonic() - started < 5


async def test_hand_made_updates_replies_locations_and_reply_keyboards(
    fake_api: FakeBotApi, tg: Bot
) -> None:
    fake_api.push_update(
        {
            "message": {
                "message_id": 10,
                "from": {"id": 77, "is_bot": False, "first_name": "Bo"},
                "chat": {"id": 77, "type": "private", "first_name": "Bo"},
                "date": 1_700_000_000,
                "text": "hi",
            }
        }
    )
    reply = await tg.send_message(77, "hello Bo", reply_parameters=ReplyParameters(10))
    assert reply.message_id == 11
    assert reply.reply_to_message is not None and reply.reply_to_message.text == "hi"
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await tg.send_message(77, "x", reply_parameters=ReplyParameters(99))

    ask = ReplyKeyboardMarkup([[KeyboardButton("Share location", request_location=True)]])
    sent = await tg.send_message(CHAT, "Where are you?", reply_markup=ask)
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    shown = fake_api.reply_keyboard(CHAT)
    assert shown is not None and shown["keyboard"][0][0]["request_location"] is True

    update = fake_api.send_location(CHAT, 52.52, 13.405)
    assert update["message"]["location"] == {"latitude": 52.52, "longitude": 13.405}
    assert update["message"]["message_id"] == sent.message_id + 1
    hand_made, parsed = await tg.get_updates()
    assert hand_made.message is not None and hand_made.message.text == "hi"
    assert parsed.message is not None and parsed.message.location is not None
    assert parsed.message.location.longitude == pytest.approx(13.405)


async def test_callback_query_press_and_answer(fake_api: FakeBotApi, tg: Bot) -> None:
    sent = await tg.send_message(CHAT, "Rate your sleep", reply_markup=keyboard(("Good", "r:5")))
    query_id = fake_api.press_button(CHAT, sent.message_id, "r:5")
    with pytest.raises(ValueError, match="no button"):
        fake_api.press_button(CHAT, sent.message_id, "r:1")

    [update] = await tg.get_updates()
    query = update.callback_query
    assert query is not None and query.id == query_id and query.data == "r:5"
    assert isinstance(query.message, Message) and query.message.message_id == sent.message_id

    assert await tg.answer_callback_query(query_id, text="Saved")
    answered = fake_api.answered_callback(query_id)
    assert answered is not None and answered.params["text"] == "Saved"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await tg.answer_callback_query(query_id)


async def test_forged_token_is_rejected(fake_api: FakeBotApi) -> None:
    forged = Bot("987654321:" + "X" * 35, base_url=fake_api.base_url)
    with pytest.raises(InvalidToken):
        await forged.get_me()
    assert fake_api.calls_to("getMe")[0].status == 401
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{fake_api.base_url}987654321:{'X' * 35}/getMe")
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_commands_and_descriptions(fake_api: FakeBotApi, tg: Bot) -> None:
    assert await tg.set_my_commands([("start", "Begin"), ("sleep", "Log sleep")])
    assert [c.command for c in await tg.get_my_commands()] == ["start", "sleep"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await tg.set_my_commands([("Start", "Uppercase is refused")])
    assert await tg.set_my_description("Sleep better")
    assert await tg.set_my_short_description("Sleep")
    assert fake_api.descriptions[""] == "Sleep better"
    assert await tg.delete_my_commands()
    assert await tg.get_my_commands() == ()
    assert await tg.send_chat_action(CHAT, "typing")


async def test_wait_for_calls_and_timeout_message(fake_api: FakeBotApi, tg: Bot) -> None:
    sending = asyncio.create_task(tg.send_message(CHAT, "hello"))
    [call] = await fake_api.wait_for_calls("sendMessage", 1)
    assert call.ok and call.params["text"] == "hello"
    await sending
    with pytest.raises(FakeApiTimeoutError, match="2 call\\(s\\) to sendMessage") as caught:
        await fake_api.wait_for_calls("sendMessage", 2, timeout=0.05)
    assert "sendMessage {'chat_id': 4242, 'text': 'hello'} -> ok" in str(caught.value)
    assert isinstance(caught.value, AssertionError) and isinstance(caught.value, TimeoutError)


@ignore_int_period_warning
async def test_global_rate_enforcement_and_flood_report() -> None:
    async with FakeBotApi(enforce_global_rate=3) as api:
        api.add_chat(CHAT)
        api.add_chat(CHAT + 1)
        async with Bot(TEST_TOKEN, base_url=api.base_url) as bot:
            for _ in range(3):
                await bot.send_message(CHAT, "burst")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(CHAT + 1, "one too many")
        assert retry_seconds(caught.value) >= 1
        violations = api.flood_violations(per_chat_interval=1.0, global_per_second=2)
        assert [v.kind for v in violations].count("per_chat") == 2
        assert [v.kind for v in violations].count("global") == 1


@ignore_int_period_warning
async def test_per_chat_rate_enforcement_allows_a_burst_then_one_a_second() -> None:
    """On a clock the test moves: 3 at once, the 4th refused, one more a second later; edits
    count too; another chat is unaffected; the report agrees with the enforcement."""
    now = [100.0]
    rate = ChatRate(per_second=1.0, burst=3)
    async with FakeBotApi(enforce_chat_rate=rate, monotonic=lambda: now[0]) as api:
        api.add_chat(CHAT)
        api.add_chat(CHAT + 1)
        async with Bot(TEST_TOKEN, base_url=api.base_url) as bot:
            first = await bot.send_message(CHAT, "one")
            await bot.send_message(CHAT, "two")
            await bot.edit_message_text("one, edited", chat_id=CHAT, message_id=first.message_id)
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(CHAT, "four")
            assert retry_seconds(caught.value) == 1
            await bot.send_message(CHAT + 1, "elsewhere")
            now[0] += 0.5
            with pytest.raises(RetryAfter):
                await bot.send_message(CHAT, "still too early")
            now[0] += 0.5
            await bot.send_message(CHAT, "a second later")
        assert api.sent_texts(CHAT) == ["one", "two", "a second later"]
        methods = ("sendMessage", "editMessageText")
        assert api.flood_violations(per_chat_burst=3, methods=methods) == []
        strict = api.flood_violations(per_chat_burst=1, methods=methods)
        assert [v.chat_id for v in strict if v.kind == "per_chat"] == [CHAT, CHAT]


async def test_real_application_polls_replies_and_handles_buttons(fake_api: FakeBotApi) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "How did you sleep?", reply_markup=keyboard(("Well", "sleep:well"))
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Noted")
        await query.edit_message_text(f"You said: <b>{query.data}</b>", parse_mode=ParseMode.HTML)

    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(TEST_TOKEN)
        .base_url(fake_api.base_url)
        .base_file_url(fake_api.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=5)
        fake_api.send_text(CHAT, "/start")
        await fake_api.wait_for_calls("sendMessage", 1)
        question = fake_api.last_message(CHAT)
        assert question is not None and question.reply_to_message_id is None
        query_id = fake_api.press_button(CHAT, question.message_id, "sleep:well")
        await fake_api.wait_for_calls("editMessageText", 1)
        await app.updater.stop()
        await app.stop()

    answered = fake_api.answered_callback(query_id)
    assert answered is not None and answered.params["text"] == "Noted"
    [message] = fake_api.messages(CHAT)
    assert message.message_id == question.message_id
    assert message.text == "You said: sleep:well"
    assert fake_api.pending_updates() == 0  # PTB confirmed everything on shutdown
    assert fake_api.calls_to("deleteWebhook")


async def test_latency_holds_each_answer_like_a_network_round_trip() -> None:
    """bench.sendrate --latency-ms: every answer leaves ``latency`` after its request arrived
    (a lower bound only, so a slow machine cannot fail it)."""
    with pytest.raises(ValueError, match="latency"):
        FakeBotApi(TEST_TOKEN, latency=-0.1)
    async with FakeBotApi(TEST_TOKEN, latency=0.25) as api:
        async with httpx.AsyncClient() as client:
            started = time.monotonic()
            answer = await client.get(f"{api.base_url}{TEST_TOKEN}/getMe")
            answered = time.monotonic()
        assert answer.json()["ok"] is True
        (call,) = api.calls_to("getMe")
        assert call.at >= started
        assert answered - call.at >= 0.25
