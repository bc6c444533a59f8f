"""Fuzzing the ONDE reader and import: whatever the bytes, a file is read into rows that obey
the reader's promises, or refused with a `RosterFileError` naming it — never another exception,
and a refused import writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import date

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from bot.i18n import use_language
from bot.services.roster.onde.importer import import_roster
from bot.services.roster.onde.reader import (
    ChildRef,
    GuardianExtraction,
    GuardianRow,
    PupilExtraction,
    PupilRow,
    SizeLimits,
    read_extraction,
)
from bot.services.roster.onde.report import RosterFileError
from models import metadata
from tests.conftest import SAMPLES
from tests.fuzz.conftest import NOW, examples, school_with_roster
from tests.fuzz.strategies import any_bytes, onde_files

TODAY = date(2026, 11, 28)
FILENAME = "CSVExtraction.csv"
# Small limits, so that the size checks are reached by files Hypothesis can afford to build.
SMALL = SizeLimits(max_bytes=64 * 1024, max_pupil_lines=40, max_guardian_lines=40)


def _late_nul() -> bytes:
    """The demo school's pupils four times over (new INEs), a NUL byte in a first name past the
    first 64 KB, where the sniffing of binary content does not look."""
    lines = [line for line in (SAMPLES / "eleves.csv").read_bytes().split(b"\r\n") if line]
    header, rows = lines[0], lines[1:-1]  # the last line is a footer
    copies = [row.split(b";") for _copy in range(4) for row in rows]
    for number, cells in enumerate(copies):
        cells[5] = b"%09dZZ" % number
    copies[-1][2] = b"Lou\x00is"
    return b"\r\n".join([header, *(b";".join(cells) for cells in copies)]) + b"\r\n"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with use_language("en"):
        yield


# --- Properties -------------------------------------------------------------------------------


def _read(data: bytes, limits: SizeLimits | None = SMALL) -> PupilExtraction | GuardianExtraction:
    return read_extraction(data, filename=FILENAME, today=TODAY, limits=limits)


def _check_refusal(error: RosterFileError) -> None:
    message = str(error)
    assert error.filename == FILENAME
    assert f"« {FILENAME} »" in message and message.endswith("nothing was imported."), message


def _texts(row: PupilRow | GuardianRow | ChildRef) -> list[str]:
    """Every text a row would write, its children's included."""
    values = [getattr(row, field.name) for field in fields(row)]
    texts = [value for value in values if isinstance(value, str)]
    for child in row.children if isinstance(row, GuardianRow) else ():
        texts += _texts(child)
    return texts


def _check_common(extraction: PupilExtraction | GuardianExtraction) -> None:
    assert extraction.filename == FILENAME
    for row in extraction.rows:
        # PostgreSQL stores no NUL character: a row carrying one would fail the import.
        assert not any("\x00" in text for text in _texts(row)), row
    assert extraction.encoding in ("utf-8", "utf-16", "cp1252", "latin-1")
    lines = [row.line for row in extraction.rows]
    assert lines == sorted(set(lines)) and all(line >= 2 for line in lines)
    assert extraction.data_lines >= len(extraction.rows) >= 0
    for issue in extraction.issues:
        assert issue.filename == FILENAME and issue.line >= 2
        assert issue.message.startswith(f"Line {issue.line}:"), issue.message


def _filled(value: str | None) -> bool:
    """A cleaned value: None, or text without surrounding spaces."""
    return value is None or (value != "" and value == value.strip())


def _check_pupils(extraction: PupilExtraction) -> None:
    ines = [row.ine for row in extraction.rows if row.ine is not None]
    assert len(ines) == len(set(ines)), "a pupil is listed twice"
    for row in extraction.rows:
        assert row.first_name.strip() and row.last_name.strip()
        assert date(1900, 1, 1) <= row.birth_date <= TODAY
        for value in (row.usage_name, row.address, row.city, row.class_label, row.level):
            assert _filled(value)
        assert row.ine is None or (row.ine and not any(c.isspace() for c in row.ine))
    rejected_lines = {pupil.line for pupil in extraction.rejected_pupils}
    assert not rejected_lines & {row.line for row in extraction.rows}


def _check_guardians(extraction: GuardianExtraction) -> None:
    for row in extraction.rows:
        assert row.first_name.strip() and row.last_name.strip()
        assert row.children, "a guardian without a child is imported"
        for child in row.children:
            assert child.first_name and (child.last_name or child.usage_name)
        assert row.email is None or ("@" in row.email and row.email == row.email.strip())
        assert row.mobile_e164 is None or row.mobile_e164.startswith("+")


def _check_read(data: bytes, limits: SizeLimits | None = SMALL) -> None:
    try:
        extraction = _read(data, limits)
    except RosterFileError as error:
        _check_refusal(error)
        event("refused", payload=str(error).split(":")[0][:60])
        return
    event("read", payload=f"{extraction.kind} {len(extraction.rows)} rows")
    _check_common(extraction)
    if isinstance(extraction, PupilExtraction):
        _check_pupils(extraction)
    else:
        _check_guardians(extraction)
    assert _read(data, limits) == extraction, "reading the same bytes twice differs"


@given(onde_files())
@example(b"Nom;Pr\xe9nom;Date naissance;Classe\r\nA;B;99999999999999999999/1/2000;CE1\r\n")
@example("\ufeffsep=;\nNom élève;Prénom élève;Date naissance;Classe\n;;;\n".encode())
def test_onde_like_files_are_read_or_refused_with_a_clear_message(data: bytes) -> None:
    _check_read(data)


@given(onde_files())
@example(_late_nul())
def test_onde_like_files_without_size_limits_are_read_or_refused(data: bytes) -> None:
    _check_read(data, limits=None)


@given(any_bytes)
def test_random_bytes_are_refused_with_a_clear_message(data: bytes) -> None:
    _check_read(data)


# --- Through the import, into a database -------------------------------------------------------


def _row_counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
        for table in metadata.sorted_tables
    }


def test_fuzzed_imports_are_done_or_refused_with_nothing_written(session: Session) -> None:
    school_id = school_with_roster(session)
    before = _row_counts(session)

    @settings(max_examples=examples(0.2))
    @given(st.lists(onde_files(), min_size=1, max_size=2))
    @example([b"\xd0\xcf\x11\xe0"])
    def import_fuzzed(files: list[bytes]) -> None:
        named = [(f"fichier{number}.csv", data) for number, data in enumerate(files)]
        try:
            report = import_roster(
                session, school_id=school_id, files=named, actor="fuzz", now=NOW, limits=SMALL
            )
        except RosterFileError as error:
            assert str(error).endswith("nothing was imported."), str(error)
            assert not (session.new or session.dirty or session.deleted)
            assert _row_counts(session) == before, "a refused import wrote rows"
        else:
            assert set(report.files) <= {name for name, _data in named}
            assert all(issue.message for issue in report.issues)
        finally:
            session.rollback()
        assert _row_counts(session) == before

    import_fuzzed()
