"""Stop means stop: the one rule for whether a scheduled message may still leave.

A claimed delivery is checked against what the database says *now* — immediately before its
request goes out and again before a failed attempt is rescheduled — because the person may
have acted since it was claimed: /stop, /deletedata, /pause, "Turn this off", a block. Every
reason it may not go is named here, so the dispatcher can count and log it.

The common part (erased, blocked, stopped, claim no longer ours) holds for every kind of
scheduled message. What depends on the kind (paused nights, a per-kind switch) is a rule in
``RULES_BY_KIND``; a kind without an entry gets ``nightly_reminder``. A later kind (a morning
check-in, a weekly summary) adds its own entry instead of an ``if kind == ...`` somewhere.

Pure: no database, no Telegram; the store gathers a ``DeliveryState`` and asks ``why_not``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

# Reasons, as counted in TickReport.dropped and written to the delivery's last_error.
ERASED: Final = "erased"  # /deletedata: the person (and so the delivery row) is gone
BLOCKED: Final = "blocked"  # the person blocked the bot (my_chat_member or a 403)
UNSUBSCRIBED: Final = "unsubscribed"  # /stop
PAUSED: Final = "paused"  # /pause covers the night this message belongs to
TURNED_OFF: Final = "turned off"  # "Turn this off" or /settings switched this kind off
CANCELLED: Final = "cancelled"  # the row was cancelled by an action of the person
TAKEN_OVER: Final = "taken over"  # our claim was released: another process owns it now

SENDING: Final = "sending"
CANCELLED_STATUS: Final = "cancelled"


@dataclass(frozen=True)
class Recipient:
    """The person's switches that every scheduled message obeys."""

    subscribed: bool
    blocked: bool
    paused_until: datetime | None


@dataclass(frozen=True)
class DeliveryState:
    """One claimed delivery and its person, as the database has them right now."""

    delivery_id: int
    kind: str
    due_at: datetime
    status: str
    claimed_by: str | None
    recipient: Recipient | None  # None: the person was erased
    kind_enabled: bool | None  # the person's own switch for this kind; None: it has none


KindRule = Callable[[DeliveryState], str | None]


def nightly_reminder(state: DeliveryState) -> str | None:
    """Meal idea, exercise, wind-down: off when switched off or when the night is paused."""
    if state.kind_enabled is False:
        return TURNED_OFF
    paused_until = state.recipient.paused_until if state.recipient else None
    if paused_until is not None and state.due_at < paused_until:
        return PAUSED
    return None


def morning_checkin(state: DeliveryState) -> str | None:
    """The diary's morning check-in and weekly chart: off when switched off (/settings, or
    "turn check-ins off?" answered yes); a pause covers the mornings before ``paused_until``."""
    if state.kind_enabled is not True:  # no row: never switched on, or erased meanwhile
        return TURNED_OFF
    paused_until = state.recipient.paused_until if state.recipient else None
    if paused_until is not None and state.due_at < paused_until:
        return PAUSED
    return None


# Kinds with their own rule. Nightly reminder kinds come from content/ and use the default.
RULES_BY_KIND: Final[dict[str, KindRule]] = {"checkin": morning_checkin, "weekly": morning_checkin}
DEFAULT_RULE: Final[KindRule] = nightly_reminder


def why_not(state: DeliveryState | None, owner: str) -> str | None:
    """Why this delivery must not be sent by ``owner`` now, or None when it may go.

    ``state`` None means the delivery row is gone (erased with its person). The person's
    state is checked before the row's, so the counted reason says what the person did
    ("unsubscribed") rather than only what it did to the row ("cancelled").
    """
    if state is None or state.recipient is None:
        return ERASED
    if state.recipient.blocked:
        return BLOCKED
    if not state.recipient.subscribed:
        return UNSUBSCRIBED
    reason = RULES_BY_KIND.get(state.kind, DEFAULT_RULE)(state)
    if reason is not None:
        return reason
    if state.status == CANCELLED_STATUS:
        return CANCELLED
    if state.status != SENDING or state.claimed_by != owner:
        return TAKEN_OVER
    return None
