"""Help requests as a service: references numbered per school and school year, the daily limit,
the guardian record found (linked chat, shared phone, names) or the candidates when unsure,
a school's queue, and what directors and families do with a request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.services.helpdesk import (
    MAX_FAMILY_MESSAGES,
    MAX_REQUESTS_PER_DAY,
    HelpAction,
    HelpDeclaration,
    HelpDeskError,
    HelpStatus,
    HelpTopic,
    RequestClosedError,
    RequestNotFoundError,
    TooManyRequestsError,
    add_family_message,
    choose_record,
    family_requests,
    file_help_request,
    record_answer,
    request_view,
    school_requests,
    school_year,
    take_request,
)
from models import AuditEvent, Director, FamilyChat, HelpRequest, PhoneCheck
from tests.factories import SchoolWithGuardians, make_school_with_guardians

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
FAMILY = 5_000_000_001


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def school(session: Session) -> SchoolWithGuardians:
    """Léa and Inès Dubois (two mothers of the same name), Marc Petit; two directors."""
    built = make_school_with_guardians(
        session, 3, names=[("Léa", "Dubois"), ("Léa", "Dubois"), ("Marc", "Petit")]
    )
    assert built.school.id is not None
    session.add_all(
        Director(telegram_user_id=telegram_id, school_id=built.school.id)
        for telegram_id in (900, 901)
    )
    session.commit()
    return built


def _file(
    session: Session,
    school: SchoolWithGuardians,
    *,
    user: int = FAMILY,
    topic: HelpTopic = HelpTopic.QUESTION,
    guardian: str | None = None,
    child: str | None = None,
    klass: str | None = None,
    message: str | None = "Bonjour",
    now: datetime = NOW,
):  # type: ignore[no-untyped-def]
    assert school.school.id is not None
    filed = file_help_request(
        session,
        telegram_user_id=user,
        declaration=HelpDeclaration(
            topic=topic,
            school_id=school.school.id,
            message=message,
            guardian_name=guardian,
            child_name=child,
            class_label=klass,
        ),
        language="fr",
        now=now,
    )
    session.commit()
    return filed


def test_school_year_starts_in_august() -> None:
    assert school_year(datetime(2026, 12, 3, tzinfo=UTC)) == 2026
    assert school_year(datetime(2027, 6, 30, tzinfo=UTC)) == 2026
    assert school_year(datetime(2027, 8, 20, tzinfo=UTC)) == 2027


def test_references_count_per_school_and_school_year(
    session: Session, school: SchoolWithGuardians
) -> None:
    other = make_school_with_guardians(session, 1)
    session.commit()
    first = _file(session, school, user=1)
    second = _file(session, school, user=2)
    elsewhere = _file(session, other, user=3)
    next_year = _file(session, school, user=4, now=datetime(2027, 9, 2, 8, tzinfo=UTC))
    assert (first.reference, second.reference) == ("D-2026-0001", "D-2026-0002")
    assert elsewhere.reference == "D-2026-0001"
    assert next_year.reference == "D-2027-0001"
    assert first.director_ids == (900, 901)


def test_a_chat_files_three_requests_a_day_then_waits(
    session: Session, school: SchoolWithGuardians
) -> None:
    for minutes in range(MAX_REQUESTS_PER_DAY):
        _file(session, school, now=NOW + timedelta(minutes=minutes))
    with pytest.raises(TooManyRequestsError) as refused:
        _file(session, school, now=NOW + timedelta(hours=2))
    session.rollback()
    assert refused.value.retry_at == NOW + timedelta(days=1)
    assert _file(session, school, now=NOW + timedelta(days=1, minutes=1)).reference


def test_a_linked_chat_is_matched_to_its_guardian(
    session: Session, school: SchoolWithGuardians
) -> None:
    marc = school.guardians[2]
    session.add(FamilyChat(telegram_user_id=FAMILY, guardian_id=marc.id))
    session.commit()
    filed = _file(session, school, guardian="Quelqu'un d'autre")
    view = request_view(session, request_id=filed.id, school_id=filed.school_id)
    assert view.record is not None and view.record.guardian_id == marc.id
    assert view.matched_by == "linked"


def test_the_shared_number_of_one_guardian_matches_it(
    session: Session, school: SchoolWithGuardians
) -> None:
    marc = school.guardians[2]
    marc.mobile_e164 = "+33612345678"
    session.add(marc)
    session.add(PhoneCheck(telegram_user_id=FAMILY, phone_e164="+33612345678", outcome="unknown"))
    session.commit()
    filed = _file(session, school)
    view = request_view(session, request_id=filed.id, school_id=filed.school_id)
    assert view.record is not None and view.record.guardian_id == marc.id
    assert view.matched_by == "phone"


def test_names_match_whatever_the_accents_and_case(
    session: Session, school: SchoolWithGuardians
) -> None:
    filed = _file(session, school, guardian="marc PETIT", child="enfant petit", klass="cm1")
    view = request_view(session, request_id=filed.id, school_id=filed.school_id)
    assert view.record is not None and view.record.name == "Marc PETIT"
    assert view.matched_by == "names"
    assert view.record.identifier and view.record.children == ("Enfant (CM1)",)


def test_two_people_of_the_same_name_are_left_for_the_director_to_choose(
    session: Session, school: SchoolWithGuardians
) -> None:
    filed = _file(session, school, guardian="Lea Dubois", child="Enfant Dubois", klass="CM1")
    view = request_view(session, request_id=filed.id, school_id=filed.school_id)
    assert view.record is None
    assert sorted(c.guardian_id for c in view.candidates) == sorted(
        g.id for g in school.guardians[:2]
    )
    chosen = choose_record(
        session,
        request_id=filed.id,
        school_id=filed.school_id,
        guardian_id=school.guardians[1].id,  # type: ignore[arg-type]
        actor="telegram:900",
    )
    assert chosen.record is not None and chosen.record.guardian_id == school.guardians[1].id
    assert chosen.matched_by == "director" and chosen.candidates == ()


def test_unknown_names_match_nobody(session: Session, school: SchoolWithGuardians) -> None:
    filed = _file(session, school, guardian="Jean Inconnu", child="Zoé Inconnue")
    view = request_view(session, request_id=filed.id, school_id=filed.school_id)
    assert view.record is None and view.candidates == ()


def test_another_schools_director_sees_nothing_of_the_request(
    session: Session, school: SchoolWithGuardians
) -> None:
    other = make_school_with_guardians(session, 1)
    session.commit()
    filed = _file(session, school)
    assert other.school.id is not None
    with pytest.raises(RequestNotFoundError):
        request_view(session, request_id=filed.id, school_id=other.school.id)
    with pytest.raises(RequestNotFoundError):
        record_answer(
            session,
            request_id=filed.id,
            school_id=other.school.id,
            actor="telegram:1",
            action=HelpAction.CLOSED,
        )
    with pytest.raises(RequestNotFoundError):
        choose_record(
            session,
            request_id=filed.id,
            school_id=filed.school_id,
            guardian_id=other.guardians[0].id,  # type: ignore[arg-type]
            actor="telegram:900",
        )


def test_a_request_goes_from_open_to_closed_and_records_who_did_what(
    session: Session, school: SchoolWithGuardians
) -> None:
    filed = _file(session, school)
    taken = take_request(
        session, request_id=filed.id, school_id=filed.school_id, actor="telegram:900"
    )
    assert taken.status is HelpStatus.IN_PROGRESS
    notice = record_answer(
        session,
        request_id=filed.id,
        school_id=filed.school_id,
        actor="telegram:901",
        action=HelpAction.REPLIED,
        text="  Venez mardi.\x00 ",
    )
    assert notice.status is HelpStatus.ANSWERED and notice.text == "Venez mardi."
    assert (notice.telegram_user_id, notice.language) == (FAMILY, "fr")
    closed = record_answer(
        session,
        request_id=filed.id,
        school_id=filed.school_id,
        actor="telegram:900",
        action=HelpAction.CLOSED,
    )
    session.commit()
    assert closed.status is HelpStatus.CLOSED
    view = request_view(session, request_id=filed.id, school_id=filed.school_id)
    assert [e.action for e in view.history] == [
        HelpAction.FILED,
        HelpAction.TAKEN,
        HelpAction.REPLIED,
        HelpAction.CLOSED,
    ]
    with pytest.raises(RequestClosedError):
        record_answer(
            session,
            request_id=filed.id,
            school_id=filed.school_id,
            actor="telegram:900",
            action=HelpAction.REPLIED,
            text="Encore",
        )
    actions = set(session.execute(select(AuditEvent.action)).scalars())
    assert {"helpdesk.request_filed", "helpdesk.replied", "helpdesk.closed"} <= actions


def test_an_empty_reply_is_refused(session: Session, school: SchoolWithGuardians) -> None:
    filed = _file(session, school)
    with pytest.raises(HelpDeskError):
        record_answer(
            session,
            request_id=filed.id,
            school_id=filed.school_id,
            actor="telegram:900",
            action=HelpAction.REPLIED,
            text="   ",
        )


def test_a_family_adds_a_few_messages_and_an_answered_request_opens_again(
    session: Session, school: SchoolWithGuardians
) -> None:
    filed = _file(session, school)
    record_answer(
        session,
        request_id=filed.id,
        school_id=filed.school_id,
        actor="telegram:900",
        action=HelpAction.EMAIL_SENT,
        details={"reset": True},
    )
    for index in range(MAX_FAMILY_MESSAGES):
        added = add_family_message(
            session, telegram_user_id=FAMILY, request_id=filed.id, text=f"Toujours rien {index}"
        )
        assert added.director_ids == (900, 901)
    session.commit()
    assert session.get(HelpRequest, filed.id).status == HelpStatus.OPEN  # type: ignore[union-attr]
    with pytest.raises(HelpDeskError):
        add_family_message(session, telegram_user_id=FAMILY, request_id=filed.id, text="Encore")
    with pytest.raises(RequestNotFoundError):
        add_family_message(session, telegram_user_id=FAMILY + 1, request_id=filed.id, text="Moi")


def test_the_queue_puts_open_requests_first_oldest_first(
    session: Session, school: SchoolWithGuardians
) -> None:
    refs = [
        _file(session, school, user=user, now=NOW + timedelta(minutes=user)) for user in range(4)
    ]
    record_answer(
        session,
        request_id=refs[0].id,
        school_id=refs[0].school_id,
        actor="telegram:900",
        action=HelpAction.CLOSED,
    )
    session.commit()
    page = school_requests(session, school_id=refs[0].school_id, page=0, page_size=2)
    assert [v.reference for v in page.requests] == [refs[1].reference, refs[2].reference]
    assert (page.pages, page.total, page.unsettled) == (2, 4, 3)
    last = school_requests(session, school_id=refs[0].school_id, page=1, page_size=2)
    assert [v.reference for v in last.requests] == [refs[3].reference, refs[0].reference]


def test_a_family_sees_its_own_requests_only(session: Session, school: SchoolWithGuardians) -> None:
    mine = _file(session, school, user=FAMILY)
    _file(session, school, user=FAMILY + 1)
    assert [v.reference for v in family_requests(session, telegram_user_id=FAMILY)] == [
        mine.reference
    ]
