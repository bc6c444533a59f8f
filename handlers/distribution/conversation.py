"""The one conversation of /envoyer, /relancer and /pdf: a scope to choose, maybe the document
password to type, then a preview to confirm. One conversation, because a chat prepares one
distribution at a time and each command may need the document password step.
"""

from __future__ import annotations

import warnings

from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from handlers.distribution.delivery import zip_requested
from handlers.distribution.emails import confirm_email, email_scope_chosen, start_email
from handlers.distribution.paper import confirm_letters, letters_scope_chosen, start_letters
from handlers.distribution.picked import (
    LETTER_BUTTON,
    MAIL_BUTTON,
    start_picked_email,
    start_picked_letter,
)
from handlers.distribution.preview import cancel_button, cancel_distribution, stale_button
from handlers.distribution.protection import (
    passphrase_chosen,
    receive_document_password,
    retention_chosen,
)
from handlers.distribution.reminders import confirm_reminders, reminder_scope_chosen, start_reminder
from handlers.distribution.state import (
    CANCEL_PRINT,
    CANCEL_REMINDERS,
    CANCEL_SEND,
    CHOOSING_SCOPE,
    CONFIRMING,
    EMAIL_PREFIX,
    EMAIL_SCOPE,
    LETTERS_PREFIX,
    LETTERS_SCOPE,
    PASSPHRASE,
    PRINT,
    REMIND,
    REMINDER_PREFIX,
    REMINDER_SCOPE,
    RESET,
    RETENTION,
    SEND,
    TYPING_DOCUMENT_PASSWORD,
    ZIP,
    confirm_pattern,
)
from handlers.keyboards import answer_earlier_step_button

_PRIVATE = filters.ChatType.PRIVATE
_TEXT = _PRIVATE & filters.TEXT & ~filters.COMMAND
_ANY_STEP = rf"^(?:{EMAIL_PREFIX}|{REMINDER_PREFIX}|{LETTERS_PREFIX})"
_SCOPE_BUTTONS: list[BaseHandler] = [
    CallbackQueryHandler(email_scope_chosen, pattern=EMAIL_SCOPE),
    CallbackQueryHandler(reminder_scope_chosen, pattern=REMINDER_SCOPE),
    CallbackQueryHandler(letters_scope_chosen, pattern=LETTERS_SCOPE),
]


# Buttons belong to the chat's one distribution in progress, not to a message.
def distribution_conversation() -> ConversationHandler:
    """/envoyer, /relancer and /pdf: scope, document password, preview, confirmation."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message=False", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[
                CommandHandler("envoyer", start_email, filters=_PRIVATE),
                CommandHandler("relancer", start_reminder, filters=_PRIVATE),
                CommandHandler("pdf", start_letters, filters=_PRIVATE),
                # A class button of an earlier message starts over from that class.
                *_SCOPE_BUTTONS,
                # A guardian card's e-mail and letter buttons (/responsables, help requests).
                CallbackQueryHandler(start_picked_email, pattern=MAIL_BUTTON),
                CallbackQueryHandler(start_picked_letter, pattern=LETTER_BUTTON),
            ],
            states={
                CHOOSING_SCOPE: _SCOPE_BUTTONS,
                TYPING_DOCUMENT_PASSWORD: [
                    MessageHandler(_TEXT, receive_document_password),
                    CallbackQueryHandler(passphrase_chosen, pattern=PASSPHRASE),
                ],
                CONFIRMING: [
                    CallbackQueryHandler(confirm_email, pattern=confirm_pattern(SEND)),
                    CallbackQueryHandler(confirm_reminders, pattern=confirm_pattern(REMIND, RESET)),
                    CallbackQueryHandler(confirm_letters, pattern=confirm_pattern(PRINT)),
                    CallbackQueryHandler(
                        cancel_button,
                        pattern=confirm_pattern(CANCEL_SEND, CANCEL_REMINDERS, CANCEL_PRINT),
                    ),
                ],
            },
            fallbacks=[
                CommandHandler("annuler", cancel_distribution, filters=_PRIVATE),
                CallbackQueryHandler(
                    answer_earlier_step_button, pattern=_ANY_STEP + r"(?:go|no|remind|reset):"
                ),
            ],
            name="distribution",
            persistent=True,
            allow_reentry=True,
        )


_PLAIN_HANDLERS: list[BaseHandler] = [
    # Work at any time, whatever the conversation: they carry their whole meaning.
    CallbackQueryHandler(zip_requested, pattern=f"^{ZIP}$"),
    CallbackQueryHandler(retention_chosen, pattern=RETENTION),
    # Buttons of a preview that is over: say so, never hang.
    CallbackQueryHandler(stale_button, pattern=_ANY_STEP),
]


def build_handlers() -> list[BaseHandler]:
    """The feature's handlers, the conversation new for each application: a conversation
    handler keeps the state of the conversations it saw, which belongs to one application."""
    return [distribution_conversation(), *_PLAIN_HANDLERS]
