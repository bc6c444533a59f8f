"""What a family can do for itself from a linked chat (a letter's code or a verified phone): see
its accounts, get a new provisional password or the confirmation link again by e-mail, choose
its language, and what its free text asks for. Never a password in the chat.
"""

from __future__ import annotations

from bot.services.family.accounts import ChildLine, FamilyAccount, family_accounts, mask_email
from bot.services.family.intents import Intent, detect_intent
from bot.services.family.language import (
    GuardianLanguage,
    UnknownGuardianError,
    UnsupportedLanguageError,
    linked_language,
    set_family_language,
    set_guardian_language,
)
from bot.services.family.self_help import (
    SelfHelpOutcome,
    SelfHelpResult,
    resend_confirmation_link,
    send_new_provisional_password,
)

__all__ = [
    "ChildLine",
    "FamilyAccount",
    "GuardianLanguage",
    "Intent",
    "SelfHelpOutcome",
    "SelfHelpResult",
    "UnknownGuardianError",
    "UnsupportedLanguageError",
    "detect_intent",
    "family_accounts",
    "linked_language",
    "mask_email",
    "resend_confirmation_link",
    "send_new_provisional_password",
    "set_family_language",
    "set_guardian_language",
]
