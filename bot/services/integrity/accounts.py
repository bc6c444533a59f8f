"""The accounts' invariants: each state agrees with its dates and passwords (docs/PRODUCT.md's
four lights), and what the state says happened left its trace (a confirmation e-mail)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, exists, or_, select

from bot.i18n import N_
from bot.services.integrity.invariant import Context, Invariant, table
from models import Account, AccountState, OutboxMessage

ACCOUNT = table(Account)
OUTBOX = table(OutboxMessage)
# The outbox kind of the e-mail that carries the activation's confirmation link.
CONFIRMATION_KIND = "activation_confirmation"
ARGON2ID_PREFIX = "$argon2id$"


def _in_state(state: AccountState, *broken: Any) -> Select[Any]:
    return select(ACCOUNT.c.id).where(ACCOUNT.c.state == state.value, or_(*broken))


def _not_notified(_context: Context) -> Select[Any]:
    return _in_state(
        AccountState.NOT_NOTIFIED,
        ACCOUNT.c.distributed_at.is_not(None),
        ACCOUNT.c.distribution_channel.is_not(None),
        ACCOUNT.c.activated_at.is_not(None),
    )


def _notified(_context: Context) -> Select[Any]:
    return _in_state(
        AccountState.NOTIFIED,
        ACCOUNT.c.distributed_at.is_(None),
        ACCOUNT.c.distribution_channel.is_(None),
        ACCOUNT.c.password_hash.is_(None),
        ACCOUNT.c.provisional_expires_at.is_(None),
        ACCOUNT.c.activated_at.is_not(None),
    )


def _activating(_context: Context) -> Select[Any]:
    return _in_state(
        AccountState.ACTIVATING,
        ACCOUNT.c.password_hash.is_(None),
        ACCOUNT.c.activated_at.is_not(None),
    )


def _activated(_context: Context) -> Select[Any]:
    return _in_state(
        AccountState.ACTIVATED,
        ACCOUNT.c.password_hash.is_(None),
        ACCOUNT.c.activated_at.is_(None),
    )


def _half_recorded_distribution(_context: Context) -> Select[Any]:
    return select(ACCOUNT.c.id).where(
        or_(
            and_(ACCOUNT.c.distributed_at.is_(None), ACCOUNT.c.distribution_channel.is_not(None)),
            and_(ACCOUNT.c.distributed_at.is_not(None), ACCOUNT.c.distribution_channel.is_(None)),
        )
    )


def _expiry_without_password(_context: Context) -> Select[Any]:
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.provisional_expires_at.is_not(None), ACCOUNT.c.password_hash.is_(None)
    )


def _activating_without_confirmation(_context: Context) -> Select[Any]:
    # The form's transaction makes the account `activating` and writes the e-mail together;
    # outbox rows are never deleted.
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.state == AccountState.ACTIVATING.value,
        ~exists().where(OUTBOX.c.account_id == ACCOUNT.c.id, OUTBOX.c.kind == CONFIRMATION_KIND),
    )


def _password_not_hashed(_context: Context) -> Select[Any]:
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.password_hash.is_not(None),
        ~ACCOUNT.c.password_hash.startswith(ARGON2ID_PREFIX, autoescape=True),
    )


_DEVELOPERS = N_(
    "Tell the developers with the codes and ids above: no service writes this. The family can "
    "be given new credentials (« educonnect-bot send UAI CLASS --reset », or « educonnect-bot "
    "letters UAI CLASS --reset » on paper)."
)

INVARIANTS = (
    Invariant(
        code="account.not_notified_inconsistent",
        subject="account",
        description=N_(
            "Accounts shown as not notified (🔴) although a distribution or an activation is "
            "recorded on them."
        ),
        advice=_DEVELOPERS,
        query=_not_notified,
    ),
    Invariant(
        code="account.notified_inconsistent",
        subject="account",
        description=N_(
            "Accounts shown as notified (🟠) without a distribution date and channel, without "
            "an outstanding provisional password, or with an activation date."
        ),
        advice=_DEVELOPERS,
        query=_notified,
    ),
    Invariant(
        code="account.activating_inconsistent",
        subject="account",
        description=N_(
            "Accounts shown as activating (🟡) without a chosen password, or with an "
            "activation date."
        ),
        advice=_DEVELOPERS,
        query=_activating,
    ),
    Invariant(
        code="account.activated_inconsistent",
        subject="account",
        description=N_(
            "Accounts shown as activated (🟢) without a password or an activation date."
        ),
        advice=_DEVELOPERS,
        query=_activated,
    ),
    Invariant(
        code="account.distribution_half_recorded",
        subject="account",
        description=N_(
            "Accounts with a distribution date but no channel (e-mail or paper), or the "
            "other way round."
        ),
        advice=_DEVELOPERS,
        query=_half_recorded_distribution,
    ),
    Invariant(
        code="account.expiry_without_password",
        subject="account",
        description=N_("Accounts with a provisional password's expiry but no password."),
        advice=_DEVELOPERS,
        query=_expiry_without_password,
    ),
    Invariant(
        code="account.activating_without_confirmation_mail",
        subject="account",
        description=N_(
            "Accounts shown as activating (🟡) for which no confirmation e-mail was ever "
            "written: the family cannot finish its activation."
        ),
        advice=N_(
            "Send the confirmation link again from the guardian's card in the bot, or give "
            "the family new credentials."
        ),
        query=_activating_without_confirmation,
    ),
    Invariant(
        code="account.password_not_hashed",
        subject="account",
        description=N_(
            "Accounts whose password is not stored as an argon2id hash: it may be readable "
            "in the database."
        ),
        advice=N_(
            "Give these families new credentials at once (« educonnect-bot send UAI CLASS "
            "--reset », or « educonnect-bot letters UAI CLASS --reset » on paper), then tell "
            "the developers."
        ),
        query=_password_not_hashed,
    ),
)
