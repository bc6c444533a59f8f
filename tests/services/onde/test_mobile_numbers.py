"""The « Téléphone portable » of guardians, kept in E.164 for linking a chat by phone number:
filled by the import, updated by a re-import like every other field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.services.roster.onde.reader import GuardianExtraction, read_extraction
from models import Guardian
from tests.services.onde.builder import GuardianSpec, guardians_csv, pupils_csv, small_school
from tests.services.onde.conftest import ImportRunner

FIRST_DAY = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
PUPILS, GUARDIANS = small_school()  # once: each call draws new INEs


def files(guardians: list[GuardianSpec]) -> list[tuple[str, bytes]]:
    return [("eleves.csv", pupils_csv(PUPILS)), ("responsables.csv", guardians_csv(guardians))]


def mobiles(engine: Engine, school_id: int) -> dict[str, tuple[str | None, str | None]]:
    with Session(engine) as session:
        return {
            guardian.first_name: (guardian.phone_mobile, guardian.mobile_e164)
            for guardian in session.exec(
                select(Guardian).where(col(Guardian.school_id) == school_id)
            )
        }


def with_phones(phones: dict[str, str]) -> list[GuardianSpec]:
    return [replace(g, phone=phones.get(g.first_name, "")) for g in GUARDIANS]


def test_the_import_stores_the_mobile_in_e164_and_a_reimport_updates_it(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    first = with_phones({"Claire": "06 12 34 56 78", "Paul": "06.12.34.56.79", "Sophie": "12"})
    run_import(files(first), now=FIRST_DAY)

    stored = mobiles(engine, school_id)
    assert stored["Claire"] == ("06 12 34 56 78", "+33612345678")
    assert stored["Paul"] == ("06.12.34.56.79", "+33612345679")
    assert stored["Sophie"] == ("12", None)  # kept as ONDE wrote it, but matches nothing
    assert stored["Anh"] == (None, None)

    # The same file again: nothing changes.
    same = run_import(files(first), now=FIRST_DAY + timedelta(days=1))
    assert same.guardians.updated == 0 and same.guardians.unchanged == len(first)

    changed = with_phones(
        {"Claire": "07 81 23 45 67", "Paul": "06.12.34.56.79", "Sophie": "+33 6 00 00 00 01"}
    )
    report = run_import(files(changed), now=FIRST_DAY + timedelta(days=2))
    assert report.guardians.updated == 2  # Claire and Sophie
    stored = mobiles(engine, school_id)
    assert stored["Claire"] == ("07 81 23 45 67", "+33781234567")
    assert stored["Paul"] == ("06.12.34.56.79", "+33612345679")
    assert stored["Sophie"] == ("+33 6 00 00 00 01", "+33600000001")

    # A number removed from ONDE is removed here too.
    report = run_import(files(with_phones({})), now=FIRST_DAY + timedelta(days=3))
    assert report.guardians.updated == 3
    assert set(mobiles(engine, school_id).values()) == {(None, None)}


def test_most_guardians_of_the_demo_school_have_a_valid_mobile(samples_dir: Path) -> None:
    extraction = read_extraction(
        (samples_dir / "responsables.csv").read_bytes(),
        filename="responsables.csv",
        today=date(2026, 11, 28),
    )
    assert isinstance(extraction, GuardianExtraction)
    rows = extraction.rows
    valid = [row for row in rows if row.mobile_e164 is not None]
    assert all(row.phone_mobile for row in valid)
    assert len(valid) >= len(rows) * 2 // 3
    # Mostly metropolitan numbers; overseas ones (0690…, 0692…) get their own country code.
    french = [row for row in valid if (row.mobile_e164 or "").startswith("+33")]
    assert len(french) >= len(valid) * 9 // 10
