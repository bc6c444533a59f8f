"""The invariants of single-use secrets: links, letter codes and invitations stored only as
SHA-256 hashes, one live link of each kind per account, and an activation link used only by
an account that is activated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, not_, or_, select

from bot.i18n import N_
from bot.services.integrity.invariant import Context, Invariant, table
from models import (
    Account,
    AccountState,
    FamilyLinkCode,
    InspectorInvitation,
    Invitation,
    PortalToken,
    PortalTokenPurpose,
)

ACCOUNT = table(Account)
TOKEN = table(PortalToken)
CODE = table(FamilyLinkCode)
INVITATION = table(Invitation)
INSPECTOR_INVITATION = table(InspectorInvitation)
SHA256_HEX_LENGTH = 64


def _not_sha256_hex(column: Any, context: Context) -> Any:
    """Whether a stored hash is not 64 lower-case hexadecimal digits (a secret in clear)."""
    if context.dialect == "postgresql":
        return not_(column.regexp_match(f"^[0-9a-f]{{{SHA256_HEX_LENGTH}}}$"))
    # SQLite has no regular expressions: GLOB finds any character outside the alphabet.
    return or_(func.length(column) != SHA256_HEX_LENGTH, column.op("GLOB")("*[^0-9a-f]*"))


def _hash_check(source: Any, column_name: str) -> Any:
    def query(context: Context) -> Select[Any]:
        return select(source.c.id).where(_not_sha256_hex(source.c[column_name], context))

    return query


def _several_live_links(_context: Context) -> Select[Any]:
    # Issuing a link revokes the account's unused links of the same purpose, expired or not.
    return (
        select(TOKEN.c.account_id)
        .where(TOKEN.c.used_at.is_(None), TOKEN.c.revoked_at.is_(None))
        .group_by(TOKEN.c.account_id, TOKEN.c.purpose)
        .having(func.count() > 1)
    )


def _used_activation_not_activated(_context: Context) -> Select[Any]:
    # Following the link and activating the account are one transaction.
    return (
        select(TOKEN.c.account_id)
        .join(ACCOUNT, ACCOUNT.c.id == TOKEN.c.account_id)
        .where(
            TOKEN.c.purpose == PortalTokenPurpose.ACTIVATION.value,
            TOKEN.c.used_at.is_not(None),
            ACCOUNT.c.state != AccountState.ACTIVATED.value,
        )
    )


def _several_live_codes(context: Context) -> Select[Any]:
    # A newer letter's code makes the older ones expire at once.
    return (
        select(CODE.c.account_id)
        .where(CODE.c.used_at.is_(None), CODE.c.expires_at > context.now)
        .group_by(CODE.c.account_id)
        .having(func.count() > 1)
    )


def _code_use_half_recorded(_context: Context) -> Select[Any]:
    return select(CODE.c.id).where(
        or_(
            CODE.c.used_at.is_(None) & CODE.c.used_by_telegram_id.is_not(None),
            CODE.c.used_at.is_not(None) & CODE.c.used_by_telegram_id.is_(None),
        )
    )


_LEAKED = N_(
    "These secrets may be readable in the database: tell the developers, and issue new ones "
    "(new credentials, links or invitations) to the people concerned."
)
_DEVELOPERS = N_("Tell the developers with the codes and ids above: no service writes this.")

INVARIANTS = (
    Invariant(
        code="secret.portal_link_not_hashed",
        subject="portal_token",
        description=N_("Portal links (activation, address, password) not stored as a hash."),
        advice=_LEAKED,
        query=_hash_check(TOKEN, "token_hash"),
    ),
    Invariant(
        code="secret.letter_code_not_hashed",
        subject="family_link_code",
        description=N_("Letters' bot codes not stored as a hash."),
        advice=_LEAKED,
        query=_hash_check(CODE, "code_hash"),
    ),
    Invariant(
        code="secret.director_invitation_not_hashed",
        subject="invitation",
        description=N_("Director invitations not stored as a hash."),
        advice=_LEAKED,
        query=_hash_check(INVITATION, "code_hash"),
    ),
    Invariant(
        code="secret.inspector_invitation_not_hashed",
        subject="inspector_invitation",
        description=N_("Inspector invitations not stored as a hash."),
        advice=_LEAKED,
        query=_hash_check(INSPECTOR_INVITATION, "code_hash"),
    ),
    Invariant(
        code="secret.several_live_portal_links",
        subject="account",
        description=N_(
            "Accounts with several unused links of the same kind: an older link should have "
            "stopped working when the newer one was sent."
        ),
        advice=_DEVELOPERS,
        query=_several_live_links,
    ),
    Invariant(
        code="secret.used_activation_link_not_activated",
        subject="account",
        description=N_(
            "Accounts whose activation link was followed but which are not activated: the "
            "activation happened only in part."
        ),
        advice=N_(
            "Send the confirmation link again from the guardian's card in the bot so that the "
            "family can finish; tell the developers."
        ),
        query=_used_activation_not_activated,
    ),
    Invariant(
        code="secret.several_live_letter_codes",
        subject="account",
        description=N_(
            "Accounts with several valid letter codes: the older letter's code should have "
            "stopped working when the newer one was printed or sent."
        ),
        advice=_DEVELOPERS,
        query=_several_live_codes,
    ),
    Invariant(
        code="secret.letter_code_use_half_recorded",
        subject="family_link_code",
        description=N_(
            "Letter codes used without the chat that used them, or the other way round."
        ),
        advice=_DEVELOPERS,
        query=_code_use_half_recorded,
    ),
)
