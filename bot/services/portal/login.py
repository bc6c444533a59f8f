"""Logging in on the portal: throttled, audited, and saying which refusal applies only once the
password is proven right.

Throttled so that a stranger cannot lock a family out (OWASP's « device cookies »): a browser
the family logged in from carries a device cookie (signed by the portal) and its failures count
under that device's own key only; every other client waits growing delays per (identifier,
client), and the lockouts per identifier and per client apply to them alone.
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
    LOGIN_PER_DEVICE,
    LOGIN_PER_IDENTIFIER,
    LOGIN_PER_IDENTIFIER_CLIENT,
    ThrottleRule,
    clear_throttle,
    client_group,
    count_event,
    locked_until,
)
from models import Account


class LoginStatus(enum.StrEnum):
    """What a login attempt found."""

    OK = "ok"
    WRONG_CREDENTIALS = "wrong_credentials"  # unknown identifier or wrong password: one answer
    LOCKED = "locked"  # too many failures for this identifier, client or device: wait
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


def _throttles(
    wanted: str, client: str, device: str | None
) -> tuple[list[tuple[ThrottleRule, str]], list[tuple[ThrottleRule, str]]]:
    """The keys a failure counts against: (those that lock, those that only delay)."""
    if device:
        return [(LOGIN_PER_DEVICE, f"{wanted} {device}")], []
    lockouts = [(LOGIN_PER_IDENTIFIER, wanted), (LOGIN_PER_CLIENT, client)]
    return lockouts, [(LOGIN_PER_IDENTIFIER_CLIENT, f"{wanted} {client_group(client)}")]


def log_in(
    session: Session,
    *,
    identifier: str,
    password: str,
    client: str,
    device: str | None = None,
    now: datetime | None = None,
) -> LoginResult:
    """Check an identifier and a password (provisional or chosen) typed on the portal.

    `device` is the device cookie's token for this identifier when the browser has a valid
    one: its failures count under that device alone, and no other client's failures stop it.
    Without it, refused without checking anything while the identifier or the client is
    locked or its delay runs; a failure counts against them and is audited. Says which
    refusal applies (expired, deactivated…) only once the password is proven right.
    """
    now = aware(now)
    wanted = identifier.strip().lower()[:MAX_FIELD_LENGTH]
    lockouts, delays = _throttles(wanted, client, device)
    retry_at = locked_until(session=session, checks=[*lockouts, *delays], now=now)
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
        locked = count_event(session=session, checks=lockouts, now=now)
        # The delay is the wait before the next try, not a refusal of this one.
        count_event(session=session, checks=delays, now=now)
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
    # Only what this client counted is forgotten: a trusted device's success must not end
    # the lockout strangers earned against the identifier.
    for rule, value in [*lockouts, *delays]:
        if rule is not LOGIN_PER_CLIENT:
            clear_throttle(session=session, rule=rule, value=value)
    return LoginResult(LoginStatus.OK, account=portal_account(account, now))
