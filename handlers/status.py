"""/etat [classe]: the « état des comptes » for the school, a class or a level — the
lights, both percentages, per class and per level — and what to do next.

Without an argument it shows the whole school with a button per class to look closer; the
buttons (`etat:<scope>`) edit the same message. Anyone who directs no school sees their own
family account instead (`handlers.family_status`); an inspector, their district.
"""

from __future__ import annotations

import re

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import BotContext
from bot.services.roster import (
    UnknownClassError,
    status_report,
)
from handlers.access import SchoolRef, current_school, director_only
from handlers.district import inspector_status
from handlers.family_status import show_family_status
from handlers.keyboards import (
    scope_buttons,
    show,
    unknown_class_text,
)
from handlers.status_report import render_report, report_keyboard

PREFIX = "etat:"
_SCOPE = re.compile(rf"^{PREFIX}(\w+)$")


async def show_status(update: Update, context: BotContext) -> None:
    """/etat: a director's school (or class, or level); an inspector's district
    (`handlers.district`); anyone else's own account."""
    school = await current_school(update, context)
    if await inspector_status(update, context, directs=school is not None):
        return
    if school is None:
        await show_family_status(update, context)
        return
    await show_school_status(update, context, school)


async def show_school_status(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the status of the school, or of the class or level named."""
    if update.effective_message is None:
        return
    try:
        report = await context.db.run(
            status_report, school_id=school.id, scope_text=" ".join(context.args or [])
        )
    except UnknownClassError as error:
        keyboard = scope_buttons(error.classes, error.levels, lambda token: f"{PREFIX}{token}")
        await show(update, [unknown_class_text(error)], InlineKeyboardMarkup(keyboard))
        return
    await show(update, render_report(school, report), report_keyboard(report, PREFIX))


@director_only
async def scope_chosen(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the status of the class, level or school whose button was pressed."""
    query = update.callback_query
    match = _SCOPE.match(query.data or "") if query else None
    if query is None or match is None:
        return
    await query.answer()
    token = match[1]
    try:
        report = await context.db.run(status_report, school_id=school.id, scope=token)
    except UnknownClassError:
        report = await context.db.run(status_report, school_id=school.id, scope_text="")
    await show(update, render_report(school, report), report_keyboard(report, PREFIX))


_PRIVATE = filters.ChatType.PRIVATE

HANDLERS: list[BaseHandler] = [
    CommandHandler("etat", show_status, filters=_PRIVATE),
    CallbackQueryHandler(scope_chosen, pattern=_SCOPE),
]
