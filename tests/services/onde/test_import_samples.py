"""Importing the demo school's realistic extractions: every count and every link checked against
the raw files, read here independently with the csv module."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.services.roster.classes import LEVELS
from models import Account, AuditEvent, Guardian, Pupil, PupilGuardian, SchoolClass
from tests.services.onde.conftest import ImportRunner


@dataclass(frozen=True)
class RawFiles:
    pupils: list[dict[str, str]]
    guardians: list[list[str]]
    guardian_header: list[str]
    footers: list[str]  # summary lines under the data (« Nombre d'élèves : 180 »)


def _raw(samples_dir: Path) -> RawFiles:
    footers: list[str] = []

    def rows(name: str) -> list[list[str]]:
        with (samples_dir / name).open(encoding="cp1252", newline="") as handle:
            found = [r for r in csv.reader(handle, delimiter=";") if any(c.strip() for c in r)]
        # A line of one cell under the data is a summary, not a row.
        while len(found) > 1 and len(found[-1]) == 1:
            footers.append(found.pop()[0])
        return found

    pupil_rows = rows("eleves.csv")
    guardian_rows = rows("responsables.csv")
    header = [title.strip() for title in pupil_rows[0]]
    return RawFiles(
        pupils=[dict(zip(header, row, strict=True)) for row in pupil_rows[1:]],
        guardians=guardian_rows[1:],
        guardian_header=guardian_rows[0],
        footers=footers,
    )


def _plausible_email(cell: str) -> bool:
    """A deliberately simple check, independent from the importer's validator (spaces around
    the address do not count)."""
    address = cell.strip()
    if address.count("@") != 1 or " " in address:
        return False
    local, domain = address.split("@")
    return bool(local) and "." in domain.strip(".")


def _children(row: list[str]) -> list[tuple[str, str, str, str]]:
    """(usage name, family name, first name, class) of each child group on a guardian row."""
    groups = [tuple(row[start : start + 4]) for start in range(12, len(row), 4)]
    return [g for g in groups if len(g) == 4 and any(g)]


def _expected_links(raw: RawFiles) -> set[tuple[tuple[str, str, str], str]]:
    """(guardian last name, first name, address) → INE of each child, resolved by hand: same
    names (« Classes enfants » may not be the pupils file's label); homonyms by class, then by
    the guardian's address."""
    links = set()
    for row in raw.guardians:
        guardian = (row[2], row[3], row[4])
        for usage, family, first, label in _children(row):
            names = {usage, family} - {""}
            same = [
                p
                for p in raw.pupils
                if p["Prénom élève"] == first and names & {p["Nom élève"], p["Nom d'usage élève"]}
            ]
            if len(same) > 1:
                same = [p for p in same if p["Libellé classe"] == label]
            if len(same) > 1:
                same = [p for p in same if p["Adresse1"] == row[4]]
            assert len(same) == 1, f"the oracle cannot place {first} {family} ({label})"
            links.add((guardian, same[0]["INE"]))
    return links


@pytest.fixture
def raw(samples_dir: Path) -> RawFiles:
    return _raw(samples_dir)


@pytest.fixture
def sample_files(samples_dir: Path) -> list[tuple[str, bytes]]:
    return [
        ("responsables.csv", (samples_dir / "responsables.csv").read_bytes()),
        ("eleves.csv", (samples_dir / "eleves.csv").read_bytes()),
    ]


def test_sample_import_counts_match_the_files(
    engine: Engine, school_id: int, run_import: ImportRunner, raw: RawFiles, sample_files: list
) -> None:
    report = run_import(sample_files)

    valid_dates = [p for p in raw.pupils if re.fullmatch(r"\d\d/\d\d/\d{4}", p["Date naissance"])]
    expected_classes = {p["Libellé classe"] for p in raw.pupils}
    guardians_with_children = [row for row in raw.guardians if _children(row)]
    malformed = [row for row in raw.guardians if row[8].strip() and not _plausible_email(row[8])]
    # The sample is what we think it is: 180 pupils, malformed and untidy addresses, a footer,
    # a guardian with more children than the header's groups, a « Classes enfants » that is not
    # a class label.
    assert len(raw.pupils) == 180 and len(malformed) == 12
    assert any(row[8] != row[8].strip() and _plausible_email(row[8]) for row in raw.guardians)
    assert raw.footers == ["Nombre d'élèves : 180"]
    assert max(len(_children(row)) for row in raw.guardians) > raw.guardian_header.count(
        "Prénom enfant"
    )
    shown_classes = {child[3] for row in raw.guardians for child in _children(row)}
    assert shown_classes - {p["Libellé classe"] for p in raw.pupils} == {"CLASSE  CE2"}

    assert report.files == {"responsables.csv": "guardians", "eleves.csv": "pupils"}
    assert report.pupils.added == len(valid_dates) == len(raw.pupils)
    assert report.classes.added == len(expected_classes)
    assert report.guardians.added == len(guardians_with_children) == len(raw.guardians)
    assert report.accounts_created == len(raw.guardians)
    assert report.rejected == []
    assert [(w.line, w.code) for w in report.warnings] == [
        (raw.guardians.index(row) + 2, "invalid_email") for row in malformed
    ]
    assert report.links_added == sum(len(_children(row)) for row in raw.guardians)

    with Session(engine) as session:
        assert (
            session.exec(select(Pupil).where(Pupil.school_id == school_id)).all().__len__() == 180
        )
        guardians = session.exec(select(Guardian)).all()
        accounts = session.exec(select(Account)).all()
        assert len(guardians) == len(accounts) == len(raw.guardians)
        assert {a.guardian_id for a in accounts} == {g.id for g in guardians}
        assert all(a.state == "not_notified" and a.password_hash is None for a in accounts)
        assert len({a.identifier for a in accounts}) == len(accounts)
        assert all(re.fullmatch(r"[a-z]+(\.[a-z]+)?\d*", a.identifier) for a in accounts)
        # Guardians with a malformed address get a paper letter: no e-mail stored.
        assert sum(g.email is None for g in guardians) == sum(
            not row[8].strip() for row in raw.guardians
        ) + len(malformed)
        assert all(g.email == g.email.strip() for g in guardians if g.email)


def test_sample_children_link_to_the_right_pupils(
    engine: Engine, run_import: ImportRunner, raw: RawFiles, sample_files: list
) -> None:
    run_import(sample_files)
    keys = [(row[2], row[3], row[4]) for row in raw.guardians]
    assert len(set(keys)) == len(keys)  # each guardian is told apart by name and address

    with Session(engine) as session:
        stored = session.exec(
            select(Guardian.last_name, Guardian.first_name, Guardian.address, Pupil.ine)
            .join(PupilGuardian, col(PupilGuardian.guardian_id) == Guardian.id)
            .join(Pupil, col(Pupil.id) == PupilGuardian.pupil_id)
        ).all()
    assert {((last, first, address), ine) for last, first, address, ine in stored} == (
        _expected_links(raw)
    )


def test_sample_siblings_share_one_account(
    engine: Engine, run_import: ImportRunner, sample_files: list
) -> None:
    run_import(sample_files)
    with Session(engine) as session:
        rows = session.exec(
            select(Account.identifier, Pupil.first_name)
            .join(Guardian, col(Guardian.id) == Account.guardian_id)
            .join(PupilGuardian, col(PupilGuardian.guardian_id) == Guardian.id)
            .join(Pupil, col(Pupil.id) == PupilGuardian.pupil_id)
            .where(Guardian.first_name == "Agathe", Guardian.address == "102 place de l'Église")
        ).all()
    assert {identifier for identifier, _ in rows} == {"agathe.andre"}
    assert {first for _, first in rows} == {"Léa", "Lucie", "Margaux"}
    assert len(rows) == 3


def test_sample_homonyms(engine: Engine, run_import: ImportRunner, sample_files: list) -> None:
    run_import(sample_files)
    with Session(engine) as session:
        # Two different mothers named Léa DUBOIS: two guardians, two numbered identifiers.
        identifiers = session.exec(
            select(Account.identifier)
            .join(Guardian, col(Guardian.id) == Account.guardian_id)
            .where(Guardian.first_name == "Léa", Guardian.last_name == "DUBOIS")
        )
        assert sorted(identifiers) == ["lea.dubois", "lea.dubois2"]
        # Two pupils named Inès DUBOIS in CP A, each linked to the parents at her address.
        rows = session.exec(
            select(Pupil.address, Guardian.address)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == Pupil.id)
            .join(Guardian, col(Guardian.id) == PupilGuardian.guardian_id)
            .where(Pupil.first_name == "Inès", Pupil.last_name == "DUBOIS")
        ).all()
        assert len(rows) == 3 and all(pupil == guardian for pupil, guardian in rows)


def test_sample_classes_and_levels(
    engine: Engine, school_id: int, run_import: ImportRunner, raw: RawFiles, sample_files: list
) -> None:
    run_import(sample_files)
    expected: dict[str, set[str]] = {}
    for pupil in raw.pupils:
        expected.setdefault(pupil["Libellé classe"], set()).add(pupil["Niveau"])
    with Session(engine) as session:
        stored = session.exec(select(SchoolClass).where(SchoolClass.school_id == school_id))
        classes = {c.label: c for c in stored}
        levels = dict(session.exec(select(Pupil.ine, Pupil.level)).all())
    assert {label: c.levels for label, c in classes.items()} == {
        label: ",".join(sorted(found, key=LEVELS.index)) for label, found in expected.items()
    }
    assert classes["CE2-CM1"].levels == "CE2,CM1"
    assert classes["CE2-CM1"].onde_id == "1005"
    assert classes["CE2-CM1"].label_key == "ce2-cm1"
    assert levels == {p["INE"]: p["Niveau"] for p in raw.pupils}


def test_sample_import_is_audited_without_personal_data(
    engine: Engine, school_id: int, run_import: ImportRunner, sample_files: list
) -> None:
    run_import(sample_files, now=datetime.fromisoformat("2026-09-07T08:00:00+00:00"))
    with Session(engine) as session:
        events = session.exec(select(AuditEvent)).all()
    (event,) = events
    assert (event.action, event.actor, event.school_id) == (
        "roster.imported",
        "director:42",
        school_id,
    )
    assert event.details["pupils"]["added"] == 180
    assert event.details["files"] == {"responsables.csv": "guardians", "eleves.csv": "pupils"}
    text = str(event.details)
    assert "DUBOIS" not in text and "@" not in text
