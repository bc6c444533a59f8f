"""Benchmark of the issue « Foundation »: import a district-size ONDE extraction (20,000 pupils,
about 30,000 guardians) into a fresh SQLite database, re-import it, then the same on
PostgreSQL; beside it, in the same run, the naive import a user would otherwise write.

Targets on the 2-core machine: first import < 15 s, re-import < 10 s, peak memory < 400 MB.

The import is per school (`import_roster(school_id=...)`), so the district is measured in two
shapes: 80 schools of 250 pupils imported one after the other (the headline: what a district
deployment does), and one school of 20,000 pupils (a stress test: one transaction, one
registry in memory). Every phase runs in its own process, which reports its own peak memory.

    python -m bench import [--quick] [--no-postgres] [--no-write]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.district import SchoolExtraction, generate_district, generate_school, register_school
from bench.results import (
    Machine,
    current_rss_mb,
    emit,
    peak_rss_mb,
    run_child,
    seconds,
    verdict,
    write_section,
)

MODULE = "bench.import_bench"
TARGET_FIRST_S = 15.0
TARGET_REIMPORT_S = 10.0
TARGET_MEMORY_MB = 400.0
CHILD_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class Sizes:
    pupils: int = 20_000
    schools: int = 80
    naive_schools: int = 4  # the naive baseline's sample: the district's first schools
    seed: int = 2026

    @property
    def pupils_per_school(self) -> int:
        return self.pupils // self.schools


QUICK = Sizes(pupils=2_000, schools=8, naive_schools=1)


# --- The naive import a user would otherwise write ------------------------------------------


def naive_import(*, session: Any, school_id: int, files: list[tuple[str, bytes]]) -> None:
    """Row by row through the ORM: a query to find each pupil, class, guardian and child, a
    query per guardian to number their identifier, `session.add` for each row, autoflush
    between them, one commit at the end (by the caller). What a careful user writes first."""
    (_, pupils_csv), (_, guardians_csv) = files
    for row in csv.DictReader(io.StringIO(pupils_csv.decode("cp1252")), delimiter=";"):
        _naive_pupil(session, school_id, row)

    lines = csv.reader(io.StringIO(guardians_csv.decode("cp1252")), delimiter=";")
    next(lines)
    for fields in lines:
        fields += [""] * (12 - len(fields))
        guardian = _naive_guardian(session, school_id, fields)
        _naive_children(session, school_id, guardian, fields)
        _naive_account(session, guardian, first=fields[3], name=fields[1] or fields[2])


def _naive_pupil(session: Any, school_id: int, row: dict[str, str]) -> None:
    """One line of eleves.csv: find or add its class, then find and update, or add, the pupil."""
    from sqlmodel import select

    from models import Pupil, SchoolClass

    label = row["Libellé classe"].strip()
    school_class = session.exec(
        select(SchoolClass).where(SchoolClass.school_id == school_id, SchoolClass.label == label)
    ).first()
    if school_class is None:
        school_class = SchoolClass(
            school_id=school_id, label=label, label_key=label.lower(), levels=row["Niveau"]
        )
        session.add(school_class)
        session.flush()
    values: dict[str, Any] = {
        "school_id": school_id,
        "class_id": school_class.id,
        "ine": row["INE"],
        "last_name": row["Nom élève"],
        "usage_name": row["Nom d'usage élève"] or None,
        "first_name": row["Prénom élève"],
        "birth_date": datetime.strptime(row["Date naissance"], "%d/%m/%Y").date(),
        "sex": row["Sexe"],
        "level": row["Niveau"],
        "address": row["Adresse1"] or None,
        "postcode": row["Cp1"] or None,
        "city": row["Commune1"] or None,
    }
    pupil = session.exec(
        select(Pupil).where(Pupil.school_id == school_id, Pupil.ine == row["INE"])
    ).first()
    if pupil is None:
        session.add(Pupil(**values))
    else:
        for name, value in values.items():
            setattr(pupil, name, value)


def _naive_guardian(session: Any, school_id: int, fields: list[str]) -> Any:
    """One line of responsables.csv: find and update, or add, the guardian it describes."""
    from email_validator import EmailNotValidError, validate_email
    from sqlmodel import select

    from models import Guardian

    civility, usage, last, first, address, postcode, city, country, email = fields[:9]
    try:
        email = validate_email(email, check_deliverability=False).normalized if email else ""
    except EmailNotValidError:
        email = ""
    person: dict[str, Any] = {
        "school_id": school_id,
        "civility": civility or None,
        "usage_name": usage or None,
        "last_name": last,
        "first_name": first,
        "address": address or None,
        "postcode": postcode or None,
        "city": city or None,
        "country": country or None,
        "email": email or None,
        "phone_home": fields[9] or None,
        "phone_work": fields[10] or None,
        "phone_mobile": fields[11] or None,
    }
    guardian = session.exec(
        select(Guardian).where(
            Guardian.school_id == school_id,
            Guardian.last_name == last,
            Guardian.first_name == first,
            Guardian.address == (address or None),
        )
    ).first()
    if guardian is None:
        guardian = Guardian(**person)
        session.add(guardian)
        session.flush()
    else:
        for name, value in person.items():
            setattr(guardian, name, value)
    return guardian


def _naive_children(session: Any, school_id: int, guardian: Any, fields: list[str]) -> None:
    """The line's child groups: each child found by name, then linked unless already linked."""
    from sqlmodel import select

    from models import Pupil, PupilGuardian

    for start in range(12, len(fields) - 3, 4):
        child_last, child_first = fields[start + 1] or fields[start], fields[start + 2]
        if not child_first:
            continue
        pupil = session.exec(
            select(Pupil).where(
                Pupil.school_id == school_id,
                Pupil.last_name == child_last,
                Pupil.first_name == child_first,
            )
        ).first()
        if pupil is not None and session.get(PupilGuardian, (pupil.id, guardian.id)) is None:
            session.add(PupilGuardian(pupil_id=pupil.id, guardian_id=guardian.id))


def _naive_account(session: Any, guardian: Any, *, first: str, name: str) -> None:
    """The guardian's account, unless they have one: its identifier numbered past the ones
    already taken, found by one query."""
    from sqlmodel import col, select

    from bot.services.accounts import identifier_base
    from models import Account, AccountState

    account = session.exec(select(Account).where(Account.guardian_id == guardian.id)).first()
    if account is not None:
        return
    base = identifier_base(first, name)
    taken = set(
        session.exec(select(Account.identifier).where(col(Account.identifier).like(f"{base}%")))
    )
    identifier, number = base, 1
    while identifier in taken:
        number += 1
        identifier = f"{base}{number}"
    session.add(
        Account(guardian_id=guardian.id, identifier=identifier, state=AccountState.NOT_NOTIFIED)
    )


# --- One phase, in a child process --------------------------------------------------------


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Import every school of `spec` into its database, one transaction per school; return
    the timings, the import counts and this process's peak memory."""
    from sqlalchemy import func, select

    from bot.db import make_engine, session_scope
    from bot.services.roster import import_roster
    from models import Account, Guardian, Pupil

    engine = make_engine(spec["url"])
    rss_ready = current_rss_mb()
    per_school: list[float] = []
    totals: dict[str, int] = {}
    deadline = time.perf_counter() + spec.get("cap_s", 1e9)
    capped = False
    cpu_started = time.process_time()
    started = time.perf_counter()
    for school in spec["schools"]:
        if time.perf_counter() > deadline:
            capped = True
            break
        folder = Path(school["dir"])
        files = [
            ("eleves.csv", (folder / "eleves.csv").read_bytes()),
            ("responsables.csv", (folder / "responsables.csv").read_bytes()),
        ]
        began = time.perf_counter()
        with session_scope(engine) as session:
            if spec["kind"] == "naive":
                naive_import(session=session, school_id=school["id"], files=files)
            else:
                # The giant school is far above any real one: lift the size limits.
                report = import_roster(
                    session=session,
                    school_id=school["id"],
                    files=files,
                    actor="bench",
                    limits=None,
                ).to_dict()
                for kind in ("pupils", "guardians", "classes"):
                    for key in ("added", "updated", "unchanged", "retired"):
                        name = f"{kind}_{key}"
                        totals[name] = totals.get(name, 0) + report[kind][key]
                for key in ("accounts_created", "links_added", "links_removed"):
                    totals[key] = totals.get(key, 0) + report[key]
                totals["rejected"] = totals.get("rejected", 0) + len(report["rejected"])
                totals["warnings"] = totals.get("warnings", 0) + len(report["warnings"])
        per_school.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    with session_scope(engine) as session:
        stored = {
            "pupils": session.execute(select(func.count()).select_from(Pupil)).scalar_one(),
            "guardians": session.execute(select(func.count()).select_from(Guardian)).scalar_one(),
            "accounts": session.execute(select(func.count()).select_from(Account)).scalar_one(),
        }
    engine.dispose()
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "schools_done": len(per_school),
        "capped": capped,
        "per_school_median": statistics.median(per_school) if per_school else 0.0,
        "per_school_max": max(per_school, default=0.0),
        "rss_ready_mb": rss_ready,
        "peak_mb": peak_rss_mb(),
        "counts": totals,
        "stored": stored,
    }


# --- Orchestration --------------------------------------------------------------------------


@dataclass
class Dataset:
    """Extractions written to disk, and the schools registered in each database."""

    name: str
    extractions: list[SchoolExtraction]
    folders: list[Path]
    pupils: int = 0
    guardians: int = 0
    classes: int = 0
    malformed: int = 0

    def __post_init__(self) -> None:
        self.pupils = sum(x.pupils for x in self.extractions)
        self.guardians = sum(x.guardians for x in self.extractions)
        self.classes = sum(x.classes for x in self.extractions)
        self.malformed = sum(x.malformed_emails for x in self.extractions)

    @property
    def megabytes(self) -> float:
        size = sum(len(x.pupils_csv) + len(x.guardians_csv) for x in self.extractions)
        return size / 1e6


@dataclass
class Run:
    """One measured phase."""

    dataset: str
    database: str
    method: str  # "importer" or "naive"
    phase: str  # "first" or "re-import"
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return float(self.result["seconds"])

    @property
    def peak_mb(self) -> float:
        return float(self.result["peak_mb"])

    @property
    def unchanged(self) -> bool:
        """A re-import that changed nothing at all."""
        counts = self.result["counts"]
        changed = sum(
            counts.get(f"{kind}_{key}", 0)
            for kind in ("pupils", "guardians", "classes")
            for key in ("added", "updated", "retired")
        )
        return (
            changed == 0
            and counts.get("accounts_created", 0) == 0
            and counts.get("links_added", 0) == 0
            and counts.get("links_removed", 0) == 0
        )


def _write(name: str, extractions: list[SchoolExtraction], root: Path) -> Dataset:
    folders = []
    for number, extraction in enumerate(extractions):
        folder = root / name / f"{number:03d}-{extraction.uai}"
        extraction.write(folder)
        folders.append(folder)
    return Dataset(name, extractions, folders)


def _prepare_database(url: str, dataset: Dataset) -> list[dict[str, Any]]:
    """Migrate the empty database and register the dataset's schools (not timed)."""
    from bot.db import make_engine, session_scope, upgrade_schema

    engine = make_engine(url)
    upgrade_schema(engine)
    schools = []
    with session_scope(engine) as session:
        for extraction, folder in zip(dataset.extractions, dataset.folders, strict=True):
            schools.append({"id": register_school(session, extraction), "dir": str(folder)})
    engine.dispose()
    return schools


def _measure(
    runs: list[Run],
    dataset: Dataset,
    database: str,
    url: str,
    *,
    method: str = "importer",
    cap_s: float | None = None,
    reimport: bool = True,
) -> None:
    schools = _prepare_database(url, dataset)
    for phase in ("first", "re-import") if reimport else ("first",):
        spec: dict[str, Any] = {"url": url, "schools": schools, "kind": method}
        if cap_s is not None:
            spec["cap_s"] = cap_s
        run = Run(dataset.name, database, method, phase)
        run.result = run_child(MODULE, spec, timeout=CHILD_TIMEOUT_S)
        runs.append(run)
        _progress(run)


def _progress(run: Run) -> None:
    extra = ""
    if run.result.get("capped"):
        extra = f" (capped after {run.result['schools_done']} schools)"
    print(
        f"  {run.dataset:<10} {run.database:<10} {run.method:<8} {run.phase:<9} "
        f"{run.seconds:7.2f} s  peak {run.peak_mb:6.0f} MB{extra}",
        file=sys.stderr,
        flush=True,
    )


def run(
    sizes: Sizes = Sizes(),
    *,
    postgres: bool = True,
    write: bool = True,
    naive_district_s: float = 0.0,
) -> list[Run]:
    """Generate, import, re-import, compare; print the table and refresh RESULTS.md."""
    machine = Machine.here()
    workdir = Path(tempfile.mkdtemp(prefix="educonnect-bench-import-"))
    runs: list[Run] = []
    try:
        district, giant, sample = _generate(sizes, workdir)
        _measure_sqlite(runs, workdir, district, giant, sample, naive_district_s)
        if postgres:
            pg_note = _measure_postgres(runs, district, giant, sample)
        else:
            pg_note = "not requested (--no-postgres)"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    _print_table(runs, pg_note)
    if write:
        write_section("import", _markdown(runs, machine, sizes, district, giant, sample, pg_note))
    return runs


def _generate(sizes: Sizes, workdir: Path) -> tuple[Dataset, Dataset, Dataset]:
    """The district, the one big school and the naive baseline's sample, written to disk."""
    began = time.perf_counter()
    district = _write(
        "district",
        generate_district(
            seed=sizes.seed, schools=sizes.schools, pupils_per_school=sizes.pupils_per_school
        ),
        workdir,
    )
    giant = _write(
        "one-school", [generate_school(seed=sizes.seed, pupils=sizes.pupils, index=99)], workdir
    )
    sample = Dataset(
        "sample",
        district.extractions[: sizes.naive_schools],
        district.folders[: sizes.naive_schools],
    )
    print(
        f"generated {district.pupils} pupils / {district.guardians} guardians in "
        f"{len(district.extractions)} schools, and one school of {giant.pupils} pupils / "
        f"{giant.guardians} guardians, in {time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )
    return district, giant, sample


def _measure_sqlite(
    runs: list[Run],
    workdir: Path,
    district: Dataset,
    giant: Dataset,
    sample: Dataset,
    naive_district_s: float,
) -> None:
    """Every SQLite phase, each dataset in a database file of its own."""

    def sqlite(name: str) -> str:
        return f"sqlite:///{workdir / (name + '.db')}"

    _measure(runs, district, "SQLite", sqlite("district"))
    _measure(runs, giant, "SQLite", sqlite("giant"))
    _measure(runs, sample, "SQLite", sqlite("sample"))
    _measure(runs, sample, "SQLite", sqlite("sample-naive"), method="naive")
    if naive_district_s > 0:
        # The naive import on the whole district, stopped after a while: how far it gets.
        _measure(
            runs,
            district,
            "SQLite",
            sqlite("district-naive"),
            method="naive",
            cap_s=naive_district_s,
            reimport=False,
        )


def _measure_postgres(
    runs: list[Run], district: Dataset, giant: Dataset, sample: Dataset
) -> str | None:
    """Every PostgreSQL phase, on a throwaway server; why they were skipped, or None."""
    from tests.postgres import PostgresServer

    server = PostgresServer()
    try:
        pg_note = server.unavailable_reason
        if pg_note is None:
            try:
                server.start()
            except (OSError, subprocess.CalledProcessError) as error:
                pg_note = f"the throwaway server did not start ({error})"
        if pg_note is None:
            _measure(runs, district, "PostgreSQL", server.create_database("district"))
            _measure(runs, giant, "PostgreSQL", server.create_database("giant"))
            _measure(runs, sample, "PostgreSQL", server.create_database("sample"))
            # The first import only: the naive re-import is measured on SQLite.
            _measure(
                runs,
                sample,
                "PostgreSQL",
                server.create_database("sample_naive"),
                method="naive",
                reimport=False,
            )
        return pg_note
    finally:
        server.stop()


# --- Reporting ------------------------------------------------------------------------------


def _find(runs: list[Run], dataset: str, database: str, method: str, phase: str) -> Run | None:
    for run in runs:
        if (run.dataset, run.database, run.method, run.phase) == (dataset, database, method, phase):
            return run
    return None


def _target(phase: str) -> float:
    return TARGET_FIRST_S if phase == "first" else TARGET_REIMPORT_S


def _print_table(runs: list[Run], pg_note: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ONDE import (issue « Foundation »)")
    for column in (
        "data", "database", "method", "phase", "time", "CPU", "target", "peak RSS", "check",
    ):  # fmt: skip
        table.add_column(column)
    for run in runs:
        check = ""
        if run.method == "importer" and run.phase == "re-import":
            check = "all unchanged" if run.unchanged else "CHANGED ROWS"
        if run.result.get("capped"):
            check = f"stopped after {run.result['schools_done']} schools"
        target = ""
        if run.method == "importer" and run.dataset != "sample":
            target = f"< {_target(run.phase):.0f} s, < {TARGET_MEMORY_MB:.0f} MB"
        table.add_row(
            run.dataset,
            run.database,
            run.method,
            run.phase,
            seconds(run.seconds),
            seconds(run.result["cpu_seconds"]),
            target,
            f"{run.peak_mb:.0f} MB",
            check,
        )
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    for database in ("SQLite", "PostgreSQL"):
        real = _find(runs, "sample", database, "importer", "first")
        naive = _find(runs, "sample", database, "naive", "first")
        if real and naive:
            console.print(
                f"{database}: naive / importer on the same sample = "
                f"{naive.seconds / real.seconds:.0f}× (first import)"
            )
    if pg_note:
        console.print(f"PostgreSQL skipped: {pg_note}")


def _schools(count: int) -> str:
    return f"{count} school" if count == 1 else f"{count} schools"


def _headline(runs: list[Run]) -> str:
    parts = []
    met = True
    for database in ("SQLite", "PostgreSQL"):
        first = _find(runs, "district", database, "importer", "first")
        again = _find(runs, "district", database, "importer", "re-import")
        if first is None or again is None:
            continue
        peak = max(first.peak_mb, again.peak_mb)
        met = met and (
            first.seconds < TARGET_FIRST_S
            and again.seconds < TARGET_REIMPORT_S
            and peak < TARGET_MEMORY_MB
            and again.unchanged
        )
        text = (
            f"{database} first import {seconds(first.seconds)}, re-import "
            f"{seconds(again.seconds)}, peak {peak:.0f} MB"
        )
        naive = _find(runs, "sample", database, "naive", "first")
        real = _find(runs, "sample", database, "importer", "first")
        if naive and real:
            text += f", {naive.seconds / real.seconds:.0f}× faster than the naive import"
        parts.append(text)
    if not parts:
        return ""
    verdict_text = "every target met" if met else "**a target missed**"
    return f"**Headline (district): {'; '.join(parts)} — {verdict_text}.**"


def _markdown(
    runs: list[Run],
    machine: Machine,
    sizes: Sizes,
    district: Dataset,
    giant: Dataset,
    sample: Dataset,
    pg_note: str | None,
) -> str:
    lines = [
        machine.markdown(),
        "",
        _headline(runs),
        "",
        _data_line(sizes, district, giant, sample),
        "",
        *_importer_table(runs),
    ]
    if pg_note:
        lines += ["", f"PostgreSQL: skipped: {pg_note}."]
    lines += _baseline_table(runs, sample)
    lines += _naive_district_note(runs, district)
    return "\n".join(lines)


def _data_line(sizes: Sizes, district: Dataset, giant: Dataset, sample: Dataset) -> str:
    return (
        f"Data (seed {sizes.seed}): **district** = {len(district.extractions)} schools, "
        f"{district.pupils:,} pupils, {district.guardians:,} guardians, {district.classes} "
        f"classes, {district.malformed} malformed e-mail addresses, {district.megabytes:.1f} MB "
        f"of CSV; **one-school** = 1 school, {giant.pupils:,} pupils, {giant.guardians:,} "
        f"guardians, {giant.classes} classes; **sample** = the district's first "
        f"{_schools(len(sample.extractions))} ({sample.pupils:,} pupils, {sample.guardians:,} "
        "guardians)."
    )


def _importer_table(runs: list[Run]) -> list[str]:
    """The importer's phases: one row per dataset, database and phase."""
    lines = [
        "| data | database | phase | time | target | CPU of the importing process "
        "| per school (median / max) | peak RSS (< 400 MB) | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in ("district", "one-school"):
        for database in ("SQLite", "PostgreSQL"):
            for phase in ("first", "re-import"):
                run = _find(runs, dataset, database, "importer", phase)
                if run is not None:
                    lines.append(_importer_row(run))
    return lines


def _importer_row(run: Run) -> str:
    target = _target(run.phase)
    result = (
        ("all unchanged" if run.unchanged else "**rows changed**")
        if run.phase == "re-import"
        else f"{run.result['stored']['accounts']:,} accounts created"
    )
    median, slowest = run.result["per_school_median"], run.result["per_school_max"]
    per_school = f"{median:.3f} s / {slowest:.3f} s" if run.result["schools_done"] > 1 else "—"
    return (
        f"| {run.dataset} | {run.database} | {run.phase} | **{seconds(run.seconds)}** "
        f"({verdict(run.seconds, target)}) | < {target:.0f} s | "
        f"{seconds(run.result['cpu_seconds'])} | {per_school} | "
        f"{run.peak_mb:.0f} MB ({verdict(run.peak_mb, TARGET_MEMORY_MB)}) | "
        f"{result} |"
    )


def _baseline_table(runs: list[Run], sample: Dataset) -> list[str]:
    """The naive import beside the importer, on the same sample."""
    lines = [
        "",
        f"Baseline, same input ({sample.pupils:,} pupils, {sample.guardians:,} guardians in "
        f"{_schools(len(sample.extractions))}), same run:",
        "",
        "| database | phase | naive (row by row) | importer | ratio |",
        "|---|---|---|---|---|",
    ]
    for database in ("SQLite", "PostgreSQL"):
        for phase in ("first", "re-import"):
            naive = _find(runs, "sample", database, "naive", phase)
            real = _find(runs, "sample", database, "importer", phase)
            if naive and real:
                lines.append(
                    f"| {database} | {phase} | {seconds(naive.seconds)} | "
                    f"{seconds(real.seconds)} | **{naive.seconds / real.seconds:.0f}×** |"
                )
    return lines


def _naive_district_note(runs: list[Run], district: Dataset) -> list[str]:
    """How far the naive import got on the whole district, when it was asked for."""
    capped = _find(runs, "district", "SQLite", "naive", "first")
    if capped is None:
        return []
    done = capped.result["schools_done"]
    total = len(district.extractions)
    if capped.result["capped"]:
        per_school = capped.seconds / max(done, 1)
        return [
            "",
            f"The naive import on the whole district (SQLite), stopped after "
            f"{capped.seconds:.0f} s: {done} of {total} schools imported, "
            f"{per_school:.2f} s per school — at that pace the district takes at least "
            f"{per_school * total:.0f} s (a lower bound: its identifier query scans a "
            "growing account table).",
        ]
    return [
        "",
        f"The naive import on the whole district (SQLite): {seconds(capped.seconds)} "
        f"for all {total} schools.",
    ]


# --- Entry points ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench import", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to try the harness")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument(
        "--naive-district",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also run the naive import on the whole district, stopped after SECONDS",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    # `python -m bench` passes its options to both benchmarks: ignore the other one's.
    options, _rest = parser.parse_known_args(argv)
    if options.child:
        emit(_child(json.loads(options.child)))
        return 0
    run(
        QUICK if options.quick else Sizes(),
        postgres=not options.no_postgres,
        write=not options.no_write and not options.quick,
        naive_district_s=options.naive_district,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
