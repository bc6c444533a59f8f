"""Telegram handlers: parse the update, call a service, render the reply. Nothing else.

Each feature module exposes `HANDLERS` (a list of PTB handlers), or `build_handlers()` when it
has conversations (a conversation handler keeps per-application state, so each application
gets new ones); `register` adds them in the order below, which matters: conversations first,
so their steps win over plain commands.
"""

from __future__ import annotations

import html
import logging
import traceback

from telegram import Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import Application, BaseHandler

from bot.context import BotContext, EduConnectApplication
from bot.i18n import _, negotiate_language, set_language
from bot.services.accounts import remember_bot_username
from handlers import (
    activation_unlock,
    classes,
    digest,
    distribution,
    district,
    export,
    family_phone,
    guardian_card_actions,
    guardian_language,
    guardians,
    language,
    roster,
    school,
    start,
    status,
)
from handlers import help as help_
from handlers.helpdesk import feature as helpdesk
from handlers.language import chosen_language
from handlers.menus import install as install_menus

log = logging.getLogger(__name__)


# Features with conversations go first, so their steps win over plain commands.
_FEATURES = [
    start,
    family_phone,
    roster,
    distribution,
    # After distribution: a document password being typed must never be read as an address.
    guardian_card_actions,
    guardian_language,
    activation_unlock,
    helpdesk,
    school,
    classes,
    guardians,
    status,
    district,
    digest,
    export,
    language,
    help_,
]


def register(application: Application) -> None:
    """Add every feature's handlers to `application`."""
    for module in _FEATURES:
        build = getattr(module, "build_handlers", None)
        handlers: list[BaseHandler] = (
            build() if callable(build) else getattr(module, "HANDLERS", [])
        )
        for handler in handlers:
            application.add_handler(handler)
        # Background work that must outlive a restart (PTB does not persist jobs): each
        # feature's `setup(application)` re-creates it from the database.
        setup = getattr(module, "setup", None)
        if callable(setup):
            setup(application)
    # Last of all, in the same group: they answer only what no feature took (a global /annuler,
    # unknown commands, stray text). In a later group they would also answer every message a
    # conversation step had already handled.
    for handler in help_.FALLBACK_HANDLERS:
        application.add_handler(handler)


async def set_update_language(update: object, context: BotContext) -> None:
    """Use the user's chosen language (/langue), else the one the school set for their guardian,
    else their Telegram language, else French."""
    telegram_code = None
    if isinstance(update, Update) and update.effective_user:
        telegram_code = update.effective_user.language_code
    set_language(negotiate_language(chosen_language(context.user_data, telegram_code)))


def _failure_summary(error: BaseException | None) -> str:
    """The exception's type and traceback frames, its causes' too, never their messages.

    Messages often quote what the user sent or the data being handled (names, e-mail
    addresses, codes); types and frames say where it failed, which is what a fix needs.
    """
    parts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        kind = type(error)
        frames = "".join(traceback.format_tb(error.__traceback__)).rstrip()
        parts.append(f"{kind.__module__}.{kind.__qualname__}\n{frames}")
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return "\n-- caused by --\n".join(parts)


def _update_kind(update: object) -> str:
    if not isinstance(update, Update):
        return type(update).__name__ if update is not None else "none"
    for kind in ("message", "edited_message", "callback_query", "my_chat_member", "chat_member"):
        if getattr(update, kind, None) is not None:
            return kind
    return "other"


async def on_error(update: object, context: BotContext) -> None:
    """Log the failure (no personal data, no secrets) and tell the user something useful."""
    error = context.error
    if update is None and isinstance(error, NetworkError):
        # Polling hiccups (timeouts, a Bot API server restarting): PTB retries by itself.
        log.warning("Telegram unreachable for a moment (%s)", type(error).__name__)
        return
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "update %s (%s) failed: %s",
        update_id,
        _update_kind(update),
        _failure_summary(error),
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    text = _(
        "Sorry, something went wrong on my side and your last request may not have been "
        "completed. Please check and try again in a moment; if it happens again, try later."
    )
    try:
        if update.callback_query:
            await update.callback_query.answer()
        await context.bot.send_message(update.effective_chat.id, html.escape(text))
    except TelegramError:  # the chat may be unreachable; the log above is what matters
        log.warning("could not tell the user about the error of update %s", update_id)


async def install_command_menus(application: Application) -> None:
    """Give directors and families their own command menus (setMyCommands per scope), and keep
    the bot's username for the letters' deep links (the CLI prints letters too)."""
    await install_menus(application)
    if isinstance(application, EduConnectApplication):
        await application.db.run(remember_bot_username, username=application.bot.username)
