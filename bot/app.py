"""Builds the one PTB Application that `run`, `chat` and the tests all use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError
from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import callback_data
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.content import Content, default_content_dir, load_content
from bot.context import SERVICES_KEY, BotContext, Services, SleepApplication
from bot.dispatch import Dispatcher
from bot.handlers import articles, errors, reminders, settings
from bot.ratelimit import PacedRateLimiter
from bot.storage import open_store
from bot.timezones import preload as preload_timezones

log = logging.getLogger(__name__)

DISPATCH_JOB = "reminder-dispatcher"
NEW_MESSAGE = filters.UpdateType.MESSAGE
Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]


class StartupError(Exception):
    """Start-up could not complete for a reason the operator must fix; one line says which."""


COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Welcome and main menu"),
    ("mechanisms", "How vitamin B12 may affect sleep (5 mechanisms)"),
    ("foods", "B12-rich foods and a meal idea"),
    ("tips", "Sleep-hygiene advice"),
    ("settings", "Nightly reminders: timezone, bedtime, on/off"),
    ("bedtime", "Set your bedtime, e.g. /bedtime 22:30"),
    ("timezone", "Set your timezone, e.g. /timezone Berlin"),
    ("pause", "Skip reminders for some nights, e.g. /pause 3"),
    ("resume", "Restart reminders"),
    ("stop", "Stop all reminders"),
    ("mydata", "Everything stored about you"),
    ("deletedata", "Erase everything stored about you"),
    ("about", "Source, caveats and privacy"),
    ("help", "What I can do"),
)


async def _text_or_help(update: Update, context: BotContext) -> None:
    """Free text answers an open prompt (timezone, bedtime) or gets a pointer to /help."""
    if not await settings.free_text(update, context):
        await articles.unknown(update, context)


def register_handlers(application: SleepApplication) -> None:
    """The one list of handlers. Order matters only where noted."""
    add = application.add_handler
    # Groups -2 and -1 run before everything (one handler per group handles an update):
    # any command closes an open prompt, then a person who had blocked the bot is back.
    application.add_handler(MessageHandler(filters.COMMAND, settings.close_prompt), group=-2)
    application.add_handler(TypeHandler(Update, settings.welcome_back), group=-1)
    add(ChatMemberHandler(settings.membership_changed, ChatMemberHandler.MY_CHAT_MEMBER))

    def command(name: str, callback: Handler) -> None:
        # Edited messages are not new requests: a live location or a corrected typo would
        # otherwise be answered again with every edit.
        add(CommandHandler(name, callback, filters=NEW_MESSAGE))

    command("start", articles.start)
    command("mechanisms", articles.mechanisms)
    command("foods", articles.foods)
    command("tips", articles.tips)
    command("about", articles.about)
    command("help", articles.help_command)
    command("settings", settings.settings_command)
    command("bedtime", settings.bedtime_command)
    command("timezone", settings.timezone_command)
    command("pause", settings.pause_command)
    command("resume", settings.resume_command)
    command("stop", settings.stop_command)
    command("mydata", settings.mydata_command)
    command("deletedata", settings.deletedata_command)
    add(MessageHandler(filters.LOCATION & NEW_MESSAGE, settings.location_message))
    add(CallbackQueryHandler(articles.mechanism_button, pattern=callback_data.MECHANISM))
    add(CallbackQueryHandler(articles.foods_button, pattern=callback_data.FOODS))
    add(CallbackQueryHandler(articles.navigate_button, pattern=callback_data.NAVIGATE))
    add(CallbackQueryHandler(reminders.reminder_button, pattern=callback_data.REMINDER))
    add(CallbackQueryHandler(settings.settings_button, pattern=callback_data.SETTINGS))
    # Last: whatever no pattern above accepted is stale or forged.
    add(CallbackQueryHandler(errors.stale_button))
    # Last: unknown commands and free text, after every CommandHandler had its chance.
    add(MessageHandler(filters.TEXT & ~filters.COMMAND & NEW_MESSAGE, _text_or_help))
    add(MessageHandler(filters.COMMAND & NEW_MESSAGE, articles.unknown))
    # Stickers, photos, voice notes...: a pointer to /help rather than silence.
    add(MessageHandler(filters.ALL & NEW_MESSAGE & filters.ChatType.PRIVATE, articles.unknown))
    application.add_error_handler(errors.on_error)


def _printable_url(url: str) -> str:
    """The database URL without its password, fit for an error line."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(DATABASE_URL is not a valid URL)"


def build_app(
    settings_: Settings,
    *,
    token: str | None = None,
    content: Content | None = None,
    clock: Clock | None = None,
    rate_limit: bool = True,
    dispatch: bool = True,
) -> SleepApplication:
    """The Application with handlers, lifecycle hooks and the reminder dispatcher.

    `token` defaults to the settings' (required); `chat` and tests pass their own. Content is
    loaded (and validated) here, so a broken content file stops start-up before any network.
    """
    content = content or load_content(settings_.content_dir or default_content_dir())
    services = Services(settings=settings_, content=content, clock=clock or SystemClock())

    async def post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        try:
            services._store = await open_store(
                settings_.database_url,
                default_offsets={k.kind: k.default_offset_minutes for k in content.reminder_kinds},
            )
        except Exception as error:
            where = _printable_url(settings_.database_url)
            raise StartupError(f"cannot open the database {where}: {error}") from error
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
        # Build the offline city index in the background so the first /timezone is instant.
        task = asyncio.create_task(asyncio.to_thread(preload_timezones), name="preload-tz")
        services.background.add(task)
        task.add_done_callback(services.background.discard)
        if dispatch and application.job_queue is not None:
            services.dispatcher = Dispatcher(
                services.store,
                application.bot,
                content,
                services.clock,
                grace=timedelta(minutes=settings_.reminder_grace_minutes),
                retention=timedelta(days=settings_.delivery_history_days),
            )
            await services.dispatcher.start()
            application.job_queue.run_repeating(
                services.dispatcher.run_job,
                interval=settings_.dispatch_interval_seconds,
                first=0,
                name=DISPATCH_JOB,
                # Never skip a tick because the loop was busy, never run two at once.
                job_kwargs={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            )

    async def post_stop(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        # SIGTERM: PTB has stopped polling and the JobQueue; now end the dispatcher's tick
        # (it runs beside the JobQueue) and give its unsent claims back, within seconds.
        if services.dispatcher is not None:
            await services.dispatcher.stop()

    async def post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        if services._store is not None:
            await services._store.close()

    builder = (
        ApplicationBuilder()
        .token(token or settings_.require_token())
        .context_types(ContextTypes(context=BotContext))
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
    )
    if settings_.telegram_api_base_url:
        # Like PTB's own default "https://api.telegram.org/bot": the token is appended to it.
        base_url = settings_.telegram_api_base_url
        builder = builder.base_url(base_url)
        if base_url.endswith("/bot"):
            builder = builder.base_file_url(base_url.removesuffix("/bot") + "/file/bot")
    if rate_limit:
        limiter = PacedRateLimiter(settings_.send_rate_per_second, max_retries=3)
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]  # PTB generics
    application: SleepApplication = builder.build()
    application.bot_data[SERVICES_KEY] = services
    register_handlers(application)
    return application


@asynccontextmanager
async def running(application: SleepApplication, *, poll: bool) -> AsyncIterator[SleepApplication]:
    """Start and stop the Application as run_polling would, without owning the event loop.

    `run_polling` calls post_init/post_stop/post_shutdown itself; tests and `sleepbot chat`
    share a loop with other work, so they use this instead. With `poll=False` updates are fed
    directly to `process_update` (the chat), with `poll=True` they arrive over getUpdates.
    """
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        if poll and application.updater is not None:
            await application.updater.start_polling(
                poll_interval=0.0, timeout=timedelta(seconds=10), allowed_updates=Update.ALL_TYPES
            )
        try:
            yield application
        finally:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
