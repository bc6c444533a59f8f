"""The overall cap on wrong birth dates at activation: after `MAX_WRONG_BIRTH_DATES` for one
account, from every client together and whatever the pauses, the activation waits for the
school (`Account.activation_locked_at`). The bot tells every director of the school once (it
polls `activation_lock_notices`; the portal never speaks Telegram), and a director of that
school allows it again.

The failures are counted from the audit log (`portal.birth_date_refused` with reason « wrong »)
since the account's last unlock: no other counter to keep.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.services.audit import record_event
from bot.services.portal.common import audit, aware
from models import Account, AuditEvent, Director, Guardian

MAX_WRONG_BIRTH_DATES = 10
REFUSED = "portal.birth_date_refused"
CAPPED = "portal.activation_capped"
NOTIFIED = "portal.activation_lock_notified"
UNLOCKED = "portal.activation_unlocked"
# Who tells the directors, as the audit log names it: the bot's polling job.
NOTICE_ACTOR = "scheduler:activation-locks"


def _last_event_id(session: Session, account_id: int, action: str) -> int:
    found = session.exec(
        select(func.max(AuditEvent.id)).where(
            col(AuditEvent.account_id) == account_id, col(AuditEvent.action) == action
        )
    ).one()
    return int(found or 0)


def wrong_birth_dates(session: Session, account_id: int) -> int:
    """How many wrong birth dates this account's activation got since its last unlock."""
    since = _last_event_id(session, account_id, UNLOCKED)
    details = session.exec(
        select(AuditEvent.details).where(
            col(AuditEvent.account_id) == account_id,
            col(AuditEvent.action) == REFUSED,
            col(AuditEvent.id) > since,
        )
    ).all()
    return sum(1 for detail in details if detail.get("reason") == "wrong")


def cap_activation(session: Session, account: Account, *, now: datetime) -> bool:
    """After a wrong birth date: lock the activation if the account reached the cap; whether
    it did."""
    assert account.id is not None
    if wrong_birth_dates(session, account.id) < MAX_WRONG_BIRTH_DATES:
        return False
    account.activation_locked_at = now
    session.add(account)
    audit(session, CAPPED, account=account, wrong=MAX_WRONG_BIRTH_DATES)
    return True


@dataclass(frozen=True, slots=True)
class LockNotice:
    """An activation that waits for its school, and who to tell."""

    account_id: int
    school_id: int
    identifier: str
    guardian_name: str
    locked_at: datetime
    director_ids: tuple[int, ...]


def activation_lock_notices(session: Session) -> list[LockNotice]:
    """The locked activations whose directors were not told since they were locked."""
    rows = session.exec(
        select(Account, Guardian)
        .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .where(col(Account.activation_locked_at).is_not(None))
        .order_by(col(Account.id))
    ).all()
    notices = []
    for account, guardian in rows:
        assert account.id is not None and account.activation_locked_at is not None
        if _last_event_id(session, account.id, NOTIFIED) > _last_event_id(
            session, account.id, CAPPED
        ):
            continue
        directors = session.exec(
            select(Director.telegram_user_id)
            .where(col(Director.school_id) == guardian.school_id)
            .order_by(col(Director.id))
        ).all()
        notices.append(
            LockNotice(
                account_id=account.id,
                school_id=guardian.school_id,
                identifier=account.identifier,
                guardian_name=f"{guardian.first_name} {guardian.usage_name or guardian.last_name}",
                locked_at=aware(account.activation_locked_at),
                director_ids=tuple(dict.fromkeys(directors)),
            )
        )
    return notices


def record_lock_notice(session: Session, *, account_id: int, told: int) -> None:
    """The directors of this locked activation were told (`told` of them reached)."""
    account = session.get(Account, account_id)
    guardian = session.get(Guardian, account.guardian_id) if account is not None else None
    if guardian is not None:
        record_event(
            session,
            actor=NOTICE_ACTOR,
            action=NOTIFIED,
            school_id=guardian.school_id,
            account_id=account_id,
            directors_told=told,
        )


class UnlockStatus(enum.StrEnum):
    """What a director's « allow activation again » did."""

    UNLOCKED = "unlocked"
    NOT_LOCKED = "not_locked"  # nothing to do (another director was quicker)
    UNKNOWN_ACCOUNT = "unknown_account"  # not an account of the director's school


def allow_activation_again(
    session: Session,
    *,
    account_id: int,
    school_id: int,
    actor: str,
    now: datetime | None = None,
) -> UnlockStatus:
    """A director of `school_id` lets the family try birth dates again: the lock ends and the
    count starts from zero; audited. Another school's account is refused as unknown."""
    account = session.get(Account, account_id, with_for_update=True)
    guardian = session.get(Guardian, account.guardian_id) if account is not None else None
    if account is None or guardian is None or guardian.school_id != school_id:
        return UnlockStatus.UNKNOWN_ACCOUNT
    if account.activation_locked_at is None:
        return UnlockStatus.NOT_LOCKED
    locked_at = aware(account.activation_locked_at)
    account.activation_locked_at = None
    session.add(account)
    record_event(
        session,
        actor=actor,
        action=UNLOCKED,
        school_id=school_id,
        account_id=account_id,
        locked_minutes=int((aware(now) - locked_at).total_seconds() // 60),
    )
    return UnlockStatus.UNLOCKED
