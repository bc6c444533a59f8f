"""Guardian accounts: identifiers, provisional and chosen passwords (argon2id), the state
machine every change goes through, and linking a family's chat: by the single-use code on its
letter, or by the mobile number it shares.
"""

from __future__ import annotations

from bot.services.accounts.credentials import (
    CredentialDraft,
    CredentialKind,
    DistributionPlanItem,
    IssuedCredential,
    draft_credentials,
    issue_credentials,
    mark_distributed,
    notify_accounts,
    plan_distribution,
    record_credentials,
)
from bot.services.accounts.email_address import normalise_email
from bot.services.accounts.family_links import (
    FamilyLinkError,
    LinkedGuardian,
    LinkRefusal,
    draw_link_codes,
    known_bot_username,
    linked_chat_ids,
    linked_guardians,
    record_link_codes,
    redeem_link_code,
    remember_bot_username,
)
from bot.services.accounts.identifiers import (
    allocate_identifiers,
    identifier_base,
)
from bot.services.accounts.lifecycle import (
    begin_activation,
    change_password,
    confirm_activation,
    create_accounts,
)
from bot.services.accounts.login import verify_login
from bot.services.accounts.passwords import (
    CHOSEN_HASHER,
    PROVISIONAL_HASHER,
    PROVISIONAL_LENGTH,
    canonical_provisional_input,
    chosen_password_is_strong,
    generate_provisional_password,
    hash_chosen_password,
    verify_password,
)
from bot.services.accounts.phone_links import (
    MAX_CONTACT_SHARES_PER_DAY,
    PhoneCandidate,
    PhoneLinkOutcome,
    PhoneLinkResult,
    choose_phone_guardian,
    link_by_phone,
)
from bot.services.accounts.phone_numbers import normalise_phone
from bot.services.accounts.refusals import RefusalReason, TransitionRefused
from bot.services.accounts.validity import provisional_expiry

__all__ = [
    "CHOSEN_HASHER",
    "MAX_CONTACT_SHARES_PER_DAY",
    "PROVISIONAL_HASHER",
    "PROVISIONAL_LENGTH",
    "CredentialDraft",
    "CredentialKind",
    "DistributionPlanItem",
    "FamilyLinkError",
    "IssuedCredential",
    "LinkRefusal",
    "LinkedGuardian",
    "PhoneCandidate",
    "PhoneLinkOutcome",
    "PhoneLinkResult",
    "RefusalReason",
    "TransitionRefused",
    "allocate_identifiers",
    "begin_activation",
    "canonical_provisional_input",
    "change_password",
    "choose_phone_guardian",
    "chosen_password_is_strong",
    "confirm_activation",
    "create_accounts",
    "draft_credentials",
    "draw_link_codes",
    "generate_provisional_password",
    "hash_chosen_password",
    "identifier_base",
    "issue_credentials",
    "known_bot_username",
    "link_by_phone",
    "linked_chat_ids",
    "linked_guardians",
    "mark_distributed",
    "normalise_email",
    "normalise_phone",
    "notify_accounts",
    "plan_distribution",
    "provisional_expiry",
    "record_credentials",
    "record_link_codes",
    "redeem_link_code",
    "remember_bot_username",
    "verify_login",
    "verify_password",
]
