"""/export: the school's accounts as a CSV file for a spreadsheet — never a password."""

from __future__ import annotations

from telegram import InputFile, Update
from telegram.constants import ChatAction
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import BotContext
from bot.i18n import _, current_language, format_number, ngettext
from bot.services.roster import export_accounts
from handlers.access import SchoolRef, director_only


@director_only
async def export_command(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Send the accounts of the current school as a CSV document."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    await message.reply_chat_action(ChatAction.UPLOAD_DOCUMENT)
    export = await context.db.run(
        export_accounts,
        school_id=school.id,
        actor=f"telegram:{user.id}",
        tz=context.settings.tz,
        language=current_language(),
    )
    if export.rows == 0:
        await message.reply_text(
            _(
                "{school} has no guardian accounts yet: send me the ONDE extractions (« Élèves » "
                "and « Responsables » CSV files) to import them, then type /export again."
            ).format(school=school.title)
        )
        return
    caption = ngettext(
        "{count} account of {school}. No password inside: keep this file private all the same, "
        "it holds families' contact details.",
        "{count} accounts of {school}. No password inside: keep this file private all the same, "
        "it holds families' contact details.",
        export.rows,
    ).format(count=format_number(export.rows), school=school.title)
    await message.reply_document(
        InputFile(export.content, filename=export.filename),
        caption=caption,
    )


HANDLERS: list[BaseHandler] = [
    CommandHandler("export", export_command, filters=filters.ChatType.PRIVATE),
]
