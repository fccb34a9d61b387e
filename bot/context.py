"""A typed CallbackContext, so handlers say `context.content` instead of `bot_data["..."]`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.config import Settings
    from bot.content import Content
    from bot.dispatch import Dispatcher
    from bot.flood import FloodGate
    from bot.polling import Intake
    from bot.replica import Replica
    from bot.storage import Store

SERVICES_KEY = "services"


@dataclass
class Services:
    """What every handler may use; the store and dispatcher exist only once post_init ran."""

    settings: Settings
    content: Content  # the default locale's (English)
    clock: Clock
    locales: dict[str, Content] = field(default_factory=dict)  # every locale's, by code
    _store: Store | None = field(default=None, repr=False)
    dispatcher: Dispatcher | None = None
    flood: FloodGate | None = None  # incoming flood control and its counters
    intake: Intake | None = None  # getUpdates → inbox → handlers; None until build_app sets it
    replica: Replica | None = None  # metrics, election, HTTP (`sleepbot run` only)
    background: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the database is not open yet (post_init has not run)")
        return self._store


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """CallbackContext with typed access to the bot's services."""

    @property
    def services(self) -> Services:
        services = self.bot_data[SERVICES_KEY]
        assert isinstance(services, Services)
        return services

    @property
    def content(self) -> Content:
        """The default locale's content; handlers answering a person use content_for()."""
        return self.services.content

    def content_in(self, locale: str | None) -> Content:
        """The content of `locale`, or the default's when the bot does not speak it."""
        services = self.services
        return services.locales.get(locale or "", services.content)

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def clock(self) -> Clock:
        return self.services.clock


SleepApplication = Application[
    ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any
]
