"""``sleepbot stats``: the operator's read-only counts (bot/storage/stats.py), as text or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.storage.dialects import create_read_only_engine
from bot.storage.stats import OperatorStats, read_stats


class StatsUnavailable(Exception):
    """The counts cannot be read; the message is one line for the operator."""


def _late(delta: timedelta) -> str:
    minutes, seconds = divmod(int(delta.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def render_text(stats: OperatorStats) -> str:
    backlog = f"{stats.backlog:,}"
    if stats.backlog_oldest is not None:
        backlog += f"   (oldest {_late(stats.backlog_oldest)} late)"
    rows = [
        ("people", f"{stats.people:,}"),
        (
            "active subscribers",
            f"{stats.active_subscribers:,}   (paused {stats.paused:,}, blocked {stats.blocked:,})",
        ),
        ("due in the next hour", f"{stats.due_next_hour:,}"),
        ("sent in the last 24 h", f"{stats.sent_last_24h:,}"),
        ("failed in the last 24 h", f"{stats.failed_last_24h:,}"),
        ("backlog (due, not sent)", backlog),
    ]
    return "\n".join(f"{label:<26}{value}" for label, value in rows)


def render_json(stats: OperatorStats) -> str:
    values = asdict(stats)
    oldest = stats.backlog_oldest
    values["backlog_oldest"] = None if oldest is None else oldest.total_seconds()
    return json.dumps(values)


async def collect(settings: Settings, now: datetime | None = None) -> OperatorStats:
    """Read the counts without writing anything (nor creating a missing SQLite file)."""
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        engine = create_read_only_engine(settings.database_url)
    except FileNotFoundError:
        raise StatsUnavailable(
            f"no database at {where} yet: `sleepbot run` creates it on its first start"
        ) from None
    try:
        return await read_stats(engine, now or datetime.now(UTC))
    except (SQLAlchemyError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StatsUnavailable(f"cannot read the database {where}: {reason}") from error
    finally:
        await engine.dispose()
