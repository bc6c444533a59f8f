"""/langue: anyone chooses the language the bot writes to them in, with a button per language
in its own name (« Français », « العربية »…). A family's choice is kept in its chat (it
survives restarts) and, when the chat is linked, on its guardians: letters and e-mails from the
school then come in French followed by that language.

The language of each update is chosen in `handlers.set_update_language`: this choice first,
then the one the school set for the guardian (`GUARDIAN_LANGUAGE_KEY`), then Telegram's.
"""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import BotContext
from bot.i18n import (
    SUPPORTED_LANGUAGES,
    _,
    current_language,
    language_name,
    set_language,
    use_language,
)
from bot.services.family import set_family_language
from handlers.keyboards import rows_of

PREFIX = "lang:"
_CHOICE = re.compile(rf"^{PREFIX}([a-z]{{2}})$")
# user_data keys: the language the user chose, and the one the school set for their guardian.
LANGUAGE_KEY = "language"
GUARDIAN_LANGUAGE_KEY = "guardian_language"


def chosen_language(user_data: dict[str, object] | None, telegram_code: str | None) -> str | None:
    """The language to use for a user: their choice, else the school's for their guardian,
    else Telegram's (None: French)."""
    data = user_data or {}
    for value in (data.get(LANGUAGE_KEY), data.get(GUARDIAN_LANGUAGE_KEY), telegram_code):
        if isinstance(value, str) and value:
            return value
    return None


def _keyboard() -> InlineKeyboardMarkup:
    current = current_language()
    buttons = [
        InlineKeyboardButton(
            ("✅ " if code == current else "") + language_name(code),
            callback_data=f"{PREFIX}{code}",
        )
        for code in SUPPORTED_LANGUAGES
    ]
    return InlineKeyboardMarkup(rows_of(buttons, 2))


def _code(text: str) -> str | None:
    """The supported language a `/langue` argument names, by code or by its own name."""
    typed = text.strip().casefold()
    for code in SUPPORTED_LANGUAGES:
        if typed in (code, language_name(code).casefold()):
            return code
    return None


async def _apply(update: Update, context: BotContext, code: str) -> str:
    """Remember `code` for this user (and their guardians), and say so in that language."""
    user = update.effective_user
    if context.user_data is not None:
        context.user_data[LANGUAGE_KEY] = code
    linked = 0
    if user is not None:
        linked = await context.db.run(set_family_language, telegram_user_id=user.id, language=code)
    set_language(code)
    with use_language(code):
        lines = [
            _("✅ Done: I will write to you in {language}.").format(language=language_name(code))
        ]
        if linked and code != "fr":
            lines.append(
                _(
                    "Letters and e-mails from the school will come in French first, then in "
                    "{language}."
                ).format(language=language_name(code))
            )
        lines.append(_("/aide shows what I can do for you; /langue changes the language."))
    return "\n\n".join(lines)


async def choose_language(update: Update, context: BotContext) -> None:
    """/langue [language]: set it at once, or show a button per language."""
    message = update.effective_message
    if message is None:
        return
    if context.args:
        code = _code(" ".join(context.args))
        if code is not None:
            await message.reply_text(await _apply(update, context, code))
            return
    await message.reply_text(
        _("Which language should I write to you in?")
        + "\n"
        + " · ".join(language_name(code) for code in SUPPORTED_LANGUAGES),
        reply_markup=_keyboard(),
    )


async def language_chosen(update: Update, context: BotContext) -> None:
    """A language button was pressed."""
    query = update.callback_query
    match = _CHOICE.match(query.data or "") if query else None
    if query is None or match is None:
        return
    code = match[1]
    if code not in SUPPORTED_LANGUAGES:
        await query.answer()
        return
    await query.answer()
    text = await _apply(update, context, code)
    await query.edit_message_text(text)


HANDLERS: list[BaseHandler] = [
    CommandHandler("langue", choose_language, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(language_chosen, pattern=_CHOICE),
]
