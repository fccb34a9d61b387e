"""Persistence: SQLAlchemy 2 async + Alembic, SQLite by default, PostgreSQL when configured.

Import from here; the ORM models stay inside this package.
"""

from bot.meals import MEAL_KIND
from bot.storage.dialects import UnsupportedDatabaseError, create_engine
from bot.storage.inbox import Claimant, Inbox, IncomingUpdate, StoredUpdate
from bot.storage.migrate import upgrade_to_head
from bot.storage.models import DIETS, DeliveryStatus
from bot.storage.records import (
    Changed,
    CheckinMorning,
    ClaimedDelivery,
    ClaimResult,
    DeadClaims,
    DeliveryView,
    MaterializeResult,
    MealChooser,
    Person,
    PersonEdit,
    RecordedOutcome,
    ReminderPress,
    ReminderPressAction,
    ReminderSetting,
    SendOutcome,
    Shed,
    StaleOccurrence,
    TickCheck,
)
from bot.storage.repository import Store, open_store

__all__ = [
    "DIETS",
    "MEAL_KIND",
    "Changed",
    "CheckinMorning",
    "ClaimResult",
    "Claimant",
    "ClaimedDelivery",
    "DeadClaims",
    "DeliveryStatus",
    "DeliveryView",
    "Inbox",
    "IncomingUpdate",
    "MaterializeResult",
    "MealChooser",
    "Person",
    "PersonEdit",
    "RecordedOutcome",
    "ReminderPress",
    "ReminderPressAction",
    "ReminderSetting",
    "SendOutcome",
    "Shed",
    "StaleOccurrence",
    "Store",
    "StoredUpdate",
    "TickCheck",
    "UnsupportedDatabaseError",
    "create_engine",
    "open_store",
    "upgrade_to_head",
]
