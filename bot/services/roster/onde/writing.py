"""The writes of an ONDE import (`Plan`) and how they reach the database: bulk inserts, updates
and deletes in dependency order, the audit events, and the progress they report.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from psycopg import sql
from sqlalchemy import Table, bindparam, func, select, update
from sqlmodel import Session

from bot.services.accounts import allocate_identifiers
from bot.services.audit import record_event
from bot.services.roster.onde.report import ImportReport, RecordCounts
from models import Account, AccountState, AuditEvent, Guardian, Pupil, PupilGuardian, SchoolClass
from models.queries import in_chunks

ProgressCallback = Callable[[int, int], None]

# Rows per executemany batch (or COPY), not an `IN (…)` list: big batches, few round trips.
_WRITE_CHUNK = 2000


@dataclass
class Plan:
    """Every write of the import, computed before the first one. Negative keys stand for
    rows this import creates, until their ids are known."""

    school_id: int
    now: datetime
    class_inserts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    class_updates: list[dict[str, Any]] = field(default_factory=list)
    pupil_inserts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    pupil_updates: list[dict[str, Any]] = field(default_factory=list)
    guardian_inserts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    guardian_updates: list[dict[str, Any]] = field(default_factory=list)
    # (guardian key, first name, family name) of each account to create.
    account_inserts: list[tuple[int, str, str]] = field(default_factory=list)
    account_updates: list[dict[str, Any]] = field(default_factory=list)
    account_events: list[tuple[int, str]] = field(default_factory=list)  # (account id, action)
    link_inserts: list[tuple[int, int]] = field(default_factory=list)  # (pupil key, guardian key)
    link_deletes: list[tuple[int, int]] = field(default_factory=list)  # (pupil id, guardian id)
    _last_key: int = 0

    def new_key(self) -> int:
        self._last_key -= 1
        return self._last_key

    @property
    def writes(self) -> int:
        return sum(
            len(part)
            for part in (
                self.class_inserts,
                self.class_updates,
                self.pupil_inserts,
                self.pupil_updates,
                self.guardian_inserts,
                self.guardian_updates,
                self.account_inserts,
                self.account_updates,
                self.link_inserts,
                self.link_deletes,
            )
        )

    def deactivate(self, account: dict[str, Any]) -> None:
        self.account_updates.append({"id": account["id"], "deactivated_at": self.now})
        self.account_events.append((account["id"], "account.deactivated"))

    def reactivate(self, account: dict[str, Any]) -> None:
        self.account_updates.append({"id": account["id"], "deactivated_at": None})
        self.account_events.append((account["id"], "account.reactivated"))


class Progress:
    """Reports (done, total) every few hundred rows: reading and planning fill the first
    half of the bar, writing the second."""

    def __init__(self, callback: ProgressCallback | None, lines: int) -> None:
        self.callback = callback
        self.total = max(1, 2 * lines)
        self.done = 0.0
        self.reported = 0
        self.write_unit = 0.0

    def advance(self, units: float = 1) -> None:
        self.done = min(self.total, self.done + units)
        if self.callback and int(self.done) - self.reported >= 500:
            self.reported = int(self.done)
            self.callback(self.reported, self.total)

    def start_writing(self, rows: int) -> None:
        self.write_unit = (self.total - self.done) / max(1, rows)

    def wrote(self, rows: int) -> None:
        self.advance(rows * self.write_unit)

    def finish(self) -> None:
        if self.callback:
            self.callback(self.total, self.total)


# --- Writing the plan -------------------------------------------------------------------------


def apply_plan(session: Session, plan: Plan, tracker: Progress) -> None:
    """Write the plan with bulk statements, in dependency order.

    Inserts go through Core (COPY on PostgreSQL): the ORM's bulk insert splits a batch
    wherever the pattern of empty values changes from one row to the next (a guardian with an
    e-mail, one without…), which made 30,000 guardians take a minute instead of a second.
    """
    tracker.start_writing(plan.writes)
    writer = _Writer(session, tracker)
    writer.insert_returning(SchoolClass, plan.class_inserts)
    writer.update_rows(SchoolClass, plan.class_updates)
    real = writer.real
    for _, values in plan.pupil_inserts:
        values["class_id"] = real(values["class_id"])
    for values in plan.pupil_updates:
        values["class_id"] = real(values["class_id"])
    writer.insert_returning(Pupil, plan.pupil_inserts)
    writer.update_rows(Pupil, plan.pupil_updates)
    writer.insert_returning(Guardian, plan.guardian_inserts)
    writer.update_rows(Guardian, plan.guardian_updates)
    _insert_accounts(session, writer, plan)
    writer.update_rows(Account, plan.account_updates)
    writer.delete_links(plan.link_deletes)
    writer.insert_rows(
        PupilGuardian,
        [{"pupil_id": real(p), "guardian_id": real(g)} for p, g in plan.link_inserts],
    )


def _insert_accounts(session: Session, writer: _Writer, plan: Plan) -> None:
    """One account per new guardian (and per guardian found without one), numbered now."""
    if not plan.account_inserts:
        return
    identifiers = allocate_identifiers(
        session, [(first, last) for _, first, last in plan.account_inserts]
    )
    real = writer.real
    writer.insert_rows(
        Account,
        [
            {
                "guardian_id": real(key),
                "identifier": identifier,
                "state": AccountState.NOT_NOTIFIED,
                "created_at": plan.now,
            }
            for (key, _, _), identifier in zip(plan.account_inserts, identifiers, strict=True)
        ],
    )


class _Writer:
    """Bulk statements in batches of `_WRITE_CHUNK` rows, reporting each batch to the
    tracker; remembers the ids given to the rows it inserts (`real`)."""

    def __init__(self, session: Session, tracker: Progress) -> None:
        self.session = session
        self.tracker = tracker
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        self.ids: dict[int, int] = {}  # plan key (negative) -> id of the inserted row

    def real(self, key: int | None) -> int | None:
        """The id a plan key stands for (a negative key is a row inserted earlier)."""
        return self.ids[key] if key is not None and key < 0 else key

    def insert_rows(self, model: Any, rows: list[dict[str, Any]]) -> None:
        table = _table(model)
        for chunk in in_chunks(rows, _WRITE_CHUNK):
            if self.postgresql:
                _copy_rows(self.session, table, chunk)
            else:
                self.session.exec(table.insert(), params=chunk)
            self.tracker.wrote(len(chunk))

    def insert_returning(self, model: Any, items: list[tuple[int, dict[str, Any]]]) -> None:
        """Insert rows keyed by plan keys, and remember the id each one got."""
        table = _table(model)
        returning = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        for chunk in in_chunks(items, _WRITE_CHUNK):
            keys = [key for key, _ in chunk]
            if self.postgresql:
                # psycopg re-parses every long multi-row INSERT … RETURNING: reserve the ids
                # from the sequence instead, and COPY the rows with them.
                new_ids = _reserve_ids(self.session, table, len(chunk))
                rows = [
                    values | {"id": new_id}
                    for (_, values), new_id in zip(chunk, new_ids, strict=True)
                ]
                _copy_rows(self.session, table, rows)
            else:
                new_ids = list(
                    self.session.exec(returning, params=[values for _, values in chunk]).scalars()
                )
            self.ids.update(zip(keys, new_ids, strict=True))
            self.tracker.wrote(len(chunk))

    def update_rows(self, model: Any, rows: list[dict[str, Any]]) -> None:
        for chunk in in_chunks(rows, _WRITE_CHUNK):
            self.session.exec(update(model), params=chunk)
            self.tracker.wrote(len(chunk))

    def delete_links(self, pairs: list[tuple[int, int]]) -> None:
        """Delete (pupil id, guardian id) links."""
        links = _table(PupilGuardian)
        delete_link = links.delete().where(
            links.c.pupil_id == bindparam("old_pupil"),
            links.c.guardian_id == bindparam("old_guardian"),
        )
        for chunk in in_chunks(pairs, _WRITE_CHUNK):
            self.session.exec(
                delete_link, params=[{"old_pupil": p, "old_guardian": g} for p, g in chunk]
            )
            self.tracker.wrote(len(chunk))


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` new ids from the table's PostgreSQL sequence (unique, safe under concurrency)."""
    sequence = func.pg_get_serial_sequence(table.name, "id")
    query = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
    return [int(new_id) for new_id in session.connection().execute(query).scalars()]


def _copy_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's bulk path: COPY the rows (all with the same keys) in the session's
    transaction; values are plain Python (enums as their value)."""
    if not rows:
        return
    columns = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [value.value if isinstance(value, enum.Enum) else value for value in row.values()]
            )


# --- The audit trail --------------------------------------------------------------------------


def record_import(session: Session, *, actor: str, report: ImportReport, plan: Plan) -> None:
    """The audit trail: one event for the import (counts only, no personal data), one per
    account deactivated or reactivated."""
    if plan.account_events:
        reasons = {"account.deactivated": "no_linked_pupil", "account.reactivated": "linked_again"}
        events = [
            {
                "at": plan.now,
                "actor": actor,
                "action": action,
                "school_id": plan.school_id,
                "account_id": account_id,
                "details": {"reason": reasons[action], "source": "roster.imported"},
            }
            for account_id, action in plan.account_events
        ]
        for chunk in in_chunks(events, _WRITE_CHUNK):
            session.exec(_table(AuditEvent).insert(), params=chunk)
    record_event(
        session,
        actor=actor,
        action="roster.imported",
        school_id=plan.school_id,
        files=dict(report.files),
        pupils=_counts(report.pupils),
        guardians=_counts(report.guardians),
        classes=_counts(report.classes),
        accounts_created=report.accounts_created,
        accounts_reactivated=report.accounts_reactivated,
        accounts_deactivated=report.accounts_deactivated,
        links_added=report.links_added,
        links_removed=report.links_removed,
        rejected_lines=len(report.rejected),
        warning_lines=len(report.warnings),
    )


def _counts(counts: RecordCounts) -> dict[str, int]:
    return dict(vars(counts))


__all__ = ["Plan", "Progress", "ProgressCallback", "apply_plan", "record_import"]
