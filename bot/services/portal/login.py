"""Logging in on the portal: throttled per identifier and per client, audited, and saying which
refusal applies only once the password is proven right.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.services.accounts import RefusalReason, TransitionRefused, verify_login
from bot.services.portal.common import (
    MAX_FIELD_LENGTH,
    MAX_PASSWORD_LENGTH,
    account_by_identifier,
    audit,
    aware,
)
from bot.services.portal.sessions import PortalAccount, portal_account
from bot.services.portal.throttling import (
    LOGIN_PER_CLIENT,
    LOGIN_PER_IDENTIFIER,
    clear_throttle,
    count_event,
    locked_until,
)
from models import Account


class LoginStatus(enum.StrEnum):
    """What a login attempt found."""

    OK = "ok"
    WRONG_CREDENTIALS = "wrong_credentials"  # unknown identifier or wrong password: one answer
    LOCKED = "locked"  # too many failures for this identifier or from this client
    PROVISIONAL_EXPIRED = "provisional_expired"  # right password, 3 months are over
    DEACTIVATED = "deactivated"  # right password, no child in the school any more
    NOT_READY = "not_ready"  # right password, credentials not distributed yet


@dataclass(frozen=True, slots=True)
class LoginResult:
    status: LoginStatus
    account: PortalAccount | None = None
    locked_until: datetime | None = None


_REFUSAL_STATUS = {
    RefusalReason.PROVISIONAL_PASSWORD_EXPIRED: LoginStatus.PROVISIONAL_EXPIRED,
    RefusalReason.DEACTIVATED: LoginStatus.DEACTIVATED,
    RefusalReason.NOT_YET_NOTIFIED: LoginStatus.NOT_READY,
}


def log_in(
    session: Session,
    *,
    identifier: str,
    password: str,
    client: str,
    now: datetime | None = None,
) -> LoginResult:
    """Check an identifier and a password (provisional or chosen) typed on the portal.

    Refused without checking anything while the identifier or the client is locked; a
    failure counts against both and is audited. Says which refusal applies (expired,
    deactivated…) only once the password is proven right.
    """
    now = aware(now)
    wanted = identifier.strip().lower()[:MAX_FIELD_LENGTH]
    checks = [(LOGIN_PER_IDENTIFIER, wanted), (LOGIN_PER_CLIENT, client)]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        audit(
            session,
            "portal.login_refused",
            account=account_by_identifier(session, wanted),
            reason="locked",
        )
        return LoginResult(LoginStatus.LOCKED, locked_until=retry_at)
    account: Account | None = None
    refusal: RefusalReason | None = None
    if wanted and 0 < len(password) <= MAX_PASSWORD_LENGTH:
        try:
            account = verify_login(session=session, identifier=wanted, password=password, now=now)
        except TransitionRefused as refused:
            refusal = refused.reason
    if refusal is not None:
        audit(
            session,
            "portal.login_refused",
            account=account_by_identifier(session, wanted),
            reason=refusal.value,
        )
        return LoginResult(_REFUSAL_STATUS.get(refusal, LoginStatus.NOT_READY))
    if account is None:
        known = account_by_identifier(session, wanted) if wanted else None
        locked = count_event(session=session, checks=checks, now=now)
        audit(
            session,
            "portal.login_failed",
            account=known,
            reason="wrong_password" if known is not None else "unknown_identifier",
            locked=locked is not None,
        )
        if locked is not None:
            return LoginResult(LoginStatus.LOCKED, locked_until=locked)
        return LoginResult(LoginStatus.WRONG_CREDENTIALS)
    clear_throttle(session=session, rule=LOGIN_PER_IDENTIFIER, value=wanted)
    return LoginResult(LoginStatus.OK, account=portal_account(account, now))
