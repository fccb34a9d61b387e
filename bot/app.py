"""Builds the one PTB Application that `run`, `chat` and the tests all use."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError
from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
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
from bot.capacity_plan import CapacityWatch, windows_from
from bot.clock import Clock, SystemClock
from bot.config import FREE_MAX_RATE, PAID_BROADCAST_MAX_RATE, Settings
from bot.content import Content, default_content_dir, load_locales
from bot.context import SERVICES_KEY, BotContext, Services, SleepApplication
from bot.dispatch import Dispatcher
from bot.flood import FloodGate
from bot.handlers import (
    articles,
    data,
    diary,
    diet,
    errors,
    guard,
    language,
    presence,
    reminders,
    safety,
    settings,
)
from bot.handlers.common import telegram_locale
from bot.i18n import DEFAULT_LOCALE
from bot.polling import Intake, Ownership
from bot.ratelimit import FairRateLimiter
from bot.replica import PollingTaken, Replica, inbox_store_update, send_budget
from bot.storage import ClaimedDelivery, open_store
from bot.timezones import preload as preload_timezones
from bot.updates import ChatUpdateProcessor, Exempt, update_text
from bot.web import StoreUpdate

log = logging.getLogger(__name__)

PRELOAD_TASK: Final = "preload-tz"  # the background task that builds the city index

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


COMMAND_NAMES: tuple[str, ...] = (
    "start",
    "mechanisms",
    "foods",
    "tips",
    "doctor",
    "diet",
    "settings",
    "bedtime",
    "timezone",
    "pause",
    "resume",
    "stop",
    "language",
    # The diary's three: described by content/diary.toml [data.commands].
    "checkin",
    "diary",
    "progress",
    "mydata",
    "deletedata",
    "about",
    "help",
)
"""The menu, in order; each locale describes them under [command] in its ui.toml."""


def commands(content: Content) -> list[tuple[str, str]]:
    """(command, description) in `content`'s language, for setMyCommands."""
    diary_words = content.diary.data.commands  # the diary's own file describes its three
    return [
        (name, diary_words[name] if name in diary_words else content.ui.text(f"command.{name}"))
        for name in COMMAND_NAMES
    ]


async def register_commands(bot: Any, locales: Mapping[str, Content]) -> None:
    """The menu per language: the default (English) for everyone, and each other locale's for
    people whose Telegram app uses that language (language_code="zh")."""
    for locale, content in locales.items():
        menu = [BotCommand(name, text) for name, text in commands(content)]
        await bot.set_my_commands(menu, language_code=None if locale == DEFAULT_LOCALE else locale)


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
    application.add_handler(TypeHandler(Update, presence.welcome_back), group=-1)
    add(ChatMemberHandler(presence.membership_changed, ChatMemberHandler.MY_CHAT_MEMBER))

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
    command("mydata", data.mydata_command)
    command("deletedata", data.deletedata_command)
    command("language", language.language_command)
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
    add(CallbackQueryHandler(language.language_button, pattern=callback_data.LANGUAGE))
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
    locales: Mapping[str, Content] | None = None,
    clock: Clock | None = None,
    rate_limit: bool = True,
    rate_limiter: BaseRateLimiter[Any] | None = None,
    dispatch: bool = True,
    flood_exempt: Exempt | None = None,
    replica: bool = False,
) -> SleepApplication:
    """The Application with handlers, lifecycle hooks and the reminder dispatcher.

    `token` defaults to the settings' (required); `chat` and tests pass their own. Content is
    loaded (and validated) here, one Content per locale, so a broken content file stops
    start-up before any network; `content` alone makes a one-language bot (tests).
    `rate_limiter` replaces the production limiter (benchmarks compare limiters);
    `flood_exempt` names updates flood control must never drop (default: crisis text).

    `replica` (``sleepbot run``) adds what a production process runs beside PTB
    (bot/replica.py): metrics of updates, handlers and reminders; the dispatcher only while
    this process is the elected sender; /healthz and /metrics; in webhook mode the webhook
    (updates into the inbox, handled by the inbox worker), otherwise one poller per database.
    The send limits are shared through Redis when REDIS_URL is set (also without `replica`).
    """
    if locales is None:
        locales = (
            {DEFAULT_LOCALE: content}
            if content is not None
            else load_locales(settings_.content_dir or default_content_dir())
        )
    content = locales[DEFAULT_LOCALE]
    triage.install(content.triage)  # triage.is_crisis() follows the content this bot runs on
    services = Services(
        settings=settings_, content=content, clock=clock or SystemClock(), locales=dict(locales)
    )
    flood = services.flood = FloodGate(
        services.clock,
        max_updates=settings_.flood_max_updates,
        window=timedelta(seconds=settings_.flood_window_seconds),
    )
    bot_token = token or settings_.require_token()
    if replica:
        services.replica = Replica(
            settings_, bot_token, store_update=_late_store_update(services), clock=services.clock
        )
        services.replica.observe(flood=lambda: flood.counters)

    def slow_down(update: Update) -> str:
        # Flood control runs before any handler, without the database: Telegram's language.
        return services.locales.get(telegram_locale(update), content).render_slow_down()

    processor = ChatUpdateProcessor(
        flood,
        slow_down,
        exempt=flood_exempt or crisis_exempt,
        metrics=services.replica.metrics if services.replica else None,
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
        await services.store.backfill_kinds(services.clock.now())
        await register_commands(application.bot, services.locales)
        # Build the offline city index in the background so the first /timezone is instant.
        task = asyncio.create_task(asyncio.to_thread(preload_timezones), name=PRELOAD_TASK)
        services.background.add(task)
        task.add_done_callback(services.background.discard)
        if dispatch and application.job_queue is not None:

            def content_of_delivery(delivery: ClaimedDelivery) -> Content:
                return services.locales.get(delivery.locale or "", content)

            windows = windows_from(content)
            watch = CapacityWatch(
                services.store.send_load,
                windows,
                rate=settings_.free_send_rate,
                grace_minutes=settings_.reminder_grace_minutes,
                allow_paid_broadcast=settings_.paid_send_rate > 0,
                paid_rate=settings_.send_rate_per_second,
                report_to=services.replica.capacity_checked if services.replica else None,
            )
            services.dispatcher = Dispatcher(
                services.store,
                application.bot,
                content,
                services.clock,
                grace=timedelta(minutes=settings_.reminder_grace_minutes),
                retention=timedelta(days=settings_.delivery_history_days),
                observer=services.replica,
                allow_paid_broadcast=settings_.paid_send_rate > 0,
                locales=services.locales,
                snooze_minutes=settings_.snooze_minutes,
                windows=windows,
                send_rate=settings_.free_send_rate,  # levelling fills the free lane
                tick_every=timedelta(seconds=settings_.dispatch_interval_seconds),
                capacity_check=watch.check,
                composers={
                    diary.CHECKIN_KIND: diary.checkin_composer(services.store, content_of_delivery),
                    diary.WEEKLY_KIND: diary.weekly_composer(
                        services.store,
                        content_of_delivery,
                        lambda: diary.chart_worker(application.bot_data),
                    ),
                },
            )
            await services.dispatcher.start()
            job = services.dispatcher.run_job
            application.job_queue.run_repeating(
                # With replicas, only the elected one sends; the others skip their ticks.
                services.replica.leader_only(job) if services.replica else job,
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
        .token(bot_token)
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
        if settings_.allow_paid_broadcast and settings_.paid_send_rate <= 0:
            log.warning(
                "ALLOW_PAID_BROADCAST is on but SEND_RATE_PER_SECOND (%g) leaves no room above "
                "the free %d msg/s: no reminder will be sent as a paid broadcast (set it up to "
                "%d for a paid lane)",
                settings_.send_rate_per_second,
                FREE_MAX_RATE,
                PAID_BROADCAST_MAX_RATE,
            )
        limiter = rate_limiter or FairRateLimiter(
            settings_.free_send_rate,
            paid_per_second=settings_.paid_send_rate,
            max_retries=3,
            budget=send_budget(settings_, bot_token),  # Redis: limits shared by replicas
        )
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]  # PTB generics
        if services.replica is not None and isinstance(limiter, FairRateLimiter):
            fair = limiter
            services.replica.observe(limiter=lambda: fair.stats)
    application: SleepApplication = builder.build()
    application.bot_data[SERVICES_KEY] = services
    services.intake = Intake(
        application, metrics=services.replica.metrics if services.replica else None
    )
    register_handlers(application)
    return application


def _late_store_update(services: Services) -> StoreUpdate:
    """The webhook's store call, bound when called: the inbox opens in post_init and the
    worker starts in `running`, both after the Replica is built."""

    async def store_update(update: dict[str, Any]) -> None:
        intake = services.intake
        worker = intake.worker if intake is not None else None
        stored = worker.wake if worker is not None else None
        await inbox_store_update(services.store.inbox, services.clock, stored=stored)(update)

    return store_update


def _ownership(services: Services) -> Ownership | None:
    """With a dispatcher, its heartbeat tells other processes on the database that this
    one's inbox claims are alive (replicas share the inbox)."""
    dispatcher = services.dispatcher
    if dispatcher is None:
        return None
    return Ownership(dispatcher.owner, dispatcher.dead_after)


@asynccontextmanager
async def running(application: SleepApplication, *, poll: bool) -> AsyncIterator[SleepApplication]:
    """Start the Application, and stop it in a fixed order, without owning the event loop.

    `sleepbot run` (see `serve`), the tests and `sleepbot chat` all use it. With `poll=True`
    updates arrive through the inbox (`bot.polling`): over getUpdates, or — for an app built
    with `replica=True` and WEBHOOK_URL set — over the webhook (setWebhook at start); with
    `poll=False` the caller feeds `process_update` directly (the chat). A replica's polling
    process first takes the one polling lock of its database (StartupError if it is taken).

    Stop order: (1) stop polling and confirm what is stored, (2) let the update in hand finish,
    (3) `Application.stop()`: the JobQueue, (4) `post_stop`: the reminder dispatcher stops
    claiming, lets sends on the wire finish and releases the rest (its tick runs beside the
    JobQueue, which would otherwise wait for a whole burst), (5) shutdown and post_shutdown
    (the database closes last). A replica stops serving HTTP and gives up leadership and the
    polling lock after (4), so another replica's takeover finds our claims released.
    """
    services: Services = application.bot_data[SERVICES_KEY]
    replica = services.replica
    webhook = replica is not None and services.settings.webhook_mode
    await application.initialize()
    try:
        if replica is not None and poll and not webhook:
            try:
                await replica.claim_polling()
            except PollingTaken as taken:
                raise StartupError(str(taken)) from None
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        intake = services.intake if poll else None
        if intake is not None:
            intake.start(
                services.store.inbox,
                services.clock,
                poll=not webhook,
                conversations=services.store.conversations,  # the open prompt survives
                ownership=_ownership(services),
            )
        try:
            if replica is not None:
                await replica.start()
                if webhook and poll:
                    try:
                        await replica.register_webhook(application.bot)
                    except TelegramError as error:
                        raise StartupError(f"Telegram refused setWebhook: {error}") from error
            yield application
        finally:
            if intake is not None:
                await intake.stop()
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    finally:
        if replica is not None:
            await replica.stop()
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


def freeze_start_up_heap() -> None:
    """Take what start-up built out of the cyclic garbage collector's reach (``gc.freeze``).

    Content, the city index, SQLAlchemy's and PTB's objects live as long as the process, yet
    every full collection walked all of them again: tens of milliseconds during which the
    event loop stands still, e.g. in the middle of materialising the night's reminders
    (bench/materialize.py: one full collection of 47–78 ms inside 6,000–30,000 reminders,
    3–8 µs a reminder). Collected first, so no garbage is frozen with them. Only
    ``sleepbot run`` calls it (``serve``), once the city index is built: a process that
    starts many apps (the tests) would never free the frozen ones.
    """
    gc.collect()
    gc.freeze()


async def serve(application: SleepApplication) -> None:
    """`sleepbot run`: poll until SIGINT or SIGTERM, then stop in `running`'s order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running(application, poll=True):
            log.info("sleepbot is running; SIGINT or SIGTERM stops it")
            services: Services = application.bot_data[SERVICES_KEY]
            preloads = [t for t in services.background if t.get_name() == PRELOAD_TASK]
            # Frozen once the city index is built (a failed preload only means the index is
            # built at the first /timezone); a stop meanwhile does not wait for it.
            if preloads:
                preloads[-1].add_done_callback(lambda _: freeze_start_up_heap())
            else:
                freeze_start_up_heap()
            await stop.wait()
            log.info("stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
