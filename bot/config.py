"""Settings from the environment (and an optional .env file), validated once at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Telegram tokens look like "123456789:AA...": a numeric bot id, a colon, ~35 url-safe characters.
TOKEN_SHAPE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/sleepbot.sqlite3"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class MissingToken(Exception):
    """Raised when `run` has no usable token; the CLI turns it into one line and exit code 2."""


class Settings(BaseSettings):
    """Everything an operator can set; the README's configuration table mirrors these fields."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str | None = Field(
        default=None,
        description="PTB base_url, e.g. a self-hosted Bot API server; the token is appended",
    )
    database_url: str = DEFAULT_DATABASE_URL
    log_level: LogLevel = "INFO"
    # Off: logs never hold names, usernames, message texts, locations or callback data.
    log_personal_data: bool = False
    content_dir: Path | None = None
    dispatch_interval_seconds: float = Field(default=5.0, gt=0, le=60)
    # At least a minute: every reminder is seen a few seconds after its minute, never exactly.
    reminder_grace_minutes: int = Field(default=30, ge=1, le=24 * 60)
    send_rate_per_second: float = Field(default=30.0, gt=0, le=30)
    snooze_minutes: int = Field(default=15, ge=1, le=180)
    delivery_history_days: int = Field(default=30, ge=1, le=3650)
    # Incoming flood control (bot/flood.py): more than this many updates from one chat within
    # the window, and its excess is dropped after one "slow down". 20 in 10 s is several
    # messages a second for ten seconds: a script, not a person typing.
    flood_max_updates: int = Field(default=20, ge=1, le=10_000)
    flood_window_seconds: float = Field(default=10.0, gt=0, le=3600)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("telegram_api_base_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def require_token(self) -> str:
        """The token for talking to Telegram, or a MissingToken that never echoes the value."""
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise MissingToken(
                "TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather in Telegram "
                "(/newbot), then run: TELEGRAM_BOT_TOKEN=<token> sleepbot run"
            )
        token = self.telegram_bot_token.get_secret_value().strip()
        if not TOKEN_SHAPE.match(token):
            raise MissingToken(
                "TELEGRAM_BOT_TOKEN does not look like a bot token (expected <digits>:<35 "
                "characters>, as @BotFather gives it). Copy it again from @BotFather (/token)."
            )
        return token
