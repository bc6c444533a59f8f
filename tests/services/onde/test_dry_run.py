"""`--dry-run`: the same report as the real import, and nothing changed or pending."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.roster.onde.importer import import_roster
from tests.services.onde.builder import (
    ChildSpec,
    GuardianSpec,
    guardians_csv,
    pupils_csv,
    replace,
    small_school,
)
from tests.services.onde.conftest import ImportRunner, snapshot


def _comparable(report_dict: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in report_dict.items() if key != "dry_run"}


def test_dry_run_reports_the_first_import_and_writes_nothing(
    engine: Engine, run_import: ImportRunner, samples_dir: Path
) -> None:
    files = [
        ("eleves.csv", (samples_dir / "eleves.csv").read_bytes()),
        ("responsables.csv", (samples_dir / "responsables.csv").read_bytes()),
    ]
    before = snapshot(engine)
    preview = run_import(files, dry_run=True)
    assert preview.dry_run and snapshot(engine) == before

    real = run_import(files)
    assert not real.dry_run
    assert _comparable(preview.to_dict()) == _comparable(real.to_dict())
    assert preview.issues == real.issues


def test_dry_run_reports_a_newer_extraction_and_writes_nothing(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    run_import([("e.csv", pupils_csv(pupils)), ("r.csv", guardians_csv(guardians))])
    newer_pupils = [replace(p, address="2 rue Neuve") for p in pupils[1:]]
    newer_guardians = [
        *guardians[2:],
        GuardianSpec("ROUX", "Lou", (ChildSpec("ROUX", "Jade", "GS"),)),
    ]
    files = [("e.csv", pupils_csv(newer_pupils)), ("r.csv", guardians_csv(newer_guardians))]

    before = snapshot(engine)
    with Session(engine) as session:
        preview = import_roster(
            session=session, school_id=school_id, files=files, actor="t", dry_run=True
        )
        # Nothing waits to be flushed: the caller may commit without a trace.
        assert not (session.new or session.dirty or session.deleted)
        session.commit()
    assert snapshot(engine) == before

    real = run_import(files)
    assert _comparable(preview.to_dict()) == _comparable(real.to_dict())
    assert real.accounts_deactivated == 2 and real.guardians.added == 1
