"""The help desk's handlers, as `handlers.register` adds them: both are persistent
conversations, the families' first (their steps win over the plain commands)."""

from __future__ import annotations

from telegram.ext import BaseHandler

from handlers.helpdesk import conversation, director


def build_handlers() -> list[BaseHandler]:
    """The help desk's handlers, new for each application (see `help_conversation`)."""
    return [
        conversation.help_conversation(),
        director.reply_conversation(),
        *director.HANDLERS,
    ]
