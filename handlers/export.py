"""/export: the school's accounts as a CSV file for a spreadsheet — never a password. The file
holds families' contact details, so it leaves the chat after the school's retention, like the
letters' PDFs."""

from __future__ import annotations

from datetime import timedelta

from telegram import InputFile, Update
from telegram.constants import ChatAction
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import BotContext
from bot.i18n import _, current_language, format_datetime, format_number, ngettext
from bot.jobs import arm_deletion
from bot.services.letters import get_retention_hours, schedule_letter_deletion
from bot.services.roster import export_accounts
from handlers.access import SchoolRef, director_only
from models import utcnow


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
    hours = await context.db.run(get_retention_hours, school_id=school.id)
    now = utcnow()
    deletion = _(
        "I will delete it from this chat on {when}, like the letters' PDFs: save it now."
    ).format(when=format_datetime(now + timedelta(hours=hours), tz=context.settings.tz))
    sent = await message.reply_document(
        InputFile(export.content, filename=export.filename),
        caption=f"{caption}\n{deletion}",
    )
    delete_at = await context.db.run(
        schedule_letter_deletion,
        school_id=school.id,
        chat_id=sent.chat_id,
        message_id=sent.message_id,
        now=now,
    )
    arm_deletion(context.application, delete_at)


HANDLERS: list[BaseHandler] = [
    CommandHandler("export", export_command, filters=filters.ChatType.PRIVATE),
]
