"""Builds the one PTB Application that `run`, `chat` and the tests all use."""

from __future__ import annotations

import asyncio
import logging
import signal
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
    BaseRateLimiter,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import callback_data, triage
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.content import Content, default_content_dir, load_content
from bot.context import SERVICES_KEY, BotContext, Services, SleepApplication
from bot.dispatch import Dispatcher
from bot.flood import FloodGate
from bot.handlers import articles, diary, diet, errors, guard, reminders, safety, settings
from bot.polling import Intake
from bot.ratelimit import FairRateLimiter
from bot.storage import open_store
from bot.timezones import preload as preload_timezones
from bot.updates import ChatUpdateProcessor, Exempt, update_text

log = logging.getLogger(__name__)

DISPATCH_JOB = "reminder-dispatcher"
NEW_MESSAGE = filters.UpdateType.MESSAGE
PRIVATE_MESSAGE = NEW_MESSAGE & filters.ChatType.PRIVATE
Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]


def crisis_exempt(update: Update) -> bool:
    """Flood control never drops, merges or delays an update that might be a crisis."""
    text = update_text(update)
    return bool(text) and triage.is_crisis(text)


class StartupError(Exception):
    """Start-up could not complete for a reason the operator must fix; one line says which."""


COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Welcome and main menu"),
    ("mechanisms", "How vitamin B12 may affect sleep (5 mechanisms)"),
    ("foods", "B12-rich foods and a meal idea"),
    ("tips", "Sleep-hygiene advice"),
    ("doctor", "When to see a doctor"),
    ("diet", "Your diet, for meal ideas, e.g. /diet vegan"),
    ("settings", "Nightly reminders: timezone, bedtime, on/off"),
    ("bedtime", "Set your bedtime, e.g. /bedtime 22:30"),
    ("timezone", "Set your timezone, e.g. /timezone Berlin"),
    ("pause", "Skip reminders for some nights, e.g. /pause 3"),
    ("resume", "Restart reminders"),
    ("stop", "Stop all reminders"),
    # The diary's three: sent with the words of content/diary.toml [data.commands].
    ("checkin", "Log how you slept last night"),
    ("diary", "Your last 14 nights"),
    ("progress", "Chart of your last 4 weeks"),
    ("mydata", "Everything stored about you"),
    ("deletedata", "Erase everything stored about you"),
    ("about", "Source, caveats and privacy"),
    ("help", "What I can do"),
)


def register_handlers(application: SleepApplication) -> None:
    """The one list of handlers. Order matters only where noted."""
    add = application.add_handler
    # Groups -3, -2 and -1 run before everything (one handler per group handles an update).
    # -3: personal features only in private chats; button presses we cannot act on stop here.
    not_private = ~filters.ChatType.PRIVATE & NEW_MESSAGE
    for guard_handler in (
        CommandHandler(guard.PERSONAL_COMMANDS, guard.private_only, filters=not_private),
        CommandHandler(
            "start", guard.private_only, filters=not_private & filters.Regex(guard.PERSONAL_START)
        ),
        CallbackQueryHandler(guard.button),
    ):
        application.add_handler(guard_handler, group=-3)
    # -2: any command closes an open prompt; -1: a person who had blocked the bot is back.
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
    command("doctor", safety.doctor_command)
    command("diet", diet.diet_command)
    command("settings", settings.settings_command)
    command("bedtime", settings.bedtime_command)
    command("timezone", settings.timezone_command)
    command("pause", settings.pause_command)
    command("resume", settings.resume_command)
    command("stop", settings.stop_command)
    command("mydata", settings.mydata_command)
    command("deletedata", settings.deletedata_command)
    command("checkin", diary.checkin_command)
    command("diary", diary.diary_command)
    command("progress", diary.progress_command)
    add(MessageHandler(filters.LOCATION & PRIVATE_MESSAGE, settings.location_message))
    add(CallbackQueryHandler(articles.mechanism_button, pattern=callback_data.MECHANISM))
    add(CallbackQueryHandler(articles.foods_button, pattern=callback_data.FOODS))
    add(CallbackQueryHandler(articles.navigate_button, pattern=callback_data.NAVIGATE))
    add(CallbackQueryHandler(reminders.reminder_button, pattern=callback_data.REMINDER))
    add(CallbackQueryHandler(settings.settings_button, pattern=callback_data.SETTINGS))
    add(CallbackQueryHandler(diet.diet_button, pattern=callback_data.DIET))
    add(CallbackQueryHandler(diary.diary_button, pattern=callback_data.DIARY))
    # Last: whatever no pattern above accepted is stale or forged.
    add(CallbackQueryHandler(errors.stale_button))
    # Last: unknown commands and free text, after every CommandHandler had its chance, in
    # private chats only: in a group, other people's chatter and other bots' commands are not
    # ours. Free text is triaged: a crisis is answered before an open prompt sees it
    # (bot.handlers.safety).
    add(MessageHandler(filters.TEXT & ~filters.COMMAND & PRIVATE_MESSAGE, safety.free_text))
    add(MessageHandler(filters.COMMAND & PRIVATE_MESSAGE, safety.anything_else))
    # Photos and videos with a caption (a crisis can be typed as one), stickers, voice notes...
    add(MessageHandler(filters.ALL & PRIVATE_MESSAGE, safety.anything_else))
    # What is left is group text, and edits. Neither is a request, but what triage reads as a
    # crisis is answered, there too, with the crisis reply alone.
    crisis_candidates = (filters.TEXT | filters.CAPTION) & (
        NEW_MESSAGE | filters.UpdateType.EDITED_MESSAGE
    )
    add(MessageHandler(crisis_candidates, safety.crisis_only))
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
    rate_limiter: BaseRateLimiter[Any] | None = None,
    dispatch: bool = True,
    flood_exempt: Exempt | None = None,
) -> SleepApplication:
    """The Application with handlers, lifecycle hooks and the reminder dispatcher.

    `token` defaults to the settings' (required); `chat` and tests pass their own. Content is
    loaded (and validated) here, so a broken content file stops start-up before any network.
    `rate_limiter` replaces the production limiter (benchmarks compare limiters);
    `flood_exempt` names updates flood control must never drop (default: crisis text).
    """
    content = content or load_content(settings_.content_dir or default_content_dir())
    triage.install(content.triage)  # triage.is_crisis() follows the content this bot runs on
    services = Services(settings=settings_, content=content, clock=clock or SystemClock())
    services.flood = FloodGate(
        services.clock,
        max_updates=settings_.flood_max_updates,
        window=timedelta(seconds=settings_.flood_window_seconds),
    )
    processor = ChatUpdateProcessor(
        services.flood, content.render_slow_down, exempt=flood_exempt or crisis_exempt
    )

    async def post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        try:
            services._store = await open_store(
                settings_.database_url,
                default_offsets={k.kind: k.default_offset_minutes for k in content.reminder_kinds},
            )
        except Exception as error:
            where = _printable_url(settings_.database_url)
            raise StartupError(f"cannot open the database {where}: {error}") from error
        diary_commands = content.diary.data.commands  # the diary's words live in its TOML
        await application.bot.set_my_commands(
            [BotCommand(name, diary_commands.get(name, text)) for name, text in COMMANDS]
        )
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
                composers={
                    diary.CHECKIN_KIND: diary.checkin_composer(services.store, content),
                    diary.WEEKLY_KIND: diary.weekly_composer(
                        services.store, content, lambda: diary.chart_worker(application.bot_data)
                    ),
                },
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
        # SIGTERM: polling and the JobQueue have stopped; now end the dispatcher's tick (it
        # runs beside the JobQueue) and give its unsent claims back, within seconds.
        if services.dispatcher is not None:
            await services.dispatcher.stop()

    async def post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        diary.close_chart_worker(application.bot_data)
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
        .concurrent_updates(processor)
        # Our own poller stores each batch before confirming it (bot.polling); PTB's Updater
        # confirms batches that only exist in memory.
        .updater(None)
    )
    if settings_.telegram_api_base_url:
        # Like PTB's own default "https://api.telegram.org/bot": the token is appended to it.
        base_url = settings_.telegram_api_base_url
        builder = builder.base_url(base_url)
        if base_url.endswith("/bot"):
            builder = builder.base_file_url(base_url.removesuffix("/bot") + "/file/bot")
    if rate_limit:
        limiter = rate_limiter or FairRateLimiter(settings_.send_rate_per_second, max_retries=3)
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]  # PTB generics
    application: SleepApplication = builder.build()
    application.bot_data[SERVICES_KEY] = services
    services.intake = Intake(application)
    register_handlers(application)
    return application


@asynccontextmanager
async def running(application: SleepApplication, *, poll: bool) -> AsyncIterator[SleepApplication]:
    """Start the Application, and stop it in a fixed order, without owning the event loop.

    `sleepbot run` (see `serve`), the tests and `sleepbot chat` all use it. With `poll=True`
    updates arrive over getUpdates through the inbox (`bot.polling`); with `poll=False` the
    caller feeds `process_update` directly (the chat).

    Stop order: (1) stop polling and confirm what is stored, (2) let the update in hand finish,
    (3) `Application.stop()`: the JobQueue, (4) `post_stop`: the reminder dispatcher stops
    claiming, lets sends on the wire finish and releases the rest (its tick runs beside the
    JobQueue, which would otherwise wait for a whole burst), (5) shutdown and post_shutdown
    (the database closes last).
    """
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        services: Services = application.bot_data[SERVICES_KEY]
        intake = services.intake if poll else None
        if intake is not None:
            intake.start(services.store.inbox, services.clock)
        try:
            yield application
        finally:
            if intake is not None:
                await intake.stop()
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


async def serve(application: SleepApplication) -> None:
    """`sleepbot run`: poll until SIGINT or SIGTERM, then stop in `running`'s order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running(application, poll=True):
            log.info("sleepbot is running; SIGINT or SIGTERM stops it")
            await stop.wait()
            log.info("stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
