"""Import ONDE extractions into a school's registry: validate everything, then write in one go.

The steps: read the files (`reader`), compare them with the school's rows loaded once and
decide every write (`planning`), then write them with bulk statements (`writing`); an
unchanged extraction writes nothing but its audit event. The caller owns the transaction
(`bot.db.session_scope`): nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from bot.db import lock_for_writing
from bot.services.roster.onde import messages
from bot.services.roster.onde.matching import PupilDirectory
from bot.services.roster.onde.planning import (
    Registry,
    current_pupils,
    plan_departures,
    plan_guardians,
    plan_pupils,
)
from bot.services.roster.onde.reader import (
    SCHOOL_SIZE,
    GuardianExtraction,
    PupilExtraction,
    SizeLimits,
    read_extraction,
)
from bot.services.roster.onde.report import ImportReport, LineIssue
from bot.services.roster.onde.writing import (
    Plan,
    Progress,
    ProgressCallback,
    apply_plan,
    record_import,
)
from models import School, utcnow

# --- Entry point ------------------------------------------------------------------------------


def import_roster(
    session: Session,
    *,
    school_id: int,
    files: Sequence[tuple[str, bytes]],
    actor: str,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
    limits: SizeLimits | None = SCHOOL_SIZE,
) -> ImportReport:
    """Import one or two ONDE extractions (Élèves, Responsables, either order) into a school.

    Raises `RosterFileError` when a file cannot be imported at all, before anything is
    written; a file above `limits` is such a file (None lifts them: the benchmarks' giant
    school). With `dry_run`, returns the same report and writes nothing.
    """
    now = now or utcnow()
    if now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware (UTC)")
    pupils_file, guardians_file = _read_files(files, now, limits)
    # Lock the school's row for the whole import: two imports of the same school at once
    # (two directors, or the CLI and the bot) run one after the other instead of racing for
    # the same identifiers (SQLite: `lock_for_writing` takes the database's write lock; a dry
    # run writes nothing and locks nothing).
    if not dry_run:
        lock_for_writing(session)
    school = session.execute(
        select(School).where(col(School.id) == school_id).with_for_update()
    ).scalar_one_or_none()
    if school is None:
        raise LookupError(f"no school with id {school_id}")
    extractions = [x for x in (pupils_file, guardians_file) if x is not None]
    tracker = Progress(progress, sum(x.data_lines for x in extractions))
    report = ImportReport(dry_run=dry_run, files={x.filename: x.kind for x in extractions})
    issues: list[LineIssue] = [issue for x in extractions for issue in x.issues]

    registry = Registry.load(session, school_id)
    plan = Plan(school_id=school_id, now=now)
    if pupils_file is not None:
        candidates, departed = plan_pupils(registry, pupils_file, plan, report, tracker)
    else:
        candidates, departed = current_pupils(registry), set()
    if guardians_file is not None:
        issues += plan_guardians(
            registry, guardians_file, PupilDirectory(candidates), plan, report, tracker
        )
    elif departed:
        plan_departures(registry, departed, plan, report)

    order = {x.filename: position for position, x in enumerate(extractions)}
    report.issues = sorted(issues, key=lambda i: (order.get(i.filename, 0), i.line))
    if not dry_run:
        apply_plan(session, plan, tracker)
        record_import(session, actor=actor, report=report, plan=plan)
        # Surface constraint errors here, inside the caller's transaction.
        session.flush()
    tracker.finish()
    return report


def _read_files(
    files: Sequence[tuple[str, bytes]], now: datetime, limits: SizeLimits | None
) -> tuple[PupilExtraction | None, GuardianExtraction | None]:
    if not files:
        raise messages.file_error("no_file")
    if len(files) > 2:
        raise messages.file_error("too_many_files", count=len(files))
    # ONDE names every extraction CSVExtraction.csv: tell two such files apart in the report.
    names: list[str] = []
    for name, _ in files:
        shown = name if name not in names else f"{name} (2)"
        names.append(shown)
    pupils: PupilExtraction | None = None
    guardians: GuardianExtraction | None = None
    for shown, (_, data) in zip(names, files, strict=True):
        extraction = read_extraction(data, filename=shown, today=now.date(), limits=limits)
        previous = pupils if isinstance(extraction, PupilExtraction) else guardians
        if previous is not None:
            raise messages.file_error(
                "same_category",
                filename=previous.filename,
                other=shown,
                category=messages.category_name(extraction.kind),
            )
        if isinstance(extraction, PupilExtraction):
            pupils = extraction
        else:
            guardians = extraction
    return pupils, guardians


__all__ = ["ProgressCallback", "import_roster"]
