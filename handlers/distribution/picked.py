"""The e-mail and letter buttons of a guardian's card (`ga:mail:…`, `ga:pdf:…`, from
/responsables or a help request): the same preview and confirmation as /relancer, /envoyer and
/pdf, for that one account. When the button carried a help request, what was done is recorded
on it once it is done (`answer_help_request`).
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.services.distribution import DistributionPreview, Purpose, plan_for_accounts
from bot.services.helpdesk import HelpAction
from bot.services.roster import GuardianNotFoundError, guardian_card
from handlers.access import SchoolRef, director_only
from handlers.distribution.preview import show_preview
from handlers.distribution.protection import password_needed
from handlers.distribution.state import (
    HELP_REQUEST_KEY,
    TYPING_DOCUMENT_PASSWORD,
    forget_pending,
    picked_origin,
)
from handlers.guardian_card import MAIL, PDF, action_pattern
from handlers.helpdesk.followup import record_answer
from models import AccountState, DistributionChannel

log = logging.getLogger(__name__)

MAIL_BUTTON = action_pattern(MAIL)
LETTER_BUTTON = action_pattern(PDF)
# Already notified: a reminder or a new password, chosen at confirmation (/relancer's preview).
_REMINDED = frozenset({AccountState.NOTIFIED, AccountState.ACTIVATING})


async def _picked(
    update: Update, context: BotContext, school: SchoolRef, pattern: Any
) -> tuple[int, int | None, AccountState] | None:
    """The account and help request of the button, and the account's state; None (the button
    answered) when it is not one of the school's guardians."""
    query = update.callback_query
    match = pattern.match(query.data or "") if query else None
    if query is None or match is None:
        return None
    account_id = int(match[1])
    try:
        card = await context.db.run(guardian_card, school_id=school.id, account_id=account_id)
    except GuardianNotFoundError as error:
        await query.answer(str(error), show_alert=True)
        return None
    await query.answer()
    return account_id, int(match[2]) if match[2] else None, card.state


@director_only
async def start_picked_email(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Preview the e-mail to one guardian: a reminder or new password once notified, else
    their first credentials."""
    picked = await _picked(update, context, school, MAIL_BUTTON)
    if picked is None:
        return ConversationHandler.END
    account_id, request_id, state = picked
    forget_pending(context)
    purpose = Purpose.REMINDER if state in _REMINDED else Purpose.EMAIL
    preview = await context.db.run(
        plan_for_accounts, school_id=school.id, account_ids=[account_id], purpose=purpose
    )
    origin = picked_origin([account_id], request_id)
    paper = preview.channel_count(DistributionChannel.PAPER) and not preview.is_empty
    if paper and await password_needed(update, context, school, preview, origin=origin):
        return TYPING_DOCUMENT_PASSWORD
    return await show_preview(update, context, school, preview, origin=origin)


@director_only
async def start_picked_letter(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Preview the paper letter of one guardian (as `/pdf … tous`)."""
    picked = await _picked(update, context, school, LETTER_BUTTON)
    if picked is None:
        return ConversationHandler.END
    account_id, request_id, _state = picked
    forget_pending(context)
    preview: DistributionPreview = await context.db.run(
        plan_for_accounts,
        school_id=school.id,
        account_ids=[account_id],
        purpose=Purpose.PAPER,
        include_all=True,
    )
    origin = picked_origin([account_id], request_id)
    if not preview.is_empty and await password_needed(
        update, context, school, preview, origin=origin
    ):
        return TYPING_DOCUMENT_PASSWORD
    return await show_preview(update, context, school, preview, origin=origin)


async def answer_help_request(
    update: Update,
    context: BotContext,
    school: SchoolRef,
    found: dict[str, Any],
    action: HelpAction,
    details: dict[str, Any] | None = None,
) -> None:
    """Record on the help request of this distribution, if any, what was done (and tell the
    family)."""
    request_id = found.get(HELP_REQUEST_KEY)
    if request_id is None:
        return
    try:
        await record_answer(
            update,
            context,
            school=school,
            request_id=int(request_id),
            action=action,
            details=details,
        )
    except Exception:
        # The distribution is done and committed: a failure here must not report it failed.
        log.exception("recording the answer on a help request failed")
