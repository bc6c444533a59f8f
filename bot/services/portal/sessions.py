"""The account a portal session opens: checked again at every request against a fingerprint of
its password and its session version, so changing the password, resetting it or logging out
(which bumps the version) ends every session opened before — even a copy of the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.db import lock_for_writing
from bot.services.accounts import RefusalReason
from bot.services.portal.common import audit, aware
from models import Account, AccountState


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """The account a portal session holds, as plain values."""

    account_id: int
    identifier: str
    state: AccountState
    fingerprint: str
    provisional_expired: bool = False


def session_fingerprint(account: Account) -> str:
    """A short digest of the stored hash and the session version, kept in the session cookie
    at login and compared at every request: once the password changes (chosen, reset,
    changed) or the version is bumped (logout), every session opened before ends."""
    material = f"session:{account.session_version}:{account.password_hash or ''}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def portal_account(account: Account, now: datetime) -> PortalAccount:
    """The account as a portal session holds it, at `now`."""
    assert account.id is not None
    expires = account.provisional_expires_at
    return PortalAccount(
        account_id=account.id,
        identifier=account.identifier,
        state=AccountState(account.state),
        fingerprint=session_fingerprint(account),
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
    if not secrets.compare_digest(session_fingerprint(account), fingerprint):
        return None
    return account


def end_sessions(session: Session, *, account_id: int, fingerprint: str) -> None:
    """Logging out: the account's session version moves on, so this session and every other
    one opened before (another device, a copied cookie) open nothing any more. A session that
    no longer opens the account changes nothing."""
    account = session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return
    account.session_version += 1
    session.add(account)
    audit(session, "portal.logged_out", account=account)
    session.flush()


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
