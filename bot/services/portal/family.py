"""Sending an `activating` account its confirmation link again at its family's request in the
bot (no portal session there): the portal's own sending code, with the same mail limits.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.services.accounts import RefusalReason
from bot.services.portal.activation import _send_activation_link
from bot.services.portal.common import audit, aware, guardian_of
from bot.services.portal.forms import RequestResult, RequestStatus
from bot.services.portal.sessions import state_refusal
from bot.services.portal.throttling import MAILS_PER_TARGET, locked_until
from models import Account, AccountState


def send_confirmation_link_again(
    session: Session,
    *,
    account_id: int,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    actor: str | None = None,
    now: datetime | None = None,
) -> RequestResult:
    """E-mail an `activating` account a new confirmation link to the address on file (older
    ones stop working); refused in another state or without an address, rate-limited as the
    portal's own « send it again » is per account. `actor`: who asked (« family:<telegram id> »)."""
    now = aware(now)
    account = session.get(Account, account_id, with_for_update=True)
    if account is None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if account.deactivated_at is not None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.DEACTIVATED)
    if (refusal := state_refusal(account, AccountState.ACTIVATING)) is not None:
        return RequestResult(RequestStatus.REFUSED, refusal=refusal)
    guardian = guardian_of(session, account)
    key = f"account:{account_id}"
    retry_at = locked_until(session=session, checks=[(MAILS_PER_TARGET, key)], now=now)
    if retry_at is not None:
        audit(session, "portal.activation_link_refused", account=account, reason="rate_limited")
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    if guardian.email is None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.INVALID_EMAIL)
    _send_activation_link(
        session,
        account,
        guardian,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
        actor=actor,
    )
    return RequestResult(RequestStatus.ACCEPTED)
