"""Settings validation and the promise that the token never reaches a log line."""

from __future__ import annotations

import io
import logging

import pytest

from bot.config import MissingToken, Settings
from bot.logs import REDACTED, RedactingFormatter, redact

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"


def test_missing_token_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    with pytest.raises(MissingToken, match="@BotFather"):
        Settings(_env_file=None).require_token()


def test_malformed_token_is_refused_without_echoing_it() -> None:
    settings = Settings(telegram_bot_token="not-a-token-at-all-but-secret")
    with pytest.raises(MissingToken) as raised:
        settings.require_token()
    assert "not-a-token-at-all-but-secret" not in str(raised.value)


def test_token_is_secret_in_settings_repr() -> None:
    settings = Settings(telegram_bot_token=TOKEN)
    assert TOKEN not in repr(settings)
    assert settings.require_token() == TOKEN


def test_defaults_use_sqlite_under_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("sqlite+aiosqlite:///./data/")
    assert settings.log_level == "INFO"


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert Settings(_env_file=None).log_level == "DEBUG"


def test_redaction_covers_messages_args_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s", secrets=[TOKEN]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST https://api.telegram.org/bot%s/getMe", TOKEN)
        try:
            raise RuntimeError(f"failed on /bot{TOKEN}/sendMessage")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert TOKEN not in output
    assert output.count(REDACTED) == 2  # the log message and the exception line of the traceback


def test_redact_catches_token_shaped_strings_it_was_not_told_about() -> None:
    other = "987654321:ZZotherTokenThatWasNeverConfigured12"
    assert redact(f"url /bot{other}/x") == f"url /bot{REDACTED}/x"
