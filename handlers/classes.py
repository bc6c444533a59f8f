"""/classes: each class with its levels, pupils, guardian accounts and lights, then the school
total; a button per class opens its guardians (/responsables)."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import BotContext
from bot.i18n import _
from bot.services.roster import GroupCounts, GuardianFilters, school_statistics
from handlers.access import SchoolRef, director_only
from handlers.guardians import PREFIX as GUARDIANS_PREFIX
from handlers.keyboards import (
    button_text,
    guardians_text,
    lights_text,
    pupils_text,
    rows_of,
    show,
)


def _class_block(group: GroupCounts) -> str:
    if group.levels:
        title = _("<b>{label}</b> ({levels}) — {pupils}, {guardians}")
    else:
        title = _("<b>{label}</b> — {pupils}, {guardians}")
    heading = title.format(
        label=html.escape(group.label),
        levels=html.escape(", ".join(group.levels)),
        pupils=pupils_text(group.pupils),
        guardians=guardians_text(group.accounts),
    )
    return f"{heading}\n{lights_text(group)}"


@director_only
async def list_classes(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show every class with its counts and lights, and the school's total."""
    if update.effective_message is None:
        return
    stats = await context.db.run(school_statistics, school_id=school.id)
    if not stats.classes:
        await update.effective_message.reply_text(
            _(
                "{school} has no classes yet. Send me the ONDE extractions (« Élèves » and "
                "« Responsables » CSV files) to import your pupils and their guardians."
            ).format(school=school.title)
        )
        return
    blocks = [_("<b>Classes of {school}</b>").format(school=school.title), ""]
    for group in stats.classes:
        blocks += [_class_block(group), ""]
    total = _("<b>Whole school</b> — {pupils}, {guardians}").format(
        pupils=pupils_text(stats.total.pupils), guardians=guardians_text(stats.total.accounts)
    )
    blocks += [f"{total}\n{lights_text(stats.total)}", ""]
    blocks.append(_("Tap a class to see its guardians, or type /etat for the percentages."))
    everyone = GuardianFilters().token
    buttons = [
        InlineKeyboardButton(
            button_text(group.label),
            callback_data=f"{GUARDIANS_PREFIX}p:c{group.class_id}:{everyone}:0",
        )
        for group in stats.classes
    ]
    await show(update, blocks, InlineKeyboardMarkup(rows_of(buttons, 2)))


HANDLERS: list[BaseHandler] = [
    CommandHandler("classes", list_classes, filters=filters.ChatType.PRIVATE),
]
