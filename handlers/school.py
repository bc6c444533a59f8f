"""/ecole: a director of several schools chooses the one their commands act on."""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.context import BotContext
from bot.i18n import _
from handlers.access import (
    SchoolRef,
    director_only,
    director_schools,
    set_current_school,
)

CALLBACK_PREFIX = "ecole:"
_CHOICE = re.compile(rf"^{CALLBACK_PREFIX}(\d+)$")
CURRENT_MARK = "✅"


def _keyboard(schools: list[SchoolRef], current: SchoolRef) -> InlineKeyboardMarkup:
    rows = []
    for school in schools:
        label = f"{school.name} ({school.uai})"
        if school.id == current.id:
            label = f"{CURRENT_MARK} {label}"
        rows.append([InlineKeyboardButton(label, callback_data=f"{CALLBACK_PREFIX}{school.id}")])
    return InlineKeyboardMarkup(rows)


def _match(schools: list[SchoolRef], wanted: str) -> SchoolRef | None:
    """The school whose UAI or name is `wanted` (case-insensitive), if exactly one matches."""
    key = " ".join(wanted.split()).casefold()
    found = [s for s in schools if key in (s.uai.casefold(), " ".join(s.name.split()).casefold())]
    return found[0] if len(found) == 1 else None


@director_only
async def choose_school(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the schools the director directs, as buttons to pick the current one."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    schools = await director_schools(context, user.id)
    if len(schools) == 1:
        await message.reply_text(
            _("You direct only {school}: all your commands act on it.").format(school=school.title)
        )
        return
    if context.args:
        wanted = _match(schools, " ".join(context.args))
        if wanted is not None:
            set_current_school(context, wanted)
            await message.reply_text(
                _("Your commands now act on {school}.").format(school=wanted.title)
            )
            return
    await message.reply_text(
        _("Your commands act on {school}. Choose the school to work on:").format(
            school=school.title
        ),
        reply_markup=_keyboard(schools, school),
    )


@director_only
async def school_chosen(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Make the pressed school the current one, if the director directs it."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    match = _CHOICE.match(query.data or "")
    schools = await director_schools(context, user.id)
    chosen = next((s for s in schools if match and s.id == int(match.group(1))), None)
    if chosen is None:
        # A button from before the director lost this school (or forged data): show none of it.
        await query.answer(
            _("You no longer direct this school. Type /ecole to see your schools."),
            show_alert=True,
        )
        return
    if chosen.id == school.id:
        # Editing to the same text and buttons is an error for Telegram: a short notice will do.
        await query.answer(
            _("Your commands already act on {school}.").format(
                school=f"{chosen.name} ({chosen.uai})"
            )
        )
        return
    set_current_school(context, chosen)
    await query.answer()
    await query.edit_message_text(
        _("Your commands now act on {school}.").format(school=chosen.title),
        reply_markup=_keyboard(schools, chosen),
    )


HANDLERS: list[BaseHandler] = [
    CommandHandler("ecole", choose_school),
    CallbackQueryHandler(school_chosen, pattern=_CHOICE),
]
