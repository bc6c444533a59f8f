"""Linking a family's chat by the mobile number it shares: only its own contact counts, a family
phone asks which guardian, at most 3 shares a day, every share audited without the number."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from bot.services.accounts import (
    MAX_CONTACT_SHARES_PER_DAY,
    PhoneCandidate,
    PhoneLinkOutcome,
    PhoneLinkResult,
    choose_phone_guardian,
    link_by_phone,
)
from bot.services.accounts.lifecycle import deactivate_accounts
from models import AccountState, AuditEvent, FamilyChat, PhoneCheck
from tests.factories import SchoolWithGuardians, make_school_with_guardians

TELEGRAM_ID = 5_000_000_001  # more than 32 bits, as real Telegram ids
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
MOBILE = "+33612345678"
FAMILY_PHONE = "+33698765432"


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL (this module's tests run on both)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def built(session: Session) -> SchoolWithGuardians:
    """Inès with her own mobile; Marie Dupont and Marc Lefèvre sharing the family phone."""
    built = make_school_with_guardians(
        session,
        4,
        names=[("Inès", "Gonçalves"), ("Marie", "Dupont"), ("Marc", "Lefèvre"), ("Noah", "B")],
    )
    mobiles = [MOBILE, FAMILY_PHONE, FAMILY_PHONE, None]
    for guardian, mobile in zip(built.guardians, mobiles, strict=True):
        guardian.mobile_e164 = mobile
        session.add(guardian)
    session.flush()
    return built


def share(
    session: Session,
    phone_number: str,
    *,
    contact_user_id: int | None = TELEGRAM_ID,
    now: datetime = NOW,
    user: int = TELEGRAM_ID,
) -> PhoneLinkResult:
    return link_by_phone(
        session,
        telegram_user_id=user,
        contact_user_id=contact_user_id,
        phone_number=phone_number,
        now=now,
    )


def chats(session: Session) -> list[tuple[int, int]]:
    return [
        (row.telegram_user_id, row.guardian_id)
        for row in session.execute(select(FamilyChat).order_by(col(FamilyChat.id))).scalars()
    ]


def events(session: Session, prefix: str = "family.phone") -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action).startswith(prefix))
            .order_by(col(AuditEvent.id))
        ).scalars()
    )


def assert_no_full_number(session: Session) -> None:
    for event in events(session, "family."):
        text = repr(event.details)
        for digits in ("612345678", "698765432", "0612", "0698"):
            assert digits not in text


def test_one_guardian_links_the_chat_and_is_audited(
    session: Session, built: SchoolWithGuardians
) -> None:
    # Telegram's form: the country code without « + ».
    result = share(session, "33612345678")

    assert result.outcome == PhoneLinkOutcome.LINKED and result.candidates == ()
    assert result.linked is not None
    assert result.linked.guardian_id == built.guardians[0].id
    assert result.linked.account_id == built.accounts[0].id
    assert result.linked.first_name == "Inès" and result.linked.children == ("Enfant",)
    assert result.linked.state == AccountState.NOT_NOTIFIED and not result.linked.already_linked
    assert chats(session) == [(TELEGRAM_ID, built.guardians[0].id)]
    [event] = events(session)
    assert event.action == "family.phone_linked"
    assert event.account_id == built.accounts[0].id
    assert event.school_id == built.school.id
    assert event.details["phone_suffix"] == "78" and event.details["already_linked"] is False
    assert_no_full_number(session)

    # The same number again: linked again, no second row.
    again = share(session, "+33 6 12 34 56 78", now=NOW + timedelta(minutes=1))
    assert again.outcome == PhoneLinkOutcome.LINKED
    assert again.linked is not None and again.linked.already_linked
    assert chats(session) == [(TELEGRAM_ID, built.guardians[0].id)]


@pytest.mark.parametrize("contact_user_id", [None, TELEGRAM_ID + 1])
def test_a_contact_that_is_not_the_senders_own_links_nothing(
    session: Session, built: SchoolWithGuardians, contact_user_id: int | None
) -> None:
    result = share(session, MOBILE, contact_user_id=contact_user_id)

    assert result.outcome == PhoneLinkOutcome.UNKNOWN
    assert result.linked is None and result.candidates == ()
    assert chats(session) == []
    [event] = events(session)
    assert event.action == "family.phone_refused"
    assert event.details["reason"] == "not_own_contact" and event.account_id is None
    assert_no_full_number(session)
    [check] = session.execute(select(PhoneCheck)).scalars()
    assert check.outcome == "refused" and check.phone_e164 is None


def test_an_unknown_or_invalid_number_links_nothing(
    session: Session, built: SchoolWithGuardians
) -> None:
    assert share(session, "+33 7 81 23 45 67").outcome == PhoneLinkOutcome.UNKNOWN
    assert share(session, "12345").outcome == PhoneLinkOutcome.UNKNOWN
    assert chats(session) == []
    reasons = [(e.action, e.details["reason"]) for e in events(session)]
    assert reasons == [
        ("family.phone_refused", "no_guardian"),
        ("family.phone_refused", "invalid_number"),
    ]
    assert events(session)[0].details["phone_suffix"] == "67"
    assert_no_full_number(session)


def test_a_family_phone_asks_which_guardian_then_links_the_one_chosen(
    session: Session, built: SchoolWithGuardians
) -> None:
    marie, marc = built.guardians[1], built.guardians[2]
    assert marie.id is not None and marc.id is not None

    result = share(session, "06 98 76 54 32")

    assert result.outcome == PhoneLinkOutcome.CHOOSE and result.linked is None
    assert result.candidates == (
        PhoneCandidate(guardian_id=marc.id, label="Marc L."),
        PhoneCandidate(guardian_id=marie.id, label="Marie D."),
    )
    assert chats(session) == []
    [offered] = events(session)
    assert offered.action == "family.phone_choice" and offered.school_id == built.school.id
    assert offered.details["account_ids"] == [built.accounts[2].id, built.accounts[1].id]

    chosen = choose_phone_guardian(
        session, telegram_user_id=TELEGRAM_ID, guardian_id=marie.id, now=NOW + timedelta(minutes=5)
    )

    assert chosen.outcome == PhoneLinkOutcome.LINKED
    assert chosen.linked is not None and chosen.linked.guardian_id == marie.id
    assert chats(session) == [(TELEGRAM_ID, marie.id)]
    linked = events(session)[-1]
    assert linked.action == "family.phone_linked" and linked.details["chosen"] is True
    assert linked.account_id == built.accounts[1].id

    # Tapping the same button again gives the link back; the other guardian is refused.
    again = choose_phone_guardian(
        session, telegram_user_id=TELEGRAM_ID, guardian_id=marie.id, now=NOW + timedelta(minutes=6)
    )
    assert again.outcome == PhoneLinkOutcome.LINKED
    assert again.linked is not None and again.linked.already_linked
    other = choose_phone_guardian(
        session, telegram_user_id=TELEGRAM_ID, guardian_id=marc.id, now=NOW + timedelta(minutes=7)
    )
    assert other.outcome == PhoneLinkOutcome.UNKNOWN
    assert chats(session) == [(TELEGRAM_ID, marie.id)]
    assert events(session)[-1].details["reason"] == "choice_already_made"
    assert_no_full_number(session)


def test_a_guardian_not_offered_or_a_stale_choice_is_refused(
    session: Session, built: SchoolWithGuardians
) -> None:
    ines, marie = built.guardians[0], built.guardians[1]
    assert ines.id is not None and marie.id is not None

    # No share at all yet.
    nothing = choose_phone_guardian(session, telegram_user_id=TELEGRAM_ID, guardian_id=marie.id)
    assert nothing.outcome == PhoneLinkOutcome.UNKNOWN

    assert share(session, FAMILY_PHONE).outcome == PhoneLinkOutcome.CHOOSE
    not_offered = choose_phone_guardian(
        session, telegram_user_id=TELEGRAM_ID, guardian_id=ines.id, now=NOW + timedelta(minutes=1)
    )
    assert not_offered.outcome == PhoneLinkOutcome.UNKNOWN
    # Another chat cannot take up this chat's choice.
    stranger = choose_phone_guardian(
        session, telegram_user_id=TELEGRAM_ID + 7, guardian_id=marie.id, now=NOW
    )
    assert stranger.outcome == PhoneLinkOutcome.UNKNOWN
    late = choose_phone_guardian(
        session, telegram_user_id=TELEGRAM_ID, guardian_id=marie.id, now=NOW + timedelta(minutes=30)
    )
    assert late.outcome == PhoneLinkOutcome.UNKNOWN
    assert chats(session) == []
    reasons = [e.details["reason"] for e in events(session, "family.phone_refused")]
    assert reasons == [
        "choice_not_offered",
        "choice_not_offered",
        "choice_not_offered",
        "choice_expired",
    ]


def test_a_deactivated_account_is_ignored(session: Session, built: SchoolWithGuardians) -> None:
    marie, marc = built.guardians[1], built.guardians[2]
    assert marc.id is not None
    deactivate_accounts(session, account_ids=[built.account_ids[1]], actor="tests")
    session.flush()

    # Only Marc is left on the family phone: no choice to make.
    result = share(session, FAMILY_PHONE)
    assert result.outcome == PhoneLinkOutcome.LINKED
    assert result.linked is not None and result.linked.guardian_id == marc.id

    deactivate_accounts(session, account_ids=[built.account_ids[0]], actor="tests")
    session.flush()
    assert share(session, MOBILE).outcome == PhoneLinkOutcome.UNKNOWN
    assert chats(session) == [(TELEGRAM_ID, marc.id)]
    assert marie.id not in {guardian for _, guardian in chats(session)}


def test_a_choice_whose_guardian_left_meanwhile_is_refused(
    session: Session, built: SchoolWithGuardians
) -> None:
    marie = built.guardians[1]
    assert marie.id is not None
    assert share(session, FAMILY_PHONE).outcome == PhoneLinkOutcome.CHOOSE
    deactivate_accounts(session, account_ids=[built.account_ids[1]], actor="tests")
    session.flush()

    result = choose_phone_guardian(session, telegram_user_id=TELEGRAM_ID, guardian_id=marie.id)
    assert result.outcome == PhoneLinkOutcome.UNKNOWN and chats(session) == []


def test_a_fourth_share_in_a_day_is_limited_whatever_came_of_the_others(
    session: Session, built: SchoolWithGuardians
) -> None:
    assert MAX_CONTACT_SHARES_PER_DAY == 3
    assert share(session, MOBILE, contact_user_id=None).outcome == PhoneLinkOutcome.UNKNOWN
    assert share(session, "+33781234567", now=NOW + timedelta(hours=1)).outcome == (
        PhoneLinkOutcome.UNKNOWN
    )
    assert share(session, MOBILE, now=NOW + timedelta(hours=2)).outcome == (PhoneLinkOutcome.LINKED)

    limited = share(session, MOBILE, now=NOW + timedelta(hours=3))
    assert limited.outcome == PhoneLinkOutcome.LIMITED
    assert limited.retry_at == NOW + timedelta(hours=24)
    assert limited.linked is None
    assert events(session)[-1].details["reason"] == "limited"
    # A limited attempt does not count: the first share frees a place a day after it.
    later = share(session, MOBILE, now=NOW + timedelta(hours=24, seconds=1))
    assert later.outcome == PhoneLinkOutcome.LINKED
    assert share(session, MOBILE, now=NOW + timedelta(hours=24, seconds=2)).retry_at == (
        NOW + timedelta(hours=25)
    )
    # Other chats have their own allowance.
    other = share(session, MOBILE, user=TELEGRAM_ID + 1, contact_user_id=TELEGRAM_ID + 1)
    assert other.outcome == PhoneLinkOutcome.LINKED
    counted = session.execute(
        select(func.count())
        .select_from(PhoneCheck)
        .where(PhoneCheck.telegram_user_id == TELEGRAM_ID)
    ).scalar_one()
    assert counted == 4
