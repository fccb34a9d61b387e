"""Settings from the environment (and an optional .env file), validated once at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.logs import LogFormat

# Telegram tokens look like "123456789:AA...": a numeric bot id, a colon, ~35 url-safe characters.
TOKEN_SHAPE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/sleepbot.sqlite3"
DEFAULT_SNOOZE_MINUTES = 15
"""How long Snooze puts a reminder off unless SNOOZE_MINUTES says otherwise."""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# Telegram's setWebhook: "secret_token ... 1-256 characters. Only characters A-Z, a-z, 0-9, _
# and - are allowed." (https://core.telegram.org/bots/api#setwebhook)
WEBHOOK_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# setWebhook: "Ports currently supported for webhooks: 443, 80, 88, 8443."
WEBHOOK_PORTS = (443, 80, 88, 8443)
RESERVED_PATHS = ("/healthz", "/metrics")
FREE_MAX_RATE = 30  # messages a second Telegram allows a bot for free
PAID_BROADCAST_MAX_RATE = 1000  # with allow_paid_broadcast (bot/capacity.py)


class MissingToken(Exception):
    """Raised when `run` has no usable token; the CLI turns it into one line and exit code 2."""


class Settings(BaseSettings):
    """Everything an operator can set; the README's configuration table mirrors these fields."""

    # Errors never quote an input: several settings are credentials (token, secret, URLs).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

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
    # The total send rate. Above 30 (Telegram's free limit) only with ALLOW_PAID_BROADCAST, up
    # to its 1,000: unflagged sends stay at min(this, 30), the rest is the paid lane.
    send_rate_per_second: float = Field(default=30.0, gt=0, le=PAID_BROADCAST_MAX_RATE)
    # Telegram's paid broadcasts: 0.1 Telegram Stars from the bot's balance for each message
    # sent with allow_paid_broadcast. Only the overflow is flagged: a reminder that the free
    # lane cannot send before it would leave its send window (bot/dispatch.py); replies never.
    # The paid lane's rate is SEND_RATE_PER_SECOND minus the free 30, so it needs a rate above
    # 30 (e.g. 1000). Off unless the operator opts in.
    allow_paid_broadcast: bool = False
    snooze_minutes: int = Field(default=DEFAULT_SNOOZE_MINUTES, ge=1, le=180)
    delivery_history_days: int = Field(default=30, ge=1, le=3650)
    # Incoming flood control (bot/flood.py): more than this many updates from one chat within
    # the window, and its excess is dropped after one "slow down". 20 in 10 s is several
    # messages a second for ten seconds: a script, not a person typing.
    flood_max_updates: int = Field(default=20, ge=1, le=10_000)
    flood_window_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Webhook mode (bot/web.py) when WEBHOOK_URL is set; long polling otherwise.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    listen_host: str = "0.0.0.0"  # noqa: S104  # a container's port is published on purpose
    listen_port: int = Field(default=8080, ge=1, le=65535)
    # Polling mode: /healthz and /metrics on this port (off when unset). Webhook mode serves
    # them on LISTEN_PORT beside the webhook.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_format: LogFormat = "text"
    # Shared send limits across replicas (bot/redis_budget.py); per process when unset.
    redis_url: SecretStr | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator(
        "telegram_api_base_url",
        "webhook_url",
        "webhook_secret",
        "metrics_port",
        "redis_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never quotes the value: it is a credential.
        if value is not None and not WEBHOOK_SECRET_SHAPE.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @model_validator(mode="after")
    def _paid_rate_needs_paid_broadcast(self) -> Self:
        if self.send_rate_per_second > FREE_MAX_RATE and not self.allow_paid_broadcast:
            raise ValueError(
                f"SEND_RATE_PER_SECOND above {FREE_MAX_RATE} needs ALLOW_PAID_BROADCAST=true "
                "(Telegram's paid broadcasts, charged in Telegram Stars)"
            )
        return self

    @model_validator(mode="after")
    def _webhook_is_complete(self) -> Self:
        if self.webhook_url is None:
            return self
        parts = urlsplit(self.webhook_url)
        # A self-hosted Bot API server (TELEGRAM_API_BASE_URL) may call plain HTTP and any port.
        self_hosted = self.telegram_api_base_url is not None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("WEBHOOK_URL must be an absolute URL, e.g. https://bot.example.org/tg")
        if not self_hosted and parts.scheme != "https":
            raise ValueError("WEBHOOK_URL must use https: Telegram only calls HTTPS webhooks")
        if not self_hosted and (parts.port or 443) not in WEBHOOK_PORTS:
            raise ValueError("WEBHOOK_URL's port must be 443, 80, 88 or 8443 (Telegram's rule)")
        if (parts.path or "/") in RESERVED_PATHS:
            raise ValueError("WEBHOOK_URL's path cannot be /healthz or /metrics")
        if self.webhook_secret is None:
            raise ValueError(
                "WEBHOOK_SECRET is required with WEBHOOK_URL (1-256 characters of A-Z, a-z, "
                "0-9, _ and -), so that only Telegram can post updates"
            )
        return self

    @property
    def free_send_rate(self) -> float:
        """Unflagged sends a second: Telegram's free limit, or less if SEND_RATE_PER_SECOND is."""
        return min(self.send_rate_per_second, float(FREE_MAX_RATE))

    @property
    def paid_send_rate(self) -> float:
        """The paid lane's sends a second (0: none): the total rate above the free one, with
        ALLOW_PAID_BROADCAST. With the switch on but the rate at 30, there is no paid lane and
        nothing is ever flagged (the app warns at start-up)."""
        if not self.allow_paid_broadcast:
            return 0.0
        return self.send_rate_per_second - self.free_send_rate

    @property
    def webhook_mode(self) -> bool:
        """Updates arrive by webhook (WEBHOOK_URL set) rather than long polling."""
        return self.webhook_url is not None

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
