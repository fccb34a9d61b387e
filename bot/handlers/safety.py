"""Free text, captions and unknown input, heard through triage; and /doctor.

Crisis text is answered first, before an open prompt sees it, and with nothing but the crisis
message. Everything else goes to an open prompt first, then gets the triage class's answer; the
short pointer to /help is only for what triage found to be nothing else (see bot.replies).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from typing import Final

from telegram import Chat, InlineKeyboardMarkup, Update
from telegram.error import NetworkError, RetryAfter

from bot.content import Content
from bot.context import BotContext
from bot.countries import country_for_zone
from bot.handlers import settings
from bot.handlers.articles import foods_keyboard, mechanism_index_keyboard, mechanism_keyboard
from bot.handlers.common import content_for, content_of, reply
from bot.replies import Page, PlannedReply, plan_reply
from bot.storage import Person
from bot.triage import Kind, Triage

log = logging.getLogger(__name__)

PERSON_LOOKUP_TIMEOUT: Final = 2.0
"""Seconds to wait for the database before answering a crisis with every crisis line: the
crisis reply must never wait on, or fail with, the database."""
CRISIS_SEND_ATTEMPTS: Final = 5
crisis_retry_seconds = 1.0
"""First wait before sending a crisis reply again after a network error (then doubled); a
module variable so tests can shorten it. A duplicate is better than a crisis reply lost."""


def _text_of(update: Update) -> str:
    message = update.effective_message
    if message is None:
        return ""
    return message.text or message.caption or ""


async def free_text(update: Update, context: BotContext) -> None:
    """Non-command text: crisis first, then an open prompt, then the triage answer."""
    # Triage patterns are shared by every locale (content/README.md): English's will do.
    verdict = context.content.triage.classify(_text_of(update))
    if verdict.kind is Kind.CRISIS:
        await answer(update, context, verdict)  # an open prompt stays open, untouched
        return
    if await settings.free_text(update, context, verdict):
        return
    await answer(update, context, verdict)


async def anything_else(update: Update, context: BotContext) -> None:
    """Unknown commands, captions, stickers, voice notes...: triage whatever text there is."""
    await answer(update, context, context.content.triage.classify(_text_of(update)))


async def crisis_only(update: Update, context: BotContext) -> None:
    """Group text and edits are not requests to us: only a crisis is answered."""
    verdict = context.content.triage.classify(_text_of(update))
    if verdict.kind is Kind.CRISIS:
        await answer(update, context, verdict)


async def doctor_command(update: Update, context: BotContext) -> None:
    """/doctor: when to see a doctor."""
    await reply(update, (await content_for(update, context)).render_doctor())


async def answer(update: Update, context: BotContext, verdict: Triage) -> None:
    """Send the reply `plan_reply` chose for this verdict and this person."""
    chat = update.effective_chat
    if chat is None:
        return
    person = await _person(context, chat.id)
    # No second database read: a crisis reply must never wait on one (see _person).
    content = content_of(update, context, person.language if person else None)
    planned = plan_reply(
        verdict,
        content,
        country=country_for_zone(person.timezone) if person else None,
        diet=person.diet if person else None,
        meal_index=secrets.randbelow(len(content.meal_ideas)),
    )
    log.info("free text answered as %s (%s)", verdict.kind.value, verdict.rule or "-")
    if planned.kind is Kind.CRISIS:
        await _send_crisis(chat, planned.html)
        return
    await reply(update, planned.html, _keyboard(content, planned))


async def _send_crisis(chat: Chat, html: str) -> None:
    """Send the crisis reply (no buttons), retrying network errors and flood waits."""
    delay = crisis_retry_seconds
    for attempt in range(1, CRISIS_SEND_ATTEMPTS + 1):
        try:
            await chat.send_message(html)
            return
        except RetryAfter as error:
            if attempt == CRISIS_SEND_ATTEMPTS:
                raise
            value: object = error.retry_after  # an int or a timedelta, depending on PTB
            wait = value.total_seconds() if isinstance(value, timedelta) else float(str(value))
        except NetworkError:  # includes TimedOut; a refusal (BadRequest, Forbidden) is final
            if attempt == CRISIS_SEND_ATTEMPTS:
                raise
            wait, delay = delay, delay * 2
        log.warning("crisis reply not sent (attempt %d); trying again in %.1f s", attempt, wait)
        await asyncio.sleep(wait)


async def _person(context: BotContext, chat_id: int) -> Person | None:
    """The person, or None when unknown or when the database is slow or failing: a reply
    (above all a crisis reply) goes out anyway, with what is known without it."""
    try:
        async with asyncio.timeout(PERSON_LOOKUP_TIMEOUT):
            return await context.store.get_person(chat_id)
    except Exception:
        log.warning("answering free text without the person's settings", exc_info=True)
        return None


def _keyboard(content: Content, planned: PlannedReply) -> InlineKeyboardMarkup | None:
    if planned.kind is Kind.CRISIS:
        return None  # nothing may distract from the crisis message
    if planned.page is Page.FOODS:
        return foods_keyboard(content, planned.meal_index, planned.diet)
    if planned.page is Page.MECHANISM and planned.mechanism is not None:
        return mechanism_keyboard(content, planned.mechanism)
    if planned.page is Page.MECHANISM_INDEX:
        return mechanism_index_keyboard(content)
    return None
