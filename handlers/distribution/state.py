"""What the distribution conversation (/envoyer, /relancer, /pdf) keeps and recognises: its
states, its buttons' callback data, and the distribution pending in the chat (user_data).
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Update

from bot.context import BotContext
from bot.services.distribution import Purpose
from handlers.access import SchoolRef

# Conversation states.
CHOOSING_SCOPE = "choosing_scope"
CONFIRMING = "confirming"
TYPING_DOCUMENT_PASSWORD = "typing_document_password"

EMAIL_PREFIX = "env:"
REMINDER_PREFIX = "rel:"
LETTERS_PREFIX = "pdf:"
# env:s:<scope> — the class chosen with a button; env:go — send; env:no — cancel.
EMAIL_SCOPE = re.compile(rf"^{EMAIL_PREFIX}s:(\w+)$")
SEND, CANCEL_SEND = f"{EMAIL_PREFIX}go", f"{EMAIL_PREFIX}no"
REMINDER_SCOPE = re.compile(rf"^{REMINDER_PREFIX}s:(\w+)$")
REMIND, RESET, CANCEL_REMINDERS = (
    f"{REMINDER_PREFIX}remind",
    f"{REMINDER_PREFIX}reset",
    f"{REMINDER_PREFIX}no",
)
# pdf:s:<a|d>:<scope> — a class chosen with a button (a: everyone, d: without e-mail only).
LETTERS_SCOPE = re.compile(rf"^{LETTERS_PREFIX}s:([ad]):(\w+)$")
PRINT, CANCEL_PRINT = f"{LETTERS_PREFIX}go", f"{LETTERS_PREFIX}no"
# Under a letters PDF, and in /pdf conservation: they work at any time, outside the steps.
ZIP = f"{LETTERS_PREFIX}zip"
RETENTION = re.compile(rf"^{LETTERS_PREFIX}ret:([0-9]{{1,6}})$")
# pdf:pw:<passphrase> — take the passphrase drawn for the document password step.
PASSPHRASE = re.compile(rf"^{LETTERS_PREFIX}pw:([a-z0-9-]{{12,40}})$")

# user_data: the distribution being prepared in this chat (JSON only).
PENDING_KEY = "distribution"
# Kept in the pending distribution when it was made for accounts picked by hand (a guardian's
# card) rather than for scopes, and the help request the button answered, if any.
ACCOUNT_IDS_KEY = "account_ids"
HELP_REQUEST_KEY = "help_request_id"


def picked_origin(account_ids: list[int], help_request_id: int | None) -> dict[str, Any]:
    """What a preview for accounts picked by hand keeps beside its confirmation."""
    return {ACCOUNT_IDS_KEY: account_ids, HELP_REQUEST_KEY: help_request_id}


def origin_of(found: dict[str, Any]) -> dict[str, Any]:
    """The picked accounts and help request a pending distribution came from ({}: scopes)."""
    if not found.get(ACCOUNT_IDS_KEY):
        return {}
    return {key: found.get(key) for key in (ACCOUNT_IDS_KEY, HELP_REQUEST_KEY)}


def confirm_data(action: str, nonce: str) -> str:
    """A confirmation button's data: the action and the preview it belongs to."""
    return f"{action}:{nonce}"


def confirm_pattern(*actions: str) -> re.Pattern[str]:
    """The confirmation buttons of `actions`, whatever preview they belong to."""
    return re.compile(rf"^(?:{'|'.join(re.escape(a) for a in actions)}):[0-9a-f]+$")


def pending(context: BotContext) -> dict[str, Any] | None:
    """The distribution this chat is preparing, if any."""
    data = context.user_data
    found = data.get(PENDING_KEY) if data is not None else None
    return found if isinstance(found, dict) else None


def awaits_document_password(context: BotContext) -> bool:
    """Whether this chat's next typed text is the letters' document password (a preview that
    waits for its buttons has a nonce; one that waits for the password has none yet)."""
    found = pending(context)
    return found is not None and "nonce" not in found


def set_pending(context: BotContext, value: dict[str, Any]) -> None:
    if context.user_data is not None:
        context.user_data[PENDING_KEY] = value


def forget_pending(context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(PENDING_KEY, None)


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


def actor_of(update: Update) -> str:
    """Who acts, as the audit log names a Telegram user."""
    user = update.effective_user
    return f"telegram:{user.id}" if user else "telegram:unknown"
