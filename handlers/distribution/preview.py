"""The steps that /envoyer, /relancer and /pdf share: planning for the scopes typed or chosen,
the preview with its confirmation buttons, and the answers to cancelling or to a button of a
preview that is over.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.i18n import _, format_number, ngettext
from bot.services.distribution import (
    DistributionPreview,
    Purpose,
    plan_email_distribution,
    plan_for_accounts,
    plan_paper_letters,
    plan_reminders,
)
from bot.services.roster import UnknownClassError, known_classes, known_levels
from handlers.access import SchoolRef, director_only
from handlers.distribution.state import (
    ACCOUNT_IDS_KEY,
    CANCEL_PRINT,
    CANCEL_REMINDERS,
    CANCEL_SEND,
    CHOOSING_SCOPE,
    CONFIRMING,
    EMAIL_PREFIX,
    PRINT,
    REMIND,
    RESET,
    SEND,
    confirm_data,
    confirmed_pending,
    forget_pending,
    origin_of,
    pending,
    set_pending,
)
from handlers.distribution.texts import (
    nobody_text,
    paper_question,
    preview_blocks,
    preview_title,
    scope_argument,
    skipped_counts,
)
from handlers.keyboards import (
    answer_stale_button,
    scope_buttons,
    show,
    take_buttons_off,
    unknown_class_text,
)

# --- Scopes -------------------------------------------------------------------------------------


async def plan_for_arguments(
    context: BotContext,
    planner: Callable[..., DistributionPreview],
    school: SchoolRef,
    arguments: Sequence[str],
    **options: Any,
) -> DistributionPreview:
    """Plan for the scopes the arguments name: the whole text first (« CP A », « GS M.
    Petit »), else each word (« CE1 CE2 »). Raises `UnknownClassError` as the planner does."""
    words = [word for argument in arguments for word in argument.split()]
    try:
        return await context.db.run(
            planner, school_id=school.id, scope_tokens=[" ".join(words)], **options
        )
    except UnknownClassError:
        if len(words) < 2:
            raise
    return await context.db.run(planner, school_id=school.id, scope_tokens=words, **options)


def scope_tokens(preview: DistributionPreview) -> list[str]:
    """The resolved scopes, as buttons and `resolve_scopes` know them (« c12 », « e »)."""
    return [item.scope.token for item in preview.scopes]


async def ask_for_scope(
    message: Message,
    context: BotContext,
    school: SchoolRef,
    question: str,
    callback_data: Callable[[str], str],
) -> str | int:
    """Offer the school's classes, levels and « whole school » as buttons."""
    classes = await context.db.run(known_classes, school_id=school.id)
    if not classes:
        await message.reply_text(unknown_class_text(UnknownClassError("", [], [])))
        return ConversationHandler.END
    levels = await context.db.run(known_levels, school_id=school.id)
    keyboard = scope_buttons(classes, levels, callback_data)
    await message.reply_text(question, reply_markup=InlineKeyboardMarkup(keyboard))
    return CHOOSING_SCOPE


async def answer_unknown_scope(
    update: Update, error: UnknownClassError, callback_data: Callable[[str], str]
) -> str | int:
    """An unknown class: say which ones exist, with a button for each."""
    if not error.classes:
        await show(update, [unknown_class_text(error)])
        return ConversationHandler.END
    keyboard = scope_buttons(error.classes, error.levels, callback_data)
    await show(update, [unknown_class_text(error)], InlineKeyboardMarkup(keyboard))
    return CHOOSING_SCOPE


# --- The preview ---------------------------------------------------------------------------


def _email_keyboard(count: int, nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ngettext("✉️ Send {count} e-mail", "✉️ Send {count} e-mails", count).format(
                        count=format_number(count)
                    ),
                    callback_data=confirm_data(SEND, nonce),
                ),
                InlineKeyboardButton(_("✖️ Cancel"), callback_data=confirm_data(CANCEL_SEND, nonce)),
            ]
        ]
    )


def _reminder_keyboard(nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("📨 Reminder (passwords unchanged)"),
                    callback_data=confirm_data(REMIND, nonce),
                )
            ],
            [
                InlineKeyboardButton(
                    _("🔑 Reset (new passwords)"), callback_data=confirm_data(RESET, nonce)
                )
            ],
            [
                InlineKeyboardButton(
                    _("✖️ Cancel"), callback_data=confirm_data(CANCEL_REMINDERS, nonce)
                )
            ],
        ]
    )


def _letters_keyboard(count: int, nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ngettext(
                        "🖨️ Make the PDF ({count} letter)", "🖨️ Make the PDF ({count} letters)", count
                    ).format(count=format_number(count)),
                    callback_data=confirm_data(PRINT, nonce),
                ),
                InlineKeyboardButton(
                    _("✖️ Cancel"), callback_data=confirm_data(CANCEL_PRINT, nonce)
                ),
            ]
        ]
    )


async def show_preview(
    update: Update,
    context: BotContext,
    school: SchoolRef,
    preview: DistributionPreview,
    *,
    origin: dict[str, Any] | None = None,
) -> str | int:
    """Show who will get what, with the buttons to go on; remember what to confirm (and
    `origin`, the accounts picked by hand and the help request: `state.picked_origin`)."""
    blocks = preview_blocks(school, preview)
    if preview.is_empty:
        forget_pending(context)
        await show(update, [*blocks, "", nobody_text(preview)], keep=bool(origin))
        return ConversationHandler.END
    count = len(preview.planned)
    # Each preview's buttons confirm that preview only, not a newer one shown since.
    nonce = secrets.token_hex(4)
    if preview.purpose is Purpose.EMAIL:
        blocks += ["", _("Nothing has been sent yet. Send the e-mails now?")]
        keyboard = _email_keyboard(count, nonce)
    elif preview.purpose is Purpose.REMINDER:
        blocks += [
            "",
            _(
                "Nothing has been sent yet. Choose: a <b>reminder</b> keeps the provisional "
                "passwords (the letters carry none; an expired one is renewed anyway); a "
                "<b>reset</b> gives new ones and the previous ones stop working at once."
            ),
        ]
        keyboard = _reminder_keyboard(nonce)
    else:
        blocks += ["", paper_question()]
        keyboard = _letters_keyboard(count, nonce)
    set_pending(
        context,
        {
            "purpose": preview.purpose.value,
            "school_id": school.id,
            "scopes": scope_tokens(preview),
            "include_all": preview.include_all,
            "confirmation": preview.confirmation(),
            "skipped": skipped_counts(preview),
            "title": preview_title(preview),
            "argument": scope_argument(preview.scopes),
            "nonce": nonce,
            **(origin or {}),
        },
    )
    # A card or a help request stays in the chat: its preview comes as a new message.
    await show(update, blocks, keyboard, keep=bool(origin))
    return CONFIRMING


async def replan(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """The accounts changed since the preview: show the up-to-date one."""
    found = pending(context) or {}
    purpose = Purpose(found.get("purpose", Purpose.EMAIL.value))
    tokens = found.get("scopes") or ["e"]
    origin = origin_of(found)
    try:
        if origin:
            preview = await context.db.run(
                plan_for_accounts,
                school_id=school.id,
                account_ids=[int(i) for i in origin[ACCOUNT_IDS_KEY]],
                purpose=purpose,
                include_all=bool(found.get("include_all", True)),
            )
        elif purpose is Purpose.EMAIL:
            preview = await context.db.run(
                plan_email_distribution, school_id=school.id, scope_tokens=tokens
            )
        elif purpose is Purpose.REMINDER:
            preview = await context.db.run(plan_reminders, school_id=school.id, scope_tokens=tokens)
        else:
            preview = await context.db.run(
                plan_paper_letters,
                school_id=school.id,
                scope_tokens=tokens,
                include_all=bool(found.get("include_all")),
            )
    except UnknownClassError as error:
        return await answer_unknown_scope(update, error, lambda t: f"{EMAIL_PREFIX}s:{t}")
    return await show_preview(update, context, school, preview, origin=origin)


# --- Cancelling, and buttons of a preview that is over ------------------------------------------


async def _answer_preview_over(update: Update) -> None:
    await answer_stale_button(
        update,
        _("This preview is over: use the buttons of my latest message, or type the command again."),
    )


async def stale_confirmation(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int | None:
    """A confirmation button of a preview that is not the one waiting: nothing is done."""
    await _answer_preview_over(update)
    found = pending(context)
    if found is not None and found.get("school_id") == school.id:
        return None  # a newer preview waits: stay where we are
    forget_pending(context)
    return ConversationHandler.END


@dataclass(frozen=True)
class Confirmed:
    """A preview's confirmation button, pressed on the preview that waits."""

    query: CallbackQuery
    message: Message
    pending: dict[str, Any]

    @property
    def count(self) -> int:
        """How many accounts the director confirmed."""
        return len(self.pending["confirmation"].get("accounts", {}))


async def take_confirmation(
    update: Update, context: BotContext, school: SchoolRef, purpose: Purpose
) -> Confirmed | str | int | None:
    """The distribution a confirmation button confirms, its buttons removed first (a second
    tap must not act twice) and no longer pending; else the state to return, the button
    answered."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return ConversationHandler.END
    found = confirmed_pending(update, context, school, purpose)
    if found is None:
        return await stale_confirmation(update, context, school)
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    forget_pending(context)
    return Confirmed(query, query.message, found)


async def stale_button(update: Update, context: BotContext) -> None:
    """Answer a button of a distribution that is over (sent, cancelled or replaced)."""
    await _answer_preview_over(update)


@director_only
async def cancel_button(update: Update, context: BotContext, school: SchoolRef) -> int:
    """Drop the distribution being prepared: nothing is sent or printed."""
    query = update.callback_query
    forget_pending(context)
    if query is not None:
        await query.answer()
        await take_buttons_off(query)
        if isinstance(query.message, Message):
            await query.message.reply_text(_("Cancelled: nothing was sent or printed."))
    return ConversationHandler.END


async def cancel_distribution(update: Update, context: BotContext) -> int:
    """Leave with /annuler: nothing is sent or printed."""
    forget_pending(context)
    if update.effective_message:
        await update.effective_message.reply_text(_("Cancelled: nothing was sent or printed."))
    return ConversationHandler.END
