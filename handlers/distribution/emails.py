"""/envoyer: credentials by e-mail to a class, a level or the whole school.

`/envoyer CM1` → who will get what (first distribution, reminder, reset; who is skipped and
why) → [Envoyer] [Annuler] → a progress message that updates → a summary with each failure
(`handlers.distribution.progress`).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.i18n import _, current_language, format_number, ngettext
from bot.services.distribution import Purpose, plan_email_distribution, start_email_distribution
from bot.services.helpdesk import HelpAction
from bot.services.roster import UnknownClassError
from handlers.access import SchoolRef, director_only
from handlers.distribution.picked import answer_help_request
from handlers.distribution.preview import (
    Confirmed,
    answer_unknown_scope,
    ask_for_scope,
    plan_for_arguments,
    show_preview,
    take_confirmation,
)
from handlers.distribution.progress import BatchStart, run_batch
from handlers.distribution.state import (
    EMAIL_PREFIX,
    EMAIL_SCOPE,
    actor_of,
    forget_pending,
)


@director_only
async def start_email(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Preview the e-mails for the classes named, or ask for the class first."""
    message = update.effective_message
    if message is None:
        return ConversationHandler.END
    forget_pending(context)
    if not context.args:
        return await ask_for_scope(
            message,
            context,
            school,
            _(
                "To whom should I send the credentials by e-mail? Choose a class, a level or the "
                "whole school."
            ),
            lambda token: f"{EMAIL_PREFIX}s:{token}",
        )
    try:
        preview = await plan_for_arguments(context, plan_email_distribution, school, context.args)
    except UnknownClassError as error:
        return await answer_unknown_scope(update, error, lambda t: f"{EMAIL_PREFIX}s:{t}")
    return await show_preview(update, context, school, preview)


@director_only
async def email_scope_chosen(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Preview the e-mails for the class whose button was pressed."""
    query = update.callback_query
    match = EMAIL_SCOPE.match(query.data or "") if query else None
    if query is None or match is None:
        return ConversationHandler.END
    await query.answer()
    try:
        preview = await context.db.run(
            plan_email_distribution, school_id=school.id, scope_tokens=[match[1]]
        )
    except UnknownClassError as error:
        return await answer_unknown_scope(update, error, lambda t: f"{EMAIL_PREFIX}s:{t}")
    return await show_preview(update, context, school, preview)


@director_only
async def confirm_email(update: Update, context: BotContext, school: SchoolRef) -> str | int | None:
    """Start the send: the e-mails are prepared and sent in the background."""
    taken = await take_confirmation(update, context, school, Purpose.EMAIL)
    if not isinstance(taken, Confirmed):
        return taken
    found = taken.pending
    progress = await taken.message.reply_text(
        ngettext(
            "⏳ Preparing {count} e-mail: drawing the password…",
            "⏳ Preparing {count} e-mails: drawing the passwords…",
            taken.count,
        ).format(count=format_number(taken.count))
    )
    batch = BatchStart(
        chat_id=progress.chat_id,
        message_id=progress.message_id,
        school_id=school.id,
        title=str(found.get("title") or ""),
        skipped=dict(found.get("skipped") or {}),
        argument=str(found.get("argument") or ""),
        language=current_language(),
        kind=Purpose.EMAIL.value,
    )

    async def prepare() -> str | None:
        batch_id = await context.db.run(
            start_email_distribution,
            school_id=school.id,
            preview_or_account_ids=found["confirmation"],
            reset=False,
            actor=actor_of(update),
            bot_username=context.bot.username,
            portal_url=context.settings.portal_url,
            mail_from=context.settings.mail_from,
        )
        await answer_help_request(
            update, context, school, found, HelpAction.EMAIL_SENT, {"reset": False}
        )
        return batch_id

    context.application.create_task(run_batch(context.application, batch, prepare), update=update)
    return ConversationHandler.END
