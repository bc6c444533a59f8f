"""The families' help conversation: the guided paths, filing a request step by step, adding a
message to one. One persistent conversation (it survives a restart), `/annuler` everywhere, and
a timeout that says how to start again."""

from __future__ import annotations

import re
import warnings

from telegram import ReplyKeyboardRemove, Update
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
from bot.i18n import _
from bot.services.family import Intent
from handlers.helpdesk.family_requests import (
    ADD,
    ADDING_KEY,
    ADDING_MESSAGE,
    message_added,
    my_requests,
    start_adding,
)
from handlers.helpdesk.filing import (
    SCHOOL_CHOSEN,
    SKIP_MESSAGE,
    TYPING_CHILD,
    TYPING_CLASS,
    TYPING_GUARDIAN,
    TYPING_MESSAGE,
    TYPING_SCHOOL,
    child_typed,
    class_typed,
    forget_draft,
    guardian_typed,
    message_skipped,
    message_typed,
    school_chosen,
    school_typed,
)
from handlers.helpdesk.guided import (
    ACTIVE,
    ASKING,
    CONFIRMATION,
    FAMILY_PREFIX,
    FILE,
    NEW_PASSWORD,
    activated_or_not,
    activation_help,
    ask_question,
    confirmation_again,
    file_chosen,
    lost_identifier,
    lost_password,
    new_password_confirmed,
)
from handlers.keyboards import take_buttons_off

# How long a family may leave a step unanswered before the conversation lets go.
TIMEOUT_SECONDS = 30 * 60
# fh:go:<intent> — the path free text proposed.
GO = re.compile(rf"^{FAMILY_PREFIX}go:([a-z_]+)$")

_PATHS = {
    Intent.IDENTIFIER: lost_identifier,
    Intent.PASSWORD: lost_password,
    Intent.ACTIVATION: activation_help,
    Intent.CONFIRMATION_EMAIL: activation_help,
    Intent.BIRTH_DATE: activation_help,
    Intent.MISSING_CHILD: ask_question,
    Intent.HELP_STATUS: my_requests,
}


async def path_chosen(update: Update, context: BotContext) -> str | int:
    """A path free text proposed (or an earlier answer pointed to)."""
    query = update.callback_query
    matched = GO.match(query.data or "") if query else None
    if query is None or matched is None:
        return ConversationHandler.END
    await query.answer()
    try:
        path = _PATHS[Intent(matched[1])]
    except ValueError:
        return ConversationHandler.END
    await take_buttons_off(query)
    return await path(update, context)


async def cancel_help(update: Update, context: BotContext) -> int:
    """/annuler: leave the help in progress; nothing is sent to the school."""
    forget_draft(context)
    if context.user_data is not None:
        context.user_data.pop(ADDING_KEY, None)
    if update.effective_message is not None:
        await update.effective_message.reply_text(
            _("Cancelled: nothing was sent to the school. Type /aide to see what I can do."),
            reply_markup=ReplyKeyboardRemove(),
        )
    return ConversationHandler.END


async def timed_out(update: Update, context: BotContext) -> None:
    """The family left a step unanswered: say that nothing was sent and how to start again."""
    forget_draft(context)
    if update.effective_chat is not None:
        await context.bot.send_message(
            update.effective_chat.id,
            _(
                "I stopped waiting for your answer, and nothing was sent to the school. Whenever "
                "you are ready, start again with /identifiant, /motdepasse, /activation or "
                "/question."
            ),
        )


_PRIVATE = filters.ChatType.PRIVATE
_TEXT = _PRIVATE & filters.TEXT & ~filters.COMMAND
_ANY = filters.ALL

_ENTRY_COMMANDS: list[BaseHandler] = [
    CommandHandler("identifiant", lost_identifier, filters=_PRIVATE),
    CommandHandler("motdepasse", lost_password, filters=_PRIVATE),
    CommandHandler("activation", activation_help, filters=_PRIVATE),
    CommandHandler("question", ask_question, filters=_PRIVATE),
    CommandHandler("demande", my_requests, filters=_PRIVATE),
]
# Buttons that work from any message of the help paths, in a conversation or not.
_BUTTONS: list[BaseHandler] = [
    CallbackQueryHandler(path_chosen, pattern=GO),
    CallbackQueryHandler(file_chosen, pattern=FILE),
    CallbackQueryHandler(activated_or_not, pattern=ACTIVE),
    CallbackQueryHandler(new_password_confirmed, pattern=NEW_PASSWORD),
    CallbackQueryHandler(confirmation_again, pattern=CONFIRMATION),
    CallbackQueryHandler(start_adding, pattern=ADD),
]


def help_conversation() -> ConversationHandler:
    """The families' help conversation. A new one per application: a conversation with a
    timeout keeps its timeout jobs, which belong to one application's job queue."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message=False", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[*_ENTRY_COMMANDS, *_BUTTONS],
            states={
                ASKING: _BUTTONS,
                TYPING_SCHOOL: [
                    CallbackQueryHandler(school_chosen, pattern=SCHOOL_CHOSEN),
                    MessageHandler(_TEXT, school_typed),
                ],
                TYPING_GUARDIAN: [MessageHandler(_TEXT, guardian_typed)],
                TYPING_CHILD: [MessageHandler(_TEXT, child_typed)],
                TYPING_CLASS: [MessageHandler(_TEXT, class_typed)],
                TYPING_MESSAGE: [
                    CallbackQueryHandler(message_skipped, pattern=f"^{re.escape(SKIP_MESSAGE)}$"),
                    MessageHandler(_TEXT, message_typed),
                ],
                ADDING_MESSAGE: [MessageHandler(_TEXT, message_added)],
                ConversationHandler.TIMEOUT: [MessageHandler(_ANY, timed_out)],
            },
            fallbacks=[
                CommandHandler("annuler", cancel_help, filters=_PRIVATE),
                # Another help command starts that path over, from any step.
                *_ENTRY_COMMANDS,
            ],
            name="family_help",
            persistent=True,
            allow_reentry=True,
            conversation_timeout=TIMEOUT_SECONDS,
        )
