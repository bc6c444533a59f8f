"""What a family can do for itself from a linked chat (a letter's code or a verified phone): see
its accounts, get a new provisional password or the confirmation link again by e-mail, and what
its free text asks for. Never a password in the chat.
"""

from __future__ import annotations

from bot.services.family.accounts import ChildLine, FamilyAccount, family_accounts, mask_email
from bot.services.family.intents import Intent, detect_intent
from bot.services.family.self_help import (
    SelfHelpOutcome,
    SelfHelpResult,
    resend_confirmation_link,
    send_new_provisional_password,
)

__all__ = [
    "ChildLine",
    "FamilyAccount",
    "Intent",
    "SelfHelpOutcome",
    "SelfHelpResult",
    "detect_intent",
    "family_accounts",
    "mask_email",
    "resend_confirmation_link",
    "send_new_provisional_password",
]
