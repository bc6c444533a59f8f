"""A file that cannot be imported changes nothing: the database stays byte-for-byte the same,
and the user reads one sentence naming the file and saying what is wrong (docs/PRODUCT.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from bot.services.roster.onde.reader import MAX_FILE_BYTES
from bot.services.roster.onde.report import RosterFileError
from tests.services.onde.builder import (
    Options,
    guardians_csv,
    pupils_csv,
    replace,
    small_school,
)
from tests.services.onde.conftest import ImportRunner, snapshot


def _pupils(options: Options | None = None) -> bytes:
    return pupils_csv(small_school()[0], options)


def _guardians(options: Options | None = None) -> bytes:
    return guardians_csv(small_school()[1], options)


def _truncated() -> bytes:
    data = _pupils()
    return data[: data.rindex(b"quai")]


def _missing_column() -> bytes:
    return _pupils().replace("Libellé classe".encode("cp1252"), b"Remarque", 1)


def _all_rejected() -> bytes:
    pupils = [replace(p, birth_date=p.birth_date.replace(year=2099)) for p in small_school()[0]]
    return pupils_csv(pupils)


BAD_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "truncated": (_truncated, "est incomplet"),
    "comma separator": (lambda: _pupils(Options(delimiter=",")), "séparateur attendu est « ; »"),
    "missing required column": (_missing_column, "il lui manque la colonne « Libellé classe »"),
    "binary": (lambda: bytes(range(256)) * 64, "contenu binaire"),
    "empty": (lambda: b"", "est vide"),
    "header only": (lambda: _pupils().split(b"\r\n")[0], "que son en-tête"),
    "over the byte limit": (
        lambda: _pupils() + b" " * MAX_FILE_BYTES,
        f"au-delà des {MAX_FILE_BYTES // (1024 * 1024)} Mo",
    ),
    "PDF renamed .csv": (lambda: b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer\n%%EOF", "document PDF"),
    "not an ONDE extraction": (lambda: b"a;b;c\r\n1;2;3\r\n", "n'est pas une extraction ONDE"),
    "every pupil rejected": (_all_rejected, "Aucune ligne du fichier"),
}


@pytest.fixture
def imported(engine: Engine, run_import: ImportRunner) -> dict[str, object]:
    """The school as a first import left it; the snapshot every refusal must keep."""
    run_import([("eleves.csv", _pupils()), ("responsables.csv", _guardians())])
    return snapshot(engine)


@pytest.mark.parametrize(("make", "reason"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_refused_file_changes_nothing(
    engine: Engine,
    run_import: ImportRunner,
    imported: dict[str, object],
    make: Callable[[], bytes],
    reason: str,
) -> None:
    with pytest.raises(RosterFileError) as caught:
        run_import([("CSVExtraction.csv", make())])
    assert reason in str(caught.value)
    assert "« CSVExtraction.csv »" in str(caught.value)
    assert snapshot(engine) == imported


@pytest.mark.parametrize("order", ["bad first", "bad second"])
def test_a_refused_file_stops_its_companion_too(
    engine: Engine, run_import: ImportRunner, imported: dict[str, object], order: str
) -> None:
    good = ("responsables.csv", _guardians().replace(b"Claire", b"Clara"))
    bad = ("eleves.csv", _truncated())
    with pytest.raises(RosterFileError, match=r"« eleves\.csv »"):
        run_import([bad, good] if order == "bad first" else [good, bad])
    assert snapshot(engine) == imported


def test_every_line_rejected_gives_the_reasons(
    engine: Engine, run_import: ImportRunner, imported: dict[str, object]
) -> None:
    with pytest.raises(RosterFileError) as caught:
        run_import([("eleves.csv", _all_rejected())])
    assert [i.code for i in caught.value.issues] == ["invalid_birth_date"] * 6
    assert snapshot(engine) == imported


def test_guardians_with_no_known_child_are_refused_not_deactivated(
    engine: Engine, run_import: ImportRunner, imported: dict[str, object]
) -> None:
    _, guardians = small_school()
    strangers = [
        replace(g, children=(replace(g.children[0], first_name="Zoé"),)) for g in guardians
    ]
    with pytest.raises(RosterFileError, match="Aucun responsable du fichier"):
        run_import([("responsables.csv", guardians_csv(strangers))])
    assert snapshot(engine) == imported


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([], "Aucun fichier à importer"),
        ([("a.csv", _pupils()), ("b.csv", _pupils())], "sont tous deux des extractions Élèves"),
        (
            [("a.csv", _guardians()), ("CSVExtraction.csv", _guardians())],
            "sont tous deux des extractions Responsables",
        ),
        ([("a.csv", _pupils()), ("b.csv", _guardians()), ("c.csv", _pupils())], "3 fichiers"),
    ],
    ids=["no file", "two pupils files", "two guardians files", "three files"],
)
def test_the_set_of_files_must_make_sense(
    engine: Engine,
    run_import: ImportRunner,
    imported: dict[str, object],
    files: list[tuple[str, bytes]],
    reason: str,
) -> None:
    with pytest.raises(RosterFileError, match=reason):
        run_import(files)
    assert snapshot(engine) == imported


def test_two_files_with_the_same_name_are_told_apart(run_import: ImportRunner) -> None:
    # ONDE names every extraction CSVExtraction.csv.
    report = run_import([("CSVExtraction.csv", _pupils()), ("CSVExtraction.csv", _guardians())])
    assert report.files == {"CSVExtraction.csv": "pupils", "CSVExtraction.csv (2)": "guardians"}
    assert {i.filename for i in report.issues} == {"CSVExtraction.csv (2)"}
