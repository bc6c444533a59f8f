"""/envoyer and /relancer: credentials by e-mail to a class, a level or the whole school, and
reminders to the guardians not activated yet.

`/envoyer CM1` → who will get what (first distribution, reminder, reset; who is skipped and
why) → [Envoyer] [Annuler] → a progress message that updates → a summary with each failure.
`/relancer [classe]` → the guardians notified but not activated → reminder or reset, chosen at
confirmation (those without an address get a PDF to print, see `handlers.letters`).

The send never blocks the chat: once confirmed, drawing the passwords and writing the outbox
run in a background task, the outbox's sender sends, and a follower edits the progress message
(at most every `EDIT_INTERVAL` seconds, only when its text changed) until the batch is done,
then posts the summary. Followed batches are remembered in bot_data, so a restart resumes them.

The conversation itself (shared with /pdf, for the document password step) is built in
`handlers.letters`; this module holds the texts and steps that /envoyer, /relancer and /pdf
share.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ConversationHandler

from bot.context import BotContext, EduConnectApplication
from bot.i18n import _, current_language, format_number, ngettext, use_language
from bot.services.accounts import CredentialKind
from bot.services.distribution import (
    DistributionError,
    DistributionPreview,
    NothingToDistributeError,
    Purpose,
    SkipReason,
    StalePlanError,
    plan_email_distribution,
    plan_reminders,
    start_email_distribution,
)
from bot.services.outbox import BatchProgress, FailedMessage, FailureKind, batch_progress
from bot.services.roster import (
    ResolvedScope,
    ScopeKind,
    UnknownClassError,
    known_classes,
    known_levels,
)
from handlers.access import SchoolRef, director_only
from handlers.keyboards import (
    guardians_text,
    pupils_text,
    scope_buttons,
    scope_summary,
    show,
    split_text,
    unknown_class_text,
)
from models import DistributionChannel

log = logging.getLogger(__name__)

# Conversation states (the conversation is built in handlers.letters).
CHOOSING_SCOPE = "choosing_scope"
CONFIRMING = "confirming"
TYPING_DOCUMENT_PASSWORD = "typing_document_password"

EMAIL_PREFIX = "env:"
REMINDER_PREFIX = "rel:"
# env:s:<scope> — the class chosen with a button; env:go — send; env:no — cancel.
EMAIL_SCOPE = re.compile(rf"^{EMAIL_PREFIX}s:(\w+)$")
SEND, CANCEL_SEND = f"{EMAIL_PREFIX}go", f"{EMAIL_PREFIX}no"
REMIND, RESET, CANCEL_REMINDERS = (
    f"{REMINDER_PREFIX}remind",
    f"{REMINDER_PREFIX}reset",
    f"{REMINDER_PREFIX}no",
)

# user_data: the distribution being prepared in this chat (JSON only).
PENDING_KEY = "distribution"
# bot_data: the e-mail batches whose progress message is followed, by batch id.
FOLLOWED_KEY = "followed_batches"

# The progress message is edited at most this often (Telegram limits edits), and only when its
# text changed; the outbox is looked at every POLL_INTERVAL seconds.
EDIT_INTERVAL = 3.0
POLL_INTERVAL = 1.0
_BAR_CELLS = 10
_SHOWN_NAMES = 10


# --- Pending distribution ---------------------------------------------------------------------


def pending(context: BotContext) -> dict[str, Any] | None:
    """The distribution this chat is preparing, if any."""
    data = context.user_data
    found = data.get(PENDING_KEY) if data is not None else None
    return found if isinstance(found, dict) else None


def set_pending(context: BotContext, value: dict[str, Any]) -> None:
    if context.user_data is not None:
        context.user_data[PENDING_KEY] = value


def forget_pending(context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(PENDING_KEY, None)


def actor_of(update: Update) -> str:
    user = update.effective_user
    return f"telegram:{user.id}" if user else "telegram:unknown"


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


def scope_argument(scopes: Sequence[ResolvedScope]) -> str:
    """How to type these scopes after a command (« CE1 CE2 », « niveau CM1 », « ecole »)."""
    return " ".join(item.scope.argument for item in scopes) or "ecole"


def scopes_title(scopes: Sequence[ResolvedScope]) -> str:
    """A short name for the scopes, for titles and summaries (HTML-escaped)."""
    names = []
    for item in scopes:
        if item.scope.kind is ScopeKind.SCHOOL:
            names.append(_("whole school"))
        elif item.scope.kind is ScopeKind.LEVEL:
            names.append(_("level {level}").format(level=item.scope.label))
        else:
            names.append(item.scope.label)
    return html.escape(", ".join(names))


def scope_lines(preview: DistributionPreview) -> list[str]:
    """What the bot resolved, said before acting (« Class CM1 — 22 pupils, 37 guardians »)."""
    lines = [scope_summary(item) for item in preview.scopes]
    if len(preview.scopes) > 1:
        lines.append(
            _("In all: {pupils}, {guardians}").format(
                pupils=pupils_text(preview.pupils), guardians=guardians_text(preview.guardians)
            )
        )
    return lines


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


# --- Who will get what ----------------------------------------------------------------------


def kind_line(kind: CredentialKind, count: int) -> str:
    """One line of « who will get what »."""
    number = format_number(count)
    if kind is CredentialKind.FIRST:
        text = ngettext(
            "• {count} first distribution: identifier and a new provisional password",
            "• {count} first distributions: identifier and a new provisional password",
            count,
        )
    elif kind is CredentialKind.REMINDER:
        text = ngettext(
            "• {count} reminder: identifier only, the password is unchanged",
            "• {count} reminders: identifier only, the password is unchanged",
            count,
        )
    else:
        text = ngettext(
            "• {count} reset: a new provisional password, the previous one stops working",
            "• {count} resets: a new provisional password, the previous one stops working",
            count,
        )
    return text.format(count=number)


def _names(preview: DistributionPreview, reason: SkipReason) -> str:
    entries = preview.entries_for(reason)
    shown = ", ".join(
        f"{html.escape(entry.name)} (<code>{html.escape(entry.identifier)}</code>)"
        for entry in entries[:_SHOWN_NAMES]
    )
    if len(entries) > _SHOWN_NAMES:
        shown += ", …"
    return shown


def skip_line(reason: SkipReason, count: int, argument: str, names: str = "") -> str:
    """One line of « who is skipped and why »."""
    number = format_number(count)
    argument = html.escape(argument)
    if reason is SkipReason.NO_ADDRESS:
        text = ngettext(
            "• {count} without an e-mail address: print the letter with "
            "<code>/pdf {argument}</code>",
            "• {count} without an e-mail address: print their letters with "
            "<code>/pdf {argument}</code>",
            count,
        )
    elif reason is SkipReason.INVALID_ADDRESS:
        text = ngettext(
            "• {count} with an invalid e-mail address, to correct in ONDE (a paper letter "
            "meanwhile): {names}",
            "• {count} with an invalid e-mail address, to correct in ONDE (paper letters "
            "meanwhile): {names}",
            count,
        )
    elif reason is SkipReason.HAS_ADDRESS:
        text = ngettext(
            "• {count} with an e-mail address: send it with <code>/envoyer {argument}</code>, "
            "or type <code>/pdf {argument} tous</code> to print for everyone",
            "• {count} with an e-mail address: send them with <code>/envoyer {argument}</code>, "
            "or type <code>/pdf {argument} tous</code> to print for everyone",
            count,
        )
    elif reason is SkipReason.ALREADY_ACTIVATED:
        text = ngettext(
            "• {count} already activated: nothing to send",
            "• {count} already activated: nothing to send",
            count,
        )
    elif reason is SkipReason.NOT_YET_NOTIFIED:
        text = ngettext(
            "• {count} never notified: send the credentials first with "
            "<code>/envoyer {argument}</code> or <code>/pdf {argument}</code>",
            "• {count} never notified: send their credentials first with "
            "<code>/envoyer {argument}</code> or <code>/pdf {argument}</code>",
            count,
        )
    elif reason is SkipReason.ARCHIVED:
        text = ngettext(
            "• {count} archived: no child enrolled any more",
            "• {count} archived: no child enrolled any more",
            count,
        )
    else:
        text = ngettext(
            "• {count} whose account is deactivated",
            "• {count} whose accounts are deactivated",
            count,
        )
    return text.format(count=number, argument=argument, names=names)


def skip_lines(
    skipped: dict[str, int], argument: str, names: dict[str, str] | None = None
) -> list[str]:
    """« Skipped » lines from counts keyed by `SkipReason` value (as bot_data keeps them)."""
    lines = []
    for reason in SkipReason:
        count = skipped.get(reason.value, 0)
        if count:
            lines.append(skip_line(reason, count, argument, (names or {}).get(reason.value, "")))
    return lines


def skipped_counts(preview: DistributionPreview) -> dict[str, int]:
    return {reason.value: count for reason, count in preview.skip_counts().items()}


def preview_blocks(school: SchoolRef, preview: DistributionPreview) -> list[str]:
    """The preview: what was resolved, who will get what, who is skipped and why."""
    titles = {
        Purpose.EMAIL: _("<b>Credentials by e-mail</b> — {school}"),
        Purpose.PAPER: _("<b>Letters to print</b> — {school}"),
        Purpose.REMINDER: _("<b>Reminders</b> — {school}"),
    }
    blocks = [titles[preview.purpose].format(school=school.title), *scope_lines(preview), ""]
    planned = len(preview.planned)
    if preview.purpose is Purpose.EMAIL:
        heading = ngettext(
            "<b>{count} guardian will receive an e-mail:</b>",
            "<b>{count} guardians will receive an e-mail:</b>",
            planned,
        )
    elif preview.purpose is Purpose.PAPER:
        heading = ngettext(
            "<b>{count} letter to print, one page per guardian:</b>",
            "<b>{count} letters to print, one page per guardian:</b>",
            planned,
        )
    else:
        heading = ngettext(
            "<b>{count} guardian notified but not activated will be reminded:</b>",
            "<b>{count} guardians notified but not activated will be reminded:</b>",
            planned,
        )
    if planned:
        blocks.append(heading.format(count=format_number(planned)))
        blocks += [kind_line(kind, count) for kind, count in preview.counts().items()]
    if preview.purpose is Purpose.REMINDER and planned:
        blocks.append(
            _("By e-mail: {emails} · on paper (a PDF to print): {letters}").format(
                emails=format_number(preview.channel_count(DistributionChannel.EMAIL)),
                letters=format_number(preview.channel_count(DistributionChannel.PAPER)),
            )
        )
    if preview.already_queued:
        blocks.append(
            ngettext(
                "{count} of them still has an earlier e-mail waiting to be sent: this one "
                "replaces it.",
                "{count} of them still have an earlier e-mail waiting to be sent: this one "
                "replaces it.",
                preview.already_queued,
            ).format(count=format_number(preview.already_queued))
        )
    skipped = preview.skip_counts()
    if skipped:
        names = {
            SkipReason.INVALID_ADDRESS.value: _names(preview, SkipReason.INVALID_ADDRESS),
        }
        blocks += ["", _("<b>Skipped:</b>")]
        blocks += skip_lines(skipped_counts(preview), scope_argument(preview.scopes), names)
    return blocks


def nobody_text(preview: DistributionPreview) -> str:
    """Why there is nothing to do for this scope."""
    if preview.purpose is Purpose.PAPER:
        return _("No letter to print here: nobody of this list needs one.")
    if preview.purpose is Purpose.REMINDER:
        return _("Nobody to remind here: no guardian is notified and waiting to activate.")
    return _("Nobody to send an e-mail to here.")


# --- /envoyer -----------------------------------------------------------------------------------


def confirm_data(action: str, nonce: str) -> str:
    """A confirmation button's data: the action and the preview it belongs to."""
    return f"{action}:{nonce}"


def confirm_pattern(*actions: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:{'|'.join(re.escape(a) for a in actions)}):[0-9a-f]+$")


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


async def show_preview(
    update: Update, context: BotContext, school: SchoolRef, preview: DistributionPreview
) -> str | int:
    """Show who will get what, with the buttons to go on; remember what to confirm."""
    blocks = preview_blocks(school, preview)
    if preview.is_empty:
        forget_pending(context)
        await show(update, [*blocks, "", nobody_text(preview)])
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
        from handlers.letters import letters_keyboard, paper_question

        blocks += ["", paper_question(school)]
        keyboard = letters_keyboard(count, nonce)
    set_pending(
        context,
        {
            "purpose": preview.purpose.value,
            "school_id": school.id,
            "scopes": scope_tokens(preview),
            "include_all": preview.include_all,
            "confirmation": preview.confirmation(),
            "skipped": skipped_counts(preview),
            "title": scopes_title(preview.scopes),
            "argument": scope_argument(preview.scopes),
            "nonce": nonce,
        },
    )
    await show(update, blocks, keyboard)
    return CONFIRMING


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


async def replan(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """The accounts changed since the preview: show the up-to-date one."""
    found = pending(context) or {}
    purpose = Purpose(found.get("purpose", Purpose.EMAIL.value))
    tokens = found.get("scopes") or ["e"]
    try:
        if purpose is Purpose.EMAIL:
            preview = await context.db.run(
                plan_email_distribution, school_id=school.id, scope_tokens=tokens
            )
        elif purpose is Purpose.REMINDER:
            preview = await context.db.run(plan_reminders, school_id=school.id, scope_tokens=tokens)
        else:
            from bot.services.distribution import plan_paper_letters

            preview = await context.db.run(
                plan_paper_letters,
                school_id=school.id,
                scope_tokens=tokens,
                include_all=bool(found.get("include_all")),
            )
    except UnknownClassError as error:
        return await answer_unknown_scope(update, error, lambda t: f"{EMAIL_PREFIX}s:{t}")
    return await show_preview(update, context, school, preview)


def confirmed_pending(
    update: Update, context: BotContext, school: SchoolRef, purpose: Purpose
) -> dict[str, Any] | None:
    """The pending distribution this confirmation button belongs to, else None."""
    found = pending(context)
    query = update.callback_query
    nonce = (query.data or "").rsplit(":", 1)[-1] if query else ""
    if found is None or found.get("purpose") != purpose.value or found.get("nonce") != nonce:
        return None
    if found.get("school_id") != school.id:
        return None
    return found


async def stale_confirmation(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int | None:
    """A confirmation button of a preview that is not the one waiting: nothing is done."""
    query = update.callback_query
    if query is not None:
        await query.answer(
            _(
                "This preview is over: use the buttons of my latest message, or type the command "
                "again."
            ),
            show_alert=True,
        )
        if isinstance(query.message, Message) and query.message.reply_markup:
            with contextlib.suppress(BadRequest):
                await query.edit_message_reply_markup(reply_markup=None)
    found = pending(context)
    if found is not None and found.get("school_id") == school.id:
        return None  # a newer preview waits: stay where we are
    forget_pending(context)
    return ConversationHandler.END


@director_only
async def confirm_email(update: Update, context: BotContext, school: SchoolRef) -> str | int | None:
    """Start the send: the e-mails are prepared and sent in the background."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return ConversationHandler.END
    found = confirmed_pending(update, context, school, Purpose.EMAIL)
    if found is None:
        return await stale_confirmation(update, context, school)
    await query.answer()
    # Remove the buttons first: a second tap must not send twice.
    await query.edit_message_reply_markup(reply_markup=None)
    forget_pending(context)
    count = len(found["confirmation"].get("accounts", {}))
    progress = await query.message.reply_text(
        ngettext(
            "⏳ Preparing {count} e-mail: drawing the password…",
            "⏳ Preparing {count} e-mails: drawing the passwords…",
            count,
        ).format(count=format_number(count))
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
        return await context.db.run(
            start_email_distribution,
            school_id=school.id,
            preview_or_account_ids=found["confirmation"],
            reset=False,
            actor=actor_of(update),
            bot_username=context.bot.username,
            portal_url=context.settings.portal_url,
            mail_from=context.settings.mail_from,
        )

    context.application.create_task(run_batch(context.application, batch, prepare), update=update)
    return ConversationHandler.END


# --- /relancer ----------------------------------------------------------------------------------


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
    if preview.channel_count(DistributionChannel.PAPER) and not preview.is_empty:
        from handlers.letters import password_needed

        if await password_needed(update, context, school, preview):
            return TYPING_DOCUMENT_PASSWORD
    return await show_preview(update, context, school, preview)


REMINDER_SCOPE = re.compile(rf"^{REMINDER_PREFIX}s:(\w+)$")


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
    if preview.channel_count(DistributionChannel.PAPER) and not preview.is_empty:
        from handlers.letters import password_needed

        if await password_needed(update, context, school, preview):
            return TYPING_DOCUMENT_PASSWORD
    return await show_preview(update, context, school, preview)


@director_only
async def confirm_reminders(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int | None:
    """Start the reminders (or resets): e-mails in the background, a PDF for the others."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return ConversationHandler.END
    found = confirmed_pending(update, context, school, Purpose.REMINDER)
    if found is None:
        return await stale_confirmation(update, context, school)
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    forget_pending(context)
    from handlers.letters import run_reminders

    reset = (query.data or "").startswith(f"{RESET}:")
    context.application.create_task(
        run_reminders(context.application, update, school, found, reset=reset), update=update
    )
    return ConversationHandler.END


@director_only
async def cancel_button(update: Update, context: BotContext, school: SchoolRef) -> int:
    """Drop the distribution being prepared: nothing is sent or printed."""
    query = update.callback_query
    forget_pending(context)
    if query is not None:
        await query.answer()
        await query.edit_message_reply_markup(reply_markup=None)
        if isinstance(query.message, Message):
            await query.message.reply_text(_("Cancelled: nothing was sent or printed."))
    return ConversationHandler.END


async def cancel_distribution(update: Update, context: BotContext) -> int:
    """Leave with /annuler: nothing is sent or printed."""
    forget_pending(context)
    if update.effective_message:
        await update.effective_message.reply_text(_("Cancelled: nothing was sent or printed."))
    return ConversationHandler.END


async def earlier_step_button(update: Update, context: BotContext) -> None:
    """Answer a button of an earlier step of the distribution in progress."""
    if update.callback_query:
        await update.callback_query.answer(
            _("This button belongs to an earlier step: use the buttons of my latest message."),
            show_alert=True,
        )


async def stale_button(update: Update, context: BotContext) -> None:
    """Answer a button of a distribution that is over (sent, cancelled or replaced)."""
    query = update.callback_query
    if query is None:
        return
    await query.answer(
        _("This preview is over. Type the command again to start a new one."), show_alert=True
    )
    if isinstance(query.message, Message) and query.message.reply_markup:
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(reply_markup=None)


# --- Following a batch ------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchStart:
    """What the follower of one batch needs (kept in bot_data as JSON, by batch id)."""

    chat_id: int
    message_id: int
    school_id: int
    title: str  # the scopes, HTML-escaped
    skipped: dict[str, int]  # SkipReason value → count, as the preview said
    argument: str  # the scopes as typed after a command
    language: str
    kind: str  # a `Purpose` value

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchStart:
        return cls(
            chat_id=int(data["chat_id"]),
            message_id=int(data["message_id"]),
            school_id=int(data.get("school_id", 0)),
            title=str(data.get("title", "")),
            skipped={str(k): int(v) for k, v in dict(data.get("skipped") or {}).items()},
            argument=str(data.get("argument", "")),
            language=str(data.get("language", "fr")),
            kind=str(data.get("kind", Purpose.EMAIL.value)),
        )


def _bar(done: int, total: int) -> str:
    filled = round(_BAR_CELLS * done / total) if total else _BAR_CELLS
    return "▰" * filled + "▱" * (_BAR_CELLS - filled)


def progress_text(progress: BatchProgress) -> str:
    """The progress message: a bar, what is sent, failed, waiting for a retry."""
    finished = progress.sent + progress.failed + progress.cancelled
    lines = [
        _("✉️ <b>Sending the e-mails</b> {bar} {done} of {total}").format(
            bar=_bar(finished, progress.total),
            done=format_number(finished),
            total=format_number(progress.total),
        ),
        _("Sent: {sent} · failed: {failed} · waiting: {waiting}").format(
            sent=format_number(progress.sent),
            failed=format_number(progress.failed),
            waiting=format_number(progress.pending + progress.sending),
        ),
    ]
    if progress.retrying:
        lines.append(
            ngettext(
                "{count} e-mail will be tried again (the mail server said: {reason})",
                "{count} e-mails will be tried again (the mail server said: {reason})",
                progress.retrying,
            ).format(
                count=format_number(progress.retrying),
                reason=html.escape((progress.last_retry_reason or "")[:200]),
            )
        )
    lines.append(_("You can keep using the bot meanwhile; I will post a summary at the end."))
    return "\n".join(lines)


def _failure_line(failure: FailedMessage) -> str:
    reasons = {
        FailureKind.REFUSED: _("refused by the mail server"),
        FailureKind.INVALID_ADDRESS: _("invalid address"),
        FailureKind.GAVE_UP: _("the mail server could not be reached"),
    }
    return _("• {name} (<code>{identifier}</code>) — {address}: {why} ({reason})").format(
        name=html.escape(failure.guardian_name or "?"),
        identifier=html.escape(failure.identifier or "?"),
        address=html.escape(failure.to_address),
        why=reasons[failure.kind],
        reason=html.escape(failure.reason[:200]),
    )


def summary_blocks(batch: BatchStart, progress: BatchProgress) -> list[str]:
    """The summary of a finished batch: sent, failed (each with its reason), skipped."""
    if batch.kind == Purpose.REMINDER.value:
        title = _("<b>Reminders by e-mail: done</b> — {scope}")
    else:
        title = _("<b>E-mails sent: done</b> — {scope}")
    blocks = [
        title.format(scope=batch.title),
        _("✅ Sent: {count}").format(count=format_number(progress.sent)),
        _("❌ Failed: {count}").format(count=format_number(progress.failed)),
    ]
    blocks += [_failure_line(failure) for failure in progress.failures]
    if progress.cancelled:
        blocks.append(
            _("↩️ Replaced by a newer e-mail before being sent: {count}").format(
                count=format_number(progress.cancelled)
            )
        )
    skipped = sum(batch.skipped.values())
    if skipped:
        blocks.append(_("⏭️ Skipped: {count}").format(count=format_number(skipped)))
        blocks += skip_lines(batch.skipped, batch.argument)
    if progress.failures:
        blocks += [
            "",
            _(
                "For each failure, check the address with the family and correct it in ONDE, "
                "then import again; or print their letters with /pdf."
            ),
        ]
    blocks += ["", _("The lights follow each accepted e-mail: see /etat.")]
    return blocks


def _followed(application: Application) -> dict[str, Any]:
    data = application.bot_data
    followed = data.get(FOLLOWED_KEY)
    if not isinstance(followed, dict):
        followed = {}
        data[FOLLOWED_KEY] = followed
    return followed


async def _edit(application: Application, batch: BatchStart, text: str) -> None:
    try:
        await application.bot.edit_message_text(
            text, chat_id=batch.chat_id, message_id=batch.message_id
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            log.info("progress message not edited (%s)", error)
    except TelegramError as error:
        log.warning("progress message not edited (%s)", type(error).__name__)


async def _post(application: Application, batch: BatchStart, blocks: list[str]) -> None:
    for text in split_text(blocks):
        try:
            await application.bot.send_message(batch.chat_id, text)
        except TelegramError as error:
            log.warning("batch summary not posted (%s)", type(error).__name__)
            return


async def follow_batch(application: Application, batch_id: str, batch: BatchStart) -> None:
    """Edit the progress message while the batch is sent (throttled), then post the summary.

    Stops quietly when the application stops: the next start resumes it from bot_data."""
    db = _app(application).db
    with use_language(batch.language):
        shown: str | None = None
        last_edit = 0.0
        while application.running:
            try:
                progress = await db.run(batch_progress, batch_id=batch_id)
            except Exception:
                log.exception("could not read the progress of a batch")
                await _sleep_while_running(application, EDIT_INTERVAL)
                continue
            if progress.done:
                await _edit(application, batch, progress_text(progress))
                await _post(application, batch, summary_blocks(batch, progress))
                _followed(application).pop(batch_id, None)
                with contextlib.suppress(Exception):  # else saved at the next persistence tick
                    await application.update_persistence()
                return
            text = progress_text(progress)
            now = time.monotonic()
            if text != shown and now - last_edit >= EDIT_INTERVAL:
                await _edit(application, batch, text)
                shown, last_edit = text, now
            await _sleep_while_running(application, POLL_INTERVAL)


async def _sleep_while_running(application: Application, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while application.running and time.monotonic() < deadline:
        await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _app(application: Application) -> EduConnectApplication:
    assert isinstance(application, EduConnectApplication)
    return application


async def follow(application: Application, batch_id: str, batch: BatchStart) -> None:
    """Remember the batch (a restart resumes it) and follow it in the background."""
    _followed(application)[batch_id] = batch.to_json()
    try:
        # At once, not at the next persistence tick: a crash now must not lose the summary.
        await application.update_persistence()
    except Exception:
        log.exception("could not save the batch to follow")
    application.create_task(follow_batch(application, batch_id, batch))


async def run_batch(
    application: Application,
    batch: BatchStart,
    prepare: Callable[[], Awaitable[str | None]],
) -> None:
    """Prepare the e-mails (draw the passwords, fill the outbox), then follow their sending."""
    with use_language(batch.language):
        try:
            batch_id = await prepare()
        except StalePlanError as error:
            await _edit(application, batch, html.escape(str(error)))
            return
        except NothingToDistributeError as error:
            await _edit(application, batch, html.escape(str(error)))
            return
        except DistributionError as error:
            await _edit(application, batch, html.escape(str(error)))
            return
        except Exception:
            log.exception("preparing a batch of e-mails failed")
            await _edit(
                application,
                batch,
                _(
                    "Sorry, preparing the e-mails failed and nothing was sent. Please try again "
                    "in a moment."
                ),
            )
            return
    if batch_id is None:
        return
    await follow(application, batch_id, batch)


async def _resume(context: BotContext) -> None:
    """Follow again the batches a previous run was following."""
    application = context.application
    for batch_id, data in list(_followed(application).items()):
        try:
            batch = BatchStart.from_json(data)
        except (KeyError, TypeError, ValueError):
            _followed(application).pop(batch_id, None)
            continue
        application.create_task(follow_batch(application, batch_id, batch))


def setup(application: Application) -> None:
    """Resume following the batches in progress once the application runs."""
    if application.job_queue is not None:
        application.job_queue.run_once(_resume, when=0)
