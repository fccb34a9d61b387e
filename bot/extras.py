"""Optional dependencies, named by the setting or command that needs them.

A plain ``pip install sleepbot`` runs the bot on SQLite with long polling or a webhook. Drivers
and tools only some deployments use are extras, so the environment stays lean (issue 8):
``postgres`` (asyncpg, for a PostgreSQL ``DATABASE_URL``), ``redis`` (limits shared by replicas,
``REDIS_URL``) and ``chat`` (aiohttp, for the fake Bot API behind ``sleepbot chat``).
Checking before start-up turns a late ``ModuleNotFoundError`` into one line that says what to
install.
"""

from __future__ import annotations

import importlib.util
from typing import Final

from bot.config import Settings

# extra name -> the module it provides
EXTRA_MODULES: Final = {"postgres": "asyncpg", "redis": "redis", "chat": "aiohttp"}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def needed_extras(command: str, *, database_url: str | None, redis: bool) -> list[str]:
    """The extras this command needs, in a stable order."""
    needed = []
    uses_database = command in ("run", "stats", "chat")
    if uses_database and database_url and database_url.startswith(("postgresql", "postgres:")):
        needed.append("postgres")
    if command == "run" and redis:
        needed.append("redis")
    if command == "chat":
        needed.append("chat")
    return needed


REASONS: Final = {
    "postgres": "DATABASE_URL is PostgreSQL",
    "redis": "REDIS_URL is set",
    "chat": "sleepbot chat runs a local fake Telegram",
}


def missing_extras_message(
    settings: Settings, command: str, *, chat_database_url: str | None = None
) -> str | None:
    """One line naming what to install, or None when everything needed is present."""
    database_url = chat_database_url if command == "chat" else settings.database_url
    needed = needed_extras(command, database_url=database_url, redis=settings.redis_url is not None)
    missing = [extra for extra in needed if not _installed(EXTRA_MODULES[extra])]
    if not missing:
        return None
    reasons = "; ".join(REASONS[extra] for extra in missing)
    return f"{reasons}: install it with pip install 'sleepbot[{','.join(missing)}]'"
