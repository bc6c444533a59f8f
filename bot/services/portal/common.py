"""What every flow of the activation portal shares: who the audit log says acted, the longest
values it reads, the account's guardian, school and children, and its audit events (never a
password, a link or an address typed by a visitor).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.services.audit import record_event
from models import Account, Guardian, Pupil, PupilGuardian, School, SchoolClass, utcnow

# Who the audit log says acted: the family, through the portal.
PORTAL_ACTOR = "portal"
# Longer than anyone types; beyond it a « password » is a probe and is not even hashed.
MAX_PASSWORD_LENGTH = 256
MAX_FIELD_LENGTH = 320  # identifiers are read up to the longest e-mail address, give or take


def aware(moment: datetime | None) -> datetime:
    """`moment` in UTC (now when None)."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        # SQLite hands back what it was given; every datetime written here is UTC.
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def same_address(a: str | None, b: str | None) -> bool:
    """Whether two addresses are the same one, whatever their case."""
    return a is not None and b is not None and a.strip().lower() == b.strip().lower()


def guardian_of(session: Session, account: Account) -> Guardian:
    """The guardian `account` belongs to (every account has one)."""
    guardian = session.get(Guardian, account.guardian_id)
    assert guardian is not None
    return guardian


def school_name_of(session: Session, guardian: Guardian) -> str:
    """The name of the guardian's school, as the e-mails and « mon compte » show it."""
    school = session.get(School, guardian.school_id)
    return school.name if school is not None else ""


def addressee_of(guardian: Guardian) -> str:
    """« Céline DUPONT »: the name an e-mail is addressed to."""
    return f"{guardian.first_name} {(guardian.usage_name or guardian.last_name).upper()}"


def children_rows(session: Session, guardian_id: int) -> list[tuple[Pupil, str | None]]:
    """The guardian's pupils still at school, with their class's label, in class order."""
    return list(
        session.exec(
            select(Pupil, SchoolClass.label)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
            .where(col(PupilGuardian.guardian_id) == guardian_id, col(Pupil.archived_at).is_(None))
            .order_by(col(SchoolClass.label), col(Pupil.first_name), col(Pupil.id))
        ).all()
    )


def account_by_identifier(session: Session, identifier: str) -> Account | None:
    """The account of this identifier (typed in any case), or None."""
    return session.exec(
        select(Account).where(col(Account.identifier) == identifier.strip().lower())
    ).first()


def audit(
    session: Session,
    action: str,
    *,
    account: Account | None = None,
    guardian: Guardian | None = None,
    **details: Any,
) -> None:
    """One audit event by the portal, in the school of the account's guardian if known."""
    school_id = guardian.school_id if guardian is not None else None
    if account is not None and guardian is None:
        found = session.get(Guardian, account.guardian_id)
        school_id = found.school_id if found is not None else None
    record_event(
        session,
        actor=PORTAL_ACTOR,
        action=action,
        school_id=school_id,
        account_id=account.id if account is not None else None,
        **details,
    )
