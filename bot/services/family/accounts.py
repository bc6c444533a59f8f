"""What a family's linked chat may know of its own accounts: the identifier, the state, the
children and their class, where the e-mails go (masked); never a password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from bot.services.portal import awaiting_confirmation
from models import (
    Account,
    AccountState,
    FamilyChat,
    Guardian,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
)


@dataclass(frozen=True, slots=True)
class ChildLine:
    """One child an account covers, with its class when it has one."""

    first_name: str
    class_label: str | None


@dataclass(frozen=True, slots=True)
class FamilyAccount:
    """One account a chat is linked to, as the family may see it."""

    guardian_id: int
    account_id: int
    school_id: int
    school_name: str
    first_name: str
    last_name: str  # the usage name if any
    identifier: str
    state: AccountState
    deactivated: bool
    masked_email: str | None  # « l•••@example.fr », None without an address
    children: tuple[ChildLine, ...]
    provisional_expires_at: datetime | None
    # Activating: when the latest confirmation link went.
    confirmation_sent_at: datetime | None
    language: str | None  # the guardian's preferred language, when the school knows it


def as_utc(moment: datetime | None) -> datetime | None:
    """`moment` as an aware UTC datetime (SQLite hands back naive ones, all written in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def mask_email(address: str | None) -> str | None:
    """« l•••@example.fr »: enough for a family to recognise its address, not to learn one."""
    if not address or "@" not in address:
        return None
    local, _, domain = address.strip().rpartition("@")
    return f"{local[:1]}•••@{domain}"


def _children(session: Session, guardian_id: int) -> tuple[ChildLine, ...]:
    rows = session.exec(
        select(Pupil.first_name, SchoolClass.label)
        .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(col(PupilGuardian.guardian_id) == guardian_id, col(Pupil.archived_at).is_(None))
        .order_by(col(SchoolClass.label), col(Pupil.first_name), col(Pupil.id))
    ).all()
    return tuple(ChildLine(first_name=name, class_label=label) for name, label in rows)


def family_account(session: Session, account: Account) -> FamilyAccount:
    """What a linked chat may see of `account`."""
    guardian = session.get(Guardian, account.guardian_id)
    assert guardian is not None and guardian.id is not None and account.id is not None
    school = session.get(School, guardian.school_id)
    assert school is not None and school.id is not None
    state = AccountState(account.state)
    sent_at = None
    # While activating, the address that matters to the family is the one its confirmation
    # link went to, which is not on file until the family follows it.
    address = guardian.email
    if state == AccountState.ACTIVATING:
        waiting = awaiting_confirmation(session, account_id=account.id)
        sent_at, address = waiting.sent_at, waiting.email
    return FamilyAccount(
        guardian_id=guardian.id,
        account_id=account.id,
        school_id=school.id,
        school_name=school.name,
        first_name=guardian.first_name,
        last_name=guardian.usage_name or guardian.last_name,
        identifier=account.identifier,
        state=state,
        deactivated=account.deactivated_at is not None,
        masked_email=mask_email(address),
        children=_children(session, guardian.id),
        provisional_expires_at=as_utc(account.provisional_expires_at),
        confirmation_sent_at=sent_at,
        language=guardian.preferred_language,
    )


def linked_account(session: Session, *, telegram_user_id: int, account_id: int) -> Account | None:
    """The account, locked, if this Telegram user's chat is linked to its guardian; else None."""
    return session.exec(
        select(Account)
        .join(FamilyChat, col(FamilyChat.guardian_id) == col(Account.guardian_id))
        .where(
            col(FamilyChat.telegram_user_id) == telegram_user_id,
            col(Account.id) == account_id,
        )
        # Two requests at once wait for each other: the daily limit holds.
        .with_for_update(of=Account)
    ).first()


def family_accounts(session: Session, *, telegram_user_id: int) -> list[FamilyAccount]:
    """The accounts this Telegram user's chat is linked to, most recent link first."""
    accounts = session.exec(
        select(Account)
        .join(FamilyChat, col(FamilyChat.guardian_id) == col(Account.guardian_id))
        .where(col(FamilyChat.telegram_user_id) == telegram_user_id)
        .order_by(col(FamilyChat.linked_at).desc(), col(FamilyChat.id).desc())
    ).all()
    return [family_account(session, account) for account in accounts]
