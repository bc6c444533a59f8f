"""Benchmark of the issue « digests »: what the digests of a whole district say (500 schools ×
400 pupils) on PostgreSQL and SQLite, beside the naive per-school ORM loop in the same run; the
chart of each school (ms, PNG size); and one digest broadcast to 500 directors through the local
Bot API server (`bench.digest_broadcast`).

Target: the content of every school's digest on PostgreSQL < 2 s.

    python -m bench digests [--quick] [--schools 500] [--pupils 400] [--charts 100]
                            [--naive-cap 60] [--directors 500] [--no-postgres]
                            [--no-broadcast] [--no-write]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, event, func, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from bench.digest_broadcast import Broadcast, broadcast_digest
from bench.district import SchoolExtraction, generate_district, import_school
from bench.results import Machine, seconds, verdict, write_section
from bot.config import get_settings
from bot.db import make_engine, session_scope, upgrade_schema
from bot.jobs.digest_message import chart_title, compose_digest
from bot.services.digests import DigestContent, digest_content, digest_contents, render_chart
from models import (
    Account,
    AccountState,
    DigestKind,
    DigestRun,
    FamilyReminder,
    Guardian,
    HelpRequest,
    HelpStatus,
    HelpTopic,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    utcnow,
)

TARGET_S = 2.0
BATCH_RUNS = 3  # the batch is timed this many times; the median is the figure
WARM_UP = 3  # untimed schools per database before the clock starts (pool, compiled statements)


@dataclass(frozen=True)
class Sizes:
    schools: int = 500
    pupils_per_school: int = 400
    charts: int = 100  # schools whose chart is rendered (the first ones)
    naive_cap_s: float = 60.0  # the naive loop stops after this long; the rest is extrapolated
    directors: int = 500
    seed: int = 2026


QUICK = Sizes(schools=10, pupils_per_school=100, charts=5, naive_cap_s=10.0, directors=20)


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile `q` (0.5, 0.95) of `values`; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# What each statement the content sends is for, by the table it reads first.
_STATEMENT_KINDS = (
    ("progress (the lights, per school and class)", re.compile(r"WITH links AS", re.I)),
    ("previous digest", re.compile(r"\bdigest_run\b")),
    ("reminded guardians", re.compile(r"\bfamily_reminder\b")),
    ("open help requests", re.compile(r"\bhelp_request\b")),
    ("final check's list", re.compile(r"SELECT DISTINCT pupil\.school_id")),
    ("classes of the schools", re.compile(r"FROM school_class\b")),
    ("schools", re.compile(r"FROM school\b")),
)


def statement_kind(statement: str) -> str:
    """What a SQL statement of the digest content is for (« other » if unknown)."""
    for kind, pattern in _STATEMENT_KINDS:
        if pattern.search(statement):
            return kind
    return "other"


@dataclass
class Breakdown:
    """Time spent in the database per kind of statement, with how many were sent."""

    count: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        return [
            f"{kind}: {self.count[kind]} statement{'s' * (self.count[kind] != 1)}, "
            f"{self.seconds[kind] * 1000:.0f} ms"
            for kind, _ in self.seconds.most_common()
        ]


@contextmanager
def timed_statements(engine: Engine) -> Iterator[Breakdown]:
    """The statements `engine` sends meanwhile, timed from execute to the last row fetched
    (`after_cursor_execute` fires before the rows are read: the fetch is in the caller's time)."""
    breakdown = Breakdown()

    def before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        conn.info["bench_started"] = (time.perf_counter(), statement_kind(statement))

    def after(conn: Any, *_: Any) -> None:
        began, kind = conn.info.pop("bench_started")
        breakdown.count[kind] += 1
        breakdown.seconds[kind] += time.perf_counter() - began

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield breakdown
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


# --- The naive loop a developer would otherwise write --------------------------------------


def naive_school_counts(session: Session, school_id: int, stale_before: datetime) -> dict[str, int]:
    """Per school, through the ORM: load the school, its classes, pupils, links, guardians,
    accounts, reminders, digests and help requests as objects, and count in Python."""
    school = session.get(School, school_id)
    assert school is not None
    classes = {
        c.id: c
        for c in session.execute(select(SchoolClass).where(col(SchoolClass.school_id) == school_id))
        .scalars()
        .all()
        if c.archived_at is None
    }
    pupils = [
        p
        for p in session.execute(select(Pupil).where(col(Pupil.school_id) == school_id)).scalars()
        if p.archived_at is None and (p.class_id is None or p.class_id in classes)
    ]
    links = session.execute(
        select(PupilGuardian).where(col(PupilGuardian.pupil_id).in_([p.id for p in pupils]))
    ).scalars()
    guardians_of: dict[int, list[int]] = defaultdict(list)
    for link in links:
        guardians_of[link.pupil_id].append(link.guardian_id)
    guardians = {
        g.id: g
        for g in session.execute(select(Guardian).where(col(Guardian.school_id) == school_id))
        .scalars()
        .all()
    }
    accounts = {
        a.guardian_id: a
        for a in session.execute(
            select(Account).where(col(Account.guardian_id).in_(list(guardians)))
        ).scalars()
        if a.deactivated_at is None
    }
    counted: set[int] = set()
    counts: Counter[str] = Counter()
    for pupil in pupils:
        counts["pupils"] += 1
        mine = [accounts[g] for g in guardians_of[pupil.id] if g in accounts]
        counts["pupils_with_activated_guardian"] += any(
            a.state is AccountState.ACTIVATED for a in mine
        )
        for account in mine:
            if account.id in counted:
                continue
            counted.add(account.id)
            counts[account.state.value] += 1
            stale = account.distributed_at is not None and _naive(account.distributed_at) < (
                _naive(stale_before)
            )
            counts["remind_stale"] += account.state is AccountState.NOTIFIED and stale
    _naive_extras(session, school_id)
    return dict(counts)


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def _naive_extras(session: Session, school_id: int) -> None:
    """The rest of a digest, one school at a time: its digests, reminders and help requests."""
    for table in (DigestRun, FamilyReminder, HelpRequest):
        session.execute(select(table).where(col(table.school_id) == school_id)).scalars().all()


# --- Setting a database up (not timed) ------------------------------------------------------


def load_district(url: str, district: Sequence[SchoolExtraction], now: datetime) -> list[int]:
    """Migrate, register and import every school (`import_roster`, one transaction each), then
    spread the accounts over the four lights and add what a digest reads besides."""
    engine = make_engine(url)
    upgrade_schema(engine)
    school_ids = []
    for extraction in district:
        with session_scope(engine) as session:
            school_ids.append(import_school(session, extraction))
    with session_scope(engine) as session:
        _spread_states(session, now)
        _history(session, school_ids, now)
    if engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of an import: statistics for the planner.
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    engine.dispose()
    return school_ids


def _spread_states(session: Session, now: datetime) -> None:
    """About 40 % activated, 10 % activating, 30 % notified 1 to 15 days ago (most of them
    past the reminder threshold), 20 % not notified: mid-campaign, a few weeks before LSU."""
    bucket = col(Account.id) % 20
    session.execute(
        update(Account).values(
            state=case(
                (bucket < 8, AccountState.ACTIVATED),
                (bucket < 10, AccountState.ACTIVATING),
                (bucket < 16, AccountState.NOTIFIED),
                else_=AccountState.NOT_NOTIFIED,
            )
        )
    )
    for number in range(16):  # a distribution date per bucket: one UPDATE each, portable
        session.execute(
            update(Account)
            .where(bucket == number)
            .values(distributed_at=now - timedelta(days=number * 7 % 19 + 1))
        )


def _history(session: Session, school_ids: Sequence[int], now: datetime) -> None:
    """What a digest reads besides the lights: an LSU date 3 to 8 weeks ahead, the previous
    weekly digest a week ago, the families reminded since (one notified account in six), and
    an open help request in one school in three."""
    week_ago = now - timedelta(days=7)
    for number, school_id in enumerate(school_ids):
        school = session.get(School, school_id)
        assert school is not None
        school.lsu_date = now.date() + timedelta(days=21 + number % 35)
        session.add(school)
    session.execute(
        DigestRun.__table__.insert(),  # type: ignore[attr-defined]
        [
            {
                "school_id": school_id,
                "kind": DigestKind.WEEKLY,
                "due_at": week_ago,
                "claimed_at": week_ago,
                "sent_at": week_ago,
                "late": False,
                "snapshot": {"states": {"not_notified": 90, "notified": 210, "activated": 200}},
            }
            for school_id in school_ids
        ],
    )
    reminded = session.execute(
        select(col(Guardian.school_id), col(Account.id))
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(col(Account.state) == AccountState.NOTIFIED, col(Account.id) % 6 == 0)
    ).all()
    session.execute(
        FamilyReminder.__table__.insert(),  # type: ignore[attr-defined]
        [
            {
                "school_id": school_id,
                "account_id": account_id,
                "sent_at": now - timedelta(days=2),
                "channels": ["email"],
            }
            for school_id, account_id in reminded
        ],
    )
    for number, school_id in enumerate(school_ids[::3], start=1):
        session.add(
            HelpRequest(
                school_id=school_id,
                school_year=now.year,
                number=1,
                reference=f"BENCH-{number}",
                telegram_user_id=8_000_000_000 + number,
                topic=HelpTopic.PASSWORD,
                status=HelpStatus.OPEN,
            )
        )


def _stored(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with session_scope(engine) as session:

        def count(table: Any, *where: Any) -> int:
            query = select(func.count()).select_from(table).where(*where)
            return int(session.execute(query).scalar_one())

        stored = {
            "pupils": count(Pupil),
            "guardians": count(Guardian),
            "accounts": count(Account),
            "activated": count(Account, col(Account.state) == AccountState.ACTIVATED),
            "classes": count(SchoolClass),
            "reminders": count(FamilyReminder),
            "requests": count(HelpRequest),
        }
    engine.dispose()
    return stored


# --- Timing ---------------------------------------------------------------------------------


@dataclass
class DatabaseRun:
    """Everything measured on one database."""

    database: str
    load_s: float = 0.0
    stored: dict[str, int] = field(default_factory=dict)
    batch: list[float] = field(default_factory=list)  # `digest_contents` on every school
    batch_breakdown: Breakdown = field(default_factory=Breakdown)
    final_s: float = 0.0  # the same, with the final check's complete lists
    per_school: list[float] = field(default_factory=list)  # `digest_content`, one per call
    per_school_breakdown: Breakdown = field(default_factory=Breakdown)
    naive: list[float] = field(default_factory=list)
    naive_capped: bool = False
    mismatches: int = 0  # schools whose naive counts differ from the service's
    contents: list[DigestContent] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)  # PostgreSQL: the progress statement's

    @property
    def batch_s(self) -> float:
        return statistics.median(self.batch) if self.batch else 0.0

    @property
    def naive_total_s(self) -> float:
        """The naive loop on every school: measured, or extrapolated from the schools done."""
        if not self.naive:
            return 0.0
        return sum(self.naive) / len(self.naive) * len(self.contents)


def _timed(call: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def measure(url: str, school_ids: list[int], sizes: Sizes, run: DatabaseRun, now: datetime) -> None:
    """Warm up, then time the batch (every school in one call, as a district sweep could), the
    job's per-school call, and the naive loop (checked against the service's counts)."""
    engine = make_engine(url)
    for school_id in school_ids[:WARM_UP]:
        with session_scope(engine) as session:
            digest_content(session, school_id=school_id, now=now)
    for number in range(BATCH_RUNS):
        with timed_statements(engine) as breakdown, session_scope(engine) as session:
            elapsed, run.contents = _timed(
                lambda s=session: digest_contents(s, school_ids=school_ids, now=now)
            )
        run.batch.append(elapsed)
        if number == 0:
            run.batch_breakdown = breakdown
    with session_scope(engine) as session:
        run.final_s, _ = _timed(
            lambda: digest_contents(session, school_ids=school_ids, now=now, with_missing=True)
        )
    with timed_statements(engine) as run.per_school_breakdown:
        for school_id in school_ids:
            with session_scope(engine) as session:
                elapsed, _ = _timed(
                    lambda s=session, i=school_id: digest_content(s, school_id=i, now=now)
                )
            run.per_school.append(elapsed)
    _measure_naive(engine, sizes, run, now)
    run.plan = progress_plan(engine, school_ids, now)
    engine.dispose()
    _progress(run)


def _measure_naive(engine: Engine, sizes: Sizes, run: DatabaseRun, now: datetime) -> None:
    deadline = time.perf_counter() + sizes.naive_cap_s
    for content in run.contents:
        if time.perf_counter() > deadline:
            run.naive_capped = True
            break
        with session_scope(engine) as session:
            elapsed, counts = _timed(
                lambda s=session, i=content.school_id: naive_school_counts(
                    s, i, now - timedelta(days=7)
                )
            )
        run.naive.append(elapsed)
        run.mismatches += not same_counts(content, counts)


def progress_plan(engine: Engine, school_ids: list[int], now: datetime) -> list[str]:
    """PostgreSQL's EXPLAIN ANALYZE of the first progress statement the batch sends (its first
    chunk of schools), captured as sent; nothing on SQLite, whose plans carry no timings."""
    if engine.dialect.name != "postgresql":
        return []
    captured: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not captured and statement_kind(statement) == _STATEMENT_KINDS[0][0]:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with session_scope(engine) as session:
            digest_contents(session, school_ids=school_ids, now=now)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    statement, parameters = captured[0]
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
        ).all()
    return [str(row[0]) for row in rows]


def same_counts(content: DigestContent, counts: dict[str, int]) -> bool:
    """Whether the naive loop found the service's accounts per light and pupils."""
    total = content.total
    expected = {state.value: number for state, number in total.by_state().items()}
    expected["pupils"] = total.pupils
    expected["pupils_with_activated_guardian"] = total.pupils_with_activated_guardian
    return all(counts.get(name, 0) == number for name, number in expected.items())


def _progress(run: DatabaseRun) -> None:
    print(
        f"  {run.database:<10} load {run.load_s:5.1f} s  batch {run.batch_s:.2f} s "
        f"(final {run.final_s:.2f} s)  per school p50 {quantile(run.per_school, 0.5) * 1000:.1f} "
        f"ms p95 {quantile(run.per_school, 0.95) * 1000:.1f} ms sum {sum(run.per_school):.1f} s  "
        f"naive {len(run.naive)} schools in {sum(run.naive):.1f} s, {run.mismatches} mismatches",
        file=sys.stderr,
        flush=True,
    )


@dataclass
class Charts:
    """The chart of each school (`render_chart`), and the whole message (`compose_digest`)."""

    render: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    compose: list[float] = field(default_factory=list)


def measure_charts(contents: Sequence[DigestContent], count: int) -> Charts:
    """Render the chart, then compose the whole message, of the first `count` schools."""
    charts = Charts()
    render_chart(contents[0], title=chart_title(contents[0]))  # fonts and caches, untimed
    for content in contents[:count]:
        elapsed, png = _timed(lambda c=content: render_chart(c, title=chart_title(c)))
        charts.render.append(elapsed)
        charts.sizes.append(len(png))
        charts.classes.append(len(content.classes))
        elapsed, _ = _timed(
            lambda c=content: compose_digest(
                c, kind=DigestKind.WEEKLY, late=False, tz=get_settings().tz
            )
        )
        charts.compose.append(elapsed)
    return charts


# --- Orchestration --------------------------------------------------------------------------


def run(
    sizes: Sizes = Sizes(), *, postgres: bool = True, broadcast: bool = True, write: bool = True
) -> list[DatabaseRun]:
    """Generate the district, load it, time the content, the charts and the broadcast; print
    and refresh RESULTS.md."""
    machine = Machine.here()
    now = utcnow()
    began = time.perf_counter()
    district = generate_district(
        seed=sizes.seed, schools=sizes.schools, pupils_per_school=sizes.pupils_per_school
    )
    print(
        f"generated {sum(x.pupils for x in district):,} pupils in {len(district)} schools in "
        f"{time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )
    runs: list[DatabaseRun] = []
    with tempfile.TemporaryDirectory(prefix="educonnect-bench-digests-") as workdir:
        url = f"sqlite:///{Path(workdir) / 'district.db'}"
        runs.append(_on_database("SQLite", url, district, sizes, now))
    pg_note = (
        _on_postgres(runs, district, sizes, now) if postgres else "not requested (--no-postgres)"
    )
    contents = runs[-1].contents
    charts = measure_charts(contents, sizes.charts)
    print(
        f"  charts: render p50 {quantile(charts.render, 0.5) * 1000:.0f} ms, "
        f"p95 {quantile(charts.render, 0.95) * 1000:.0f} ms",
        file=sys.stderr,
    )
    sent = broadcast_digest(contents[0], sizes.directors) if broadcast else None
    load_after = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    markdown = _markdown(runs, charts, sent, machine, sizes, pg_note, load_after)
    print(markdown)
    if write:
        write_section("digests", markdown)
        print("\nbench/RESULTS.md: digests section updated")
    return runs


def _on_database(
    database: str, url: str, district: Sequence[SchoolExtraction], sizes: Sizes, now: datetime
) -> DatabaseRun:
    database_run = DatabaseRun(database)
    database_run.load_s, school_ids = _timed(lambda: load_district(url, district, now))
    database_run.stored = _stored(url)
    measure(url, school_ids, sizes, database_run, now)
    return database_run


def _on_postgres(
    runs: list[DatabaseRun], district: Sequence[SchoolExtraction], sizes: Sizes, now: datetime
) -> str | None:
    """The PostgreSQL run, on a throwaway server; why it was skipped, or None."""
    from tests.postgres import PostgresServer

    server = PostgresServer()
    try:
        note = server.unavailable_reason
        if note is None:
            try:
                server.start()
            except (OSError, subprocess.CalledProcessError) as error:
                note = f"the throwaway server did not start ({error})"
        if note is None:
            url = server.create_database("digests")
            runs.append(_on_database("PostgreSQL", url, district, sizes, now))
        return note
    finally:
        server.stop()


# --- Reporting ------------------------------------------------------------------------------


def _ms(values: Sequence[float], q: float) -> str:
    return f"{quantile(values, q) * 1000:.1f} ms"


def _headline(runs: Sequence[DatabaseRun]) -> str:
    parts = []
    for database_run in sorted(runs, key=lambda r: r.database != "PostgreSQL"):
        batch, naive = database_run.batch_s, database_run.naive_total_s
        target = (
            f" ({verdict(batch, TARGET_S)}, < {TARGET_S:.0f} s)"
            if database_run.database == "PostgreSQL"
            else ""
        )
        per_school = database_run.per_school
        estimated = " (extrapolated)" if database_run.naive_capped else ""
        parts.append(
            f"{database_run.database}: the content of all {len(database_run.contents)} schools' "
            f"digests in one call {seconds(batch)}{target}; one school at a time as the job "
            f"does, p50 {_ms(per_school, 0.5)}, p95 {_ms(per_school, 0.95)}, "
            f"{seconds(sum(per_school))} for all; the naive ORM loop {seconds(naive)}"
            f"{estimated}, {naive / batch:.0f}× the batch"
        )
    return f"**Headline: {'. '.join(parts)}.**" if parts else ""


def _table(runs: Sequence[DatabaseRun]) -> list[str]:
    lines = [
        "| database | what | schools | total | per school p50 | per school p95 | target | check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        schools = len(r.contents)
        target = f"< {TARGET_S:.0f} s" if r.database == "PostgreSQL" else "—"
        mark = f" ({verdict(r.batch_s, TARGET_S)})" if r.database == "PostgreSQL" else ""
        runs_text = ", ".join(seconds(value) for value in r.batch)
        naive_done = len(r.naive)
        naive_total = (
            f"{seconds(sum(r.naive))} for {naive_done}, ≈ {seconds(r.naive_total_s)} for all"
            if r.naive_capped
            else seconds(sum(r.naive))
        )
        check = (
            f"same lights and pupils as the service in {naive_done - r.mismatches} of "
            f"{naive_done} schools"
        )
        lines += [
            f"| {r.database} | `digest_contents`, every school in one call (median of "
            f"{len(r.batch)}: {runs_text}) | {schools} | **{seconds(r.batch_s)}**{mark} | "
            f"{r.batch_s / max(schools, 1) * 1000:.1f} ms (mean) | — | {target} | — |",
            f"| {r.database} | the same with the final check's complete lists | {schools} | "
            f"{seconds(r.final_s)} | {r.final_s / max(schools, 1) * 1000:.1f} ms (mean) | — | "
            "— | — |",
            f"| {r.database} | `digest_content`, one school per call and transaction (the job) "
            f"| {schools} | {seconds(sum(r.per_school))} | {_ms(r.per_school, 0.5)} | "
            f"{_ms(r.per_school, 0.95)} | — | — |",
            f"| {r.database} | naive: per school, every object loaded through the ORM, counted "
            f"in Python | {naive_done} | {naive_total} | {_ms(r.naive, 0.5)} | "
            f"{_ms(r.naive, 0.95)} | — | {check} |",
        ]
    return lines


def _breakdowns(runs: Sequence[DatabaseRun]) -> list[str]:
    """Where the time of the database goes, per kind of statement."""
    lines = []
    for r in runs:
        batch = "; ".join(r.batch_breakdown.lines())
        single = "; ".join(r.per_school_breakdown.lines())
        lines += [
            "",
            f"{r.database}, time in the database (execute, before the rows are fetched) — the "
            f"batch: {batch}. One school per call, all {len(r.per_school)} calls: {single}.",
        ]
    return lines


def _plans(runs: Sequence[DatabaseRun]) -> list[str]:
    """The progress statement's plan on PostgreSQL: a summary line, the whole plan folded."""
    lines = []
    for r in runs:
        if not r.plan:
            continue
        spills = [line.strip() for line in r.plan if "Disk" in line or "external" in line]
        timing = [
            line.strip() for line in r.plan if line.startswith(("Planning Time", "Execution Time"))
        ]
        lines += [
            "",
            f"{r.database}, `EXPLAIN (ANALYZE, BUFFERS)` of the progress statement (its first "
            f"chunk of schools): {'; '.join(timing)}; "
            + (f"spilled to disk: {'; '.join(spills)}." if spills else "nothing spilled to disk."),
            "",
            "<details><summary>the whole plan</summary>",
            "",
            "```",
            *r.plan,
            "```",
            "",
            "</details>",
        ]
    return lines


def _charts_table(charts: Charts) -> list[str]:
    kb = [size / 1024 for size in charts.sizes]
    return [
        "",
        f"Charts, the first {len(charts.render)} schools ({min(charts.classes, default=0)} to "
        f"{max(charts.classes, default=0)} classes each):",
        "",
        "| what | p50 | p95 | max | PNG size p50 / max |",
        "|---|---|---|---|---|",
        f"| `render_chart` (matplotlib, Agg) | {_ms(charts.render, 0.5)} | "
        f"{_ms(charts.render, 0.95)} | {max(charts.render, default=0) * 1000:.1f} ms | "
        f"{quantile(kb, 0.5):.0f} KB / {max(kb, default=0):.0f} KB |",
        f"| `compose_digest` (text + chart) | {_ms(charts.compose, 0.5)} | "
        f"{_ms(charts.compose, 0.95)} | {max(charts.compose, default=0) * 1000:.1f} ms | — |",
    ]


def _markdown(
    runs: Sequence[DatabaseRun],
    charts: Charts,
    sent: Broadcast | None,
    machine: Machine,
    sizes: Sizes,
    pg_note: str | None,
    load_after: str,
) -> str:
    stored = runs[0].stored if runs else {}
    loads = ", ".join(f"{r.database} {r.load_s:.0f} s" for r in runs)
    lines = [
        machine.markdown(),
        "",
        _headline(runs),
        "",
        f"Data (seed {sizes.seed}): {sizes.schools} schools × {sizes.pupils_per_school} pupils "
        f"= {stored.get('pupils', 0):,} pupils, {stored.get('guardians', 0):,} guardians, "
        f"{stored.get('accounts', 0):,} accounts ({stored.get('activated', 0):,} activated), "
        f"{stored.get('classes', 0):,} classes, {stored.get('reminders', 0):,} reminders sent, "
        f"{stored.get('requests', 0)} open help requests, a previous digest per school; loaded "
        f"with `import_roster` before the clock starts ({loads}). Load average after the run: "
        f"{load_after}.",
        "",
        *_table(runs),
    ]
    if pg_note:
        lines += ["", f"PostgreSQL: skipped: {pg_note}."]
    lines += _breakdowns(runs)
    lines += _plans(runs)
    lines += _charts_table(charts)
    if sent is not None:
        lines += ["", *sent.markdown()]
    return "\n".join(lines)


# --- Entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench digests", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to try the harness")
    parser.add_argument("--schools", type=int, help=f"default {Sizes.schools}")
    parser.add_argument(
        "--pupils", type=int, help=f"pupils per school, default {Sizes.pupils_per_school}"
    )
    parser.add_argument("--charts", type=int, help=f"charts rendered, default {Sizes.charts}")
    parser.add_argument(
        "--naive-cap",
        type=float,
        metavar="SECONDS",
        help="stop the naive loop after SECONDS per database",
    )
    parser.add_argument("--directors", type=int, help=f"broadcast size, default {Sizes.directors}")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-broadcast", action="store_true", help="skip the broadcast")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    # `python -m bench` passes its options to every benchmark: ignore the others'.
    options, _rest = parser.parse_known_args(argv)
    base = QUICK if options.quick else Sizes()
    sizes = Sizes(
        schools=options.schools or base.schools,
        pupils_per_school=options.pupils or base.pupils_per_school,
        charts=options.charts or base.charts,
        naive_cap_s=options.naive_cap or base.naive_cap_s,
        directors=options.directors or base.directors,
        seed=base.seed,
    )
    run(
        sizes,
        postgres=not options.no_postgres,
        broadcast=not options.no_broadcast,
        write=not options.no_write and not options.quick and sizes == Sizes(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
