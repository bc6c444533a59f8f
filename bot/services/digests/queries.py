"""The digest's other read queries, for many schools at once: who is not green yet, who was
reminded, the previous digest, the open help requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models import (
    Account,
    AccountState,
    DigestRun,
    FamilyReminder,
    Guardian,
    HelpRequest,
    HelpStatus,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
)
from models.queries import in_chunks


def as_utc(moment: datetime) -> datetime:
    """`moment` made aware: SQLite gives back the stored UTC datetimes naive."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class GuardianName:
    """A guardian as the digest names them, with the state of their account."""

    guardian_id: int
    civility: str | None
    first_name: str
    last_name: str
    state: AccountState

    @property
    def name(self) -> str:
        """« Mme Céline DUPONT »."""
        parts = (self.civility, self.first_name, self.last_name.upper())
        return " ".join(part for part in parts if part)

    @property
    def sort_key(self) -> tuple[str, str, int]:
        return (self.last_name.casefold(), self.first_name.casefold(), self.guardian_id)


def _guardian_columns() -> tuple[Any, ...]:
    return (
        col(Guardian.id),
        col(Guardian.civility),
        col(Guardian.first_name),
        func.coalesce(func.nullif(col(Guardian.usage_name), ""), col(Guardian.last_name)),
        col(Account.state),
    )


def _guardian_name(values: Sequence[Any]) -> GuardianName:
    guardian_id, civility, first_name, last_name, state = values
    return GuardianName(guardian_id, civility, first_name, last_name, AccountState(state))


def schools_by_id(session: Session, school_ids: Sequence[int]) -> dict[int, School]:
    """The schools that exist among `school_ids`."""
    found: dict[int, School] = {}
    for chunk in in_chunks(sorted(set(school_ids))):
        for school in session.execute(select(School).where(col(School.id).in_(chunk))).scalars():
            assert school.id is not None
            found[school.id] = school
    return found


def not_activated_by_class(
    session: Session, *, school_ids: Sequence[int]
) -> dict[int, dict[int | None, list[GuardianName]]]:
    """Per school, every guardian of an enrolled pupil whose active account is not activated,
    per class of the child (in each of their children's classes; None: no class), by name."""
    found: dict[int, dict[int | None, dict[int, GuardianName]]] = defaultdict(dict)
    for chunk in in_chunks(sorted(set(school_ids))):
        statement = (
            select(col(Pupil.school_id), col(Pupil.class_id), *_guardian_columns())
            .select_from(Pupil)
            .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .join(Guardian, col(Guardian.id) == col(PupilGuardian.guardian_id))
            .join(Account, col(Account.guardian_id) == col(Guardian.id))
            .where(
                col(Pupil.school_id).in_(chunk),
                col(Pupil.archived_at).is_(None),
                col(SchoolClass.archived_at).is_(None),
                col(Account.deactivated_at).is_(None),
                col(Account.state) != AccountState.ACTIVATED,
            )
            .distinct()
        )
        for school_id, class_id, *values in session.execute(statement):
            guardian = _guardian_name(values)
            found[school_id].setdefault(class_id, {})[guardian.guardian_id] = guardian
    return {
        school_id: {
            class_id: sorted(names.values(), key=lambda guardian: guardian.sort_key)
            for class_id, names in classes.items()
        }
        for school_id, classes in found.items()
    }


def reminded_between(
    session: Session, *, since: dict[int, datetime], until: datetime
) -> dict[int, list[GuardianName]]:
    """Per school, the guardians automatically reminded in (`since[school]`, `until`], by
    name, each once."""
    found: dict[int, dict[int, GuardianName]] = defaultdict(dict)
    if not since:
        return {}
    earliest = min(since.values())
    for chunk in in_chunks(sorted(since)):
        statement = (
            select(col(FamilyReminder.school_id), col(FamilyReminder.sent_at), *_guardian_columns())
            .select_from(FamilyReminder)
            .join(Account, col(Account.id) == col(FamilyReminder.account_id))
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(
                col(FamilyReminder.school_id).in_(chunk),
                col(FamilyReminder.sent_at) > earliest,
                col(FamilyReminder.sent_at) <= until,
            )
        )
        for school_id, sent_at, *values in session.execute(statement):
            if as_utc(sent_at) > since[school_id]:
                guardian = _guardian_name(values)
                found[school_id][guardian.guardian_id] = guardian
    return {
        school_id: sorted(names.values(), key=lambda guardian: guardian.sort_key)
        for school_id, names in found.items()
    }


def previous_digests(
    session: Session, *, school_ids: Sequence[int], before: datetime
) -> dict[int, tuple[datetime, dict[str, Any]]]:
    """Per school, when its last digest was sent (at or before `before`), and its snapshot."""
    found: dict[int, tuple[datetime, dict[str, Any]]] = {}
    for chunk in in_chunks(sorted(set(school_ids))):
        latest = (
            select(col(DigestRun.school_id), func.max(col(DigestRun.sent_at)).label("sent_at"))
            .where(
                col(DigestRun.school_id).in_(chunk),
                col(DigestRun.sent_at).is_not(None),
                col(DigestRun.sent_at) <= before,
            )
            .group_by(col(DigestRun.school_id))
            .subquery()
        )
        statement = (
            select(col(DigestRun.school_id), col(DigestRun.sent_at), col(DigestRun.snapshot))
            .join(
                latest,
                (latest.c.school_id == col(DigestRun.school_id))
                & (latest.c.sent_at == col(DigestRun.sent_at)),
            )
            .order_by(col(DigestRun.id))
        )
        for school_id, sent_at, snapshot in session.execute(statement):
            # Two digests sent at the same instant: the last one written wins.
            found[school_id] = (as_utc(sent_at), dict(snapshot or {}))
    return found


def open_request_counts(session: Session, *, school_ids: Sequence[int]) -> dict[int, int]:
    """Per school, its help requests open or in progress (as `unsettled_request_count`)."""
    found: dict[int, int] = {}
    for chunk in in_chunks(sorted(set(school_ids))):
        statement = (
            select(col(HelpRequest.school_id), func.count())
            .where(
                col(HelpRequest.school_id).in_(chunk),
                col(HelpRequest.status).in_([HelpStatus.OPEN, HelpStatus.IN_PROGRESS]),
            )
            .group_by(col(HelpRequest.school_id))
        )
        found.update({school_id: int(count) for school_id, count in session.execute(statement)})
    return found
