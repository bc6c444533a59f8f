"""The roster as a director reads it: class arguments, guardian lists with their filters and
pages, the « état des comptes » — on SQLite and PostgreSQL, without Telegram."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import Session, col

from bot.services.roster.guardians import (
    GuardianFilters,
    list_guardians,
    parse_guardian_query,
    parse_state_word,
)
from bot.services.roster.onde.importer import import_roster
from bot.services.roster.scopes import ScopeKind, UnknownClassError, resolve_scope, scope_from_token
from bot.services.roster.statistics import school_statistics
from bot.services.roster.status import NextStepKind, status_report
from models import Account, AccountState, Guardian, Pupil, PupilGuardian, School, SchoolClass

NOT_NOTIFIED = AccountState.NOT_NOTIFIED
NOTIFIED = AccountState.NOTIFIED
ACTIVATING = AccountState.ACTIVATING
ACTIVATED = AccountState.ACTIVATED
NOT_ACTIVE = {NOT_NOTIFIED, NOTIFIED, ACTIVATING}


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def sample_school(db: Session, samples_dir: Path) -> int:
    """The demo school, imported from its two realistic ONDE extractions."""
    school = School(uai="0751234X", name="École du Parc")
    db.add(school)
    db.flush()
    assert school.id is not None
    files = [
        (name, (samples_dir / name).read_bytes()) for name in ("eleves.csv", "responsables.csv")
    ]
    import_roster(session=db, school_id=school.id, files=files, actor="tests")
    db.commit()
    return school.id


class Builder:
    """A school by hand: classes, pupils, guardians with an account in a given state."""

    _numbers = itertools.count(1)

    def __init__(self, session: Session, uai: str) -> None:
        self.session = session
        school = School(uai=uai, name=f"École {uai}")
        session.add(school)
        session.flush()
        assert school.id is not None
        self.id: int = school.id

    def klass(self, label: str, levels: str) -> SchoolClass:
        from bot.services.roster.classes import class_label_key

        school_class = SchoolClass(
            school_id=self.id, label=label, label_key=class_label_key(label), levels=levels
        )
        self.session.add(school_class)
        self.session.flush()
        return school_class

    def pupil(self, school_class: SchoolClass, level: str, first_name: str = "Lou") -> Pupil:
        pupil = Pupil(
            school_id=self.id,
            class_id=school_class.id,
            last_name=f"ELEVE{next(self._numbers)}",
            first_name=first_name,
            level=level,
        )
        self.session.add(pupil)
        self.session.flush()
        return pupil

    def guardian(
        self,
        children: Sequence[Pupil],
        state: AccountState = NOT_NOTIFIED,
        *,
        email: bool = True,
        last_name: str | None = None,
    ) -> Account:
        number = next(self._numbers)
        guardian = Guardian(
            school_id=self.id,
            last_name=last_name or f"PARENT{number:04d}",
            first_name="Alex",
            email=f"alex{number}@example.org" if email else None,
        )
        self.session.add(guardian)
        self.session.flush()
        assert guardian.id is not None
        for child in children:
            assert child.id is not None
            self.session.add(PupilGuardian(pupil_id=child.id, guardian_id=guardian.id))
        account = Account(guardian_id=guardian.id, identifier=f"alex.parent{number}", state=state)
        self.session.add(account)
        self.session.flush()
        return account


# --- Class arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["CE2-CM1", "ce2-cm1", "CE2 - CM1", "  Ce2 -Cm1 ", "ce2 cm1"])
def test_a_class_label_matches_whatever_the_case_and_spaces(
    db: Session, sample_school: int, typed: str
) -> None:
    resolved = resolve_scope(session=db, school_id=sample_school, text=typed)

    assert resolved.scope.kind is ScopeKind.CLASS
    assert resolved.scope.label == "CE2-CM1"
    assert resolved.pupils == 19  # 7 CE2 and 12 CM1 in the sample school
    class_id = resolved.scope.class_id
    guardians = db.execute(
        select(col(PupilGuardian.guardian_id))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .where(col(Pupil.class_id) == class_id)
        .distinct()
    ).all()
    assert resolved.guardians == len(guardians)


def test_accents_and_apostrophes_do_not_matter(db: Session, sample_school: int) -> None:
    school_class = SchoolClass(
        school_id=sample_school, label="CP Mme Lefèvre", label_key="cp mme lefevre", levels="CP"
    )
    db.add(school_class)
    db.commit()

    for typed in ("cp mme lefevre", "CP MME LEFÈVRE", "cp  Mme  Lefevre"):
        resolved = resolve_scope(session=db, school_id=sample_school, text=typed)
        assert resolved.scope.class_id == school_class.id
    for typed in ("cm1/2 mme n’diaye", "CM1/2 Mme N'Diaye", "cm1/2 mme ndiaye"):
        resolved = resolve_scope(session=db, school_id=sample_school, text=typed)
        assert resolved.scope.label == "CM1/2 Mme N'Diaye"


def test_a_label_wins_over_a_level_unless_niveau_is_said(db: Session, sample_school: int) -> None:
    resolved = resolve_scope(session=db, school_id=sample_school, text="cm1")

    assert resolved.scope.kind is ScopeKind.CLASS and resolved.scope.label == "CM1"
    assert resolved.pupils == 22
    level = resolve_scope(session=db, school_id=sample_school, text="niveau CM1")
    # 22 in CM1, 12 in CE2-CM1 and 3 in CM1/2 Mme N'Diaye in the sample school.
    assert level.scope.kind is ScopeKind.LEVEL and level.pupils == 22 + 12 + 3
    assert set(level.classes) == {"CM1", "CE2-CM1", "CM1/2 Mme N'Diaye"}
    assert level.scope.argument == "niveau CM1"
    again = resolve_scope(session=db, school_id=sample_school, text=level.scope.argument)
    assert again.scope == level.scope


def test_a_level_matches_the_multi_level_classes_that_teach_it(db: Session) -> None:
    school = Builder(db, "0590001A")
    ce2_cm1, cm1_2, cm2 = (
        school.klass("CE2-CM1", "CE2,CM1"),
        school.klass("CM1/2", "CM1,CM2"),
        school.klass("CM2", "CM2"),
    )
    ce2_pupil, cm1_pupil = school.pupil(ce2_cm1, "CE2"), school.pupil(ce2_cm1, "CM1")
    other_cm1, cm2_pupil = school.pupil(cm1_2, "CM1"), school.pupil(cm1_2, "CM2")
    school.guardian([ce2_pupil])
    school.guardian([cm1_pupil, other_cm1])
    school.guardian([cm2_pupil, school.pupil(cm2, "CM2")])
    db.commit()

    resolved = resolve_scope(session=db, school_id=school.id, text="cm1")

    assert resolved.scope.kind is ScopeKind.LEVEL and resolved.scope.level == "CM1"
    assert set(resolved.classes) == {"CE2-CM1", "CM1/2"}
    assert (resolved.pupils, resolved.guardians) == (2, 1)
    assert resolve_scope(session=db, school_id=school.id, text="Cours moyen 1").scope.level == "CM1"


@pytest.mark.parametrize("typed", ["ecole", "École", "toute l'école", "ECOLE", ""])
def test_ecole_is_the_whole_school(db: Session, sample_school: int, typed: str) -> None:
    resolved = resolve_scope(session=db, school_id=sample_school, text=typed)

    stats = school_statistics(session=db, school_id=sample_school)
    assert resolved.scope.kind is ScopeKind.SCHOOL
    assert (resolved.pupils, resolved.guardians) == (stats.total.pupils, stats.total.accounts)
    assert resolved.pupils == 180


def test_an_unknown_class_lists_the_known_ones(db: Session, sample_school: int) -> None:
    with pytest.raises(UnknownClassError) as raised:
        resolve_scope(session=db, school_id=sample_school, text="CM3 Mme Bidule")

    error = raised.value
    assert error.text == "CM3 Mme Bidule"
    labels = [info.label for info in error.classes]
    assert sorted(labels) == sorted(
        label for (label,) in db.execute(select(col(SchoolClass.label)))
    )
    assert labels[0] == "PS-MS Mme Roux" and labels[-1] == "CM1/2 Mme N'Diaye"  # school order
    assert error.levels == ["PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2"]
    with pytest.raises(UnknownClassError):
        resolve_scope(session=db, school_id=sample_school, text="TPS")  # a level nobody is in


def test_a_button_of_another_school_resolves_to_nothing(db: Session) -> None:
    school_a, school_b = Builder(db, "0590002B"), Builder(db, "0590003C")
    class_b = school_b.klass("CP", "CP")
    school_b.guardian([school_b.pupil(class_b, "CP")])
    db.commit()

    assert scope_from_token(session=db, school_id=school_b.id, token=f"c{class_b.id}").pupils == 1
    with pytest.raises(UnknownClassError):
        scope_from_token(session=db, school_id=school_a.id, token=f"c{class_b.id}")
    with pytest.raises(UnknownClassError):
        list_guardians(session=db, school_id=school_a.id, scope=f"c{class_b.id}")
    with pytest.raises(UnknownClassError):
        scope_from_token(session=db, school_id=school_a.id, token="lCP")


# --- Filter words --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "scope", "has_email", "states"),
    [
        (["CE2-CM1", "sans"], "CE2-CM1", False, set()),
        (["CE2", "-", "CM1", "avec"], "CE2 - CM1", True, set()),
        (["cm1", "sans", "e-mail", "non", "notifié"], "cm1", False, {NOT_NOTIFIED}),
        (["cm1", "non_notifie"], "cm1", None, {NOT_NOTIFIED}),
        (["ecole", "en", "cours"], "ecole", None, {ACTIVATING}),
        (["ecole", "🟢"], "ecole", None, {ACTIVATED}),
        (["CP", "A", "notifiés", "avec"], "CP A", True, {NOTIFIED}),
        (["GS", "M.", "Petit", "non_actives"], "GS M. Petit", None, NOT_ACTIVE),
        (["sans"], "", False, set()),
        ([], "", None, set()),
    ],
)  # fmt: skip
def test_filter_words_are_read_from_the_end(
    arguments: list[str], scope: str, has_email: bool | None, states: set[AccountState]
) -> None:
    query = parse_guardian_query(arguments)

    assert query.scope_text == scope
    assert query.filters == GuardianFilters(has_email, frozenset(states))


def test_a_class_named_like_a_filter_word_stays_a_class() -> None:
    query = parse_guardian_query(["CP", "vert"], known_labels=["CP Vert", "CP Rouge"])
    assert query.scope_text == "CP vert" and query.filters == GuardianFilters()


@pytest.mark.parametrize(
    ("word", "state"),
    [("non_notifié", NOT_NOTIFIED), ("NOTIFIE", NOTIFIED), ("en_cours", ACTIVATING),
     ("activé", ACTIVATED), ("actives", ACTIVATED), ("🔴", NOT_NOTIFIED), ("🟠", NOTIFIED),
     ("🟡", ACTIVATING), ("🟢", ACTIVATED), ("en-cours", ACTIVATING)],
)  # fmt: skip
def test_state_words_in_french_and_lights(word: str, state: AccountState) -> None:
    assert parse_state_word(word) == frozenset({state})


def test_filters_survive_a_round_trip_through_callback_data() -> None:
    for filters in (
        GuardianFilters(),
        GuardianFilters(False, frozenset({NOT_NOTIFIED})),
        GuardianFilters(True, frozenset({NOTIFIED, ACTIVATING})),
    ):
        assert GuardianFilters.from_token(filters.token) == filters


# --- Guardian lists ------------------------------------------------------------------------------


def _expected_guardians(
    db: Session, school_id: int, class_id: int | None, has_email: bool | None
) -> set[int]:
    """Guardians with an enrolled child in the class (all classes when None), by hand."""
    statement = (
        select(col(Guardian.id), col(Guardian.email))
        .join(PupilGuardian, col(PupilGuardian.guardian_id) == col(Guardian.id))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .where(col(Guardian.school_id) == school_id, col(Pupil.archived_at).is_(None))
    )
    if class_id is not None:
        statement = statement.where(col(Pupil.class_id) == class_id)
    return {
        guardian_id
        for guardian_id, email in db.execute(statement)
        if has_email is None or bool(email) == has_email
    }


@pytest.mark.parametrize("has_email", [None, True, False])
def test_the_pages_cover_every_guardian_of_the_class_once(
    db: Session, sample_school: int, has_email: bool | None
) -> None:
    resolved = resolve_scope(session=db, school_id=sample_school, text="CE2-CM1")
    filters = GuardianFilters(has_email=has_email)

    first = list_guardians(
        session=db,
        school_id=sample_school,
        scope=resolved.scope.token,
        filters=filters,
        page_size=7,
    )
    seen: list[int] = []
    for page in range(first.page_count):
        listed = list_guardians(
            session=db,
            school_id=sample_school,
            scope=resolved.scope.token,
            filters=filters,
            page=page,
            page_size=7,
        )
        assert len(listed.guardians) <= 7
        seen += [guardian.guardian_id for guardian in listed.guardians]

    expected = _expected_guardians(db, sample_school, resolved.scope.class_id, has_email)
    assert len(seen) == len(set(seen)) == first.total
    assert set(seen) == expected
    assert first.page_count == -(-len(expected) // 7)
    if has_email is False:
        assert all(not g.has_email for g in first.guardians)


def test_each_guardian_comes_with_children_identifier_and_light(
    db: Session, sample_school: int
) -> None:
    listed = list_guardians(session=db, school_id=sample_school, scope="e", page_size=500)

    assert listed.total == school_statistics(session=db, school_id=sample_school).total.accounts
    by_name = {(g.first_name, g.last_name): g for g in listed.guardians}
    anais = by_name[("Anaïs", "DE LA FONTAINE")]
    assert {(c.first_name, c.class_label) for c in anais.children} == {
        ("Côme", "GS M. Petit"),
        ("Nathan", "CM1"),
    }
    assert anais.has_email and anais.light == "🔴"
    identifiers = dict(db.execute(select(col(Account.guardian_id), col(Account.identifier))).all())
    assert all(g.identifier == identifiers[g.guardian_id] for g in listed.guardians)


def test_state_filters_and_a_page_past_the_end(db: Session) -> None:
    school = Builder(db, "0590004D")
    cp = school.klass("CP", "CP")
    states = [NOT_NOTIFIED] * 5 + [NOTIFIED] * 4 + [ACTIVATING] * 2 + [ACTIVATED] * 3
    accounts = [
        school.guardian([school.pupil(cp, "CP")], state, email=index % 2 == 0)
        for index, state in enumerate(states)
    ]
    db.commit()

    def ids(filters: GuardianFilters, page: int = 0, page_size: int = 50) -> list[int]:
        listed = list_guardians(
            session=db, school_id=school.id, scope="e", filters=filters, page=page,
            page_size=page_size,
        )  # fmt: skip
        return [g.account_id for g in listed.guardians]

    for state in AccountState:
        expected = {a.id for a in accounts if a.state == state}
        assert set(ids(GuardianFilters(states=frozenset({state})))) == expected
    red_without = {a.id for i, a in enumerate(accounts) if a.state == NOT_NOTIFIED and i % 2}
    assert set(ids(GuardianFilters(False, frozenset({NOT_NOTIFIED})))) == red_without

    late = list_guardians(session=db, school_id=school.id, scope="e", page=99, page_size=4)
    assert late.page == 3 and len(late.guardians) == 14 - 12  # clamped to the last page


def test_listing_costs_the_same_few_queries_for_any_page_size(
    db: Session, sample_school: int, engine: Engine
) -> None:
    statements: list[Any] = []

    def count(*_args: Any) -> None:
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for page_size in (5, 200):
            statements.clear()
            list_guardians(session=db, school_id=sample_school, scope="e", page_size=page_size)
            assert len(statements) <= 6
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --- État des comptes ----------------------------------------------------------------------------


def test_status_report_names_the_next_steps_and_the_classes_behind(db: Session) -> None:
    school = Builder(db, "0590005E")
    cp, cm1, cm2 = school.klass("CP", "CP"), school.klass("CM1", "CM1"), school.klass("CM2", "CM2")
    for _ in range(3):
        school.guardian([school.pupil(cp, "CP")], NOT_NOTIFIED, email=True)
    school.guardian([school.pupil(cp, "CP")], NOT_NOTIFIED, email=False)
    for _ in range(2):
        school.guardian([school.pupil(cm1, "CM1")], NOTIFIED)
    school.guardian([school.pupil(cm1, "CM1")], ACTIVATING)
    school.guardian([school.pupil(cm1, "CM1")], ACTIVATED)
    school.guardian([school.pupil(cm2, "CM2")], ACTIVATED)
    # A parent of two pupils never notified: counted once in the school's steps.
    school.guardian([school.pupil(cp, "CP"), school.pupil(cm1, "CM1")], NOT_NOTIFIED, email=True)
    db.commit()

    report = status_report(session=db, school_id=school.id)

    steps = [(step.kind, step.scope.kind, step.count) for step in report.next_steps]
    assert steps == [
        (NextStepKind.SEND_EMAIL, ScopeKind.SCHOOL, 4),
        (NextStepKind.PRINT_LETTERS, ScopeKind.SCHOOL, 1),
        (NextStepKind.REMIND, ScopeKind.SCHOOL, 2),
        (NextStepKind.CONFIRM, ScopeKind.SCHOOL, 1),
    ]
    assert [group.label for group in report.behind] == ["CP", "CM1"]  # CM2 is all green
    assert report.statistics.total.accounts == 10

    only_cm1 = status_report(session=db, school_id=school.id, scope_text="cm1")
    assert only_cm1.resolved.scope.kind is ScopeKind.CLASS and only_cm1.behind == []
    assert [(step.kind, step.scope.label, step.count) for step in only_cm1.next_steps] == [
        (NextStepKind.SEND_EMAIL, "CM1", 1),
        (NextStepKind.REMIND, "CM1", 2),
        (NextStepKind.CONFIRM, "CM1", 1),
    ]
    by_token = status_report(session=db, school_id=school.id, scope=only_cm1.resolved.scope.token)
    assert by_token == only_cm1


def test_status_report_matches_school_statistics(db: Session, sample_school: int) -> None:
    report = status_report(session=db, school_id=sample_school, scope_text="")
    assert report.statistics == school_statistics(session=db, school_id=sample_school)
    sends = sum(
        step.count
        for step in report.next_steps
        if step.kind in (NextStepKind.SEND_EMAIL, NextStepKind.PRINT_LETTERS)
    )
    assert sends == report.statistics.total.not_notified


def test_status_report_costs_a_few_aggregate_queries(
    db: Session, sample_school: int, engine: Engine
) -> None:
    statements: list[Any] = []

    def count(*_args: Any) -> None:
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        status_report(session=db, school_id=sample_school)
        school_wide = len(statements)
        statements.clear()
        status_report(session=db, school_id=sample_school, scope_text="niveau CM1")
        level = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert school_wide <= 4 and level <= 6
