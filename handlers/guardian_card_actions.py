"""A guardian's card and the actions that act at once: showing the card (`ga:card:…`),
sending the confirmation link again (`ga:link:…`) and correcting the e-mail address
(`ga:email:…`, which asks for the new address: /annuler leaves). The e-mail and letter buttons
go through the distribution conversation's preview (`handlers.distribution.picked`).

When a button carries a help request, the action done is recorded on it and the family told
(`handlers.helpdesk.followup.record_answer`).
"""

from __future__ import annotations

import html
import warnings
from typing import Any

from telegram import Message, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.context import BotContext
from bot.i18n import _, current_language, format_datetime
from bot.services.accounts import RefusalReason
from bot.services.helpdesk import HelpAction
from bot.services.portal import RequestResult, RequestStatus, send_confirmation_link_again
from bot.services.roster import (
    EmailCorrection,
    EmailCorrectionError,
    GuardianNotFoundError,
    correct_guardian_email,
    guardian_card,
)
from handlers.access import SchoolRef, director_only
from handlers.distribution.state import awaits_document_password
from handlers.guardian_card import CARD, EMAIL, LINK, action_pattern, card_keyboard, card_text
from handlers.helpdesk.followup import director_actor, record_answer

TYPING_EMAIL = "typing_email"
# user_data: the correction waiting for its address (JSON only).
CORRECTION_KEY = "guardian_email_correction"

_CARD = action_pattern(CARD)
_LINK = action_pattern(LINK)
_EMAIL = action_pattern(EMAIL)


def _ids(update: Update, pattern: Any) -> tuple[int, int | None] | None:
    """The account id and help request id a button carries."""
    query = update.callback_query
    match = pattern.match(query.data or "") if query else None
    if match is None:
        return None
    return int(match[1]), int(match[2]) if match[2] else None


async def _not_found(update: Update, error: GuardianNotFoundError) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(str(error), show_alert=True)


@director_only
async def open_card(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show a guardian's card with the actions their state allows."""
    ids = _ids(update, _CARD)
    if ids is None or update.callback_query is None:
        return
    try:
        card = await context.db.run(guardian_card, school_id=school.id, account_id=ids[0])
    except GuardianNotFoundError as error:
        await _not_found(update, error)
        return
    await update.callback_query.answer()
    message = update.callback_query.message
    if isinstance(message, Message):
        await message.reply_text(card_text(card), reply_markup=card_keyboard(card))


def _link_refusal(result: RequestResult, context: BotContext) -> str:
    if result.status is RequestStatus.RATE_LIMITED and result.retry_at is not None:
        return _(
            "The confirmation link was already sent several times in the last hour: try again "
            "after {time}."
        ).format(time=format_datetime(result.retry_at, tz=context.settings.tz))
    if result.refusal is RefusalReason.UNKNOWN_ACCOUNT:
        return _("This guardian is not in your school's list (or no longer): open /responsables.")
    if result.refusal is RefusalReason.INVALID_EMAIL:
        return _("No e-mail address on file for this guardian: correct the e-mail first.")
    if result.refusal is RefusalReason.DEACTIVATED:
        return _("This account is deactivated (no child enrolled any more).")
    return _(
        "This account is no longer waiting for its confirmation: open its card again to see "
        "where it stands."
    )


@director_only
async def resend_link(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Send the confirmation link again to the address on file, and say so."""
    ids = _ids(update, _LINK)
    query = update.callback_query
    if ids is None or query is None or not isinstance(query.message, Message):
        return
    account_id, request_id = ids
    result = await context.db.run(
        send_confirmation_link_again,
        school_id=school.id,
        account_id=account_id,
        actor=director_actor(update),
        portal_url=context.settings.portal_url,
        mail_from=context.settings.mail_from,
        language=current_language(),
    )
    if result.status is not RequestStatus.ACCEPTED:
        await query.answer(_link_refusal(result, context), show_alert=True)
        return
    await query.answer()
    card = await context.db.run(guardian_card, school_id=school.id, account_id=account_id)
    await query.message.reply_text(
        _(
            "🔁 A new confirmation link is on its way to {address} for <code>{identifier}</code>; "
            "the earlier links no longer work. The family clicks it to finish activating."
        ).format(
            address=html.escape(card.masked_email or ""),
            identifier=html.escape(card.identifier),
        )
    )
    if request_id is not None:
        await record_answer(
            update,
            context,
            school=school,
            request_id=request_id,
            action=HelpAction.CONFIRMATION_RESENT,
        )


# --- Correcting the address ---------------------------------------------------------------------


@director_only
async def ask_for_email(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Ask for the guardian's correct address."""
    ids = _ids(update, _EMAIL)
    query = update.callback_query
    if ids is None or query is None or not isinstance(query.message, Message):
        return ConversationHandler.END
    account_id, request_id = ids
    try:
        card = await context.db.run(guardian_card, school_id=school.id, account_id=account_id)
    except GuardianNotFoundError as error:
        await _not_found(update, error)
        return ConversationHandler.END
    if awaits_document_password(context):
        # The letters' document password is awaited: what is typed next goes there.
        await query.answer(
            _("First type the document password I asked for, or /annuler it."), show_alert=True
        )
        return ConversationHandler.END
    await query.answer()
    if context.user_data is not None:
        context.user_data[CORRECTION_KEY] = {
            "school_id": school.id,
            "account_id": account_id,
            "request_id": request_id,
        }
    await query.message.reply_text(
        _(
            "✏️ Type the correct e-mail address of {name} (<code>{identifier}</code>), or "
            "/annuler to leave it unchanged."
        ).format(name=html.escape(card.name), identifier=html.escape(card.identifier))
    )
    return TYPING_EMAIL


def _corrected_text(done: EmailCorrection) -> str:
    lines = [
        _("✅ E-mail address of <code>{identifier}</code> corrected: {address}.").format(
            identifier=html.escape(done.identifier), address=html.escape(done.masked_email)
        )
        if done.changed
        else _("This is already the address on file for <code>{identifier}</code>.").format(
            identifier=html.escape(done.identifier)
        )
    ]
    if done.link_sent:
        lines.append(_("🔁 The confirmation link has been sent again to this address."))
    elif done.link is not None:
        lines.append(
            _(
                "The confirmation link could not be sent again just now (sent too often): "
                "use « 🔁 Resend the confirmation link » on the card later."
            )
        )
    if done.correct_in_onde:
        lines.append(
            _(
                "Correct it in ONDE too: until the family activates its account, the next ONDE "
                "import would bring back ONDE's address."
            )
        )
    return "\n".join(lines)


@director_only
async def receive_email(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Correct the address typed; say what is wrong with it otherwise."""
    message = update.effective_message
    found = context.user_data.get(CORRECTION_KEY) if context.user_data is not None else None
    if message is None or not isinstance(found, dict) or found.get("school_id") != school.id:
        if message is not None:
            await message.reply_text(_("Nothing to correct any more: open the card again."))
        return ConversationHandler.END
    try:
        done = await context.db.run(
            correct_guardian_email,
            school_id=school.id,
            account_id=int(found["account_id"]),
            email=message.text or "",
            actor=director_actor(update),
            portal_url=context.settings.portal_url,
            mail_from=context.settings.mail_from,
            language=current_language(),
        )
    except EmailCorrectionError as error:
        await message.reply_text(
            _("{reason} Type the address again, or /annuler.").format(
                reason=html.escape(str(error))
            )
        )
        return TYPING_EMAIL
    except GuardianNotFoundError as error:
        await message.reply_text(html.escape(str(error)))
        return _forget(context)
    _forget(context)
    await message.reply_text(_corrected_text(done))
    request_id = found.get("request_id")
    if request_id is not None and done.changed:
        await record_answer(
            update,
            context,
            school=school,
            request_id=int(request_id),
            action=HelpAction.EMAIL_CORRECTED,
            details={"link_sent": done.link_sent},
        )
    return ConversationHandler.END


def _forget(context: BotContext) -> int:
    if context.user_data is not None:
        context.user_data.pop(CORRECTION_KEY, None)
    return ConversationHandler.END


async def cancel_correction(update: Update, context: BotContext) -> int:
    """/annuler: the address stays as it was."""
    _forget(context)
    if update.effective_message:
        await update.effective_message.reply_text(_("Cancelled: the address is unchanged."))
    return ConversationHandler.END


_PRIVATE = filters.ChatType.PRIVATE


def email_conversation() -> ConversationHandler:
    """Correcting a guardian's e-mail address: the new address, typed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message=False", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[CallbackQueryHandler(ask_for_email, pattern=_EMAIL)],
            states={
                TYPING_EMAIL: [
                    MessageHandler(_PRIVATE & filters.TEXT & ~filters.COMMAND, receive_email)
                ]
            },
            fallbacks=[CommandHandler("annuler", cancel_correction, filters=_PRIVATE)],
            name="guardian_email",
            persistent=True,
            allow_reentry=True,
        )


_PLAIN_HANDLERS: list[BaseHandler] = [
    CallbackQueryHandler(open_card, pattern=_CARD),
    CallbackQueryHandler(resend_link, pattern=_LINK),
]


def build_handlers() -> list[BaseHandler]:
    """The feature's handlers, the conversation new for each application: a conversation
    handler keeps the state of the conversations it saw, which belongs to one application."""
    return [email_conversation(), *_PLAIN_HANDLERS]
