"""Import ONDE extractions into a school's registry: validate everything, then write in one go.

The school's rows are loaded once, the difference is computed in memory and written with
bulk statements; an unchanged extraction writes nothing but its audit event. The caller owns
the transaction (`bot.db.session_scope`): nothing here commits.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlmodel import Session, col

from bot.db import lock_for_writing
from bot.services.audit import record_event
from bot.services.classes import class_label_key, levels_in_label, levels_text
from bot.services.identifiers import allocate_identifiers
from bot.services.onde import messages
from bot.services.onde.matching import (
    ChildMatch,
    GuardianIdentity,
    KnownPupil,
    PupilCandidate,
    PupilDirectory,
    match_guardians,
    match_pupils,
)
from bot.services.onde.normalise import address_key, name_key
from bot.services.onde.reader import (
    GuardianExtraction,
    GuardianRow,
    PupilExtraction,
    RejectedPupil,
    read_extraction,
)
from bot.services.onde.report import ImportReport, LineIssue, RecordCounts
from models import (
    Account,
    AccountState,
    AuditEvent,
    Guardian,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    utcnow,
)

ProgressCallback = Callable[[int, int], None]

# Pupil fields an Élèves extraction sets, with the column each needs (None: always there).
# A column the file lacks leaves the stored value alone.
_PUPIL_SOURCES: dict[str, str | None] = {
    "last_name": None,
    "usage_name": "usage_name",
    "first_name": None,
    "birth_date": None,
    "sex": "sex",
    "level": None,
    "address": "address",
    "postcode": "postcode",
    "city": "city",
}
_PUPIL_UPDATE_KEYS = ("id", "class_id", "ine", *_PUPIL_SOURCES, "archived_at", "updated_at")
_GUARDIAN_SOURCES: dict[str, str | None] = {
    "civility": "civility",
    "usage_name": "usage_name",
    "last_name": None,
    "first_name": None,
    "address": "address",
    "postcode": "postcode",
    "city": "city",
    "country": "country",
    "email": "email",
    "phone_home": "phone_home",
    "phone_work": "phone_work",
    "phone_mobile": "phone_mobile",
}
# Accounts whose e-mail address the family chose on the activation portal: a re-import keeps it.
_FAMILY_EMAIL_STATES = frozenset({AccountState.ACTIVATING.value, AccountState.ACTIVATED.value})
_CLASS_UPDATE_KEYS = ("id", "label", "label_key", "onde_id", "levels", "archived_at")
_WRITE_CHUNK = 2000


# --- Entry point ------------------------------------------------------------------------------


def import_roster(
    *,
    session: Session,
    school_id: int,
    files: Sequence[tuple[str, bytes]],
    actor: str,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import one or two ONDE extractions (Élèves, Responsables, either order) into a school.

    Raises `RosterFileError` when a file cannot be imported at all, before anything is
    written. With `dry_run`, returns the same report and writes nothing.
    """
    now = now or utcnow()
    if now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware (UTC)")
    pupils_file, guardians_file = _read_files(files, now)
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
    tracker = _Progress(progress, sum(x.data_lines for x in extractions))
    report = ImportReport(dry_run=dry_run, files={x.filename: x.kind for x in extractions})
    issues: list[LineIssue] = [issue for x in extractions for issue in x.issues]

    registry = _Registry.load(session, school_id)
    plan = _Plan(school_id=school_id, now=now)
    if pupils_file is not None:
        candidates, departed = _plan_pupils(registry, pupils_file, plan, report, tracker)
    else:
        candidates, departed = _current_pupils(registry), set()
    if guardians_file is not None:
        issues += _plan_guardians(
            registry, guardians_file, PupilDirectory(candidates), plan, report, tracker
        )
    elif departed:
        _plan_departures(registry, departed, plan, report)

    order = {x.filename: position for position, x in enumerate(extractions)}
    report.issues = sorted(issues, key=lambda i: (order.get(i.filename, 0), i.line))
    if not dry_run:
        _apply(session, plan, tracker)
        _record_import(session, actor=actor, report=report, plan=plan)
        # Surface constraint errors here, inside the caller's transaction.
        session.flush()
    tracker.finish()
    return report


def _read_files(
    files: Sequence[tuple[str, bytes]], now: datetime
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
        extraction = read_extraction(data, filename=shown, today=now.date())
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


# --- What the registry holds ------------------------------------------------------------------


@dataclass
class _Registry:
    """The school's current rows, loaded once (plain dicts, not ORM objects: cheaper)."""

    classes: dict[int, dict[str, Any]]
    pupils: dict[int, dict[str, Any]]
    guardians: dict[int, dict[str, Any]]
    accounts: dict[int, dict[str, Any]]  # by guardian id
    links: dict[int, set[int]]  # guardian id -> pupil ids

    @classmethod
    def load(cls, session: Session, school_id: int) -> _Registry:
        connection = session.connection()

        def rows(*columns: Any, where: Any) -> list[dict[str, Any]]:
            result = connection.execute(select(*columns).where(where))
            keys = list(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]

        class_columns = [getattr(SchoolClass, key) for key in _CLASS_UPDATE_KEYS]
        pupil_columns = [getattr(Pupil, key) for key in _PUPIL_UPDATE_KEYS if key != "updated_at"]
        guardian_columns = [Guardian.id, *(getattr(Guardian, key) for key in _GUARDIAN_SOURCES)]
        in_school = col(Guardian.school_id) == school_id
        accounts = rows(
            Account.id,
            Account.guardian_id,
            Account.deactivated_at,
            Account.state,
            where=col(Account.guardian_id).in_(select(col(Guardian.id)).where(in_school)),
        )
        links: dict[int, set[int]] = defaultdict(set)
        for link in rows(
            PupilGuardian.pupil_id,
            PupilGuardian.guardian_id,
            where=col(PupilGuardian.guardian_id).in_(select(col(Guardian.id)).where(in_school)),
        ):
            links[link["guardian_id"]].add(link["pupil_id"])
        return cls(
            classes={
                r["id"]: r for r in rows(*class_columns, where=SchoolClass.school_id == school_id)
            },
            pupils={r["id"]: r for r in rows(*pupil_columns, where=Pupil.school_id == school_id)},
            guardians={r["id"]: r for r in rows(*guardian_columns, where=in_school)},
            accounts={r["guardian_id"]: r for r in accounts},
            links=links,
        )


# --- What the import will write ---------------------------------------------------------------


@dataclass
class _Plan:
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


class _Progress:
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


# --- Pupils and classes -----------------------------------------------------------------------


def _plan_pupils(
    registry: _Registry,
    extraction: PupilExtraction,
    plan: _Plan,
    report: ImportReport,
    tracker: _Progress,
) -> tuple[list[PupilCandidate], set[int]]:
    """Plan the pupils and classes; returns the pupils guardians may link to, and the ids
    of the pupils who left."""
    if not extraction.rows:
        rejected = [i for i in extraction.issues if i.severity == "rejected"]
        raise messages.file_error(
            "no_valid_pupil",
            filename=extraction.filename,
            rejected=len(rejected),
            example=rejected[0].message if rejected else "",
            issues=extraction.issues,
        )
    known = [
        KnownPupil(
            id=p["id"],
            ine=p["ine"],
            identity=(name_key(p["last_name"]), name_key(p["first_name"]), p["birth_date"]),
            address_key=address_key(p["address"], p["postcode"]),
            archived=p["archived_at"] is not None,
        )
        for p in registry.pupils.values()
    ]
    matches = match_pupils(extraction.rows, known)
    matched_ids = set(matches.values())
    protected = _protected_pupils(registry, extraction.rejected_pupils, matched_ids)
    class_refs = _plan_classes(registry, extraction, protected, plan, report)
    columns = extraction.columns
    candidates: list[PupilCandidate] = []
    counts = report.pupils
    for index, row in enumerate(extraction.rows):
        class_key = class_label_key(row.class_label) if row.class_label else None
        class_ref = class_refs[class_key] if class_key else None
        values = {name: getattr(row, name) for name in _PUPIL_SOURCES}
        existing_id = matches.get(index)
        if existing_id is None:
            key = plan.new_key()
            plan.pupil_inserts.append(
                (
                    key,
                    {
                        "school_id": plan.school_id,
                        "class_id": class_ref,
                        "ine": row.ine,
                        **values,
                        "created_at": plan.now,
                        "updated_at": plan.now,
                        "archived_at": None,
                    },
                )
            )
            counts.added += 1
        else:
            key = existing_id
            old = registry.pupils[existing_id]
            new = dict(old)
            new.update(
                (name, value)
                for name, value in values.items()
                if _PUPIL_SOURCES[name] is None or _PUPIL_SOURCES[name] in columns
            )
            # An INE never disappears: a file without the column keeps the one we know.
            new.update(class_id=class_ref, ine=row.ine or old["ine"], archived_at=None)
            if new != old:
                plan.pupil_updates.append(new | {"updated_at": plan.now})
                counts.updated += 1
            else:
                counts.unchanged += 1
        candidates.append(
            PupilCandidate(
                key=key,
                first_name=name_key(row.first_name),
                names=(name_key(row.last_name), name_key(row.usage_name)),
                class_key=class_key,
                class_levels=tuple(levels_in_label(row.class_label)),
                level=row.level,
                address_key=row.address_key,
            )
        )
        tracker.advance()

    departed: set[int] = set()
    for pupil in registry.pupils.values():
        if pupil["id"] in matched_ids or pupil["id"] in protected or pupil["archived_at"]:
            continue
        plan.pupil_updates.append(pupil | {"archived_at": plan.now, "updated_at": plan.now})
        departed.add(pupil["id"])
        counts.retired += 1
    # Pupils whose new line was rejected stay as they were, children of their guardians.
    candidates += [_candidate(registry, registry.pupils[pupil_id]) for pupil_id in protected]
    return candidates, departed


def _protected_pupils(
    registry: _Registry, rejected: list[RejectedPupil], matched_ids: set[int]
) -> set[int]:
    """Enrolled pupils whose line in the new file was rejected: they are neither updated nor
    archived (a typo in ONDE must not make a child leave and lock their parents out)."""
    by_ine: dict[str, int] = {}
    by_names: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pupil in registry.pupils.values():
        if pupil["archived_at"] is not None or pupil["id"] in matched_ids:
            continue
        if pupil["ine"]:
            by_ine[pupil["ine"]] = pupil["id"]
        by_names[(name_key(pupil["last_name"]), name_key(pupil["first_name"]))].append(pupil["id"])
    protected: set[int] = set()
    for line in rejected:
        if line.ine and line.ine in by_ine:
            protected.add(by_ine[line.ine])
            continue
        same_names = by_names.get((name_key(line.last_name), name_key(line.first_name)), [])
        if len(same_names) == 1:
            protected.add(same_names[0])
    return protected


def _plan_classes(
    registry: _Registry,
    extraction: PupilExtraction,
    protected: set[int],
    plan: _Plan,
    report: ImportReport,
) -> dict[str, int]:
    """Plan the classes; returns label key → class key (id, or negative for a new class)."""
    labels: dict[str, str] = {}
    onde_ids: dict[str, str | None] = {}
    levels: dict[str, set[str]] = defaultdict(set)
    for row in extraction.rows:
        if row.class_label is None:
            continue
        key = class_label_key(row.class_label)
        labels.setdefault(key, row.class_label)
        if not onde_ids.get(key):
            onde_ids[key] = row.class_onde_id
        if row.level:
            levels[key].add(row.level)
    kept_levels: dict[int, set[str]] = defaultdict(set)
    for pupil_id in protected:
        pupil = registry.pupils[pupil_id]
        if pupil["class_id"] is not None:
            kept_levels[pupil["class_id"]].update([pupil["level"]] if pupil["level"] else [])

    by_key = {c["label_key"]: c for c in registry.classes.values()}
    by_onde_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for school_class in sorted(registry.classes.values(), key=lambda c: c["id"]):
        if school_class["onde_id"]:
            by_onde_id[school_class["onde_id"]].append(school_class)
    refs: dict[str, int] = {}
    used: set[int] = set()
    counts = report.classes
    for key, label in labels.items():
        existing = by_key.get(key)
        onde_id = onde_ids.get(key)
        if existing is None and onde_id:
            # A class renamed in ONDE keeps its identifier there.
            existing = next(
                (
                    c
                    for c in by_onde_id.get(onde_id, ())
                    if c["id"] not in used and c["label_key"] not in labels
                ),
                None,
            )
        present = levels[key] | (kept_levels.get(existing["id"], set()) if existing else set())
        values = {
            "label": label,
            "label_key": key,
            "onde_id": onde_id,
            "levels": levels_text(present) or levels_text(levels_in_label(label)),
            "archived_at": None,
        }
        if existing is None:
            refs[key] = plan.new_key()
            plan.class_inserts.append((refs[key], {"school_id": plan.school_id, **values}))
            counts.added += 1
            continue
        used.add(existing["id"])
        refs[key] = existing["id"]
        if "class_onde_id" not in extraction.columns:
            values["onde_id"] = existing["onde_id"]
        new = existing | values
        if new != existing:
            plan.class_updates.append(new)
            counts.updated += 1
        else:
            counts.unchanged += 1
    for school_class in registry.classes.values():
        if school_class["id"] in used or school_class["archived_at"] is not None:
            continue
        if school_class["id"] in kept_levels:
            continue  # a pupil kept as they were is still in it
        plan.class_updates.append(school_class | {"archived_at": plan.now})
        counts.retired += 1
    return refs


def _candidate(registry: _Registry, pupil: dict[str, Any]) -> PupilCandidate:
    school_class = registry.classes.get(pupil["class_id"]) if pupil["class_id"] else None
    return PupilCandidate(
        key=pupil["id"],
        first_name=name_key(pupil["first_name"]),
        names=(name_key(pupil["last_name"]), name_key(pupil["usage_name"])),
        class_key=school_class["label_key"] if school_class else None,
        class_levels=tuple(school_class["levels"].split(",")) if school_class else (),
        level=pupil["level"],
        address_key=address_key(pupil["address"], pupil["postcode"]),
    )


def _current_pupils(registry: _Registry) -> list[PupilCandidate]:
    """The school's enrolled pupils, for a guardians file imported on its own."""
    return [
        _candidate(registry, pupil)
        for pupil in registry.pupils.values()
        if pupil["archived_at"] is None
    ]


# --- Guardians, accounts, links ---------------------------------------------------------------


def _plan_guardians(
    registry: _Registry,
    extraction: GuardianExtraction,
    directory: PupilDirectory,
    plan: _Plan,
    report: ImportReport,
    tracker: _Progress,
) -> list[LineIssue]:
    """Plan guardians, their accounts and links; returns the lines' linking issues."""
    issues: list[LineIssue] = []
    accepted: list[tuple[GuardianRow, frozenset[int]]] = []
    for row in extraction.rows:
        children, line_issues = _link_children(row, directory, extraction.filename)
        issues += line_issues
        if children:
            accepted.append((row, children))
        tracker.advance()
    if not accepted:
        if directory.size == 0:
            raise messages.file_error("no_pupils_in_school", filename=extraction.filename)
        rejected = [i for i in extraction.issues + issues if i.severity == "rejected"]
        raise messages.file_error(
            "no_valid_guardian",
            filename=extraction.filename,
            rejected=len(rejected),
            example=rejected[0].message if rejected else "",
            issues=extraction.issues + issues,
        )

    known = [
        GuardianIdentity(
            key=g["id"],
            name_key=(name_key(g["last_name"]), name_key(g["first_name"])),
            email=g["email"],
            children=frozenset(registry.links.get(g["id"], ())),
        )
        for g in registry.guardians.values()
    ]
    incoming = [
        GuardianIdentity(key=index, name_key=row.name_key, email=row.email, children=children)
        for index, (row, children) in enumerate(accepted)
    ]
    matches = match_guardians(incoming, known)
    columns = extraction.columns
    counts = report.guardians
    for index, (row, children) in enumerate(accepted):
        values = {name: getattr(row, name) for name in _GUARDIAN_SOURCES}
        guardian_id = matches.get(index)
        if guardian_id is None:
            key = plan.new_key()
            plan.guardian_inserts.append(
                (
                    key,
                    {
                        "school_id": plan.school_id,
                        **values,
                        "created_at": plan.now,
                        "updated_at": plan.now,
                    },
                )
            )
            plan.account_inserts.append((key, row.first_name, row.last_name))
            plan.link_inserts += [(pupil, key) for pupil in sorted(children)]
            counts.added += 1
            report.accounts_created += 1
            report.links_added += len(children)
            continue
        old = registry.guardians[guardian_id]
        new = dict(old)
        new.update(
            (name, value)
            for name, value in values.items()
            if _GUARDIAN_SOURCES[name] is None or _GUARDIAN_SOURCES[name] in columns
        )
        account = registry.accounts.get(guardian_id)
        if account is not None and account["state"] in _FAMILY_EMAIL_STATES:
            # The family gave this address on the portal (and confirmed it, or is about to):
            # it wins over ONDE's, which the school may not have updated (SPEC §6).
            new["email"] = old["email"]
        linked = registry.links.get(guardian_id, set())
        added, removed = children - linked, linked - children
        plan.link_inserts += [(pupil, guardian_id) for pupil in sorted(added)]
        plan.link_deletes += [(pupil, guardian_id) for pupil in sorted(removed)]
        report.links_added += len(added)
        report.links_removed += len(removed)
        changed = new != old or bool(added or removed)
        if changed:
            plan.guardian_updates.append(new | {"updated_at": plan.now})
        if account is None:
            # A guardian without an account (never expected): give them one now.
            plan.account_inserts.append((guardian_id, row.first_name, row.last_name))
            report.accounts_created += 1
            changed = True
        elif account["deactivated_at"] is not None:
            plan.reactivate(account)
            report.accounts_reactivated += 1
            changed = True
        if changed:
            counts.updated += 1
        else:
            counts.unchanged += 1

    # Guardians the new extraction no longer lists: unlinked, their account deactivated.
    matched = set(matches.values())
    for guardian in registry.guardians.values():
        if guardian["id"] in matched:
            continue
        linked = registry.links.get(guardian["id"], set())
        plan.link_deletes += [(pupil, guardian["id"]) for pupil in sorted(linked)]
        report.links_removed += len(linked)
        _retire(registry, guardian["id"], plan, report)
    return issues


def _link_children(
    row: GuardianRow, directory: PupilDirectory, filename: str
) -> tuple[frozenset[int], list[LineIssue]]:
    """The pupils a guardian row names, and what could not be linked."""
    results = [directory.resolve(child, row.address_key) for child in row.children]
    linked = frozenset(r.pupil_key for r in results if r.pupil_key is not None)
    problems = [r for r in results if r.pupil_key is None]
    name = messages.person(row.first_name, row.usage_name or row.last_name)
    issues: list[LineIssue] = []
    if not linked:
        unknown = [r for r in problems if r.candidates == 0]
        if unknown:
            children = ", ".join(_child_text(r) for r in unknown)
            issues.append(
                messages.rejected(
                    "unknown_child_rejected",
                    filename=filename,
                    line=row.line,
                    name=name,
                    children=children,
                )
            )
        else:
            issues.append(
                messages.rejected(
                    "ambiguous_child_rejected",
                    filename=filename,
                    line=row.line,
                    **_child_params(problems[0], name),
                )
            )
        return linked, issues
    for result in problems:
        template = "unknown_child_warning" if result.candidates == 0 else "ambiguous_child_warning"
        issues.append(
            messages.warning(
                template, filename=filename, line=row.line, **_child_params(result, name)
            )
        )
    return linked, issues


def _child_params(result: ChildMatch, name: str) -> dict[str, Any]:
    child = result.child
    return {
        "name": name,
        "child": messages.person(child.first_name, child.usage_name or child.last_name),
        "child_class": child.class_label or messages.class_not_given(),
        "count": result.candidates,
    }


def _child_text(result: ChildMatch) -> str:
    params = _child_params(result, "")
    return messages.child_in_class(params["child"], params["child_class"])


def _plan_departures(
    registry: _Registry, departed: set[int], plan: _Plan, report: ImportReport
) -> None:
    """An Élèves file alone: unlink the pupils who left; guardians left without any child
    have their account deactivated."""
    for guardian_id, linked in registry.links.items():
        gone = linked & departed
        if not gone:
            continue
        plan.link_deletes += [(pupil, guardian_id) for pupil in sorted(gone)]
        report.links_removed += len(gone)
        if not linked - gone:
            _retire(registry, guardian_id, plan, report)


def _retire(registry: _Registry, guardian_id: int, plan: _Plan, report: ImportReport) -> None:
    account = registry.accounts.get(guardian_id)
    if account is not None and account["deactivated_at"] is None:
        plan.deactivate(account)
        report.accounts_deactivated += 1
        report.guardians.retired += 1


# --- Writing ----------------------------------------------------------------------------------


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[start : start + _WRITE_CHUNK] for start in range(0, len(items), _WRITE_CHUNK)]


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
    from psycopg import sql  # only PostgreSQL deployments get here

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


def _apply(session: Session, plan: _Plan, tracker: _Progress) -> None:
    """Write the plan with bulk statements, in dependency order.

    Inserts go through Core (COPY on PostgreSQL): the ORM's bulk insert splits a batch
    wherever the pattern of empty values changes from one row to the next (a guardian with an
    e-mail, one without…), which made 30,000 guardians take a minute instead of a second.
    """
    tracker.start_writing(plan.writes)
    ids: dict[int, int] = {}

    def real(key: int | None) -> int | None:
        return ids[key] if key is not None and key < 0 else key

    postgresql = session.get_bind().dialect.name == "postgresql"

    def insert_rows(model: Any, rows: list[dict[str, Any]]) -> None:
        table = _table(model)
        for chunk in _chunks(rows):
            if postgresql:
                _copy_rows(session, table, chunk)
            else:
                session.exec(table.insert(), params=chunk)
            tracker.wrote(len(chunk))

    def insert_returning(model: Any, items: list[tuple[int, dict[str, Any]]]) -> None:
        table = _table(model)
        returning = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        for chunk in _chunks(items):
            keys = [key for key, _ in chunk]
            if postgresql:
                # psycopg re-parses every long multi-row INSERT … RETURNING: reserve the ids
                # from the sequence instead, and COPY the rows with them.
                new_ids = _reserve_ids(session, table, len(chunk))
                rows = [
                    values | {"id": new_id}
                    for (_, values), new_id in zip(chunk, new_ids, strict=True)
                ]
                _copy_rows(session, table, rows)
            else:
                new_ids = list(
                    session.exec(returning, params=[values for _, values in chunk]).scalars()
                )
            ids.update(zip(keys, new_ids, strict=True))
            tracker.wrote(len(chunk))

    def bulk_update(model: Any, rows: list[dict[str, Any]]) -> None:
        for chunk in _chunks(rows):
            session.exec(update(model), params=chunk)
            tracker.wrote(len(chunk))

    insert_returning(SchoolClass, plan.class_inserts)
    bulk_update(SchoolClass, plan.class_updates)
    for _, values in plan.pupil_inserts:
        values["class_id"] = real(values["class_id"])
    for values in plan.pupil_updates:
        values["class_id"] = real(values["class_id"])
    insert_returning(Pupil, plan.pupil_inserts)
    bulk_update(Pupil, plan.pupil_updates)
    insert_returning(Guardian, plan.guardian_inserts)
    bulk_update(Guardian, plan.guardian_updates)

    if plan.account_inserts:
        identifiers = allocate_identifiers(
            session, [(first, last) for _, first, last in plan.account_inserts]
        )
        insert_rows(
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
    bulk_update(Account, plan.account_updates)

    links = _table(PupilGuardian)
    delete_link = links.delete().where(
        links.c.pupil_id == bindparam("old_pupil"), links.c.guardian_id == bindparam("old_guardian")
    )
    for chunk in _chunks(plan.link_deletes):
        session.exec(delete_link, params=[{"old_pupil": p, "old_guardian": g} for p, g in chunk])
        tracker.wrote(len(chunk))
    insert_rows(
        PupilGuardian,
        [{"pupil_id": real(p), "guardian_id": real(g)} for p, g in plan.link_inserts],
    )


def _counts(counts: RecordCounts) -> dict[str, int]:
    return dict(vars(counts))


def _record_import(session: Session, *, actor: str, report: ImportReport, plan: _Plan) -> None:
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
        for chunk in _chunks(events):
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


__all__ = ["ProgressCallback", "import_roster"]
