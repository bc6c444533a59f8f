"""A guardian's language, set by the director from the guardian's card (« 🌐 Language »): a
button per language in its own name. The school's setting makes the guardian's letters and
e-mails bilingual (French first) and is what the bot answers their linked chat in, unless the
family chose another language itself (/langue).

Buttons: `ga:lang:<account id>` (from the card) shows the languages; `gl:<account id>:<code>`
sets one. Every press checks afresh that the guardian is in the director's school.
"""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from bot.context import BotContext
from bot.i18n import SUPPORTED_LANGUAGES, _, language_name
from bot.services.family import UnknownGuardianError, set_guardian_language
from bot.services.roster import GuardianNotFoundError, guardian_card
from handlers.access import SchoolRef, director_only
from handlers.guardian_card import LANGUAGE, action_pattern, card_keyboard, card_text
from handlers.helpdesk.followup import director_actor
from handlers.keyboards import rows_of, show
from handlers.language import GUARDIAN_LANGUAGE_KEY

_MENU = action_pattern(LANGUAGE)
_SET = re.compile(r"^gl:(\d{1,12}):([a-z]{2})$")


async def _refuse(update: Update, error: Exception) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(str(error), show_alert=True)


@director_only
async def language_menu(update: Update, context: BotContext, school: SchoolRef) -> None:
    """The card again, with a button per language instead of its actions."""
    query = update.callback_query
    match = _MENU.match(query.data or "") if query else None
    if query is None or match is None:
        return
    account_id = int(match[1])
    try:
        card = await context.db.run(guardian_card, school_id=school.id, account_id=account_id)
    except GuardianNotFoundError as error:
        await _refuse(update, error)
        return
    await query.answer()
    current = card.language or "fr"
    buttons = [
        InlineKeyboardButton(
            ("✅ " if code == current else "") + language_name(code),
            callback_data=f"gl:{account_id}:{code}",
        )
        for code in SUPPORTED_LANGUAGES
    ]
    text = "\n\n".join(
        [
            card_text(card),
            _(
                "In which language does this family read best? Its letters and e-mails will "
                "come in French first, then in that language; my messages to its chat too."
            ),
        ]
    )
    await show(update, [text], InlineKeyboardMarkup(rows_of(buttons, 2)))


@director_only
async def language_set(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Set the guardian's language, tell their linked chats' sessions, show the card again."""
    query = update.callback_query
    match = _SET.match(query.data or "") if query else None
    if query is None or match is None or match[2] not in SUPPORTED_LANGUAGES:
        return
    account_id, code = int(match[1]), match[2]
    try:
        card = await context.db.run(guardian_card, school_id=school.id, account_id=account_id)
        result = await context.db.run(
            set_guardian_language,
            school_id=school.id,
            guardian_id=card.guardian_id,
            language=code,
            actor=director_actor(update),
        )
        card = await context.db.run(guardian_card, school_id=school.id, account_id=account_id)
    except (GuardianNotFoundError, UnknownGuardianError) as error:
        await _refuse(update, error)
        return
    # The linked chats answer in it from their next message (unless the family chose itself).
    for chat_id in result.chat_ids:
        data = context.application.user_data[chat_id]
        if result.language:
            data[GUARDIAN_LANGUAGE_KEY] = result.language
        else:
            data.pop(GUARDIAN_LANGUAGE_KEY, None)
    context.application.mark_data_for_update_persistence(user_ids=list(result.chat_ids))
    await query.answer(_("Language set: {language}.").format(language=language_name(code)))
    await show(update, [card_text(card)], card_keyboard(card))


HANDLERS: list[BaseHandler] = [
    CallbackQueryHandler(language_menu, pattern=_MENU),
    CallbackQueryHandler(language_set, pattern=_SET),
]
