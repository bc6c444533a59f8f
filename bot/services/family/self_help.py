"""What a linked family can do for itself, without the school: a new provisional password by
e-mail (through the same service as /envoyer and /relancer) and the confirmation link again
(through the portal's own sending code). Never a password in the chat.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.services.accounts import RefusalReason, normalise_email
from bot.services.audit import record_event
from bot.services.distribution import DistributionError, start_email_distribution
from bot.services.family.accounts import as_utc, linked_account, mask_email
from bot.services.portal import RequestStatus, awaiting_confirmation, send_confirmation_link_again
from models import Account, AccountState, AuditEvent, Guardian, utcnow

NEW_PASSWORD_SENT = "family.new_password_sent"
CONFIRMATION_SENT = "family.confirmation_link_sent"
CONFIRMATION_REFUSED = "family.confirmation_link_refused"
# A family asking again and again would only bury the right e-mail under new ones.
NEW_PASSWORD_WINDOW = timedelta(hours=24)


class SelfHelpOutcome(enum.StrEnum):
    """What came of a family's self-help request."""

    SENT = "sent"  # an e-mail is on its way (to masked_email)
    NO_ADDRESS = "no_address"  # nothing on file: the school must prepare a paper letter
    ALREADY_TODAY = "already_today"  # one was sent in the last 24 h for this account (retry_at)
    ACTIVATED = "activated"  # use « mot de passe oublié » on the portal instead
    NOT_ACTIVATING = "not_activating"  # the account is not waiting for a confirmation
    DEACTIVATED = "deactivated"
    NOT_LINKED = "not_linked"  # this chat is not linked to that account
    RATE_LIMITED = "rate_limited"  # the portal's mail limits said no (retry_at)


@dataclass(frozen=True, slots=True)
class SelfHelpResult:
    """The outcome, where the e-mail went (masked) and when to try again, if relevant."""

    outcome: SelfHelpOutcome
    masked_email: str | None = None
    retry_at: datetime | None = None


def family_actor(telegram_user_id: int) -> str:
    """Who the audit log says acted: the family, from its chat."""
    return f"family:{telegram_user_id}"


def _checked(
    session: Session, telegram_user_id: int, account_id: int
) -> tuple[Account, Guardian] | SelfHelpResult:
    """The linked account and its guardian, or the outcome that stops here."""
    account = linked_account(session, telegram_user_id=telegram_user_id, account_id=account_id)
    if account is None:
        return SelfHelpResult(SelfHelpOutcome.NOT_LINKED)
    guardian = session.get(Guardian, account.guardian_id)
    assert guardian is not None
    if account.deactivated_at is not None:
        return SelfHelpResult(SelfHelpOutcome.DEACTIVATED)
    if account.state == AccountState.ACTIVATED:
        return SelfHelpResult(SelfHelpOutcome.ACTIVATED, masked_email=mask_email(guardian.email))
    return account, guardian


def _sent_today_until(session: Session, account_id: int, now: datetime) -> datetime | None:
    """When the account may get a new password again, if one was sent in the last 24 hours."""
    earliest = session.exec(
        select(func.min(AuditEvent.at)).where(
            col(AuditEvent.action) == NEW_PASSWORD_SENT,
            col(AuditEvent.account_id) == account_id,
            col(AuditEvent.at) > now - NEW_PASSWORD_WINDOW,
        )
    ).one()
    moment = as_utc(earliest)
    return moment + NEW_PASSWORD_WINDOW if moment is not None else None


def send_new_provisional_password(
    session: Session,
    *,
    telegram_user_id: int,
    account_id: int,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
    now: datetime | None = None,
) -> SelfHelpResult:
    """A lost provisional password, account not activated: a new one by e-mail to the address on
    file (a first distribution if the account was never notified, a reset otherwise), at most
    once per account per 24 hours. Wake the outbox sender after the commit."""
    moment = now or utcnow()
    checked = _checked(session, telegram_user_id, account_id)
    if isinstance(checked, SelfHelpResult):
        return checked
    _account, guardian = checked
    masked = mask_email(guardian.email)
    if guardian.email is None or normalise_email(guardian.email) is None:
        return SelfHelpResult(SelfHelpOutcome.NO_ADDRESS)
    retry_at = _sent_today_until(session, account_id, moment)
    if retry_at is not None:
        return SelfHelpResult(SelfHelpOutcome.ALREADY_TODAY, masked_email=masked, retry_at=retry_at)
    actor = family_actor(telegram_user_id)
    try:
        batch_id = start_email_distribution(
            session,
            school_id=guardian.school_id,
            preview_or_account_ids=[account_id],
            reset=True,
            actor=actor,
            bot_username=bot_username,
            portal_url=portal_url,
            mail_from=mail_from,
            now=moment,
        )
    except DistributionError:
        # Planning found nothing to send (an address it cannot use): the school must act.
        return SelfHelpResult(SelfHelpOutcome.NO_ADDRESS)
    event = record_event(
        session,
        actor=actor,
        action=NEW_PASSWORD_SENT,
        school_id=guardian.school_id,
        account_id=account_id,
        batch_id=batch_id,
        telegram_user_id=telegram_user_id,
    )
    event.at = moment
    session.flush()
    return SelfHelpResult(SelfHelpOutcome.SENT, masked_email=masked)


def resend_confirmation_link(
    session: Session,
    *,
    telegram_user_id: int,
    account_id: int,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> SelfHelpResult:
    """An `activating` account: the confirmation link again, to the address on file, within the
    portal's mail limits. Wake the outbox sender after the commit."""
    checked = _checked(session, telegram_user_id, account_id)
    if isinstance(checked, SelfHelpResult):
        return checked
    account, guardian = checked
    if account.state != AccountState.ACTIVATING:
        masked = mask_email(guardian.email)
        return SelfHelpResult(SelfHelpOutcome.NOT_ACTIVATING, masked_email=masked)
    # The link goes to the address typed at activation, not on file until confirmed.
    masked = mask_email(awaiting_confirmation(session, account_id=account_id).email)
    result = send_confirmation_link_again(
        session,
        account_id=account_id,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        actor=family_actor(telegram_user_id),
        now=now,
    )
    if result.status is RequestStatus.RATE_LIMITED:
        outcome = SelfHelpResult(
            SelfHelpOutcome.RATE_LIMITED, masked_email=masked, retry_at=result.retry_at
        )
    elif result.status is RequestStatus.REFUSED:
        no_address = result.refusal == RefusalReason.INVALID_EMAIL
        outcome = SelfHelpResult(
            SelfHelpOutcome.NO_ADDRESS if no_address else SelfHelpOutcome.NOT_ACTIVATING
        )
    else:
        outcome = SelfHelpResult(SelfHelpOutcome.SENT, masked_email=masked)
    record_event(
        session,
        actor=family_actor(telegram_user_id),
        action=CONFIRMATION_SENT
        if outcome.outcome is SelfHelpOutcome.SENT
        else CONFIRMATION_REFUSED,
        school_id=guardian.school_id,
        account_id=account_id,
        outcome=outcome.outcome.value,
        telegram_user_id=telegram_user_id,
    )
    session.flush()
    return outcome
