"""Linking a family's Telegram chat by the mobile number it shares with the bot (the
« 📱 Partager mon numéro » button), for families without their letter at hand.

Telegram vouches for the number only when the contact is the sender's own (`contact.user_id`
equals the sender's id); anything else is answered as an unknown number. The number is
matched against the « Téléphone portable » ONDE gives for guardians with an active account.
One guardian: the chat is linked to them, as a letter's code does (`family_links`). Several
(a family phone): the family picks one among first names and initials, within 30 minutes.
A chat may share at most 3 contacts a day, whatever came of them. Every share is audited,
with the number's last two digits at most.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.services.accounts.family_links import LinkedGuardian, attach_chat, linked_guardian
from bot.services.accounts.phone_numbers import normalise_phone, phone_suffix
from bot.services.audit import record_event
from models import Account, Guardian, PhoneCheck, utcnow

MAX_CONTACT_SHARES_PER_DAY = 3
SHARE_WINDOW = timedelta(hours=24)
CHOICE_VALIDITY = timedelta(minutes=30)


class PhoneLinkOutcome(enum.StrEnum):
    """What came of a shared contact (or of the choice that followed it)."""

    LINKED = "linked"  # the chat is linked to one guardian
    CHOOSE = "choose"  # several guardians share the number: the family picks one
    UNKNOWN = "unknown"  # no guardian (or not the sender's own contact, or a stale choice)
    LIMITED = "limited"  # too many contacts shared today


# What `phone_check.outcome` records besides the outcomes above: a contact that was not the
# sender's own, or not a valid number.
_REFUSED = "refused"


@dataclass(frozen=True)
class PhoneCandidate:
    """One guardian a family phone may belong to, as the family sees them (« Marie D. »)."""

    guardian_id: int
    label: str


@dataclass(frozen=True)
class PhoneLinkResult:
    """The outcome, with the linked guardian (LINKED), the guardians to choose among (CHOOSE),
    or when a contact counts again (LIMITED)."""

    outcome: PhoneLinkOutcome
    linked: LinkedGuardian | None = None
    candidates: tuple[PhoneCandidate, ...] = ()
    retry_at: datetime | None = None


def link_by_phone(
    session: Session,
    *,
    telegram_user_id: int,
    contact_user_id: int | None,
    phone_number: str,
    now: datetime | None = None,
) -> PhoneLinkResult:
    """Link the Telegram user's chat to the guardian whose mobile number they shared, or offer
    the choice when several guardians share it. `contact_user_id` is the shared contact's
    Telegram id: anything but the sender's own is refused as an unknown number."""
    moment = now or utcnow()
    actor = f"telegram:{telegram_user_id}"
    retry_at = _limited_until(session, telegram_user_id, moment)
    if retry_at is not None:
        record_event(
            session,
            actor=actor,
            action="family.phone_refused",
            reason="limited",
            telegram_user_id=telegram_user_id,
        )
        session.flush()
        return PhoneLinkResult(PhoneLinkOutcome.LIMITED, retry_at=retry_at)
    own = contact_user_id is not None and contact_user_id == telegram_user_id
    number = normalise_phone(phone_number) if own else None
    if number is None:
        _record_check(session, telegram_user_id, None, _REFUSED, moment)
        record_event(
            session,
            actor=actor,
            action="family.phone_refused",
            reason="invalid_number" if own else "not_own_contact",
            telegram_user_id=telegram_user_id,
        )
        session.flush()
        return PhoneLinkResult(PhoneLinkOutcome.UNKNOWN)
    found = _active_guardians(session, number)
    if not found:
        _record_check(session, telegram_user_id, number, PhoneLinkOutcome.UNKNOWN, moment)
        record_event(
            session,
            actor=actor,
            action="family.phone_refused",
            reason="no_guardian",
            telegram_user_id=telegram_user_id,
            phone_suffix=phone_suffix(number),
        )
        session.flush()
        return PhoneLinkResult(PhoneLinkOutcome.UNKNOWN)
    if len(found) == 1:
        account, guardian = found[0]
        _record_check(session, telegram_user_id, number, PhoneLinkOutcome.LINKED, moment)
        return _link(session, telegram_user_id, account, guardian, moment, number, chosen=False)
    candidates = tuple(
        PhoneCandidate(guardian_id=_id(guardian), label=phone_label(guardian))
        for _, guardian in found
    )
    _record_check(
        session,
        telegram_user_id,
        number,
        PhoneLinkOutcome.CHOOSE,
        moment,
        offered=[candidate.guardian_id for candidate in candidates],
    )
    schools = {guardian.school_id for _, guardian in found}
    record_event(
        session,
        actor=actor,
        action="family.phone_choice",
        school_id=schools.pop() if len(schools) == 1 else None,
        telegram_user_id=telegram_user_id,
        account_ids=[account.id for account, _ in found],
        phone_suffix=phone_suffix(number),
    )
    session.flush()
    return PhoneLinkResult(PhoneLinkOutcome.CHOOSE, candidates=candidates)


def choose_phone_guardian(
    session: Session,
    *,
    telegram_user_id: int,
    guardian_id: int,
    now: datetime | None = None,
) -> PhoneLinkResult:
    """Link the chat to the guardian the family picked among those its last shared contact
    offered, within 30 minutes of sharing it; anything else is UNKNOWN. Picking the same
    guardian again gives the link back (already linked); another one is refused."""
    moment = now or utcnow()
    check = session.exec(
        select(PhoneCheck)
        .where(col(PhoneCheck.telegram_user_id) == telegram_user_id)
        .order_by(col(PhoneCheck.created_at).desc(), col(PhoneCheck.id).desc())
    ).first()
    reason: str | None = None
    found: Sequence[tuple[Account, Guardian]] = ()
    if (
        check is None
        or check.outcome != PhoneLinkOutcome.CHOOSE
        or guardian_id not in check.offered_guardian_ids
    ):
        reason = "choice_not_offered"
    elif moment - check.created_at >= CHOICE_VALIDITY:
        reason = "choice_expired"
    elif check.chosen_guardian_id not in (None, guardian_id):
        reason = "choice_already_made"
    else:
        found = [
            (account, guardian)
            for account, guardian in _active_guardians(session, check.phone_e164)
            if guardian.id == guardian_id
        ]
        reason = None if found else "deactivated"
    if reason is not None or check is None:
        record_event(
            session,
            actor=f"telegram:{telegram_user_id}",
            action="family.phone_refused",
            reason=reason,
            telegram_user_id=telegram_user_id,
            guardian_id=guardian_id,
        )
        session.flush()
        return PhoneLinkResult(PhoneLinkOutcome.UNKNOWN)
    check.chosen_guardian_id = guardian_id
    session.add(check)
    account, guardian = found[0]
    return _link(
        session, telegram_user_id, account, guardian, moment, check.phone_e164, chosen=True
    )


def phone_label(guardian: Guardian) -> str:
    """How a family phone's guardians are told apart: first name and initial (« Marie D. »)."""
    surname = guardian.usage_name or guardian.last_name
    initial = next((char for char in surname if char.isalpha()), "")
    first_name = guardian.first_name.strip()
    return f"{first_name} {initial.upper()}." if initial else first_name


def _id(guardian: Guardian) -> int:
    assert guardian.id is not None
    return guardian.id


def _limited_until(session: Session, telegram_user_id: int, moment: datetime) -> datetime | None:
    """When a new share counts again, if the chat already shared its daily allowance."""
    recent = session.exec(
        select(PhoneCheck.created_at)
        .where(
            col(PhoneCheck.telegram_user_id) == telegram_user_id,
            col(PhoneCheck.created_at) > moment - SHARE_WINDOW,
        )
        .order_by(col(PhoneCheck.created_at).desc())
        .limit(MAX_CONTACT_SHARES_PER_DAY)
    ).all()
    if len(recent) < MAX_CONTACT_SHARES_PER_DAY:
        return None
    return recent[-1] + SHARE_WINDOW


def _active_guardians(session: Session, number: str | None) -> list[tuple[Account, Guardian]]:
    """The guardians with this mobile number and an active account, by first name."""
    if number is None:
        return []
    rows = session.exec(
        select(Account, Guardian)
        .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .where(col(Guardian.mobile_e164) == number, col(Account.deactivated_at).is_(None))
        .order_by(col(Guardian.first_name), col(Guardian.id))
    ).all()
    return [(account, guardian) for account, guardian in rows]


def _record_check(
    session: Session,
    telegram_user_id: int,
    number: str | None,
    outcome: str,
    moment: datetime,
    *,
    offered: list[int] | None = None,
) -> None:
    session.add(
        PhoneCheck(
            telegram_user_id=telegram_user_id,
            phone_e164=number,
            outcome=str(outcome),
            offered_guardian_ids=offered or [],
            created_at=moment,
        )
    )


def _link(
    session: Session,
    telegram_user_id: int,
    account: Account,
    guardian: Guardian,
    moment: datetime,
    number: str | None,
    *,
    chosen: bool,
) -> PhoneLinkResult:
    already_linked = attach_chat(
        session, telegram_user_id=telegram_user_id, guardian_id=_id(guardian), now=moment
    )
    record_event(
        session,
        actor=f"telegram:{telegram_user_id}",
        action="family.phone_linked",
        school_id=guardian.school_id,
        account_id=account.id,
        telegram_user_id=telegram_user_id,
        already_linked=already_linked,
        chosen=chosen,
        phone_suffix=phone_suffix(number),
    )
    session.flush()
    linked = linked_guardian(session, account, already_linked=already_linked)
    return PhoneLinkResult(PhoneLinkOutcome.LINKED, linked=linked)
