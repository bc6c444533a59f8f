"""/relancer [classe]: reminders to the guardians notified but not activated yet — a reminder
(passwords unchanged) or a reset (new passwords), chosen at confirmation.

The e-mails are followed like /envoyer's (`handlers.distribution.progress`); the guardians
without an address get a PDF to print, sent and recorded as /pdf's are
(`handlers.distribution.delivery`): the e-mails are queued in the same short transaction that
records the letters, so an account changed meanwhile withdraws the PDF and queues nothing.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import Application, ConversationHandler

from bot.context import BotContext, educonnect
from bot.i18n import _, current_language, use_language
from bot.services.distribution import (
    DistributionError,
    DistributionPreview,
    Purpose,
    ReminderResult,
    draft_reminders,
    plan_reminders,
    record_reminders,
    record_reminders_sent_in_chat,
)
from bot.services.helpdesk import HelpAction
from bot.services.roster import UnknownClassError
from handlers.access import SchoolRef, director_only
from handlers.distribution.delivery import (
    LettersJob,
    keep_track,
    record_or_withdraw,
    send_letters,
    set_status,
)
from handlers.distribution.picked import answer_help_request
from handlers.distribution.preview import (
    Confirmed,
    answer_unknown_scope,
    plan_for_arguments,
    show_preview,
    take_confirmation,
)
from handlers.distribution.progress import BatchStart, follow
from handlers.distribution.protection import password_needed
from handlers.distribution.state import (
    REMINDER_PREFIX,
    REMINDER_SCOPE,
    RESET,
    TYPING_DOCUMENT_PASSWORD,
    actor_of,
    forget_pending,
)
from models import DistributionChannel

log = logging.getLogger(__name__)


@director_only
async def start_reminder(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Preview the reminders for the class named (the whole school by default)."""
    message = update.effective_message
    if message is None:
        return ConversationHandler.END
    forget_pending(context)
    try:
        preview = await plan_for_arguments(
            context, plan_reminders, school, context.args or ["ecole"]
        )
    except UnknownClassError as error:
        return await answer_unknown_scope(update, error, lambda t: f"{REMINDER_PREFIX}s:{t}")
    return await _preview_reminders(update, context, school, preview)


@director_only
async def reminder_scope_chosen(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int:
    """Preview the reminders for the class whose button was pressed."""
    query = update.callback_query
    match = REMINDER_SCOPE.match(query.data or "") if query else None
    if query is None or match is None:
        return ConversationHandler.END
    await query.answer()
    try:
        preview = await context.db.run(plan_reminders, school_id=school.id, scope_tokens=[match[1]])
    except UnknownClassError as error:
        return await answer_unknown_scope(update, error, lambda t: f"{REMINDER_PREFIX}s:{t}")
    return await _preview_reminders(update, context, school, preview)


async def _preview_reminders(
    update: Update, context: BotContext, school: SchoolRef, preview: DistributionPreview
) -> str | int:
    # Letters to print are encrypted: the document password comes first.
    paper = preview.channel_count(DistributionChannel.PAPER) and not preview.is_empty
    if paper and await password_needed(update, context, school, preview):
        return TYPING_DOCUMENT_PASSWORD
    return await show_preview(update, context, school, preview)


@director_only
async def confirm_reminders(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int | None:
    """Start the reminders (or resets): e-mails in the background, a PDF for the others."""
    taken = await take_confirmation(update, context, school, Purpose.REMINDER)
    if not isinstance(taken, Confirmed):
        return taken
    reset = (taken.query.data or "").startswith(f"{RESET}:")
    found = taken.pending

    async def recorded(result: ReminderResult) -> None:
        if result.batch_id is not None:
            action, details = HelpAction.EMAIL_SENT, {"reset": reset}
        else:
            action, details = HelpAction.LETTER_PREPARED, {"reset": reset}
        await answer_help_request(update, context, school, found, action, details)

    context.application.create_task(
        run_reminders(context.application, update, school, found, reset=reset, recorded=recorded),
        update=update,
    )
    return ConversationHandler.END


async def run_reminders(
    application: Application,
    update: Update,
    school: SchoolRef,
    found: dict[str, Any],
    *,
    reset: bool,
    recorded: Callable[[ReminderResult], Awaitable[None]] | None = None,
) -> None:
    """Compose the reminder e-mails and make the PDF of the paper ones (nothing written yet),
    send the PDF, then queue the e-mails and record everything in one short transaction (or
    delete the PDF if the accounts changed meanwhile), then `recorded(result)`; then follow
    the e-mails."""
    chat = update.effective_chat
    if chat is None:
        return
    language = current_language()
    status = await application.bot.send_message(
        chat.id,
        _("⏳ Preparing the new passwords and the reminders…")
        if reset
        else _("⏳ Preparing the reminders…"),
    )
    job = LettersJob(
        chat_id=chat.id,
        status_message_id=status.message_id,
        school=school,
        language=language,
        actor=actor_of(update),
    )
    with use_language(language):
        result = await _draft_and_record(application, job, found, reset=reset)
        if result is None:
            return
        if recorded is not None:
            await recorded(result)
        if result.batch_id is None:
            await set_status(
                application,
                job,
                _("✅ Reminders ready: no e-mail to send, the letters to print are below."),
            )
            return
        batch = BatchStart(
            chat_id=chat.id,
            message_id=status.message_id,
            school_id=school.id,
            title=str(found.get("title") or ""),
            skipped=dict(found.get("skipped") or {}),
            argument=str(found.get("argument") or ""),
            language=language,
            kind=Purpose.REMINDER.value,
        )
        await follow(application, result.batch_id, batch)


async def _draft_and_record(
    application: Application, job: LettersJob, found: dict[str, Any], *, reset: bool
) -> ReminderResult | None:
    """Draft the reminders, send the PDF of the paper ones, then record it all; None when it
    stopped (the director is told why in the status message)."""
    app = educonnect(application)
    try:
        try:
            draft = await app.db.run(
                draft_reminders,
                school_id=job.school.id,
                preview_or_account_ids=found["confirmation"],
                reset=reset,
                actor=job.actor,
                bot_username=application.bot.username,
                portal_url=app.settings.portal_url,
                mail_from=app.settings.mail_from,
            )
        except DistributionError as error:
            await set_status(application, job, html.escape(str(error)))
            return None
        if draft.paper is None:
            return await app.db.run(record_reminders, draft=draft)
        sent = await send_letters(application, job, draft.paper)
        if sent is None:
            return None
        recorded = await record_or_withdraw(
            application,
            job,
            sent,
            lambda: app.db.run(
                record_reminders_sent_in_chat,
                draft=draft,
                chat_id=sent.message.chat_id,
                message_id=sent.message.message_id,
                sent_at=sent.sent_at,
            ),
        )
    except DistributionError as error:
        await set_status(application, job, html.escape(str(error)))
        return None
    except Exception:
        log.exception("preparing reminders failed")
        await set_status(
            application,
            job,
            _("Sorry, preparing the reminders failed and nothing was sent. Please try again."),
        )
        return None
    if recorded is None:
        return None
    result, delete_at = recorded
    keep_track(application, job, sent, delete_at)
    return result
