"""The generated ONDE extractions are real ONDE files: the reader accepts them as they are, and
the importer imports them (tiny sizes; figures come from `make bench` only). The demo school's
files in tests/data/onde are exactly what the generator writes."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.db import session_scope
from bot.sandbox.onde_generator import (
    DEMO_CLASSES,
    DEMO_FILES_COMMAND,
    DEMO_GUARDIANS,
    DEMO_UAI,
    GUARDIAN_HEADER,
    PUPIL_HEADER,
    demo_school,
    generate_district,
    generate_school,
)
from bot.services.roster.onde.importer import import_roster
from bot.services.roster.onde.reader import (
    GuardianExtraction,
    PupilExtraction,
    PupilRow,
    read_extraction,
)
from bot.services.schools.registry import add_school

TODAY = date(2026, 1, 15)
# The headers of ONDE's « Élèves » and « Responsables » extractions, letter for letter: the
# leading space of « Cycle » and the three child groups are ONDE's.
ONDE_PUPIL_HEADER = (
    "Nom élève;Nom d'usage élève;Prénom élève;Date naissance;Sexe;INE;Adresse1;Cp1;Commune1;"
    "Pays1;Adresse2;Cp2;Commune2;Pays2; Cycle;Niveau;Libellé classe;Identifiant classe;"
    "Attestation fournie;Autorisation associations;Autorisation photo;Décision de passage"
)
ONDE_GUARDIAN_HEADER = (
    "Civilité Responsable;Nom usage responsable;Nom responsable;Prénom responsable;"
    "Adresse responsable;CP responsable;Commune responsable;Pays;Courriel;Téléphone domicile;"
    "Téléphone travail;Téléphone portable;Nom d'usage enfant;Nom de famille enfant;"
    "Prénom enfant;Classes enfants;Nom d'usage enfant;Nom de famille enfant;Prénom enfant;"
    "Classes enfants;Nom d'usage enfant;Nom de famille enfant;Prénom enfant;Classes enfants"
)


def _header(data: bytes) -> str:
    return data.decode("cp1252").split("\r\n", 1)[0]


def _pupil_rows(data: bytes) -> list[PupilRow]:
    extraction = read_extraction(data, filename="eleves.csv", today=TODAY)
    assert isinstance(extraction, PupilExtraction)
    return extraction.rows


@pytest.mark.parametrize("which", ["district", "demo"])
def test_files_have_the_headers_encoding_and_line_breaks_of_onde(which: str) -> None:
    school = generate_school(seed=7, pupils=40) if which == "district" else demo_school()

    assert _header(school.pupils_csv) == PUPIL_HEADER == ONDE_PUPIL_HEADER
    assert _header(school.guardians_csv) == GUARDIAN_HEADER == ONDE_GUARDIAN_HEADER
    for data in (school.pupils_csv, school.guardians_csv):
        text = data.decode("cp1252")
        assert text.endswith("\r\n")
        assert "\n" not in text.replace("\r\n", "")
        assert not text.isascii()  # French names with accents…
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")  # …written in Windows-1252, as ONDE does


def test_the_reader_accepts_every_pupil_and_guardian() -> None:
    school = generate_school(seed=7, pupils=60)

    pupils = read_extraction(school.pupils_csv, filename="eleves.csv", today=TODAY)
    guardians = read_extraction(school.guardians_csv, filename="responsables.csv", today=TODAY)

    assert isinstance(pupils, PupilExtraction)
    assert isinstance(guardians, GuardianExtraction)
    assert pupils.encoding == guardians.encoding == "cp1252"
    assert len(pupils.rows) == school.pupils == 60
    assert pupils.issues == []
    assert len(guardians.rows) == school.guardians
    codes = Counter(issue.code for issue in guardians.issues)
    # Only the malformed e-mail addresses are reported (a warning: imported without one).
    assert set(codes) <= {"invalid_email"}
    assert codes["invalid_email"] == school.malformed_emails
    assert len({row.class_label for row in pupils.rows}) == school.classes
    # Siblings share their guardians: some guardian rows name several children.
    assert max(len(row.children) for row in guardians.rows) >= 2


def test_a_district_has_about_one_and_a_half_guardians_per_pupil_and_unique_ines() -> None:
    schools = generate_district(seed=3, schools=4, pupils_per_school=250)

    pupils = sum(school.pupils for school in schools)
    guardians = sum(school.guardians for school in schools)
    assert pupils == 1000
    assert 1.3 <= guardians / pupils <= 1.7
    assert sum(school.malformed_emails for school in schools) > 0
    assert len({school.uai for school in schools}) == 4
    rows = [row for school in schools for row in _pupil_rows(school.pupils_csv)]
    assert len({row.ine for row in rows}) == len(rows) == 1000
    # Multi-level classes: « CE2-CM1 », « CM1/2 ».
    assert any("-" in (row.class_label or "") or "/" in (row.class_label or "") for row in rows)


def test_the_same_seed_gives_the_same_bytes() -> None:
    first = generate_school(seed="bench", pupils=30, index=2)
    again = generate_school(seed="bench", pupils=30, index=2)
    other = generate_school(seed="other", pupils=30, index=2)

    assert (first.pupils_csv, first.guardians_csv) == (again.pupils_csv, again.guardians_csv)
    assert first.pupils_csv != other.pupils_csv


def test_the_importer_imports_it_and_a_reimport_changes_nothing(sqlite_engine: Engine) -> None:
    school = generate_school(seed=11, pupils=50)
    with session_scope(sqlite_engine) as session:
        school_id = add_school(session=session, uai=school.uai, name=school.name, actor="test").id
    assert school_id is not None

    with session_scope(sqlite_engine) as session:
        first = import_roster(session=session, school_id=school_id, files=school.files, actor="t")
    with session_scope(sqlite_engine) as session:
        again = import_roster(session=session, school_id=school_id, files=school.files, actor="t")

    assert first.pupils.added == 50
    assert first.guardians.added == school.guardians
    assert first.accounts_created == school.guardians
    assert first.rejected == []
    assert (again.pupils.unchanged, again.guardians.unchanged) == (50, school.guardians)
    assert again.pupils.added == again.pupils.updated == again.guardians.updated == 0
    assert again.accounts_created == again.links_added == again.links_removed == 0


# --- the demo school ---------------------------------------------------------------------------


def test_the_committed_demo_files_are_what_the_generator_writes(samples_dir: Path) -> None:
    school = demo_school()
    for name, data in school.files:
        committed = (samples_dir / name).read_bytes()
        assert committed == data, (
            f"{samples_dir / name} is not what the generator writes; rewrite both files with "
            f"`{DEMO_FILES_COMMAND}` and commit them"
        )
    assert demo_school().files == school.files  # no seed but its own


def test_the_demo_school_is_the_sandbox_school_with_its_planted_mess() -> None:
    school = demo_school()
    pupils = read_extraction(school.pupils_csv, filename="eleves.csv", today=TODAY)
    guardians = read_extraction(school.guardians_csv, filename="responsables.csv", today=TODAY)
    assert isinstance(pupils, PupilExtraction) and isinstance(guardians, GuardianExtraction)

    assert (school.uai, school.name) == (DEMO_UAI, "École de démonstration Jules Ferry")
    assert (school.pupils, school.guardians, school.classes) == (180, DEMO_GUARDIANS, 8)
    assert len(pupils.rows) == 180 and pupils.issues == []
    assert school.pupils_csv.decode("cp1252").endswith("\r\nNombre d'élèves : 180\r\n")
    sizes = Counter((row.class_label, row.level) for row in pupils.rows)
    assert sizes == Counter(
        {(label, level): count for label, _id, levels in DEMO_CLASSES for level, count in levels}
    )
    ids = {(row.class_label, row.class_onde_id) for row in pupils.rows}
    assert ids == {(label, onde_id) for label, onde_id, _levels in DEMO_CLASSES}
    assert {"CE2-CM1", "CM1/2 Mme N'Diaye", "PS-MS Mme Roux"} <= {label for label, _ in ids}
    assert Counter(issue.code for issue in guardians.issues) == {"invalid_email": 12}
    assert school.malformed_emails == 12
    assert len(guardians.rows) == DEMO_GUARDIANS
