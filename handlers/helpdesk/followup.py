"""Telling people about help requests: every director of the school when a family files one or
adds a message, the family when a director acted. `record_answer` is what a director's
standard action calls once it has succeeded (the guardian card's buttons, a reply, closing)."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterable
from functools import partial
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.context import BotContext
from bot.i18n import _, use_language
from bot.jobs import Delivery, deliver
from bot.services import helpdesk
from bot.services.helpdesk import FamilyNotice, HelpAction, HelpDeskError
from handlers.access import SchoolRef
from handlers.helpdesk.buttons import request_keyboard
from handlers.helpdesk.texts import family_notice_text, request_card


def director_actor(update: Update) -> str:
    """Who acts, as the audit log and a request's history name a director."""
    user = update.effective_user
    return f"telegram:{user.id}" if user else "telegram:unknown"


async def _send(application: Application, chat_id: int, text: str, **kwargs: Any) -> bool:
    """Send one help-desk message; False if it did not go. A director or a family who blocked
    the bot is recorded and skipped until they write again: the request stays in /demandes."""
    send = partial(application.bot.send_message, chat_id, text, **kwargs)
    return await deliver(application, chat_id, send) is Delivery.DELIVERED


async def notify_directors(
    context: BotContext,
    *,
    request_id: int,
    school_id: int,
    director_ids: Iterable[int],
    headline: str,
) -> int:
    """Send the request, with its buttons, to each director of its school, all at once (the
    family's update waits for the slowest, not for the sum); how many got it. `headline` is a
    message id (`N_`), translated for the directors."""
    view = await context.db.run(helpdesk.request_view, request_id=request_id, school_id=school_id)
    # Directors read French by default; the bot has no per-director language yet.
    with use_language("fr"):
        text = f"{_(headline)}\n\n{request_card(view, context.settings.tz)}"
        keyboard = request_keyboard(view)
    delivered = await asyncio.gather(
        *(
            _send(context.application, chat_id, text, reply_markup=keyboard)
            for chat_id in dict.fromkeys(director_ids)
        )
    )
    return sum(delivered)


async def notify_family(application: Application, notice: FamilyNotice) -> bool:
    """Tell the family, in its language, what the school did about its request."""
    with use_language(notice.language):
        text = family_notice_text(notice)
    return await _send(application, notice.telegram_user_id, text)


async def _refusal(update: Update, error: HelpDeskError, *, done: bool) -> None:
    """Tell the director why the request took nothing: in an alert on the button when it is not
    answered yet, else in a message (`done`: the action itself went through)."""
    query = update.callback_query
    if query is not None:
        try:
            await query.answer(str(error), show_alert=True)
            return
        except TelegramError:
            pass  # already answered (a confirmation step): say it in the chat
    if update.effective_message is not None:
        text = html.escape(str(error))
        if done:
            text = _("Done, but not recorded on the request: {reason}").format(reason=text)
        await update.effective_message.reply_text(text)


async def record_answer(
    update: Update,
    context: BotContext,
    *,
    school: SchoolRef,
    request_id: int,
    action: HelpAction,
    details: dict[str, Any] | None = None,
    text: str | None = None,
) -> FamilyNotice | None:
    """Record a director's answer on the request and tell the family; None (and the director
    told why) when the request cannot take it (closed meanwhile, or not this school's)."""
    try:
        notice = await context.db.run(
            helpdesk.record_answer,
            request_id=request_id,
            school_id=school.id,
            actor=director_actor(update),
            action=action,
            text=text,
            details=details,
        )
    except HelpDeskError as error:
        await _refusal(update, error, done=action is not HelpAction.CLOSED)
        return None
    delivered = await notify_family(context.application, notice)
    if update.effective_message is not None:
        if delivered:
            done = _("Recorded on request {reference}; the family has been told.")
        else:
            done = _(
                "Recorded on request {reference}, but the family could not be told in Telegram "
                "(they may have blocked the bot)."
            )
        await update.effective_message.reply_text(done.format(reference=notice.reference))
    return notice
