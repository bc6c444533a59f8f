"""Compare ONDE extractions with what a school's registry holds, and decide every write of the
import (a `Plan`): classes, pupils and guardians to add, update or retire, accounts, links.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from bot.services.roster.classes import class_label_key, levels_in_label, levels_text
from bot.services.roster.onde import messages
from bot.services.roster.onde.matching import (
    ChildMatch,
    GuardianIdentity,
    KnownPupil,
    PupilCandidate,
    PupilDirectory,
    match_guardians,
    match_pupils,
)
from bot.services.roster.onde.normalise import address_key, name_key
from bot.services.roster.onde.reader import (
    GuardianExtraction,
    GuardianRow,
    PupilExtraction,
    RejectedPupil,
)
from bot.services.roster.onde.report import ImportReport, LineIssue
from bot.services.roster.onde.writing import Plan, Progress
from models import Account, AccountState, Guardian, Pupil, PupilGuardian, SchoolClass

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
# The columns `Registry` loads: what a plan compares, and writes back whole in its updates.
_PUPIL_COLUMNS = ("id", "class_id", "ine", *_PUPIL_SOURCES, "archived_at")
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
    "mobile_e164": "phone_mobile",  # computed by the reader, kept with the number it comes from
}
# Accounts whose e-mail address the family confirmed on the activation portal (by following the
# link sent there): a re-import keeps it. An `activating` account's typed address is only
# pending on its link, so ONDE's stays on file until it is confirmed.
_FAMILY_EMAIL_STATES = frozenset({AccountState.ACTIVATED.value})
_CLASS_COLUMNS = ("id", "label", "label_key", "onde_id", "levels", "archived_at")


# --- What the registry holds ------------------------------------------------------------------


@dataclass
class Registry:
    """The school's current rows, loaded once (plain dicts, not ORM objects: cheaper)."""

    classes: dict[int, dict[str, Any]]
    pupils: dict[int, dict[str, Any]]
    guardians: dict[int, dict[str, Any]]
    accounts: dict[int, dict[str, Any]]  # by guardian id
    links: dict[int, set[int]]  # guardian id -> pupil ids

    @classmethod
    def load(cls, session: Session, school_id: int) -> Registry:
        connection = session.connection()

        def rows(*columns: Any, where: Any) -> list[dict[str, Any]]:
            result = connection.execute(select(*columns).where(where))
            keys = list(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]

        class_columns = [getattr(SchoolClass, key) for key in _CLASS_COLUMNS]
        pupil_columns = [getattr(Pupil, key) for key in _PUPIL_COLUMNS]
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


# --- Pupils and classes -----------------------------------------------------------------------


def plan_pupils(
    registry: Registry,
    extraction: PupilExtraction,
    plan: Plan,
    report: ImportReport,
    tracker: Progress,
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
    matches = match_pupils(extraction.rows, _known_pupils(registry))
    matched_ids = set(matches.values())
    protected = _protected_pupils(registry, extraction.rejected_pupils, matched_ids)
    class_refs = _plan_classes(registry, extraction, protected, plan, report)
    candidates = _plan_pupil_rows(registry, extraction, matches, class_refs, plan, report, tracker)
    departed = _archive_departed(registry, matched_ids | protected, plan, report)
    # Pupils whose new line was rejected stay as they were, children of their guardians.
    candidates += [_candidate(registry, registry.pupils[pupil_id]) for pupil_id in protected]
    return candidates, departed


def _known_pupils(registry: Registry) -> list[KnownPupil]:
    return [
        KnownPupil(
            id=p["id"],
            ine=p["ine"],
            identity=(name_key(p["last_name"]), name_key(p["first_name"]), p["birth_date"]),
            address_key=address_key(p["address"], p["postcode"]),
            archived=p["archived_at"] is not None,
        )
        for p in registry.pupils.values()
    ]


def _plan_pupil_rows(
    registry: Registry,
    extraction: PupilExtraction,
    matches: dict[int, int],
    class_refs: dict[str, int],
    plan: Plan,
    report: ImportReport,
    tracker: Progress,
) -> list[PupilCandidate]:
    """Add or update the pupil of each row; returns them as guardians' possible children."""
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
    return candidates


def _archive_departed(
    registry: Registry, staying: set[int], plan: Plan, report: ImportReport
) -> set[int]:
    """Archive the enrolled pupils the file no longer lists; returns their ids."""
    departed: set[int] = set()
    for pupil in registry.pupils.values():
        if pupil["id"] in staying or pupil["archived_at"]:
            continue
        plan.pupil_updates.append(pupil | {"archived_at": plan.now, "updated_at": plan.now})
        departed.add(pupil["id"])
        report.pupils.retired += 1
    return departed


def _protected_pupils(
    registry: Registry, rejected: list[RejectedPupil], matched_ids: set[int]
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


@dataclass
class _FileClasses:
    """The classes an Élèves file names, by label key."""

    labels: dict[str, str]  # as first written in the file
    onde_ids: dict[str, str | None]
    levels: dict[str, set[str]]  # of the pupils in each

    @classmethod
    def of(cls, extraction: PupilExtraction) -> _FileClasses:
        classes = cls({}, {}, defaultdict(set))
        for row in extraction.rows:
            if row.class_label is None:
                continue
            key = class_label_key(row.class_label)
            classes.labels.setdefault(key, row.class_label)
            if not classes.onde_ids.get(key):
                classes.onde_ids[key] = row.class_onde_id
            if row.level:
                classes.levels[key].add(row.level)
        return classes


def _plan_classes(
    registry: Registry,
    extraction: PupilExtraction,
    protected: set[int],
    plan: Plan,
    report: ImportReport,
) -> dict[str, int]:
    """Plan the classes; returns label key → class key (id, or negative for a new class)."""
    in_file = _FileClasses.of(extraction)
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
    for key, label in in_file.labels.items():
        existing = by_key.get(key)
        onde_id = in_file.onde_ids.get(key)
        if existing is None and onde_id:
            # A class renamed in ONDE keeps its identifier there.
            existing = next(
                (
                    c
                    for c in by_onde_id.get(onde_id, ())
                    if c["id"] not in used and c["label_key"] not in in_file.labels
                ),
                None,
            )
        present = in_file.levels[key] | (
            kept_levels.get(existing["id"], set()) if existing else set()
        )
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
    _archive_empty_classes(registry, used | set(kept_levels), plan, report)
    return refs


def _archive_empty_classes(
    registry: Registry, kept: set[int], plan: Plan, report: ImportReport
) -> None:
    """Archive the classes the file no longer names, unless a pupil kept as they were (their
    line rejected) is still in one."""
    for school_class in registry.classes.values():
        if school_class["id"] in kept or school_class["archived_at"] is not None:
            continue
        plan.class_updates.append(school_class | {"archived_at": plan.now})
        report.classes.retired += 1


def _candidate(registry: Registry, pupil: dict[str, Any]) -> PupilCandidate:
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


def current_pupils(registry: Registry) -> list[PupilCandidate]:
    """The school's enrolled pupils, for a guardians file imported on its own."""
    return [
        _candidate(registry, pupil)
        for pupil in registry.pupils.values()
        if pupil["archived_at"] is None
    ]


# --- Guardians, accounts, links ---------------------------------------------------------------


def plan_guardians(
    registry: Registry,
    extraction: GuardianExtraction,
    directory: PupilDirectory,
    plan: Plan,
    report: ImportReport,
    tracker: Progress,
) -> list[LineIssue]:
    """Plan guardians, their accounts and links; returns the lines' linking issues."""
    accepted, issues = _accepted_guardians(extraction, directory, tracker)
    matches = _match_guardians(registry, accepted)
    _plan_guardian_rows(registry, extraction, accepted, matches, plan, report)
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


def _accepted_guardians(
    extraction: GuardianExtraction, directory: PupilDirectory, tracker: Progress
) -> tuple[list[tuple[GuardianRow, frozenset[int]]], list[LineIssue]]:
    """The rows with at least one child found in the school, with those children; and the
    linking issues. Refuses the file when no row is left."""
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
    return accepted, issues


def _match_guardians(
    registry: Registry, accepted: list[tuple[GuardianRow, frozenset[int]]]
) -> dict[int, int]:
    """Index in `accepted` → id of the registry guardian it describes."""
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
    return match_guardians(incoming, known)


def _plan_guardian_rows(
    registry: Registry,
    extraction: GuardianExtraction,
    accepted: list[tuple[GuardianRow, frozenset[int]]],
    matches: dict[int, int],
    plan: Plan,
    report: ImportReport,
) -> None:
    """Add or update each listed guardian, with their account and links."""
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
            # The family confirmed this address on the portal: it wins over ONDE's, which the
            # school may not have updated (docs/PRODUCT.md).
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


def plan_departures(
    registry: Registry, departed: set[int], plan: Plan, report: ImportReport
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


def _retire(registry: Registry, guardian_id: int, plan: Plan, report: ImportReport) -> None:
    account = registry.accounts.get(guardian_id)
    if account is not None and account["deactivated_at"] is None:
        plan.deactivate(account)
        report.accounts_deactivated += 1
        report.guardians.retired += 1


__all__ = ["Registry", "current_pupils", "plan_departures", "plan_guardians", "plan_pupils"]
