"""`sleepbot run` talks to Telegram; `sleepbot chat` tries the same bot offline in a terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from bot.config import MissingToken, Settings
from bot.content import ContentError, default_content_dir, load_content
from bot.extras import missing_extras_message
from bot.logs import configure_logging, deployment_salt, redact

EXIT_CONFIG = 2


def _fail(message: str) -> int:
    print(f"sleepbot: {redact(message)}", file=sys.stderr)
    return EXIT_CONFIG


def _load_settings() -> Settings:
    return Settings()


def run(settings: Settings) -> int:
    """Long polling (or the webhook, with WEBHOOK_URL) through the inbox until Ctrl-C /
    SIGTERM, then a clean, ordered stop."""
    from telegram.error import InvalidToken, NetworkError

    from bot.app import StartupError, build_app, serve

    token = settings.require_token()
    configure_logging(
        settings.log_level,
        secrets=[token, *_other_secrets(settings)],
        personal_data=settings.log_personal_data,
        log_format=settings.log_format,
        salt=deployment_salt(token),
    )
    application = build_app(settings, token=token, replica=True)
    try:
        asyncio.run(serve(application))
    except InvalidToken:
        return _fail("Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather (/token).")
    except NetworkError as error:
        where = settings.telegram_api_base_url or "api.telegram.org"
        return _fail(f"cannot reach the Telegram Bot API at {where}: {error}")
    except StartupError as error:
        return _fail(str(error))
    return 0


def _other_secrets(settings: Settings) -> list[str]:
    """Credentials besides the token that must never reach the log."""
    secrets = [settings.webhook_secret, settings.redis_url]
    return [secret.get_secret_value() for secret in secrets if secret is not None]


def check_content(settings: Settings) -> int:
    """Validate English and every locale, and report each way a locale differs from English
    (missing or extra files, keys and items; placeholders), all of them, not just the first."""
    from bot.content import locale_directory
    from bot.i18n import DEFAULT_LOCALE, LOCALES, compare_locale

    directory = settings.content_dir or default_content_dir()
    content = load_content(directory)
    one_locale = directory.name in LOCALES and directory.name != DEFAULT_LOCALE
    print(
        f"{directory}: OK — {len(content.mechanisms)} mechanisms, {len(content.foods)} foods, "
        f"{len(content.meal_ideas)} meal ideas, {len(content.reminder_kinds)} reminder kinds, "
        f"{len(content.safety.spec.red_flag)} red flags, {len(content.sources.source)} sources"
    )
    windows = ", ".join(
        f"{kind} -{before}/+{after} min" for kind, (before, after) in content.send_windows().items()
    )
    print(f"send windows: {windows}")
    if one_locale:
        return 0  # CONTENT_DIR=content/zh: that one locale, on its own
    problems: list[str] = []
    for locale in LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        folder = locale_directory(directory, locale)
        differences = compare_locale(directory, folder)
        if differences:
            problems.extend(differences)
            continue
        translated = load_content(folder, locale=locale)
        print(
            f"{folder}: OK — {locale}, {len(translated.ui.messages)} interface messages, "
            "the same keys and placeholders as English"
        )
    for problem in problems:
        print(f"sleepbot: content error: {problem}", file=sys.stderr)
    return EXIT_CONFIG if problems else 0


def _describe(problem: ValidationError) -> str:
    """One line: each setting's problem; a rule about several settings names them itself."""
    details = []
    for error in problem.errors():
        message = error["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in error["loc"]).upper()
        details.append(f"{where}: {message}" if where else message)
    return "; ".join(details)


def stats(settings: Settings, *, as_json: bool) -> int:
    from bot.stats_report import StatsUnavailable, collect, render_json, render_text

    try:
        counts = asyncio.run(collect(settings))
    except StatsUnavailable as problem:
        return _fail(str(problem))
    print(render_json(counts) if as_json else render_text(counts))
    return 0


def capacity(settings: Settings, *, hours: int, at: datetime | None) -> int:
    from bot.capacity_plan import (
        EXIT_OVER_CAPACITY,
        CapacityUnavailable,
        over_capacity,
        project,
        read_loads,
        render,
        windows_from,
    )

    directory = settings.content_dir or default_content_dir()
    content = load_content(directory)
    start = (at or datetime.now(UTC)).replace(second=0, microsecond=0)
    try:
        loads = asyncio.run(read_loads(settings, start, hours))
    except CapacityUnavailable as problem:
        return _fail(str(problem))
    report = project(
        loads,
        windows_from(content),
        start=start,
        hours=hours,
        rate=settings.free_send_rate,
        grace_minutes=settings.reminder_grace_minutes,
        allow_paid_broadcast=settings.paid_send_rate > 0,
        paid_rate=settings.send_rate_per_second,
    )
    print(render(report))
    return EXIT_OVER_CAPACITY if over_capacity(report) else 0


def _hours(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 24:
        raise argparse.ArgumentTypeError("must be 1 to 24 (the schedule holds one night ahead)")
    return value


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use ISO 8601, e.g. 2026-01-14T12:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleepbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot against Telegram (needs TELEGRAM_BOT_TOKEN)")
    chat_parser = commands.add_parser(
        "chat", help="try the bot in this terminal, offline, no token needed"
    )
    chat_parser.add_argument(
        "--database",
        help="database URL for this session (default: a throw-away SQLite file)",
    )
    commands.add_parser("check-content", help="validate the content/ files and exit")
    stats_parser = commands.add_parser(
        "stats", help="counts of people, reminders and deliveries (read-only)"
    )
    stats_parser.add_argument("--json", action="store_true", help="one JSON object")
    capacity_parser = commands.add_parser(
        "capacity",
        help="will the coming hours fit in Telegram's send rate? (read-only; exit 1 if not)",
    )
    capacity_parser.add_argument(
        "--hours", type=_hours, default=24, help="how far ahead, 1-24 (default 24)"
    )
    capacity_parser.add_argument(
        "--at", type=_instant, help="plan from this UTC instant instead of now (a copied database)"
    )
    args = parser.parse_args(argv)
    try:
        settings = _load_settings()
        missing = missing_extras_message(
            settings, args.command, chat_database_url=getattr(args, "database", None)
        )
        if missing is not None:
            return _fail(missing)
        if args.command == "run":
            return run(settings)
        if args.command == "check-content":
            return check_content(settings)
        if args.command == "stats":
            return stats(settings, as_json=args.json)
        if args.command == "capacity":
            return capacity(settings, hours=args.hours, at=args.at)
        from bot.chat import chat

        return asyncio.run(chat(settings, database_url=args.database))
    except MissingToken as problem:
        return _fail(str(problem))
    except ContentError as problem:
        return _fail(f"content error: {problem}")
    except ValidationError as problem:
        return _fail(f"invalid configuration: {_describe(problem)}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
