"""Schools and director invitations: UAI checks, single use, expiry, hashed at rest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import Session, col

from bot.services.errors import ServiceError
from bot.services.schools.directors import list_directors, remove_director
from bot.services.schools.registry import (
    DuplicateSchoolError,
    InvalidSchoolNameError,
    InvalidUAIError,
    InvitationAlreadyUsedError,
    InvitationExpiredError,
    InvitationRevokedError,
    UnknownInvitationError,
    UnknownSchoolError,
    add_school,
    create_invitation,
    get_school_by_uai,
    list_invitations,
    list_schools,
    normalize_uai,
    redeem_invitation,
    revoke_invitation,
    schools_of_director,
)
from models import AuditEvent, Director, Invitation, metadata

OPERATOR = "cli:test"
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
# Telegram user ids exceed 32 bits.
DIRECTOR_ID = 7_123_456_789


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def new_school(session: Session, uai: str = "0751234X", name: str = "École Jules Ferry") -> int:
    school = add_school(session=session, uai=uai, name=name, city="Paris", actor=OPERATOR)
    session.commit()
    assert school.id is not None
    return school.id


# --- UAI and schools -----------------------------------------------------------------------


@pytest.mark.parametrize("given", ["0751234X", "0751234x", " 0751234X ", "075 1234 X"])
def test_a_uai_is_normalised_to_upper_case(given: str) -> None:
    assert normalize_uai(given) == "0751234X"


@pytest.mark.parametrize(
    "given", ["", "075123", "0751234", "07512345", "0751234XX", "X0751234", "075123AX", "0751234É"]
)
def test_a_malformed_uai_is_refused_with_a_clear_sentence(given: str) -> None:
    with pytest.raises(InvalidUAIError, match="7 chiffres suivis d'une lettre"):
        normalize_uai(given)


def test_adding_a_school_stores_it_once_and_audits_it(db: Session) -> None:
    school_id = new_school(db)
    school = get_school_by_uai(db, "0751234x")
    assert (school.id, school.uai, school.name, school.city) == (
        school_id,
        "0751234X",
        "École Jules Ferry",
        "Paris",
    )
    event = db.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "school.added")
    ).scalar_one()
    assert event.actor == OPERATOR and event.school_id == school_id


def test_a_duplicate_uai_is_refused_whatever_its_case(db: Session) -> None:
    new_school(db)
    with pytest.raises(DuplicateSchoolError, match="0751234X"):
        add_school(session=db, uai="0751234x", name="Autre école", actor=OPERATOR)


def test_a_school_needs_a_name(db: Session) -> None:
    with pytest.raises(InvalidSchoolNameError):
        add_school(session=db, uai="0751234X", name="   ", actor=OPERATOR)


def test_an_unknown_uai_is_a_clear_error(db: Session) -> None:
    with pytest.raises(UnknownSchoolError, match="0691234A") as raised:
        get_school_by_uai(db, "0691234a")
    assert isinstance(raised.value, ServiceError)


def test_schools_are_listed_by_uai(db: Session) -> None:
    new_school(db, "0751234X", "B")
    new_school(db, "0131234A", "A")
    assert [school.uai for school in list_schools(db)] == ["0131234A", "0751234X"]


# --- invitations ---------------------------------------------------------------------------


def test_an_invitation_code_fits_telegram_start_and_expires(db: Session) -> None:
    school_id = new_school(db)
    code, expires_at = create_invitation(
        session=db, school_id=school_id, actor=OPERATOR, ttl=timedelta(days=3), now=NOW
    )
    other, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
    db.commit()

    assert re.fullmatch(r"[A-Za-z0-9_-]{22,64}", code)  # 16 random bytes, deep-link safe
    assert code != other
    assert expires_at == NOW + timedelta(days=3)


def test_a_director_redeems_an_invitation_once(db: Session) -> None:
    school_id = new_school(db)
    code, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
    db.commit()

    director = redeem_invitation(
        session=db,
        code=code,
        telegram_user_id=DIRECTOR_ID,
        display_name="Mme Martin",
        now=NOW + timedelta(hours=1),
    )
    db.commit()

    assert (director.school_id, director.telegram_user_id) == (school_id, DIRECTOR_ID)
    assert [school.id for school in schools_of_director(db, DIRECTOR_ID)] == [school_id]
    assert schools_of_director(db, 42) == []
    invitation = db.execute(select(Invitation)).scalar_one()
    assert invitation.used_at == NOW + timedelta(hours=1)
    assert invitation.used_by_telegram_id == DIRECTOR_ID

    with pytest.raises(InvitationAlreadyUsedError, match="déjà été utilisé"):
        redeem_invitation(session=db, code=code, telegram_user_id=99, now=NOW)
    with pytest.raises(InvitationAlreadyUsedError):  # not even by the same person
        redeem_invitation(session=db, code=code, telegram_user_id=DIRECTOR_ID, now=NOW)


def test_an_expired_invitation_is_refused(db: Session) -> None:
    school_id = new_school(db)
    code, expires_at = create_invitation(
        session=db, school_id=school_id, actor=OPERATOR, ttl=timedelta(days=7), now=NOW
    )
    db.commit()

    with pytest.raises(InvitationExpiredError, match="expiré"):
        redeem_invitation(session=db, code=code, telegram_user_id=DIRECTOR_ID, now=expires_at)
    director = redeem_invitation(
        session=db,
        code=code,
        telegram_user_id=DIRECTOR_ID,
        now=expires_at - timedelta(seconds=1),
    )
    assert director.school_id == school_id


@pytest.mark.parametrize("code", ["", "nope", "a" * 22, "<b>x</b>", "a" * 65, "é" * 22])
def test_an_unknown_code_is_refused(db: Session, code: str) -> None:
    new_school(db)
    with pytest.raises(UnknownInvitationError, match="inconnu"):
        redeem_invitation(session=db, code=code, telegram_user_id=DIRECTOR_ID, now=NOW)


def test_a_second_invitation_to_the_same_director_adds_no_duplicate(db: Session) -> None:
    school_id = new_school(db)
    for _ in range(2):
        code, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
        redeem_invitation(session=db, code=code, telegram_user_id=DIRECTOR_ID, now=NOW)
        db.commit()
    assert len(db.execute(select(Director)).scalars().all()) == 1


def test_a_director_of_two_schools_sees_both(db: Session) -> None:
    first = new_school(db, "0751234X", "École Voltaire")
    second = new_school(db, "0751235Y", "École Condorcet")
    for school_id in (first, second):
        code, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
        redeem_invitation(session=db, code=code, telegram_user_id=DIRECTOR_ID, now=NOW)
    db.commit()
    assert [s.name for s in schools_of_director(db, DIRECTOR_ID)] == [
        "École Condorcet",
        "École Voltaire",
    ]


def test_an_invitation_needs_a_known_school_and_a_positive_validity(db: Session) -> None:
    with pytest.raises(UnknownSchoolError):
        create_invitation(session=db, school_id=12345, actor=OPERATOR)
    school_id = new_school(db)
    with pytest.raises(ValueError):
        create_invitation(session=db, school_id=school_id, actor=OPERATOR, ttl=timedelta(0))


def test_two_simultaneous_redemptions_cannot_both_win(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as setup:
        school_id = new_school(setup)
        code, _ = create_invitation(session=setup, school_id=school_id, actor=OPERATOR, now=NOW)
        setup.commit()

    raced: list[bool] = []

    def other_director_wins_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Just before this session claims the invitation, another one redeems it and commits.
        if not raced and statement.lstrip().upper().startswith("UPDATE INVITATION"):
            raced.append(True)
            with Session(engine, expire_on_commit=False) as other:
                redeem_invitation(session=other, code=code, telegram_user_id=1, now=NOW)
                other.commit()

    event.listen(engine, "before_cursor_execute", other_director_wins_first)
    try:
        with Session(engine, expire_on_commit=False) as session:
            with pytest.raises(InvitationAlreadyUsedError):
                redeem_invitation(session=session, code=code, telegram_user_id=2, now=NOW)
            session.rollback()
            directors = session.execute(select(col(Director.telegram_user_id))).scalars().all()
    finally:
        event.remove(engine, "before_cursor_execute", other_director_wins_first)
    assert directors == [1]


# --- nothing secret at rest ----------------------------------------------------------------


def _every_value_in_the_database(session: Session) -> str:
    dump = []
    for table in metadata.sorted_tables:
        for row in session.execute(select(table)):
            dump.append(repr(tuple(row)))
    return "\n".join(dump)


def test_the_clear_code_is_nowhere_in_the_database(db: Session, engine: Engine) -> None:
    school_id = new_school(db)
    code, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
    db.commit()
    redeem_invitation(session=db, code=code, telegram_user_id=DIRECTOR_ID, now=NOW)
    db.commit()

    everything = _every_value_in_the_database(db)
    assert "invitation.created" in everything and "director.added" in everything
    assert code not in everything
    stored = db.execute(select(col(Invitation.code_hash))).scalar_one()
    assert re.fullmatch(r"[0-9a-f]{64}", stored)

    if engine.dialect.name == "sqlite":  # the raw file too, write-ahead log included
        database = Path(str(engine.url.database))
        raw = b"".join(
            path.read_bytes()
            for path in (database, database.with_name(database.name + "-wal"))
            if path.exists()
        )
        assert code.encode() not in raw
        assert stored.encode() in raw  # the check reads the right file


# --- removing directors, listing and revoking invitations ------------------------------------


def test_a_director_is_listed_then_removed_and_the_removal_is_audited(db: Session) -> None:
    school_id = new_school(db)
    other_id = new_school(db, "0751235Y", "École Condorcet")
    for target in (school_id, other_id):
        code, _ = create_invitation(session=db, school_id=target, actor=OPERATOR, now=NOW)
        redeem_invitation(
            session=db, code=code, telegram_user_id=DIRECTOR_ID, display_name="Mme Martin", now=NOW
        )
    db.commit()

    (listed,) = list_directors(db, uai="0751234x")
    assert (listed.telegram_user_id, listed.display_name, listed.since) == (
        DIRECTOR_ID,
        "Mme Martin",
        NOW,
    )

    assert remove_director(db, uai="0751234X", telegram_user_id=DIRECTOR_ID, actor=OPERATOR)
    db.commit()
    assert list_directors(db, uai="0751234X") == []
    # Only that school: the other one is still theirs.
    assert [s.id for s in schools_of_director(db, DIRECTOR_ID)] == [other_id]
    event = db.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "director.removed")
    ).scalar_one()
    assert event.school_id == school_id and event.actor == OPERATOR
    assert event.details["telegram_user_id"] == DIRECTOR_ID
    # Removing someone who does not direct the school changes nothing and says so.
    assert not remove_director(db, uai="0751234X", telegram_user_id=DIRECTOR_ID, actor=OPERATOR)
    with pytest.raises(UnknownSchoolError):
        remove_director(db, uai="0691234A", telegram_user_id=DIRECTOR_ID, actor=OPERATOR)


def test_pending_invitations_are_listed_without_their_code(db: Session) -> None:
    school_id = new_school(db)
    other_id = new_school(db, "0751235Y", "École Condorcet")
    pending, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
    used, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
    create_invitation(
        session=db, school_id=school_id, actor=OPERATOR, ttl=timedelta(hours=1), now=NOW
    )  # expired by NOW + 2 hours
    create_invitation(session=db, school_id=other_id, actor=OPERATOR, now=NOW)
    redeem_invitation(session=db, code=used, telegram_user_id=DIRECTOR_ID, now=NOW)
    db.commit()

    every = list_invitations(db, now=NOW + timedelta(hours=2))
    assert [(entry.uai, entry.created_at) for entry in every] == [
        ("0751234X", NOW),
        ("0751235Y", NOW),
    ]
    (mine,) = list_invitations(db, uai="0751234X", now=NOW + timedelta(hours=2))
    assert mine.school_name == "École Jules Ferry"
    assert mine.expires_at == NOW + timedelta(days=7)
    assert pending not in repr(every)


def test_a_revoked_invitation_is_refused_with_its_own_error(db: Session) -> None:
    school_id = new_school(db)
    code, _ = create_invitation(session=db, school_id=school_id, actor=OPERATOR, now=NOW)
    db.commit()
    (entry,) = list_invitations(db, now=NOW)

    assert revoke_invitation(db, invitation_id=entry.id, actor=OPERATOR, now=NOW)
    db.commit()

    assert list_invitations(db, now=NOW) == []
    with pytest.raises(InvitationRevokedError):
        redeem_invitation(session=db, code=code, telegram_user_id=DIRECTOR_ID, now=NOW)
    assert schools_of_director(db, DIRECTOR_ID) == []
    event = db.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "invitation.revoked")
    ).scalar_one()
    assert event.school_id == school_id and event.details["invitation_id"] == entry.id
    # Revoking it again, or an unknown id, changes nothing.
    assert not revoke_invitation(db, invitation_id=entry.id, actor=OPERATOR, now=NOW)
    with pytest.raises(UnknownInvitationError):
        revoke_invitation(db, invitation_id=entry.id + 100, actor=OPERATOR, now=NOW)
