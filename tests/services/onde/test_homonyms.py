"""Same names: two people are two guardians, two pupils are two pupils, told apart by class
and address; what stays ambiguous is reported, never guessed (docs/PRODUCT.md)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from bot.services.roster.onde.report import Severity
from tests.services.onde import views
from tests.services.onde.builder import (
    ChildSpec,
    GuardianSpec,
    Options,
    PupilSpec,
    guardians_csv,
    pupils_csv,
)
from tests.services.onde.conftest import ImportRunner, snapshot


def files(
    pupils: list[PupilSpec], guardians: list[GuardianSpec], options: Options | None = None
) -> list[tuple[str, bytes]]:
    return [
        ("eleves.csv", pupils_csv(pupils, options)),
        ("responsables.csv", guardians_csv(guardians, options)),
    ]


def test_two_guardians_with_the_same_name_get_two_accounts(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    emma = PupilSpec("DUBOIS", "Emma", date(2020, 12, 15), "CP A", "CP", "F")
    ines = PupilSpec("DUBOIS", "Inès", date(2020, 11, 8), "CP B", "CP", "F", address="80 allée")
    guardians = [
        GuardianSpec("DUBOIS", "Léa", (ChildSpec("DUBOIS", "Emma", "CP A"),)),
        GuardianSpec("DUBOIS", "Léa", (ChildSpec("DUBOIS", "Inès", "CP B"),), address="80 allée"),
        # Even with the same child, two rows are two people.
        GuardianSpec("DUBOIS", "Léa", (ChildSpec("DUBOIS", "Emma", "CP A"),), address="2 rue"),
    ]
    run_import(files([emma, ines], guardians))
    stored = views.guardians(engine, school_id)
    assert [g.identifier for g in stored] == ["lea.dubois", "lea.dubois2", "lea.dubois3"]
    by_id = views.pupils(engine, school_id)
    assert [views.children_names(g, by_id) for g in stored] == [
        {("Emma", "DUBOIS")},
        {("Inès", "DUBOIS")},
        {("Emma", "DUBOIS")},
    ]

    # Re-importing keeps each identifier with the same person.
    before = [(g.identifier, g.address, g.children) for g in stored]
    report = run_import(files([emma, ines], guardians))
    after = [(g.identifier, g.address, g.children) for g in views.guardians(engine, school_id)]
    assert after == before and report.guardians.unchanged == 3


def test_two_pupils_with_the_same_name_in_one_class_are_told_apart_by_address(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    # No INE column: the pupils differ by birth date, their parents by address.
    first = PupilSpec("DUBOIS", "Inès", date(2020, 1, 31), "CP A", "CP", "F", address="72 place")
    second = PupilSpec("DUBOIS", "Inès", date(2020, 11, 8), "CP A", "CP", "F", address="80 allée")
    guardians = [
        GuardianSpec(
            "LEROY", "Yasmine", (ChildSpec("DUBOIS", "Inès", "CP A"),), address="72 place"
        ),
        GuardianSpec("DUBOIS", "Léa", (ChildSpec("DUBOIS", "Inès", "CP A"),), address="80 allée"),
        GuardianSpec("DUBOIS", "João", (ChildSpec("DUBOIS", "Inès", "CP A"),), address="80 allée"),
    ]
    report = run_import(files([first, second], guardians, Options(with_ine=False)))
    assert report.issues == [] and report.pupils.added == 2

    by_id = views.pupils(engine, school_id)
    homes = {
        g.first_name: by_id[next(iter(g.children))].address
        for g in views.guardians(engine, school_id)
    }
    assert homes == {"Yasmine": "72 place", "Léa": "80 allée", "João": "80 allée"}

    before = snapshot(engine)
    report = run_import(files([first, second], guardians, Options(with_ine=False)))
    assert report.pupils.unchanged == 2 and report.guardians.unchanged == 3
    assert snapshot(engine)["pupil_guardian"] == before["pupil_guardian"]


def test_pupils_with_the_same_name_and_birth_date_are_two_pupils(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    born = date(2019, 6, 1)
    first = PupilSpec("MOREL", "Théo", born, "CE1", "CE1", ine=None, address="45 rue Pasteur")
    second = PupilSpec("MOREL", "Théo", born, "CE1", "CE1", ine=None, address="16 bd Hugo")
    guardians = [
        GuardianSpec("MOREL", "Benoît", (ChildSpec("MOREL", "Théo", "CE1"),), address="16 bd Hugo"),
    ]
    run_import(files([first, second], guardians))
    by_id = views.pupils(engine, school_id)
    assert len(by_id) == 2
    (benoit,) = views.guardians(engine, school_id)
    assert by_id[next(iter(benoit.children))].address == "16 bd Hugo"
    # Re-importing matches each pupil to itself (by address), nothing moves.
    report = run_import(files([second, first], guardians))
    assert report.pupils.unchanged == 2 and set(views.pupils(engine, school_id)) == set(by_id)


def test_an_ambiguous_child_is_reported_and_not_linked(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    twins = [
        PupilSpec("MOREL", "Théo", date(2019, 8, 12), "CE1", "CE1", address="16 bd Hugo"),
        PupilSpec("MOREL", "Théo", date(2019, 3, 1), "CE1", "CE1", address="16 bd Hugo"),
    ]
    chloe = PupilSpec("MOREL", "Chloé", date(2019, 3, 1), "CE1", "CE1", "F", address="16 bd Hugo")
    theo = ChildSpec("MOREL", "Théo", "CE1")
    guardians = [
        GuardianSpec(
            "BERNARD", "Margaux", (ChildSpec("MOREL", "Chloé", "CE1"), theo), address="1 av"
        ),
        GuardianSpec("MOREL", "Jean", (theo,), civility="M.", address="1 av"),
    ]
    report = run_import(files([*twins, chloe], guardians))

    issues = [(i.line, i.code, i.severity) for i in report.issues]
    assert issues == [
        (2, "ambiguous_child", Severity.WARNING),
        (3, "ambiguous_child", Severity.REJECTED),
    ]
    assert report.issues[0].message == (
        "Ligne 2 : l'enfant Théo MOREL (CE1) de Margaux BERNARD peut être 2 élèves de même nom "
        "que ni la classe ni l'adresse ne départagent — ce lien n'est pas fait, corrigez-le "
        "dans ONDE."
    )
    assert "le responsable n'est pas importé" in report.issues[1].message
    (margaux,) = views.guardians(engine, school_id)
    assert views.children_names(margaux, views.pupils(engine, school_id)) == {("Chloé", "MOREL")}


def test_an_unknown_child_is_reported(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    jade = PupilSpec("ROUX", "Jade", date(2020, 2, 2), "GS", "GS", "F")
    guardians = [
        GuardianSpec(
            "ROUX", "Inès", (ChildSpec("ROUX", "Jade", "GS"), ChildSpec("ROUX", "Paul", "CP"))
        ),
        GuardianSpec("LEGRAND", "Marc", (ChildSpec("LEGRAND", "Nina", "CM1"),), civility="M."),
    ]
    report = run_import(files([jade], guardians))
    assert [(i.line, i.code, i.severity) for i in report.issues] == [
        (2, "unknown_child", Severity.WARNING),
        (3, "unknown_child", Severity.REJECTED),
    ]
    assert report.issues[1].message == (
        "Ligne 3 : aucun enfant de Marc LEGRAND (Nina LEGRAND (CM1)) n'est un élève de l'école — "
        "le responsable n'est pas importé."
    )
    assert report.guardians.added == 1


def test_a_child_is_found_by_level_when_the_class_labels_differ(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    # The guardians file says « CLASSE  CE2 » for a pupil of « Classe de M Machin » (level CE2).
    ce2 = PupilSpec("MARTIN", "Lucas", date(2017, 5, 5), "Classe de M Machin", "CE2")
    cm1 = PupilSpec("MARTIN", "Lucas", date(2016, 2, 2), "Classe de Mme Truc", "CM1")
    guardian = GuardianSpec("MARTIN", "Anne", (ChildSpec("MARTIN", "Lucas", "CLASSE  CE2"),))
    report = run_import(files([ce2, cm1], [guardian]))
    assert report.issues == []
    (anne,) = views.guardians(engine, school_id)
    (child,) = anne.children
    assert views.pupils(engine, school_id)[child].class_label == "Classe de M Machin"


def test_children_are_matched_by_usage_or_family_name_whatever_the_spelling(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    raphael = PupilSpec("SAINT-EXUPÉRY", "Raphaël", date(2023, 4, 10), "PS-MS Mme Roux", "PS")
    louise = PupilSpec(
        "DUPONT", "Louise", date(2019, 5, 4), "CE1", "CE1", "F", usage_name="MARTIN-DUPONT"
    )
    guardian = GuardianSpec(
        "SAINT EXUPERY",
        "Anne",
        (
            ChildSpec("saint exupery", "raphael", "PS-MS"),
            ChildSpec("", "Louise", "CE1", usage_name="Martin Dupont"),
        ),
    )
    report = run_import(files([raphael, louise], [guardian]))
    assert report.issues == []
    (anne,) = views.guardians(engine, school_id)
    assert len(anne.children) == 2
