"""A local stand-in for the Telegram Bot API, served over real HTTP on 127.0.0.1.

The real python-telegram-bot ``Application`` talks to it exactly as it would to
api.telegram.org (``ApplicationBuilder().base_url(api.base_url)``), so end-to-end tests,
benchmarks and the offline ``sleepbot chat`` mode exercise the same code paths as
production: request encoding, error mapping, retries and long polling.

It answers like Telegram (``{"ok": true, "result": ...}``), keeps per-chat state so edits
change messages in place, validates what Telegram validates (HTML, lengths, button data,
unknown chats, stale callback queries), records every call for assertions and can inject
faults (error codes, 429 flood waits, blocked users, dropped connections).

Everything runs on the event loop that called :meth:`FakeBotApi.start`; the update
factories and fault switches are plain synchronous methods that must be called from that
loop (from another thread use ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import math
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self

from aiohttp import web

from bot.telegram_html import TelegramHTMLError, utf16_length, visible_text

__all__ = [
    "DEFAULT_TOKEN",
    "ApiCall",
    "ChatRate",
    "FakeApiTimeoutError",
    "FakeBotApi",
    "FloodViolation",
    "Hold",
    "StoredMessage",
]

JSONDict = dict[str, Any]

DEFAULT_TOKEN: Final = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"  # noqa: S105 (fake)
MAX_TEXT_LENGTH: Final = 4096
MAX_CALLBACK_DATA_BYTES: Final = 64
MAX_CALLBACK_ANSWER_LENGTH: Final = 200

_TOKEN_RE: Final = re.compile(r"\d+:[A-Za-z0-9_-]{35}")
_COMMAND_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")

_NOT_MODIFIED: Final = (
    "message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD: Final = "query is too old and response timeout expired or query ID is invalid"
_BLOCKED: Final = "Forbidden: bot was blocked by the user"
_CONFLICT: Final = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_DEFAULT_DESCRIPTIONS: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_WEBHOOK_ACTIVE: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)

# How form-encoded values are decoded. PTB's HTTPXRequest posts
# application/x-www-form-urlencoded where strings are sent as-is and everything else is
# JSON-dumped, so the type of a field can only be recovered from its name (Telegram does the
# same with its schema).
_INT_FIELDS: Final = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "user_id",
        "from_chat_id",
        "message_thread_id",
        "reply_to_message_id",
        "cache_time",
        "live_period",
        "heading",
        "proximity_alert_radius",
    }
)
_FLOAT_FIELDS: Final = frozenset({"timeout", "latitude", "longitude", "horizontal_accuracy"})
_BOOL_FIELDS: Final = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "allow_paid_broadcast",
        "is_personal",
    }
)
_JSON_FIELDS: Final = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "link_preview_options",
        "reply_parameters",
        "allowed_updates",
        "media",
        "results",
        "message_ids",
    }
)
_STR_FIELDS: Final = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "url",
        "description",
        "short_description",
        "language_code",
        "action",
        "business_connection_id",
        "message_effect_id",
    }
)
# Methods that deliver a message and therefore count towards Telegram's flood limits.
_RATE_LIMITED: Final = frozenset({"sendMessage", "sendLocation"})
# ... and, within one chat, edits too (Telegram limits edits per chat; the fake is strict).
_CHAT_RATE_LIMITED: Final = _RATE_LIMITED | {"editMessageText", "editMessageReplyMarkup"}
# Methods refused with 403 when the user blocked the bot.
_TOUCHES_CHAT: Final = frozenset(
    {
        "sendMessage",
        "sendLocation",
        "sendChatAction",
        "editMessageText",
        "editMessageReplyMarkup",
        "deleteMessage",
    }
)


class FakeApiTimeoutError(AssertionError, TimeoutError):
    """A wait on the fake API timed out; both an assertion failure and a TimeoutError."""


class _ApiError(Exception):
    """An error answer, raised inside method handlers and turned into Telegram's JSON."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _bad_request(reason: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {reason}")


def _flood(retry_after: int) -> _ApiError:
    return _ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


@dataclass(slots=True)
class ApiCall:
    """One HTTP request the bot made, with its decoded parameters and how it was answered.

    ``status`` is the HTTP status sent back (0 when there was none: a long poll still
    pending, a client that went away, a dropped connection); ``result`` is the ``result`` of a
    successful answer; ``done`` turns true once the fake has finished with the call.
    """

    method: str
    params: JSONDict
    at: float
    status: int = 0
    description: str | None = None
    result: Any = None
    done: bool = False

    @property
    def ok(self) -> bool:
        """Whether Telegram would have accepted the call."""
        return self.status == 200

    @property
    def chat_id(self) -> int | str | None:
        """The ``chat_id`` parameter, if the method has one."""
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None


@dataclass(slots=True)
class StoredMessage:
    """A message in a chat as it currently stands (edits are applied in place).

    ``text`` is what the user sees (entities parsed, trimmed, as Telegram returns it);
    ``raw_text`` is the string the bot sent, including HTML tags.
    """

    chat_id: int
    message_id: int
    date: int
    from_bot: bool
    text: str | None = None
    raw_text: str | None = None
    parse_mode: str | None = None
    reply_markup: JSONDict | None = None
    entities: list[JSONDict] | None = None
    location: JSONDict | None = None
    edit_date: int | None = None
    reply_to_message_id: int | None = None
    photo: bytes | None = None  # sendPhoto: the uploaded image, checked to be a PNG/JPEG
    document: bytes | None = None  # sendDocument: the uploaded file
    file_name: str | None = None
    caption: str | None = None  # as sent (HTML included)

    @property
    def keyboard(self) -> list[list[JSONDict]]:
        """The inline keyboard rows, empty when the message has none."""
        if self.reply_markup is None:
            return []
        rows: list[list[JSONDict]] = self.reply_markup.get("inline_keyboard", [])
        return rows

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """``(label, callback_data)`` for every callback button, row by row."""
        return [
            (button["text"], button["callback_data"])
            for row in self.keyboard
            for button in row
            if "callback_data" in button
        ]

    def content_key(self) -> tuple[str | None, str | None]:
        """What Telegram compares to decide "message is not modified"."""
        formatted = self.raw_text if self.parse_mode and self.raw_text else None
        return self.text, formatted


@dataclass(slots=True, frozen=True)
class ChatRate:
    """Telegram's per-chat limit as the fake enforces it: ``per_second`` on average, with
    ``burst`` messages allowed at once ("we may allow short bursts", Bot FAQ)."""

    per_second: float = 1.0
    burst: int = 1


class _Gcra:
    """The generic cell rate algorithm: a send at ``now`` conforms when its theoretical
    arrival time is at most ``burst - 1`` intervals ahead. A different formulation of a token
    bucket from the bot's own limiter (bot/ratelimit.py), so the two check each other."""

    __slots__ = ("interval", "slack", "tat")

    def __init__(self, rate: ChatRate) -> None:
        self.interval = 1.0 / rate.per_second
        self.slack = (rate.burst - 1) * self.interval
        self.tat: dict[Any, float] = {}

    def early_by(self, key: Any, now: float) -> float:
        """How many seconds too early a send to ``key`` at ``now`` is (0: it conforms)."""
        return max(0.0, self.tat.get(key, now) - self.slack - now)

    def count(self, key: Any, now: float) -> None:
        self.tat[key] = max(self.tat.get(key, now), now) + self.interval


@dataclass(slots=True, frozen=True)
class FloodViolation:
    """A moment at which Telegram's published flood limits would have been exceeded."""

    kind: Literal["per_chat", "global"]
    at: float
    chat_id: int | str | None
    detail: str


@dataclass(slots=True)
class _Fault:
    error_code: int
    description: str
    retry_after: int | None
    chat_id: int | None
    remaining: int
    drop: bool = False
    after_processing: bool = False
    when: Callable[[JSONDict], bool] | None = None

    def matches(self, params: JSONDict) -> bool:
        if self.chat_id is not None and params.get("chat_id") != self.chat_id:
            return False
        return self.when is None or self.when(params)


@dataclass(eq=False)
class Hold:
    """Requests stopped at the door (see :meth:`FakeBotApi.hold`): ``arrived`` counts them,
    and none is answered (nor even looked at) until :meth:`release`."""

    method: str
    chat_ids: frozenset[int] | None
    limit: int | None
    arrived: int = 0
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, method: str, params: JSONDict) -> bool:
        if method != self.method or self._open.is_set():
            return False
        if self.limit is not None and self.arrived >= self.limit:
            return False
        return self.chat_ids is None or params.get("chat_id") in self.chat_ids

    def release(self) -> None:
        """Let every held request (and any later one) through."""
        self._open.set()

    async def passed(self) -> None:
        await self._open.wait()


@dataclass(slots=True)
class _Chat:
    id: int
    first_name: str
    language_code: str | None = "en"
    last_message_id: int = 0
    blocked: bool = False
    bot_messages: dict[int, StoredMessage] = field(default_factory=dict)
    sent_texts: list[str] = field(default_factory=list)
    reply_keyboard: JSONDict | None = None

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id

    def as_chat(self) -> JSONDict:
        return {"id": self.id, "first_name": self.first_name, "type": "private"}

    def as_user(self) -> JSONDict:
        user: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        return user


def _decode_value(name: str, value: str) -> Any:
    """Turn one form-encoded string back into the JSON type Telegram expects for ``name``."""
    if name in _STR_FIELDS:
        return value
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in _FLOAT_FIELDS:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if name in _BOOL_FIELDS:
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
        return value
    if name in _JSON_FIELDS or value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise _bad_request("can't parse reply keyboard markup JSON object") from None
            if name in _JSON_FIELDS:
                raise _bad_request(f"can't parse {name} JSON object") from None
    return value


MAX_CAPTION_LENGTH: Final = 1024
PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG or JPEG that decodes fully; otherwise Telegram's refusal."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("PNG", "JPEG"):
                raise _bad_request("IMAGE_PROCESS_FAILED")
            image.load()  # decodes every pixel: a truncated file fails here
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise _bad_request("IMAGE_PROCESS_FAILED") from None


def _json_response(status: int, payload: JSONDict) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, ensure_ascii=False).encode(),
        content_type="application/json",
    )


def _error_payload(code: int, description: str, parameters: JSONDict | None) -> JSONDict:
    payload: JSONDict = {"ok": False, "error_code": code, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return payload


_Handler = Callable[[ApiCall], Any]


class FakeBotApi:
    """An in-process Telegram Bot API server for tests, benchmarks and offline chat.

    Use ``async with FakeBotApi() as api:`` or ``await api.start()`` / ``await api.stop()``,
    then point PTB at ``api.base_url`` and ``api.base_file_url``.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "sleepbot_test",
        first_name: str = "SleepBot",
        enforce_global_rate: int | None = None,
        enforce_chat_rate: ChatRate | None = None,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        latency: float = 0.0,
    ) -> None:
        """``enforce_global_rate`` answers 429 once more than that many messages were sent
        in the last second, ``enforce_chat_rate`` once a chat's sends and edits exceed it;
        ``now`` supplies Unix time for message dates (inject a fake clock to make dates
        deterministic), ``monotonic`` the arrival times the rate checks and ``ApiCall.at``
        use. ``latency`` (seconds) holds every answer that long after the request arrived:
        a stand-in for the network round trip to api.telegram.org, for benchmarks whose
        figures depend on it (``bench.sendrate --latency-ms``)."""
        if latency < 0:
            raise ValueError("latency must not be negative")
        self.latency = latency
        self.token = token
        self.username = username
        self.enforce_global_rate = enforce_global_rate
        self._chat_rate = _Gcra(enforce_chat_rate) if enforce_chat_rate else None
        self._monotonic = monotonic
        self._now = now
        self._host = host
        bot_id = token.split(":", 1)[0]
        self.bot_user: JSONDict = {
            "id": int(bot_id) if bot_id.isdigit() else 123456789,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

        self.calls: list[ApiCall] = []
        self._calls_by_method: dict[str, list[ApiCall]] = {}
        self._listeners: list[Callable[[ApiCall], None]] = []
        self._cond = asyncio.Condition()
        self._waiters = 0

        self._chats: dict[int, _Chat] = {}
        self._messages: dict[tuple[int, int], StoredMessage] = {}
        self.updates: list[JSONDict] = []  # every update ever pushed, oldest first
        self._updates: deque[JSONDict] = deque()  # not yet confirmed by getUpdates
        self._update_ids = itertools.count(10_000)
        self._last_update_id = 9_999
        self._updates_changed = asyncio.Event()
        self._poll_generation = 0
        self.long_polls_waiting = 0  # getUpdates requests currently parked in a long poll
        self._closing = False
        self._query_ids = itertools.count(4_242_000_000_000_000_001)
        self._pending_queries: dict[str, tuple[int, int]] = {}
        self._answered: dict[str, ApiCall] = {}

        self._faults: dict[str, list[_Fault]] = {}
        self._holds: list[Hold] = []
        self._rate_window: deque[float] = deque()
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        # setWebhook's parameters while a webhook is set (getUpdates then answers 409, as
        # Telegram does). The fake never posts to it: a test posts the updates itself.
        self.webhook: JSONDict | None = None

        self._handlers: dict[str, _Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._not_dispatched,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": self._set_my_description,
            "getMyDescription": self._get_my_description,
            "setMyShortDescription": self._set_my_short_description,
            "getMyShortDescription": self._get_my_short_description,
            "sendMessage": self._send_message,
            "sendLocation": self._send_location,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "close": self._always_true,
            "logOut": self._always_true,
        }
        # Telegram matches method names case-insensitively.
        self._method_names = {name.lower(): name for name in self._handlers}

        self._runner: web.ServerRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind an ephemeral port on 127.0.0.1 and start answering."""
        if self._runner is not None:
            raise RuntimeError("FakeBotApi is already running")
        # handler_cancellation: a long poll whose client went away (PTB stopping) must not
        # linger until its timeout.
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self._host, 0))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner
        self._closing = False

    async def stop(self) -> None:
        """Answer pending long polls with no updates and shut the server down."""
        if self._runner is None:
            return
        self._closing = True
        for hold in self._holds:
            hold.release()
        self._wake_pollers()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What to pass to ``ApplicationBuilder().base_url``; PTB appends the token."""
        return f"http://{self._host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """What to pass to ``ApplicationBuilder().base_file_url`` (files are not served)."""
        return f"http://{self._host}:{self.port}/file/bot"

    # ------------------------------------------------------------------ HTTP layer

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Route ``/bot{token}/{method}``, record the call and answer like Telegram."""
        path = request.path
        if not path.startswith("/bot"):
            return _json_response(404, _error_payload(404, "Not Found", None))
        token, sep, method_name = path[4:].partition("/")
        if not sep or not method_name or "/" in method_name:
            return _json_response(404, _error_payload(404, "Not Found", None))
        method = self._method_names.get(method_name.lower(), method_name)

        call = ApiCall(method, {}, self._monotonic())
        self.calls.append(call)
        self._calls_by_method.setdefault(method, []).append(call)

        fault: _Fault | None = None
        try:
            if token != self.token:
                # Like Telegram: a well-formed but wrong token is 401, garbage is 404.
                if _TOKEN_RE.fullmatch(token):
                    raise _ApiError(401, "Unauthorized")
                raise _ApiError(404, "Not Found")
            handler = self._handlers.get(method)
            if handler is None:
                raise _ApiError(404, "Not Found")
            call.params = await self._read_params(request)
            await self._wait_if_held(method, call.params)
            fault = self._take_fault(method, call.params)
            if fault is not None and not fault.drop:
                raise _ApiError(
                    fault.error_code,
                    fault.description,
                    {"retry_after": fault.retry_after} if fault.retry_after else None,
                )
            if fault is None or fault.after_processing:
                if method == "getUpdates":
                    call.result = await self._get_updates(call)
                else:
                    self._check_rates(method, call.params)
                    call.result = handler(call)
                call.status = 200
        except _ApiError as err:
            call.status = err.code
            call.description = err.description
            response = _json_response(
                err.code, _error_payload(err.code, err.description, err.parameters)
            )
        else:
            response = _json_response(200, {"ok": True, "result": call.result})

        if self.latency:
            await asyncio.sleep(self.latency)  # the answer's way back over the network
        if fault is not None and fault.drop:
            # No answer at all: httpx reports RemoteProtocolError, PTB a NetworkError.
            call.status = 0
            call.description = "connection dropped"
            transport = request.transport
            if transport is not None:
                transport.close()
        call.done = True
        for listener in self._listeners:
            listener(call)
        await self._notify()
        return response

    async def _read_params(self, request: web.BaseRequest) -> JSONDict:
        """Merge query string and body (JSON, urlencoded or multipart) into typed values."""
        params: JSONDict = {}
        for name, value in request.query.items():
            params[name] = _decode_value(name, value)
        if request.method not in ("POST", "PUT") or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad_request("can't parse JSON body") from None
            if not isinstance(body, dict):
                raise _bad_request("can't parse JSON body")
            for name, value in body.items():
                params[name] = _decode_value(name, value) if isinstance(value, str) else value
        else:
            form = await request.post()
            for name, field_value in form.items():
                params[name] = (
                    _decode_value(name, field_value)
                    if isinstance(field_value, str)
                    else field_value
                )
        return params

    async def _wait_if_held(self, method: str, params: JSONDict) -> None:
        hold = next((h for h in self._holds if h.matches(method, params)), None)
        if hold is None:
            return
        hold.arrived += 1
        await self._notify()
        await hold.passed()

    def _take_fault(self, method: str, params: JSONDict) -> _Fault | None:
        faults = self._faults.get(method)
        if not faults:
            return None
        for fault in faults:
            if fault.matches(params):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    faults.remove(fault)
                return fault
        return None

    def _check_rates(self, method: str, params: JSONDict) -> None:
        """Answer 429 above the per-chat or the global limit; count the send only if both
        allow it."""
        now = self._monotonic()
        chat_id = params.get("chat_id")
        per_chat = self._chat_rate if method in _CHAT_RATE_LIMITED else None
        if per_chat is not None:
            early = per_chat.early_by(chat_id, now)
            if early > 0:
                raise _flood(max(1, math.ceil(early)))
        if self.enforce_global_rate is not None and method in _RATE_LIMITED:
            window = self._rate_window
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.enforce_global_rate:
                raise _flood(max(1, math.ceil(1.0 - (now - window[0]))))
            window.append(now)
        if per_chat is not None:
            per_chat.count(chat_id, now)

    async def _notify(self) -> None:
        if self._waiters:
            async with self._cond:
                self._cond.notify_all()

    # ------------------------------------------------------------------ state helpers

    def _chat(self, chat_id: int, first_name: str = "Ada") -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat(chat_id, first_name)
        return chat

    def _require_chat(self, call: ApiCall) -> _Chat:
        """The target chat of a call, refusing unknown and (for writes) blocked chats."""
        raw = call.params.get("chat_id")
        if raw is None or raw == "":
            raise _bad_request("chat_id is empty")
        chat = self._chats.get(raw) if isinstance(raw, int) else None
        if chat is None:
            raise _bad_request("chat not found")
        if chat.blocked and call.method in _TOUCHES_CHAT:
            raise _ApiError(403, _BLOCKED)
        return chat

    @staticmethod
    def _require_message_id(call: ApiCall) -> int:
        message_id = call.params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad_request("message identifier is not specified")
        return message_id

    @staticmethod
    def _parse_text(call: ApiCall) -> tuple[str, str, str | None]:
        """Validate text and parse mode; returns (raw, visible, parse_mode)."""
        raw = call.params.get("text")
        if raw is None:
            raise _bad_request("message text is empty")
        raw = str(raw)
        parse_mode = call.params.get("parse_mode") or None
        if parse_mode is None:
            visible = raw
        else:
            mode = str(parse_mode).lower()
            if mode == "html":
                try:
                    visible = visible_text(raw)  # validates as it parses
                except TelegramHTMLError as err:
                    raise _bad_request(f"can't parse entities: {err}") from None
            elif mode in ("markdown", "markdownv2"):
                visible = raw  # not validated by the fake
            else:
                raise _bad_request("unsupported parse_mode")
        visible = visible.strip()
        if not visible:
            raise _bad_request("message text is empty")
        # Counted in UTF-16 code units like bot.telegram_html does: never laxer than Telegram.
        if utf16_length(visible) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        return raw, visible, parse_mode

    @staticmethod
    def _parse_markup(call: ApiCall) -> JSONDict | None:
        """Validate ``reply_markup`` the way Telegram does for the parts we care about."""
        markup = call.params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad_request('field "inline_keyboard" must be an Array of Array')
            for row in rows:
                for button in row:
                    FakeBotApi._check_button(button)
            return markup
        if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            return markup
        raise _bad_request("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _check_button(button: Any) -> None:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise _bad_request("can't parse inline keyboard button: Text must be a String")
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not (
                1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
            ):
                raise _bad_request("BUTTON_DATA_INVALID")
        elif "url" in button:
            url = button["url"]
            if not isinstance(url, str) or not url.startswith(("http://", "https://", "tg://")):
                raise _bad_request("BUTTON_URL_INVALID")
        elif not any(
            key in button
            for key in (
                "web_app",
                "login_url",
                "switch_inline_query",
                "switch_inline_query_current_chat",
                "switch_inline_query_chosen_chat",
                "copy_text",
                "callback_game",
                "pay",
            )
        ):
            raise _bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )

    def _message_json(self, msg: StoredMessage, *, with_reply: bool = True) -> JSONDict:
        """A Message object exactly as Telegram would serialise the current state."""
        chat = self._chats[msg.chat_id]
        data: JSONDict = {
            "message_id": msg.message_id,
            "from": self.bot_user if msg.from_bot else chat.as_user(),
            "chat": chat.as_chat(),
            "date": msg.date,
        }
        if msg.edit_date is not None:
            data["edit_date"] = msg.edit_date
        if with_reply and msg.reply_to_message_id is not None:
            replied = self._messages.get((msg.chat_id, msg.reply_to_message_id))
            if replied is not None:
                data["reply_to_message"] = self._message_json(replied, with_reply=False)
        if msg.text is not None:
            data["text"] = msg.text
        if msg.entities:
            data["entities"] = msg.entities
        if msg.location is not None:
            data["location"] = msg.location
        if msg.photo is not None:
            width, height = _image_size(msg.photo)
            data["photo"] = [
                {
                    "file_id": f"photo-{msg.chat_id}-{msg.message_id}",
                    "file_unique_id": f"p{msg.chat_id}x{msg.message_id}",
                    "width": width,
                    "height": height,
                    "file_size": len(msg.photo),
                }
            ]
        if msg.document is not None:
            data["document"] = {
                "file_id": f"doc-{msg.chat_id}-{msg.message_id}",
                "file_unique_id": f"d{msg.chat_id}x{msg.message_id}",
                "file_name": msg.file_name or "file",
                "file_size": len(msg.document),
            }
        if msg.caption is not None:
            data["caption"] = msg.caption
        if msg.reply_markup is not None:
            data["reply_markup"] = msg.reply_markup
        return data

    def _reply_target(self, call: ApiCall, chat: _Chat) -> int | None:
        params = call.params
        reply = params.get("reply_parameters")
        allow = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply, dict):
            target = reply.get("message_id")
            allow = allow or bool(reply.get("allow_sending_without_reply"))
        else:
            target = params.get("reply_to_message_id")
        if not isinstance(target, int):
            return None
        if (chat.id, target) in self._messages:
            return target
        if allow:
            return None
        raise _bad_request("message to be replied not found")

    def _store_bot_message(self, chat: _Chat, msg: StoredMessage, markup: JSONDict | None) -> None:
        if markup is not None:
            if "keyboard" in markup:
                chat.reply_keyboard = markup
            elif "remove_keyboard" in markup:
                chat.reply_keyboard = None
        self._messages[(chat.id, msg.message_id)] = msg
        chat.bot_messages[msg.message_id] = msg

    # ------------------------------------------------------------------ API methods

    def _not_dispatched(self, call: ApiCall) -> Any:
        raise AssertionError("getUpdates is handled by _get_updates")

    @staticmethod
    def _always_true(call: ApiCall) -> bool:
        return True

    def _get_me(self, call: ApiCall) -> JSONDict:
        return self.bot_user

    def _delete_webhook(self, call: ApiCall) -> bool:
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        return True

    def _set_webhook(self, call: ApiCall) -> bool:
        url = call.params.get("url")
        if not isinstance(url, str):
            raise _bad_request("bad webhook: URL must be provided for webhook")
        if not url:  # an empty URL removes the webhook, as in Telegram
            self.webhook = None
            return True
        secret = call.params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad_request("bad webhook: secret token contains unallowed characters")
        self.webhook = dict(call.params)
        return True

    def _get_webhook_info(self, call: ApiCall) -> JSONDict:
        return {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_my_commands(self, call: ApiCall) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad_request("can't parse commands JSON object")
        for item in commands:
            if not isinstance(item, dict):
                raise _bad_request("can't parse commands JSON object")
            if not _BOT_COMMAND_RE.fullmatch(str(item.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(item.get("description", ""))) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(call.params)
        if commands:
            self._commands[key] = [
                {"command": item["command"], "description": item["description"]}
                for item in commands
            ]
        else:
            self._commands.pop(key, None)
        return True

    def _get_my_commands(self, call: ApiCall) -> list[JSONDict]:
        return list(self._commands.get(self._commands_key(call.params), []))

    def _delete_my_commands(self, call: ApiCall) -> bool:
        self._commands.pop(self._commands_key(call.params), None)
        return True

    def _set_my_description(self, call: ApiCall) -> bool:
        lang = str(call.params.get("language_code") or "")
        self.descriptions[lang] = str(call.params.get("description") or "")
        return True

    def _get_my_description(self, call: ApiCall) -> JSONDict:
        lang = str(call.params.get("language_code") or "")
        return {"description": self.descriptions.get(lang, "")}

    def _set_my_short_description(self, call: ApiCall) -> bool:
        lang = str(call.params.get("language_code") or "")
        self.short_descriptions[lang] = str(call.params.get("short_description") or "")
        return True

    def _get_my_short_description(self, call: ApiCall) -> JSONDict:
        lang = str(call.params.get("language_code") or "")
        return {"short_description": self.short_descriptions.get(lang, "")}

    def _send_message(self, call: ApiCall) -> JSONDict:
        chat = self._require_chat(call)
        raw, visible, parse_mode = self._parse_text(call)
        markup = self._parse_markup(call)
        reply_to = self._reply_target(call, chat)
        inline = markup if markup is not None and markup.get("inline_keyboard") else None
        msg = StoredMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id(),
            date=int(self._now()),
            from_bot=True,
            text=visible,
            raw_text=raw,
            parse_mode=parse_mode,
            reply_markup=inline,
            reply_to_message_id=reply_to,
        )
        self._store_bot_message(chat, msg, markup)
        chat.sent_texts.append(raw)
        return self._message_json(msg)

    def _send_location(self, call: ApiCall) -> JSONDict:
        chat = self._require_chat(call)
        latitude = call.params.get("latitude")
        longitude = call.params.get("longitude")
        if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
            raise _bad_request("wrong latitude or longitude specified")
        markup = self._parse_markup(call)
        inline = markup if markup is not None and markup.get("inline_keyboard") else None
        msg = StoredMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id(),
            date=int(self._now()),
            from_bot=True,
            location={"latitude": latitude, "longitude": longitude},
            reply_markup=inline,
            reply_to_message_id=self._reply_target(call, chat),
        )
        self._store_bot_message(chat, msg, markup)
        return self._message_json(msg)

    def _upload(self, call: ApiCall, field: str) -> tuple[bytes, str | None]:
        """The file sent as ``field``: a multipart part, directly or via ``attach://name``.
        A file_id or URL string is refused: the fake serves no files."""
        value = call.params.get(field)
        if isinstance(value, str) and value.startswith("attach://"):
            value = call.params.get(value.removeprefix("attach://"))
        if value is None or isinstance(value, str | int | float | dict | list):
            raise _bad_request(f"there is no {field} in the request")
        handle = getattr(value, "file", None)
        if handle is None:
            raise _bad_request(f"there is no {field} in the request")
        data = handle.read()
        if not data:
            raise _bad_request("file must be non-empty")
        return bytes(data), getattr(value, "filename", None)

    def _caption(self, call: ApiCall) -> str | None:
        caption = call.params.get("caption")
        if caption is None:
            return None
        caption = str(caption)
        parse_mode = call.params.get("parse_mode") or None
        if parse_mode == "HTML":
            try:
                visible = visible_text(caption)
            except TelegramHTMLError as error:
                raise _bad_request(f"can't parse entities: {error}") from None
        else:
            visible = caption
        if utf16_length(visible) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        return caption

    def _send_photo(self, call: ApiCall) -> JSONDict:
        """Like Telegram, refuses what is not an image it can decode (IMAGE_PROCESS_FAILED)."""
        chat = self._require_chat(call)
        data, _ = self._upload(call, "photo")
        _image_size(data)  # raises IMAGE_PROCESS_FAILED
        msg = StoredMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id(),
            date=int(self._now()),
            from_bot=True,
            photo=data,
            caption=self._caption(call),
            reply_to_message_id=self._reply_target(call, chat),
        )
        self._store_bot_message(chat, msg, self._parse_markup(call))
        return self._message_json(msg)

    def _send_document(self, call: ApiCall) -> JSONDict:
        chat = self._require_chat(call)
        data, file_name = self._upload(call, "document")
        msg = StoredMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id(),
            date=int(self._now()),
            from_bot=True,
            document=data,
            file_name=file_name,
            caption=self._caption(call),
            reply_to_message_id=self._reply_target(call, chat),
        )
        self._store_bot_message(chat, msg, self._parse_markup(call))
        return self._message_json(msg)

    def _editable_message(self, call: ApiCall) -> StoredMessage:
        if call.params.get("inline_message_id"):
            raise _bad_request("inline messages are not supported by FakeBotApi")
        chat = self._require_chat(call)
        message_id = self._require_message_id(call)
        msg = self._messages.get((chat.id, message_id))
        if msg is None:
            raise _bad_request("message to edit not found")
        if not msg.from_bot:
            raise _bad_request("message can't be edited")
        return msg

    def _edit_message_text(self, call: ApiCall) -> JSONDict:
        msg = self._editable_message(call)
        raw, visible, parse_mode = self._parse_text(call)
        markup = self._parse_markup(call)
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        inline = markup if markup is not None and markup.get("inline_keyboard") else None
        if msg.text is None:
            raise _bad_request("there is no text in the message to edit")
        new_key = (visible, raw if parse_mode else None)
        if new_key == msg.content_key() and inline == msg.reply_markup:
            raise _bad_request(_NOT_MODIFIED)
        msg.text, msg.raw_text, msg.parse_mode = visible, raw, parse_mode
        msg.reply_markup = inline
        msg.edit_date = int(self._now())
        return self._message_json(msg)

    def _edit_message_reply_markup(self, call: ApiCall) -> JSONDict:
        msg = self._editable_message(call)
        markup = self._parse_markup(call)
        if markup is not None and "inline_keyboard" not in markup:
            raise _bad_request("inline keyboard expected")
        inline = markup if markup is not None and markup.get("inline_keyboard") else None
        if inline == msg.reply_markup:
            raise _bad_request(_NOT_MODIFIED)
        msg.reply_markup = inline
        msg.edit_date = int(self._now())
        return self._message_json(msg)

    def _delete_message(self, call: ApiCall) -> bool:
        chat = self._require_chat(call)
        message_id = self._require_message_id(call)
        if self._messages.pop((chat.id, message_id), None) is None:
            raise _bad_request("message to delete not found")
        chat.bot_messages.pop(message_id, None)
        return True

    def _answer_callback_query(self, call: ApiCall) -> bool:
        query_id = str(call.params.get("callback_query_id") or "")
        if query_id not in self._pending_queries:
            raise _bad_request(_QUERY_TOO_OLD)
        if len(str(call.params.get("text") or "")) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        del self._pending_queries[query_id]
        self._answered[query_id] = call
        return True

    def _send_chat_action(self, call: ApiCall) -> bool:
        self._require_chat(call)
        if call.params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _get_updates(self, call: ApiCall) -> list[JSONDict]:
        """Long polling: answer at once if updates are queued, else wait for one or timeout.

        A newer getUpdates terminates a pending older one with 409, as Telegram does when
        two bot instances poll at the same time.
        """
        params = call.params
        offset = params.get("offset")
        limit = params.get("limit")
        limit = min(max(limit, 1), 100) if isinstance(limit, int) else 100
        timeout = params.get("timeout")
        timeout = max(float(timeout), 0.0) if isinstance(timeout, int | float) else 0.0
        allowed = params.get("allowed_updates")
        allowed_set = set(allowed) if isinstance(allowed, list) and allowed else None

        if self.webhook is not None:
            raise _ApiError(409, _WEBHOOK_ACTIVE)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        if isinstance(offset, int) and self._confirm(offset):
            await self._notify()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise _ApiError(409, _CONFLICT)
            batch = self._collect(limit, allowed_set)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                return batch
            changed = self._updates_changed
            self.long_polls_waiting += 1
            try:
                await self._notify()  # lets tests wait until the poll is really parked
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                return []
            finally:
                self.long_polls_waiting -= 1

    def _confirm(self, offset: int) -> bool:
        """Forget updates before ``offset`` (negative: keep only the last ``-offset``)."""
        updates = self._updates
        before = len(updates)
        if offset < 0:
            while len(updates) > -offset:
                updates.popleft()
        else:
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()
        return len(updates) != before

    def _collect(self, limit: int, allowed: set[str] | None) -> list[JSONDict]:
        batch: list[JSONDict] = []
        for update in self._updates:
            if allowed is not None and not allowed.intersection(update.keys()):
                continue
            batch.append(update)
            if len(batch) >= limit:
                break
        return batch

    def _wake_pollers(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    # ------------------------------------------------------------------ update factories

    def add_chat(self, chat_id: int, *, first_name: str = "Ada") -> None:
        """Make a chat known without an update, as if the user had talked to the bot before."""
        self._chat(chat_id, first_name)

    def set_language(self, chat_id: int, language_code: str | None) -> None:
        """The IETF tag the user's Telegram app reports from now on (None: none at all)."""
        self._chat(chat_id).language_code = language_code

    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue an arbitrary update for getUpdates; assigns ``update_id`` if missing."""
        if "update_id" in update:
            self._last_update_id = max(self._last_update_id, int(update["update_id"]))
            self._update_ids = itertools.count(self._last_update_id + 1)
        else:
            self._last_update_id = next(self._update_ids)
            update["update_id"] = self._last_update_id
        for kind, value in update.items():
            if isinstance(value, dict):
                self._learn_from(kind, value)
        self.updates.append(update)
        self._updates.append(update)
        self._wake_pollers()
        return update

    def _learn_from(self, kind: str, value: JSONDict) -> None:
        """Mark the chat of a hand-made update as known and remember its user message, so
        replies to it and later message ids behave as for factory-made updates; a hand-made
        callback query can be answered like a real one."""
        if kind == "callback_query" and isinstance(value.get("id"), str):
            message = value.get("message")
            chat = message.get("chat") if isinstance(message, dict) else None
            chat_id = chat.get("id") if isinstance(chat, dict) else None
            message_id = message.get("message_id") if isinstance(message, dict) else None
            self._pending_queries[value["id"]] = (
                chat_id if isinstance(chat_id, int) else 0,
                message_id if isinstance(message_id, int) else 0,
            )
        chat_json = value.get("chat")
        if chat_json is None and isinstance(value.get("message"), dict):
            chat_json = value["message"].get("chat")
        if not isinstance(chat_json, dict) or not isinstance(chat_json.get("id"), int):
            return
        chat = self._chats.get(chat_json["id"])
        if chat is None:
            chat = self._chat(chat_json["id"], str(chat_json.get("first_name", "Ada")))
        message_id = value.get("message_id")
        if not isinstance(message_id, int):
            return
        chat.last_message_id = max(chat.last_message_id, message_id)
        sender = value.get("from")
        from_bot = isinstance(sender, dict) and sender.get("id") == self.bot_user["id"]
        if kind == "message" and not from_bot and (chat.id, message_id) not in self._messages:
            text = value.get("text")
            self._messages[(chat.id, message_id)] = StoredMessage(
                chat_id=chat.id,
                message_id=message_id,
                date=int(value.get("date", self._now())),
                from_bot=False,
                text=text,
                raw_text=text,
                entities=value.get("entities"),
                location=value.get("location"),
            )

    def next_message_id(self, chat_id: int) -> int:
        """Reserve the chat's next message id, for a hand-made update (see push_update)."""
        return self._chat(chat_id).next_message_id()

    def _user_message(self, chat_id: int, first_name: str | None, **content: Any) -> StoredMessage:
        chat = self._chat(chat_id, first_name or "Ada")
        if first_name:
            chat.first_name = first_name
        msg = StoredMessage(
            chat_id=chat_id,
            message_id=chat.next_message_id(),
            date=int(self._now()),
            from_bot=False,
            **content,
        )
        self._messages[(chat_id, msg.message_id)] = msg
        return msg

    def send_text(self, chat_id: int, text: str, *, first_name: str | None = None) -> JSONDict:
        """The user types ``text``; "/cmd" or "/cmd@bot args" get a bot_command entity.

        ``first_name`` renames the user; a new chat's user is called "Ada" by default.
        """
        entities: list[JSONDict] | None = None
        match = _COMMAND_RE.match(text)
        if match is not None:
            entities = [{"type": "bot_command", "offset": 0, "length": utf16_length(match[0])}]
        msg = self._user_message(chat_id, first_name, text=text, raw_text=text, entities=entities)
        return self.push_update({"message": self._message_json(msg)})

    def send_location(
        self, chat_id: int, latitude: float, longitude: float, *, first_name: str | None = None
    ) -> JSONDict:
        """The user shares a location (e.g. from a request_location keyboard button)."""
        msg = self._user_message(
            chat_id, first_name, location={"latitude": latitude, "longitude": longitude}
        )
        return self.push_update({"message": self._message_json(msg)})

    def press_button(self, chat_id: int, message_id: int, data: str, *, check: bool = True) -> str:
        """The user taps an inline button; returns the callback query id.

        With ``check`` (default) the data must belong to a button currently on the message,
        which catches tests pressing buttons that the bot already removed.
        """
        msg = self._messages.get((chat_id, message_id))
        if msg is None or not msg.from_bot:
            raise ValueError(f"no bot message {message_id} in chat {chat_id}")
        if check and data not in (button_data for _, button_data in msg.buttons):
            raise ValueError(
                f"message {message_id} in chat {chat_id} has no button with data {data!r}; "
                f"buttons: {msg.buttons}"
            )
        chat = self._chats[chat_id]
        query_id = str(next(self._query_ids))
        self._pending_queries[query_id] = (chat_id, message_id)
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": chat.as_user(),
                    "message": self._message_json(msg),
                    "chat_instance": str((chat_id * 1_000_003) % 10**18),
                    "data": data,
                }
            }
        )
        return query_id

    # ------------------------------------------------------------------ fault injection

    def _canonical(self, method: str) -> str:
        name = self._method_names.get(method.lower())
        if name is None:
            raise ValueError(f"FakeBotApi does not implement {method!r}")
        return name

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
        when: Callable[[JSONDict], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (optionally to ``chat_id``, or
        whose decoded parameters ``when`` accepts) with an error. For 429, ``retry_after``
        defaults to 1 and the description to Telegram's."""
        if error_code == 429:
            retry_after = retry_after or 1
            description = description or f"Too Many Requests: retry after {retry_after}"
        if description is None:
            description = _DEFAULT_DESCRIPTIONS.get(error_code, "Internal Server Error")
        self._faults.setdefault(self._canonical(method), []).append(
            _Fault(error_code, description, retry_after, chat_id, times, when=when)
        )

    def drop_connection_next(
        self,
        method: str,
        times: int = 1,
        *,
        chat_id: int | None = None,
        after_processing: bool = False,
    ) -> None:
        """Close the connection instead of answering (PTB raises NetworkError).

        With ``after_processing`` the call takes effect first, modelling a message that was
        delivered although the bot never saw the answer.
        """
        self._faults.setdefault(self._canonical(method), []).append(
            _Fault(0, "connection dropped", None, chat_id, times, True, after_processing)
        )

    def hold(
        self, method: str, *, chat_ids: Iterable[int] | None = None, limit: int | None = None
    ) -> Hold:
        """Hold calls of ``method`` (to ``chat_ids``, or to any chat; the first ``limit`` of
        them, or all) until the returned Hold is released: a slow Telegram, made
        deterministic. A call is recorded when it arrives; faults and the answer come after
        the release."""
        chats = None if chat_ids is None else frozenset(chat_ids)
        hold = Hold(self._canonical(method), chats, limit)
        self._holds.append(hold)
        return hold

    def block_chat(self, chat_id: int) -> None:
        """The user blocks the bot: sends and edits to the chat get 403 until unblocked."""
        self._chat(chat_id).blocked = True

    def unblock_chat(self, chat_id: int) -> None:
        """Undo :meth:`block_chat`."""
        self._chat(chat_id).blocked = False

    # ------------------------------------------------------------------ inspection

    def add_listener(self, listener: Callable[[ApiCall], None]) -> None:
        """Call ``listener`` synchronously after every answered call (e.g. to print replies)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[ApiCall], None]) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[ApiCall]:
        """All calls to ``method`` (any case), in arrival order, including failed ones."""
        name = self._method_names.get(method.lower(), method)
        calls = self._calls_by_method.get(name, [])
        return [call for call in calls if call.ok] if ok_only else list(calls)

    def sent_texts(self, chat_id: int) -> list[str]:
        """Every text accepted by sendMessage for the chat, as sent (HTML included)."""
        chat = self._chats.get(chat_id)
        return list(chat.sent_texts) if chat else []

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """The bot's messages in the chat as they stand now (after edits and deletions)."""
        chat = self._chats.get(chat_id)
        return list(chat.bot_messages.values()) if chat else []

    def last_message(self, chat_id: int) -> StoredMessage | None:
        """The bot's most recent message in the chat, if any."""
        chat = self._chats.get(chat_id)
        if not chat or not chat.bot_messages:
            return None
        return chat.bot_messages[next(reversed(chat.bot_messages))]

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """Any message (bot or user) in the chat by id."""
        return self._messages.get((chat_id, message_id))

    def buttons(self, chat_id: int, message_id: int) -> list[tuple[str, str]]:
        """``(label, callback_data)`` of the callback buttons on a message, row by row."""
        msg = self._messages.get((chat_id, message_id))
        if msg is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        return msg.buttons

    def reply_keyboard(self, chat_id: int) -> JSONDict | None:
        """The reply keyboard currently shown in the chat (None when removed/never sent)."""
        chat = self._chats.get(chat_id)
        return chat.reply_keyboard if chat else None

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """The command list set with setMyCommands for a scope and language."""
        key = self._commands_key({"scope": scope, "language_code": language_code})
        return list(self._commands.get(key, []))

    def answered_callback(self, query_id: str) -> ApiCall | None:
        """The answerCallbackQuery call that answered ``query_id``, if any."""
        return self._answered.get(query_id)

    def pending_updates(self) -> int:
        """Updates not yet confirmed by a getUpdates offset."""
        return len(self._updates)

    def is_known_chat(self, chat_id: int) -> bool:
        """Whether sends to the chat would be accepted (it was seen or added)."""
        return chat_id in self._chats

    # ------------------------------------------------------------------ waiting

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 (a deadline per wait is the point of the API)
        *,
        what: str | None = None,
    ) -> None:
        """Wait until ``predicate()`` holds, re-checking after every answered call.

        Raises FakeApiTimeoutError (an AssertionError and TimeoutError) listing recent calls.
        """
        self._waiters += 1
        try:
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait_for(predicate)
        except TimeoutError:
            label = what or getattr(predicate, "__name__", "condition")
            raise FakeApiTimeoutError(
                f"{label} not met within {timeout}s; calls seen:\n{self.describe_calls()}"
            ) from None
        finally:
            self._waiters -= 1

    async def wait_for_calls(
        self,
        method: str,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 (a deadline per wait is the point of the API)
        *,
        ok_only: bool = False,
    ) -> list[ApiCall]:
        """Wait until at least ``count`` calls to ``method`` were handled (only accepted ones
        with ``ok_only``); return all calls to it so far."""
        name = self._method_names.get(method.lower(), method)

        def enough() -> bool:
            calls = self._calls_by_method.get(name, [])
            answered = [call for call in calls if (call.ok if ok_only else call.done)]
            return len(answered) >= count

        await self.wait_for(enough, timeout, what=f"{count} call(s) to {name}")
        return self.calls_to(name, ok_only=ok_only)

    def describe_calls(self, last: int = 30) -> str:
        """A readable summary of the most recent calls, for failure messages."""
        if not self.calls:
            return "  (none)"
        lines = []
        for call in self.calls[-last:]:
            status = "ok" if call.ok else f"{call.status} {call.description or ''}".strip()
            detail = {
                k: v for k, v in call.params.items() if k in ("chat_id", "text", "message_id")
            }
            lines.append(f"  {call.method} {detail} -> {status}")
        skipped = len(self.calls) - last
        if skipped > 0:
            lines.insert(0, f"  ... {skipped} earlier call(s)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ rate analysis

    def flood_violations(
        self,
        per_chat_interval: float = 1.0,
        global_per_second: int = 30,
        *,
        per_chat_burst: int = 1,
        methods: Iterable[str] | None = None,
    ) -> list[FloodViolation]:
        """Where accepted sends broke "1 message per chat per interval (after a burst of
        ``per_chat_burst``)" or "N per second".

        ``methods`` defaults to the message-sending methods (sendMessage, sendLocation).
        """
        names = _RATE_LIMITED if methods is None else {self._canonical(m) for m in methods}
        sends = sorted(
            (call for name in names for call in self._calls_by_method.get(name, []) if call.ok),
            key=lambda call: call.at,
        )
        violations: list[FloodViolation] = []
        per_chat = _Gcra(ChatRate(1.0 / per_chat_interval, per_chat_burst))
        window: deque[float] = deque()
        for call in sends:
            chat_id = call.chat_id
            early = per_chat.early_by(chat_id, call.at)
            if early > 0:  # like a policer, a violation does not use up later sends' budget
                violations.append(
                    FloodViolation(
                        "per_chat", call.at, chat_id, f"{call.method} {early:.3f}s too early"
                    )
                )
            else:
                per_chat.count(chat_id, call.at)
            while window and call.at - window[0] >= 1.0:
                window.popleft()
            window.append(call.at)
            if len(window) > global_per_second:
                violations.append(
                    FloodViolation(
                        "global", call.at, chat_id, f"{len(window)} sends within one second"
                    )
                )
        return violations
