"""`/demande`: a family's own requests and their status, and a message added to one of them
(a few per request), passed on to the school's directors."""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.i18n import N_, _
from bot.services import helpdesk
from bot.services.helpdesk import HelpDeskError, HelpStatus
from handlers.helpdesk.followup import notify_directors
from handlers.helpdesk.texts import family_request_line
from handlers.keyboards import button_text

ADDING_MESSAGE = "adding_message"
# fa:<request id> — add a message to this request.
ADD = re.compile(r"^fa:([0-9]{1,18})$")
# user_data: the request a family is adding a message to.
ADDING_KEY = "help_adding"


async def my_requests(update: Update, context: BotContext) -> str | int:
    """/demande: the chat's requests, most recent first, with their status."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return ConversationHandler.END
    views = await context.db.run(helpdesk.family_requests, telegram_user_id=user.id)
    if not views:
        await message.reply_text(
            _(
                "You have not asked the school anything through me yet. /aide lists what I can "
                "do; /question sends the school a question."
            )
        )
        return ConversationHandler.END
    lines = [_("<b>Your requests</b>"), ""]
    lines += [family_request_line(view, context.settings.tz) + "\n" for view in views]
    rows = [
        [
            InlineKeyboardButton(
                button_text(_("➕ Add a message to {reference}").format(reference=view.reference)),
                callback_data=f"fa:{view.id}",
            )
        ]
        for view in views
        if view.status is not HelpStatus.CLOSED
    ][:3]
    await message.reply_text(
        "\n".join(lines).rstrip(), reply_markup=InlineKeyboardMarkup(rows) if rows else None
    )
    return ConversationHandler.END


async def start_adding(update: Update, context: BotContext) -> str | int:
    """Ask for the message to add to the request."""
    query = update.callback_query
    matched = ADD.match(query.data or "") if query else None
    if query is None or matched is None:
        return ConversationHandler.END
    await query.answer()
    if context.user_data is not None:
        context.user_data[ADDING_KEY] = int(matched[1])
    if update.effective_message is not None:
        await update.effective_message.reply_text(
            _("Type your message for the school in one message (/annuler to give up).")
        )
    return ADDING_MESSAGE


async def message_added(update: Update, context: BotContext) -> str | int:
    """Add the family's message to its request and pass it on to the directors."""
    user, message = update.effective_user, update.effective_message
    request_id = (context.user_data or {}).get(ADDING_KEY)
    if user is None or message is None or not isinstance(request_id, int):
        return ConversationHandler.END
    try:
        added = await context.db.run(
            helpdesk.add_family_message,
            telegram_user_id=user.id,
            request_id=request_id,
            text=message.text or "",
        )
    except HelpDeskError as error:
        await message.reply_text(html.escape(str(error)))
        if not (message.text or "").strip():
            return ADDING_MESSAGE
        return ConversationHandler.END
    finally:
        if (message.text or "").strip() and context.user_data is not None:
            context.user_data.pop(ADDING_KEY, None)
    await message.reply_text(
        _("✅ Added to your request {reference}: the school has it.").format(
            reference=added.reference
        )
    )
    await notify_directors(
        context,
        request_id=added.request_id,
        school_id=added.school_id,
        director_ids=added.director_ids,
        headline=N_("💬 <b>The family added a message to its request</b>"),
    )
    return ConversationHandler.END
