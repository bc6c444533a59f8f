"""The « Statistiques », per school, class and level, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from bot.services.roster.statistics import (
    LEVELS,
    Counts,
    class_statistics,
    school_statistics,
)
from models import Account, AccountState, Guardian, Pupil, PupilGuardian, School, SchoolClass
from models import utcnow as now

NOT_NOTIFIED = AccountState.NOT_NOTIFIED
NOTIFIED = AccountState.NOTIFIED
ACTIVATING = AccountState.ACTIVATING
ACTIVATED = AccountState.ACTIVATED


class SchoolBuilder:
    """Builds a school by hand: classes, pupils, guardians with their accounts."""

    _numbers = itertools.count(1)

    def __init__(self, session: Session, uai: str = "0751234X") -> None:
        self.session = session
        self.school = School(uai=uai, name=f"École {uai}")
        session.add(self.school)
        session.flush()
        assert self.school.id is not None
        self.id: int = self.school.id

    def klass(self, label: str, levels: str = "", *, archived: bool = False) -> SchoolClass:
        school_class = SchoolClass(
            school_id=self.id,
            label=label,
            label_key=label.lower(),
            levels=levels,
            archived_at=now() if archived else None,
        )
        self.session.add(school_class)
        self.session.flush()
        return school_class

    def pupil(
        self,
        school_class: SchoolClass | None,
        level: str | None = None,
        *,
        archived: bool = False,
    ) -> Pupil:
        number = next(self._numbers)
        if level is None and school_class is not None and school_class.levels:
            level = school_class.levels.split(",")[0]
        pupil = Pupil(
            school_id=self.id,
            class_id=school_class.id if school_class else None,
            last_name=f"ELEVE{number}",
            first_name="Camille",
            level=level,
            archived_at=now() if archived else None,
        )
        self.session.add(pupil)
        self.session.flush()
        return pupil

    def guardian(
        self,
        children: Sequence[Pupil],
        state: AccountState = NOT_NOTIFIED,
        *,
        deactivated: bool = False,
    ) -> Account:
        number = next(self._numbers)
        guardian = Guardian(school_id=self.id, last_name=f"PARENT{number}", first_name="Alex")
        self.session.add(guardian)
        self.session.flush()
        assert guardian.id is not None
        for child in children:
            assert child.id is not None
            self.session.add(PupilGuardian(pupil_id=child.id, guardian_id=guardian.id))
        account = Account(
            guardian_id=guardian.id,
            identifier=f"alex.parent{number}",
            state=state,
            deactivated_at=now() if deactivated else None,
        )
        self.session.add(account)
        self.session.flush()
        return account


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def counts_of(counts: Counts) -> dict[str, int]:
    return {
        "accounts": counts.accounts,
        "not_notified": counts.not_notified,
        "notified": counts.notified,
        "activating": counts.activating,
        "activated": counts.activated,
        "pupils": counts.pupils,
        "pupils_with_activated_guardian": counts.pupils_with_activated_guardian,
    }


def test_a_guardian_with_children_in_two_classes_counts_in_both(db: Session) -> None:
    school = SchoolBuilder(db)
    cp, cm1 = school.klass("CP A", "CP"), school.klass("CM1", "CM1")
    little, big = school.pupil(cp), school.pupil(cm1)
    school.guardian([little, big], ACTIVATED)
    school.guardian([little], NOTIFIED)
    db.commit()

    stats = school_statistics(session=db, school_id=school.id)

    assert stats.total.accounts == 2  # the parent of both counts once for the school
    assert stats.total.activated == 1 and stats.total.notified == 1
    by_label = {group.label: group for group in stats.classes}
    assert by_label["CP A"].accounts == 2
    assert by_label["CM1"].accounts == 1 and by_label["CM1"].activated == 1
    assert sum(group.accounts for group in stats.classes) == 3  # more than the school total
    assert stats.total.pupils == 2
    assert stats.total.pupils_with_activated_guardian == 2
    assert stats.total.activated_accounts_percent == pytest.approx(50.0)
    assert stats.total.pupils_with_activated_guardian_percent == pytest.approx(100.0)


def test_deactivated_accounts_are_not_counted(db: Session) -> None:
    school = SchoolBuilder(db)
    ce1 = school.klass("CE1", "CE1")
    pupil = school.pupil(ce1)
    school.guardian([pupil], ACTIVATED, deactivated=True)
    school.guardian([pupil], NOTIFIED)
    db.commit()

    stats = school_statistics(session=db, school_id=school.id)

    assert counts_of(stats.total) == {
        "accounts": 1,
        "not_notified": 0,
        "notified": 1,
        "activating": 0,
        "activated": 0,
        "pupils": 1,
        # A deactivated account does not cover the pupil, even if it was activated.
        "pupils_with_activated_guardian": 0,
    }
    assert stats.classes[0].accounts == 1


def test_archived_pupils_and_classes_are_not_counted(db: Session) -> None:
    school = SchoolBuilder(db)
    ce2 = school.klass("CE2", "CE2")
    closed = school.klass("CE2 bis", "CE2", archived=True)
    stays, left = school.pupil(ce2), school.pupil(ce2, archived=True)
    in_closed_class = school.pupil(closed)
    school.guardian([stays], ACTIVATING)
    school.guardian([left], ACTIVATED)  # their account only covers a pupil who left
    school.guardian([in_closed_class], ACTIVATED)
    db.commit()

    stats = school_statistics(session=db, school_id=school.id)

    assert [group.label for group in stats.classes] == ["CE2"]
    assert counts_of(stats.total) == counts_of(stats.classes[0])
    assert stats.total.accounts == 1 and stats.total.activating == 1
    assert stats.total.pupils == 1
    assert [(group.label, group.pupils) for group in stats.levels] == [("CE2", 1)]


def test_percentages_are_zero_without_pupils_or_accounts(db: Session) -> None:
    assert Counts().activated_accounts_percent == 0.0
    assert Counts().pupils_with_activated_guardian_percent == 0.0
    school = SchoolBuilder(db)
    school.klass("PS Mme Roux", "PS")  # a class without pupils yet still shows, with zeros
    db.commit()

    stats = school_statistics(session=db, school_id=school.id)

    assert stats.total == Counts()
    assert [group.label for group in stats.classes] == ["PS Mme Roux"]
    assert stats.classes[0].pupils == 0
    assert stats.classes[0].pupils_with_activated_guardian_percent == 0.0
    assert stats.levels == []
    assert stats.to_dict()["total"]["activated_accounts_percent"] == 0.0


def test_levels_come_from_the_pupils_in_school_order(db: Session) -> None:
    school = SchoolBuilder(db)
    mixed = school.klass("CE2-CM1", "CE2,CM1")
    cp = school.klass("CP", "CP")
    ce2, cm1, first = school.pupil(mixed, "CE2"), school.pupil(mixed, "CM1"), school.pupil(cp)
    school.guardian([ce2, cm1], ACTIVATED)  # siblings in one class, two levels
    school.guardian([first], NOT_NOTIFIED)
    school.pupil(None, "TPS")  # no class yet: counted for the school and its level
    db.commit()

    stats = school_statistics(session=db, school_id=school.id)

    assert [group.label for group in stats.levels] == ["TPS", "CP", "CE2", "CM1"]
    by_level = {group.label: group for group in stats.levels}
    assert by_level["CE2"].accounts == 1 and by_level["CM1"].accounts == 1
    assert by_level["CM1"].activated_accounts_percent == 100.0
    assert by_level["TPS"].pupils == 1 and by_level["TPS"].accounts == 0
    assert stats.total.pupils == 4
    assert stats.total.pupils_with_activated_guardian == 2
    assert stats.total.pupils_with_activated_guardian_percent == pytest.approx(50.0)
    assert [group.levels for group in stats.classes] == [("CP",), ("CE2", "CM1")]


def test_classes_are_ordered_by_their_first_level_then_label(db: Session) -> None:
    school = SchoolBuilder(db)
    for label, levels in [
        ("CM2", "CM2"),
        ("CP B", "CP"),
        ("cp a", "CP"),
        ("GS-CP", "GS,CP"),
        ("PS-MS Mme Roux", "PS,MS"),
        ("Atelier", ""),
    ]:
        school.klass(label, levels)
    db.commit()

    stats = school_statistics(session=db, school_id=school.id)

    assert [group.label for group in stats.classes] == [
        "PS-MS Mme Roux",
        "GS-CP",
        "cp a",
        "CP B",
        "CM2",
        "Atelier",
    ]


def test_a_filter_narrows_to_one_class_or_one_level(db: Session) -> None:
    school = SchoolBuilder(db)
    mixed, cm2 = school.klass("CM1/2", "CM1,CM2"), school.klass("CM2", "CM2")
    a, b, c = school.pupil(mixed, "CM1"), school.pupil(mixed, "CM2"), school.pupil(cm2)
    school.guardian([a, c], ACTIVATED)
    school.guardian([b], NOTIFIED)
    db.commit()
    assert mixed.id is not None

    one_class = school_statistics(session=db, school_id=school.id, class_id=mixed.id)
    assert one_class.total.accounts == 2 and one_class.total.pupils == 2
    assert [group.label for group in one_class.classes] == ["CM1/2"]
    assert [group.label for group in one_class.levels] == ["CM1", "CM2"]

    cm2_level = school_statistics(session=db, school_id=school.id, level="CM2")
    assert cm2_level.total.pupils == 2 and cm2_level.total.accounts == 2
    assert [(group.label, group.pupils) for group in cm2_level.classes] == [
        ("CM1/2", 1),
        ("CM2", 1),
    ]

    group = class_statistics(session=db, school_id=school.id, class_id=mixed.id)
    assert group is not None and group.class_id == mixed.id and group.accounts == 2
    assert class_statistics(session=db, school_id=school.id, class_id=-1) is None


def test_other_schools_do_not_leak_in(db: Session) -> None:
    ours, theirs = SchoolBuilder(db, "0751234X"), SchoolBuilder(db, "0691234A")
    ours.guardian([ours.pupil(ours.klass("CP", "CP"))], ACTIVATED)
    theirs.guardian([theirs.pupil(theirs.klass("CP", "CP"))], NOTIFIED)
    db.commit()

    stats = school_statistics(session=db, school_id=ours.id)

    assert stats.total.accounts == 1 and stats.total.activated == 1
    assert len(stats.classes) == 1


# --- against an independent computation -------------------------------------------------


@dataclass
class Expected:
    accounts: dict[int, AccountState] = field(default_factory=dict)
    pupils: set[int] = field(default_factory=set)
    covered: set[int] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        states = list(self.accounts.values())
        return {
            "accounts": len(states),
            **{state.value: states.count(state) for state in AccountState},
            "pupils": len(self.pupils),
            "pupils_with_activated_guardian": len(self.covered),
        }


def build_random_school(session: Session, rng: random.Random, uai: str) -> SchoolBuilder:
    school = SchoolBuilder(session, uai)
    classes: list[SchoolClass] = []
    for index in range(12):
        first = rng.randrange(len(LEVELS) - 1)
        levels = LEVELS[first : first + rng.choice((1, 1, 2))]
        classes.append(
            school.klass(f"Classe {index}", ",".join(levels), archived=rng.random() < 0.1)
        )
    pupils = []
    for _ in range(220):
        school_class = rng.choice([*classes, None]) if rng.random() < 0.05 else rng.choice(classes)
        level = rng.choice(school_class.levels.split(",")) if school_class else rng.choice(LEVELS)
        pupils.append(school.pupil(school_class, level, archived=rng.random() < 0.08))
    for _ in range(300):
        children = rng.sample(pupils, rng.choice((1, 1, 1, 2, 2, 3)))
        state = rng.choice(list(AccountState))
        school.guardian(children, state, deactivated=rng.random() < 0.07)
    return school


def expected_statistics(session: Session, school_id: int) -> dict[str, Any]:
    """The statistics recomputed row by row in Python, from the definitions of docs/PRODUCT.md."""
    classes = {
        c.id: c for c in session.exec(select(SchoolClass).where(SchoolClass.school_id == school_id))
    }
    pupils = {p.id: p for p in session.exec(select(Pupil).where(Pupil.school_id == school_id))}
    guardians_of: dict[int, list[int]] = {}
    for link in session.exec(select(PupilGuardian)):
        guardians_of.setdefault(link.pupil_id, []).append(link.guardian_id)
    accounts = {a.guardian_id: a for a in session.exec(select(Account))}

    total = Expected()
    per_class: dict[str, Expected] = {}
    per_level: dict[str, Expected] = {}
    for pupil in pupils.values():
        school_class = classes.get(pupil.class_id) if pupil.class_id else None
        if pupil.archived_at or (school_class and school_class.archived_at):
            continue
        groups = [total]
        if school_class:
            groups.append(per_class.setdefault(school_class.label, Expected()))
        if pupil.level:
            groups.append(per_level.setdefault(pupil.level, Expected()))
        active = [
            accounts[g]
            for g in guardians_of.get(pupil.id or 0, [])
            if accounts[g].deactivated_at is None
        ]
        for group in groups:
            group.pupils.add(pupil.id or 0)
            for account in active:
                group.accounts[account.id or 0] = account.state
            if any(account.state is ACTIVATED for account in active):
                group.covered.add(pupil.id or 0)
    for school_class in classes.values():
        if not school_class.archived_at:
            per_class.setdefault(school_class.label, Expected())
    return {
        "total": total.counts(),
        "classes": {label: e.counts() for label, e in per_class.items()},
        "levels": {level: e.counts() for level, e in per_level.items()},
    }


def test_matches_an_independent_computation_on_a_random_school(db: Session) -> None:
    school = build_random_school(db, random.Random(20261128), "0751234X")
    other = build_random_school(db, random.Random(7), "0691234A")  # same labels, must not mix in
    db.commit()
    assert other.id != school.id

    stats = school_statistics(session=db, school_id=school.id)
    expected = expected_statistics(db, school.id)

    assert counts_of(stats.total) == expected["total"]
    assert {g.label: counts_of(g) for g in stats.classes} == expected["classes"]
    assert {g.label: counts_of(g) for g in stats.levels} == expected["levels"]
    assert [g.label for g in stats.levels] == [lv for lv in LEVELS if lv in expected["levels"]]
    # The random school exercises every case: overlaps, and every state.
    assert sum(g.accounts for g in stats.classes) > stats.total.accounts
    assert all(stats.total.by_state().values())


# --- query plans --------------------------------------------------------------------------


def test_queries_use_indexes_not_full_scans(sqlite_engine: Engine) -> None:
    """On a district-sized table, every statistics query reaches rows through an index."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        build_random_school(session, random.Random(1), "0751234X")
        school = build_random_school(session, random.Random(2), "0691234A")
        session.commit()

        statements: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
            statements.append((statement, params))

        event.listen(sqlite_engine, "before_cursor_execute", capture)
        try:
            school_statistics(session=session, school_id=school.id)
        finally:
            event.remove(sqlite_engine, "before_cursor_execute", capture)

        assert statements
        for statement, params in statements:
            plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            details = [str(row[-1]) for row in plan]
            full_scans = [
                line
                for line in details
                if line.startswith("SCAN")
                and any(f"SCAN {table}" in line for table in ("pupil", "account", "guardian"))
                and "USING" not in line
            ]
            assert not full_scans, (statement, details)
