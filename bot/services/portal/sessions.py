"""The account a portal session opens: checked again at every request against the fingerprint of
its password, so changing the password ends every other session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.db import lock_for_writing
from bot.services.accounts import RefusalReason
from bot.services.portal.common import aware
from models import Account, AccountState


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """The account a portal session holds, as plain values."""

    account_id: int
    identifier: str
    state: AccountState
    fingerprint: str
    provisional_expired: bool = False


def password_fingerprint(password_hash: str | None) -> str:
    """A short digest of the stored hash, kept in the session cookie: once the password
    changes (chosen, reset, changed), every session opened with the old one ends."""
    return hashlib.sha256(f"session:{password_hash or ''}".encode()).hexdigest()[:32]


def portal_account(account: Account, now: datetime) -> PortalAccount:
    """The account as a portal session holds it, at `now`."""
    assert account.id is not None
    expires = account.provisional_expires_at
    return PortalAccount(
        account_id=account.id,
        identifier=account.identifier,
        state=AccountState(account.state),
        fingerprint=password_fingerprint(account.password_hash),
        provisional_expired=(
            account.password_hash is not None and expires is not None and now > aware(expires)
        ),
    )


def session_account(
    session: Session, account_id: int, fingerprint: str, *, lock: bool = False
) -> Account | None:
    """The account a portal session opens, or None if it no longer does."""
    statement = select(Account).where(col(Account.id) == account_id)
    if lock:
        lock_for_writing(session)
        statement = statement.with_for_update().execution_options(populate_existing=True)
    account = session.exec(statement).first()
    if account is None or account.deactivated_at is not None:
        return None
    if not secrets.compare_digest(password_fingerprint(account.password_hash), fingerprint):
        return None
    return account


def current_account(
    session: Session, *, account_id: int, fingerprint: str, now: datetime | None = None
) -> PortalAccount | None:
    """The account of a portal session, or None once the session no longer opens it (its
    password changed since, or it was deactivated)."""
    account = session_account(session, account_id, fingerprint)
    return portal_account(account, aware(now)) if account is not None else None


def state_refusal(account: Account, wanted: AccountState) -> RefusalReason | None:
    """None when the account is in the state a form is for; else why it is refused."""
    if account.state == wanted:
        return None
    if account.state == AccountState.ACTIVATED:
        return RefusalReason.ALREADY_ACTIVATED
    if account.state == AccountState.ACTIVATING:
        return RefusalReason.NOT_ACTIVATED
    return RefusalReason.NOT_ACTIVATING
