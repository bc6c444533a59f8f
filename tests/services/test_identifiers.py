"""The identifier rule: « prénom.nom » in lower-case ASCII, numbered, never reused."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.accounts.identifiers import MAX_LENGTH, allocate_identifiers, identifier_base
from bot.services.accounts.lifecycle import deactivate_accounts
from tests.factories import make_school_with_guardians

IDENTIFIER = re.compile(r"^([a-z]+\.)?[a-z]+[0-9]*$")


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.mark.parametrize(
    ("first_name", "last_name", "expected"),
    [
        ("Éloïse", "D'Almeida-Nuñez", "eloise.dalmeidanunez"),
        ("Jean-Pierre", "de La Fontaine", "jeanpierre.delafontaine"),
        ("Ødegård", "Ødegård", "odegard.odegard"),
        ("Hans", "Strauß", "hans.strauss"),
        ("Œdipe", "Lœuf", "oedipe.loeuf"),
        ("Ayşe", "Yıldız", "ayse.yildiz"),
        ("İlker", "Çelik", "ilker.celik"),
        ("João", "Gonçalves Araújo", "joao.goncalvesaraujo"),
        ("José María", "Peña Íñiguez", "josemaria.penainiguez"),
        ("Zoë", "N’Diaye", "zoe.ndiaye"),  # typographic apostrophe
        ("Łukasz", "Wałęsa", "lukasz.walesa"),
        ("Ægir", "Þórsson", "aegir.thorsson"),
        ("CÉLINE", "DUPONT", "celine.dupont"),
        ("E\u0301lise", "Mu\u0308ller", "elise.muller"),  # decomposed accents
        (" Anne\u00a0", "  Le  Goff ", "anne.legoff"),
        ("Louis 14", "Bourbon 🙂", "louis.bourbon"),  # digits and symbols never leak in
    ],
)
def test_identifier_folds_names_to_lower_case_ascii(
    first_name: str, last_name: str, expected: str
) -> None:
    assert identifier_base(first_name, last_name) == expected


def test_a_missing_first_name_leaves_just_the_surname() -> None:
    assert identifier_base("", "Dupont") == "dupont"
    assert identifier_base("  -  ", "Dupont") == "dupont"


def test_very_long_names_keep_the_initial_and_fit_with_a_number() -> None:
    base = identifier_base(
        "Marie-Christine-Alexandrine", "de la Rochefoucauld-Montmorency-Laval d'Aragon"
    )
    assert base.startswith("m.delarochefoucauld")
    assert len(base) + 4 <= MAX_LENGTH
    assert IDENTIFIER.match(base)


def test_a_long_first_name_alone_is_shortened_to_its_initial() -> None:
    assert identifier_base("Maximilienchristophe" * 2, "Cosams") == "m.cosams"
    assert identifier_base("Ana", "Cosams") == "ana.cosams"


def test_homonyms_in_one_batch_are_numbered_from_two(db: Session) -> None:
    people = [("Marie", "Dupont"), ("Paul", "Martin"), ("Marie", "Dupont"), ("Marie", "DUPONT")]

    assert allocate_identifiers(db, people) == [
        "marie.dupont",
        "paul.martin",
        "marie.dupont2",
        "marie.dupont3",
    ]


def test_allocation_continues_after_existing_numbers(db: Session) -> None:
    school = make_school_with_guardians(db, 2, names=[("Xavier", "Yves"), ("Xavier", "Yves")])
    assert [a.identifier for a in school.accounts] == ["xavier.yves", "xavier.yves2"]

    assert allocate_identifiers(db, [("Xavier", "Yves")]) == ["xavier.yves3"]


def test_an_identifier_that_merely_starts_like_the_base_does_not_count(db: Session) -> None:
    make_school_with_guardians(db, 2, names=[("Jean", "Dupontel"), ("Jean", "Dupont-Aignan")])

    assert allocate_identifiers(db, [("Jean", "Dupont")]) == ["jean.dupont"]


def test_a_deactivated_accounts_identifier_is_never_reused(db: Session) -> None:
    school = make_school_with_guardians(db, 1, names=[("Céline", "Dupont")])
    deactivate_accounts(session=db, account_ids=school.account_ids, actor="tests")
    db.commit()

    assert allocate_identifiers(db, [("Celine", "Dupont")]) == ["celine.dupont2"]


def test_identifiers_are_unique_across_schools(db: Session) -> None:
    first = make_school_with_guardians(db, 1, names=[("Ana", "Cosams")])
    second = make_school_with_guardians(db, 1, names=[("Ana", "Cosams")])

    assert first.accounts[0].identifier == "ana.cosams"
    assert second.accounts[0].identifier == "ana.cosams2"


def test_accounts_added_but_not_yet_committed_are_taken(session: Session) -> None:
    school = make_school_with_guardians(session, 1, names=[("Léo", "Petit")])
    assert school.accounts[0].identifier == "leo.petit"  # flushed, not committed

    assert allocate_identifiers(session, [("Leo", "Petit")]) == ["leo.petit2"]


def test_every_allocated_identifier_has_the_official_shape(session: Session) -> None:
    people = [("Éloïse", "D'Almeida-Nuñez"), ("", "Ødegård"), ("Ünal", "Yıldız")] * 3

    identifiers = allocate_identifiers(session, people)

    assert len(set(identifiers)) == len(identifiers)
    assert all(IDENTIFIER.match(identifier) for identifier in identifiers)
