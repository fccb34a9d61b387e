"""LOG_FORMAT=json: one object per line, update ids and hashed chats, never text or token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Final

import pytest
from telegram import Update

from bot.clock import FakeClock
from bot.flood import FloodGate
from bot.logs import (
    REDACTED,
    JsonFormatter,
    configure_logging,
    deployment_salt,
    hash_chat,
    update_context,
)
from bot.metrics import Metrics
from bot.updates import ChatUpdateProcessor
from tests.harness import START, BotHarness

TOKEN: Final = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
SALT: Final = deployment_salt(TOKEN)
CHAT: Final = 987654321


@contextmanager
def json_lines(logger: str = "") -> Iterator[list[dict[str, Any]]]:
    """Everything logged under `logger` meanwhile, through a JsonFormatter, parsed per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(SALT, secrets=[TOKEN]))
    target = logging.getLogger(logger)
    target.addHandler(handler)
    old_level = target.level
    target.setLevel(logging.INFO)
    parsed: list[dict[str, Any]] = []
    try:
        yield parsed
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)
        text = stream.getvalue()
        parsed.extend(json.loads(line) for line in text.splitlines())
        assert len(parsed) == text.count("\n")  # one object per line, nothing else
        assert TOKEN not in text


def test_a_line_has_time_level_logger_event_and_no_chat_id_in_clear() -> None:
    log = logging.getLogger("bot.example")
    with json_lines("bot.example") as lines:
        log.info("chat %s is unreachable (%s)", CHAT, "Forbidden")
        log.warning("chat %s sent more than %d updates", (-100123, CHAT), 20)
        log.info("POST https://api.telegram.org/bot%s/getMe", TOKEN)
    first, group, token_line = lines
    assert set(first) == {"time", "level", "logger", "event"}
    assert first["time"].endswith("Z") and first["level"] == "INFO"
    assert first["logger"] == "bot.example"
    assert first["event"] == f"chat #{hash_chat(CHAT, SALT)} is unreachable (Forbidden)"
    expected = f"chat (#{hash_chat(-100123, SALT)}, #{hash_chat(CHAT, SALT)}) sent more than 20"
    assert group["event"].startswith(expected)
    assert str(CHAT) not in json.dumps(lines)
    assert REDACTED in token_line["event"]


def test_inside_an_update_lines_carry_its_id_and_hashed_chat_and_tracebacks_stay_one_line() -> None:
    log = logging.getLogger("bot.example")
    with json_lines("bot.example") as lines, update_context(41, CHAT):
        try:
            raise ValueError(f"bad input from {CHAT}")
        except ValueError:
            log.exception("error while handling an update")
    (line,) = lines
    assert line["update_id"] == 41
    assert line["chat"] == hash_chat(CHAT, SALT)
    assert "ValueError" in line["exception"] and "Traceback" in line["exception"]
    assert str(CHAT) not in json.dumps(line)


def test_hashes_are_stable_per_deployment_and_differ_between_deployments() -> None:
    other = deployment_salt("987654321:AAAnotherBotsTokenForTestsOnly_xyz")
    assert hash_chat(CHAT, SALT) == hash_chat(CHAT, deployment_salt(TOKEN))
    assert hash_chat(CHAT, SALT) != hash_chat(CHAT, other)


def test_configure_logging_json_needs_a_salt_and_installs_the_formatter() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        with pytest.raises(ValueError, match="salt"):
            configure_logging("INFO", log_format="json")
        configure_logging("INFO", [TOKEN], log_format="json", salt=SALT)
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


async def test_the_update_processor_sets_the_log_context_and_records_latency() -> None:
    metrics = Metrics()
    gate = FloodGate(FakeClock(START), max_updates=20, window=timedelta(seconds=10))
    processor = ChatUpdateProcessor(gate, lambda update: "slow down", metrics=metrics)
    payload = {
        "update_id": 77,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": CHAT, "type": "private"},
            "from": {"id": CHAT, "is_bot": False, "first_name": "A"},
            "text": "my very private words",
        },
    }
    update = Update.de_json(payload, None)

    async def handler() -> None:
        logging.getLogger("bot.handlers.example").info("answered")

    with json_lines("bot") as lines:
        await processor.do_process_update(update, handler())
    (line,) = lines
    assert (line["update_id"], line["chat"]) == (77, hash_chat(CHAT, SALT))
    assert "private words" not in json.dumps(line)
    scrape = metrics.exposition().decode()
    assert 'sleepbot_handler_seconds_count{type="message"} 1.0' in scrape


async def test_the_real_bot_logs_json_lines_without_texts_or_chat_ids(bot: BotHarness) -> None:
    """The real Application over the fake Bot API, a stale button and some text: JSON only."""
    with json_lines() as lines:
        await bot.send(CHAT, "/start")
        await bot.send(CHAT, "my very private words about sleep")
        await bot.press(CHAT, bot.last(CHAT).message_id, "forged:data", check=False)
    assert lines, "the bot logged nothing at INFO"
    dumped = json.dumps(lines)
    assert "private words" not in dumped
    assert str(CHAT) not in dumped
    stale = [line for line in lines if "unrecognised callback data" in line["event"]]
    assert stale and stale[0]["chat"] == hash_chat(CHAT, SALT) and "update_id" in stale[0]


def test_json_lines_go_through_the_privacy_filter_first(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("DEBUG", [TOKEN], log_format="json", salt=SALT)
        typed = "my very private words"  # what a person typed: never in a log line
        logging.getLogger("telegram.ext.Application").debug("update %s", typed)
        try:
            int(typed)
        except ValueError:
            logging.getLogger("bot.handlers").exception("error while handling an update")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["telegram.ext.Application", "bot.handlers"]
    assert "private words" not in stream.getvalue()
    assert "ValueError: [hidden]" in lines[1]["exception"]
