"""Private by default: nothing personal in the logs, and /deletedata erases from the disk too."""

from __future__ import annotations

import io
import logging
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import pytest
from telegram import Update
from telegram.error import BadRequest

from bot.config import Settings
from bot.fake_telegram import FakeBotApi
from bot.logs import HIDDEN, PrivacyFilter, RedactingFormatter, configure_logging
from bot.polling import incoming
from bot.storage import open_store
from tests.botprocess import BotProcess
from tests.harness import START, BotHarness

ZEB: Final = 5_550_123
USER: Final = {
    "id": ZEB,
    "is_bot": False,
    "first_name": "Zebulon",
    "last_name": "Quaxley",
    "username": "zq_sleeper_77",
    "language_code": "en",
}
CHAT: Final = {k: USER[k] for k in ("id", "first_name", "last_name", "username")} | {
    "type": "private"
}
CONFIDED: Final = "I have slept badly since I moved to Timbuktu"
# Everything the person gave away: name, username, what they typed, where they are, what they
# pressed, and the timezone the bot stored.
PERSONAL: Final = (
    "Zebulon",
    "Quaxley",
    "zq_sleeper_77",
    "Timbuktu",
    "27.7172",
    "85.324",
    "set:bed:2230",
    "Kathmandu",
)

Handle = Callable[[dict[str, Any]], Awaitable[object]]


def _message(api: FakeBotApi, **content: Any) -> dict[str, Any]:
    message = {
        "message_id": api.next_message_id(ZEB),
        "from": USER,
        "chat": CHAT,
        "date": int(START.timestamp()),
        **content,
    }
    text = content.get("text", "")
    if text.startswith("/"):
        length = len(text.split()[0])
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"message": message}


async def _press(api: FakeBotApi, data: str) -> dict[str, Any]:
    """Zebulon presses the button with `data` once the bot has shown it."""

    def shown() -> bool:
        return any(data in dict(m.buttons).values() for m in api.messages(ZEB))

    await api.wait_for(shown, 30, what=f"a button {data}")
    message = next(m for m in reversed(api.messages(ZEB)) if data in dict(m.buttons).values())
    return {
        "callback_query": {
            "id": f"zeb-{data}",
            "from": USER,
            "message": {
                "message_id": message.message_id,
                "from": api.bot_user,
                "chat": CHAT,
                "date": message.date,
                "text": message.text,
                "reply_markup": message.reply_markup,
            },
            "chat_instance": "42",
            "data": data,
        }
    }


async def confide_and_erase(api: FakeBotApi, handle: Handle) -> None:
    """Everything a person can tell the bot, then /deletedata → Yes."""
    for text in ("/start", CONFIDED, "/timezone", "Kathmandu"):
        await handle(api.push_update(_message(api, text=text)))
    location = {"latitude": 27.7172, "longitude": 85.324}
    await handle(api.push_update(_message(api, location=location)))
    await handle(api.push_update(await _press(api, "set:bed:2230")))
    await handle(api.push_update(_message(api, text="/mydata")))
    await handle(api.push_update(_message(api, text="/deletedata")))
    await handle(api.push_update(await _press(api, "set:delete:yes")))


def found_in(data: bytes) -> list[str]:
    return [value for value in PERSONAL if value.encode() in data]


# --- logs ------------------------------------------------------------------------------------


async def _debug_run(api: FakeBotApi, workdir: Path, **env: str) -> str:
    """`sleepbot run` at DEBUG while Zebulon confides and erases; its whole log."""
    bot = BotProcess(api, workdir, LOG_LEVEL="DEBUG", **env)
    try:
        await bot.start()

        async def push_only(update: dict[str, Any]) -> None:
            return None  # the worker handles updates in order; presses wait for their button

        await confide_and_erase(api, push_only)
        await api.wait_for(
            lambda: any("Erased" in (m.text or "") for m in api.messages(ZEB)),
            30,
            what="the erasure confirmed",
        )
        bot.terminate()
        assert await bot.wait() == 0
    finally:
        await bot.stop()
    log = bot.log_text()
    assert "Traceback" not in log
    # Really DEBUG: PTB logs every call with its parameters and result, we log every update.
    assert "Calling Bot API endpoint `getUpdates`" in log and "handling update" in log
    return log


async def test_a_debug_log_holds_no_personal_data(fake_api: FakeBotApi, tmp_path: Path) -> None:
    log = await _debug_run(fake_api, tmp_path)
    assert found_in(log.encode()) == []
    assert fake_api.token not in log
    assert f"`sendMessage` with parameters `{HIDDEN}`" in log


async def test_the_opt_in_really_logs_personal_data(fake_api: FakeBotApi, tmp_path: Path) -> None:
    """The counter-test: with LOG_PERSONAL_DATA=true the same run shows them, and says so."""
    log = await _debug_run(fake_api, tmp_path, LOG_PERSONAL_DATA="true")
    assert set(found_in(log.encode())) >= {"Zebulon", "zq_sleeper_77", "Timbuktu", "27.7172"}
    assert "LOG_PERSONAL_DATA is on" in log
    assert fake_api.token not in log


def _formatted(record: logging.LogRecord, *, private: bool = True) -> str:
    if private:
        PrivacyFilter().filter(record)
    return RedactingFormatter("%(name)s %(message)s").format(record)


def _record(name: str, message: str, *args: object, error: BaseException | None = None) -> Any:
    exc_info = (type(error), error, error.__traceback__) if error is not None else None
    return logging.LogRecord(name, logging.DEBUG, __file__, 1, message, args, exc_info)


def test_library_arguments_are_hidden_but_endpoints_and_numbers_stay() -> None:
    params = {"chat_id": ZEB, "text": "Hello Zebulon"}
    line = _formatted(
        _record("telegram.Bot", "Calling Bot API endpoint `%s` with parameters `%s`", "x", params)
    )
    assert line == f"telegram.Bot Calling Bot API endpoint `x` with parameters `{HIDDEN}`"
    line = _formatted(_record("telegram.ext.Application", "Processing update %s", USER))
    assert "Zebulon" not in line and HIDDEN in line
    line = _formatted(_record("sqlalchemy.engine.Engine", "[%s] %s", 0.5, ("Kathmandu", 7)))
    assert line == f"sqlalchemy.engine.Engine [0.5] {HIDDEN}"
    # The bot's own lines carry ids only and are left alone.
    assert _formatted(_record("bot.polling", "update %d", 17)) == "bot.polling update 17"


def test_exception_messages_are_hidden_unless_they_are_telegrams() -> None:
    typed, name = "²", USER["first_name"]  # not literals: tracebacks show source lines
    try:
        try:
            int(typed)
        except ValueError as error:
            raise RuntimeError(f"while reading {name}") from error
    except RuntimeError as error:
        line = _formatted(_record("bot.handlers.errors", "boom", error=error))
    assert "²" not in line and "Zebulon" not in line
    assert f"ValueError: {HIDDEN}" in line and f"RuntimeError: {HIDDEN}" in line
    try:
        raise BadRequest("Message to edit not found")
    except BadRequest as error:
        assert "Message to edit not found" in _formatted(_record("bot", "x", error=error))


def test_configure_logging_installs_the_filter_unless_opted_in() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        for opt_in, expected in ((False, HIDDEN), (True, "Zebulon")):
            configure_logging("DEBUG", personal_data=opt_in)
            [handler] = root.handlers
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(io.StringIO())
            logging.getLogger("telegram.ext.Application").debug("Processing update %s", USER)
            assert expected in handler.stream.getvalue()
            assert logging.getLogger("sqlalchemy.engine").getEffectiveLevel() == logging.WARNING
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


# --- the disk --------------------------------------------------------------------------------


async def test_deletedata_leaves_nothing_in_any_database_file(bot: BotHarness) -> None:
    database = Path(bot.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    await confide_and_erase(bot.api, bot._handled)
    assert "Erased" in (bot.last(ZEB).text or "")
    assert await bot.services.store.get_person(ZEB) is None
    files = [database, database.with_name(database.name + "-wal")]
    files.append(database.with_name(database.name + "-shm"))
    contents = {path.name: path.read_bytes() for path in files if path.exists()}
    assert database.name in contents and len(contents[database.name]) > 0
    leaks = {name: found_in(data) for name, data in contents.items()}
    assert leaks == {name: [] for name in contents}


async def test_before_the_erasure_the_same_search_finds_the_data(bot: BotHarness) -> None:
    """The counter-test: the byte search is not blind (the timezone is stored, the rest is in
    the inbox until handled)."""
    database = Path(bot.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    update = Update.de_json({"update_id": 1, **_message(bot.api, text=CONFIDED)}, None)
    await bot.services.store.inbox.store([incoming(update)], START)
    await bot.services.store.set_timezone(ZEB, "Asia/Kathmandu", START)
    data = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert {"Kathmandu", "Zebulon", "Timbuktu"} <= set(found_in(data))


async def test_the_database_file_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "bot.sqlite3"
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        await store.ensure_person(ZEB, START)
    finally:
        await store.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for file in path.parent.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name


def test_settings_default_to_private_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_PERSONAL_DATA", raising=False)
    assert Settings(_env_file=None, log_level="DEBUG").log_personal_data is False
    monkeypatch.setenv("LOG_PERSONAL_DATA", "true")
    assert Settings(_env_file=None).log_personal_data is True
