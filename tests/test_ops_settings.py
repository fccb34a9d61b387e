"""The settings for running in production: webhook, listening, metrics, log format, Redis."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.cli import main
from bot.config import Settings

URL = "https://bot.example.org/tg/hook"
SECRET = "A-Za-z0-9_secret"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_are_polling_on_0_0_0_0_8080_text_logs_no_redis() -> None:
    defaults = settings()
    assert not defaults.webhook_mode
    assert (defaults.listen_host, defaults.listen_port, defaults.metrics_port) == (
        "0.0.0.0",
        8080,
        None,
    )
    assert defaults.log_format == "text"
    assert defaults.redis_url is None


def test_webhook_mode_needs_a_secret() -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET is required"):
        settings(webhook_url=URL)
    configured = settings(webhook_url=URL, webhook_secret=SECRET)
    assert configured.webhook_mode
    assert SECRET not in repr(configured)


@pytest.mark.parametrize("secret", ["", "has space", "ümlaut", "a" * 257, "semi;colon"])
def test_the_secret_follows_telegrams_rule_and_is_never_echoed(secret: str) -> None:
    with pytest.raises(ValidationError) as raised:
        settings(webhook_url=URL, webhook_secret=secret)
    if secret:
        assert secret not in str(raised.value)


def test_a_256_character_secret_is_fine() -> None:
    assert settings(webhook_url=URL, webhook_secret="a" * 256).webhook_secret is not None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://bot.example.org/tg", "https"),
        ("https://bot.example.org:8080/tg", "port"),
        ("bot.example.org/tg", "absolute"),
        ("https://bot.example.org/metrics", "/healthz or /metrics"),
    ],
)
def test_webhook_url_is_checked_against_telegrams_rules(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        settings(webhook_url=url, webhook_secret=SECRET)


def test_a_self_hosted_bot_api_may_call_plain_http_on_any_port() -> None:
    ok = settings(
        webhook_url="http://bot:8080/tg",
        webhook_secret=SECRET,
        telegram_api_base_url="http://bot-api:8081/bot",
    )
    assert ok.webhook_mode


def test_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "METRICS_PORT", "REDIS_URL"):
        monkeypatch.setenv(name, "")
    blank = Settings(_env_file=None)
    assert (blank.webhook_url, blank.metrics_port, blank.redis_url) == (None, None, None)


def test_log_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert Settings(_env_file=None).log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_the_cli_reports_a_bad_secret_in_one_line_without_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBHOOK_URL", URL)
    monkeypatch.setenv("WEBHOOK_SECRET", "not allowed!")
    assert main(["check-content"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "WEBHOOK_SECRET" in err
    assert "not allowed!" not in err
