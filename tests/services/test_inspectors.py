"""Inspectors (IEN): invitations for a list of schools (single use, expiring, hashed at rest),
the schools an inspector sees, and the operator listing and removing them; on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlmodel import Session, col

from bot.i18n import use_language
from bot.services.schools import (
    InvalidUAIError,
    InvitationAlreadyUsedError,
    InvitationExpiredError,
    UnknownInvitationError,
    UnknownSchoolError,
    add_school,
    create_inspector_invitation,
    create_invitation,
    inspected_schools,
    inspector_schools,
    list_inspectors,
    redeem_inspector_invitation,
    remove_inspector,
)
from models import AuditEvent, InspectorInvitation, InspectorSchool, School, metadata

OPERATOR = "cli:test"
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
# Telegram user ids exceed 32 bits.
INSPECTOR = 7_123_456_789
STRANGER = 7_000_000_001


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The messages' English ids, whatever the French catalogue says."""
    with use_language("en"):
        yield


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def district(db: Session) -> dict[str, int]:
    """Four schools, by UAI: their ids."""
    ids = {}
    for uai, name in (
        ("0751234X", "École Voltaire"),
        ("0751235Y", "École Condorcet"),
        ("0751236Z", "École Bert"),
        ("0751237A", "École Zola"),
    ):
        school = add_school(session=db, uai=uai, name=name, city="Paris", actor=OPERATOR)
        assert school.id is not None
        ids[uai] = school.id
    db.commit()
    return ids


def invite(db: Session, *uais: str, **kwargs: Any) -> str:
    invitation = create_inspector_invitation(
        db, uais=list(uais), actor=OPERATOR, now=kwargs.pop("now", NOW), **kwargs
    )
    db.commit()
    return invitation.code


def redeem(db: Session, code: str, user: int = INSPECTOR, **kwargs: Any) -> list[str]:
    schools = redeem_inspector_invitation(
        db, code=code, telegram_user_id=user, now=kwargs.pop("now", NOW), **kwargs
    )
    db.commit()
    return [school.uai for school in schools]


def audit(db: Session, action: str) -> list[AuditEvent]:
    return list(
        db.execute(
            select(AuditEvent).where(col(AuditEvent.action) == action).order_by(col(AuditEvent.id))
        ).scalars()
    )


# --- invitations ---------------------------------------------------------------------------


def test_an_invitation_names_its_schools_fits_start_and_expires(
    db: Session, district: dict[str, int]
) -> None:
    invitation = create_inspector_invitation(
        db,
        uais=["0751234x", " 0751235Y ", "0751234X"],  # any case, spaces, twice
        actor=OPERATOR,
        ttl=timedelta(days=3),
        now=NOW,
    )
    other = create_inspector_invitation(db, uais=["0751234X"], actor=OPERATOR, now=NOW)
    db.commit()

    assert re.fullmatch(r"[A-Za-z0-9_-]{22,64}", invitation.code)  # deep-link safe
    assert invitation.code != other.code
    assert invitation.expires_at == NOW + timedelta(days=3)
    assert other.expires_at == NOW + timedelta(days=7)
    # Each school once, by name.
    assert [(s.uai, s.name) for s in invitation.schools] == [
        ("0751235Y", "École Condorcet"),
        ("0751234X", "École Voltaire"),
    ]
    stored = (
        db.execute(select(InspectorInvitation).order_by(col(InspectorInvitation.id)))
        .scalars()
        .first()
    )
    assert stored is not None
    assert sorted(stored.school_ids) == sorted([district["0751234X"], district["0751235Y"]])
    assert re.fullmatch(r"[0-9a-f]{64}", stored.code_hash)
    assert stored.used_at is None
    (invited, _other) = audit(db, "inspector.invited")
    assert invited.actor == OPERATOR
    assert sorted(invited.details["school_ids"]) == sorted(stored.school_ids)
    assert invitation.code not in repr(invited.details)


def test_an_unknown_uai_is_refused_when_inviting_with_a_clear_sentence(
    db: Session, district: dict[str, int]
) -> None:
    with pytest.raises(UnknownSchoolError, match="No school is registered with the UAI 0691234A"):
        create_inspector_invitation(db, uais=["0751234X", "0691234a"], actor=OPERATOR, now=NOW)
    with pytest.raises(InvalidUAIError):
        create_inspector_invitation(db, uais=["75-1234"], actor=OPERATOR, now=NOW)
    with pytest.raises(UnknownSchoolError, match="at least one school"):
        create_inspector_invitation(db, uais=[], actor=OPERATOR, now=NOW)
    with pytest.raises(ValueError):
        create_inspector_invitation(db, uais=["0751234X"], actor=OPERATOR, ttl=timedelta(0))
    db.rollback()
    assert db.execute(select(InspectorInvitation)).first() is None


def test_an_inspector_redeems_an_invitation_once(db: Session, district: dict[str, int]) -> None:
    code = invite(db, "0751234X", "0751235Y")

    seen = redeem(db, code, display_name="M. Durand", now=NOW + timedelta(hours=1))

    assert seen == ["0751235Y", "0751234X"]  # by name: Condorcet, Voltaire
    assert inspector_schools(db) == {
        INSPECTOR: sorted([district["0751234X"], district["0751235Y"]])
    }
    stored = db.execute(select(InspectorInvitation)).scalar_one()
    assert stored.used_at == NOW + timedelta(hours=1)
    assert stored.used_by_telegram_id == INSPECTOR
    (added,) = audit(db, "inspector.added")
    assert added.actor == f"telegram:{INSPECTOR}"
    assert sorted(added.details["school_ids"]) == sorted(
        [district["0751234X"], district["0751235Y"]]
    )

    with pytest.raises(InvitationAlreadyUsedError, match="already been used"):
        redeem(db, code, user=STRANGER)
    with pytest.raises(InvitationAlreadyUsedError):  # not even by the same person
        redeem(db, code)
    db.rollback()
    assert inspected_schools(db, telegram_user_id=STRANGER) == []
    assert STRANGER not in inspector_schools(db)

    # Nothing secret at rest: the clear code is in no row of any table.
    dump = "\n".join(
        repr(tuple(row)) for table in metadata.sorted_tables for row in db.execute(select(table))
    )
    assert "inspector.invited" in dump and "inspector.added" in dump
    assert code not in dump


def test_an_expired_invitation_is_refused(db: Session, district: dict[str, int]) -> None:
    code = invite(db, "0751234X", ttl=timedelta(days=2))
    expires_at = NOW + timedelta(days=2)

    with pytest.raises(InvitationExpiredError, match="expired"):
        redeem(db, code, now=expires_at)
    db.rollback()
    assert inspected_schools(db, telegram_user_id=INSPECTOR) == []
    assert redeem(db, code, now=expires_at - timedelta(seconds=1)) == ["0751234X"]


def test_an_unknown_code_is_refused(db: Session, district: dict[str, int]) -> None:
    director_code, _expires = create_invitation(
        session=db, school_id=district["0751234X"], actor=OPERATOR, now=NOW
    )
    db.commit()
    # A director's code is not an inspector's.
    for code in ["", "nope", "a" * 22, "<b>x</b>", "a" * 65, "é" * 22, director_code]:
        with pytest.raises(UnknownInvitationError, match="unknown"):
            redeem(db, code)
    assert inspector_schools(db) == {}


def test_a_second_invitation_adds_its_schools_without_duplicates(
    db: Session, district: dict[str, int]
) -> None:
    redeem(db, invite(db, "0751234X", "0751235Y"), display_name="M. Durand")
    later = NOW + timedelta(days=1)

    seen = redeem(db, invite(db, "0751235Y", "0751236Z", now=later), now=later)

    assert seen == ["0751236Z", "0751235Y", "0751234X"]  # Bert, Condorcet, Voltaire
    rows = db.execute(select(InspectorSchool)).scalars().all()
    assert len(rows) == 3
    (_first, second) = audit(db, "inspector.added")
    assert second.details["school_ids"] == [district["0751236Z"]]  # only the new one
    (entry,) = list_inspectors(db)
    assert entry.telegram_user_id == INSPECTOR
    assert entry.display_name == "M. Durand"
    assert entry.since == NOW  # the first grant
    assert [s.uai for s in entry.schools] == ["0751236Z", "0751235Y", "0751234X"]


def test_a_school_deleted_before_the_redemption_is_skipped(
    db: Session, district: dict[str, int]
) -> None:
    school = School(uai="0751299B", name="École Fermée")
    db.add(school)
    db.commit()
    code = invite(db, "0751234X", "0751299B")
    # The school goes (nothing else refers to it: made without an audit event).
    db.execute(delete(School).where(col(School.id) == school.id))
    db.commit()

    assert redeem(db, code) == ["0751234X"]
    assert inspector_schools(db) == {INSPECTOR: [district["0751234X"]]}


def test_inspectors_are_listed_each_with_their_schools(
    db: Session, district: dict[str, int]
) -> None:
    assert list_inspectors(db) == []
    assert inspector_schools(db) == {}
    redeem(db, invite(db, "0751237A"), user=STRANGER)
    redeem(db, invite(db, "0751234X", "0751237A"))

    listed = [(e.telegram_user_id, [s.uai for s in e.schools]) for e in list_inspectors(db)]

    assert listed == [
        (STRANGER, ["0751237A"]),
        (INSPECTOR, ["0751234X", "0751237A"]),  # Voltaire, Zola
    ]
    assert inspector_schools(db) == {
        STRANGER: [district["0751237A"]],
        INSPECTOR: sorted([district["0751234X"], district["0751237A"]]),
    }


def test_removing_an_inspector_from_some_schools_then_all(
    db: Session, district: dict[str, int]
) -> None:
    redeem(db, invite(db, "0751234X", "0751235Y", "0751236Z"))
    redeem(db, invite(db, "0751234X"), user=STRANGER)

    removed = remove_inspector(
        db, telegram_user_id=INSPECTOR, uais=["0751234x", "0751236Z"], actor=OPERATOR
    )
    db.commit()

    assert removed == 2
    assert [s.uai for s in inspected_schools(db, telegram_user_id=INSPECTOR)] == ["0751235Y"]
    # The other inspector keeps the school.
    assert [s.uai for s in inspected_schools(db, telegram_user_id=STRANGER)] == ["0751234X"]
    (some,) = audit(db, "inspector.removed")
    assert some.actor == OPERATOR
    assert some.details["telegram_user_id"] == INSPECTOR
    assert sorted(some.details["school_ids"]) == sorted(
        [district["0751234X"], district["0751236Z"]]
    )
    assert some.details["removed"] == 2

    # A school they do not see, then every school.
    assert remove_inspector(db, telegram_user_id=INSPECTOR, uais=["0751237A"], actor=OPERATOR) == 0
    assert remove_inspector(db, telegram_user_id=INSPECTOR, actor=OPERATOR) == 1
    db.commit()
    assert inspected_schools(db, telegram_user_id=INSPECTOR) == []
    assert audit(db, "inspector.removed")[-1].details["school_ids"] == "all"
    assert list(inspector_schools(db)) == [STRANGER]
    assert remove_inspector(db, telegram_user_id=INSPECTOR, actor=OPERATOR) == 0
    with pytest.raises(UnknownSchoolError):
        remove_inspector(db, telegram_user_id=STRANGER, uais=["0691234A"], actor=OPERATOR)


def test_two_simultaneous_redemptions_cannot_both_win(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as setup:
        add_school(session=setup, uai="0751234X", name="École Voltaire", actor=OPERATOR)
        setup.commit()
        code = invite(setup, "0751234X")

    raced: list[bool] = []

    def other_inspector_wins_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Just before this session claims the invitation, another one redeems it and commits.
        if not raced and statement.lstrip().upper().startswith("UPDATE INSPECTOR_INVITATION"):
            raced.append(True)
            with Session(engine, expire_on_commit=False) as other:
                redeem(other, code, user=STRANGER)

    event.listen(engine, "before_cursor_execute", other_inspector_wins_first)
    try:
        with Session(engine, expire_on_commit=False) as session:
            with pytest.raises(InvitationAlreadyUsedError):
                redeem_inspector_invitation(session, code=code, telegram_user_id=INSPECTOR, now=NOW)
            session.rollback()
            inspectors = inspector_schools(session)
    finally:
        event.remove(engine, "before_cursor_execute", other_inspector_wins_first)
    assert raced == [True]
    assert list(inspectors) == [STRANGER]
