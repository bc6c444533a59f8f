"""Read queries of the roster features: classes, guardians in a scope, their children, the
accounts export. A few set-based statements each, never one query per guardian.

« Enrolled » means what the statistics mean by it: a pupil not archived, in no archived class.
A guardian is « in » a scope when one of their enrolled children is, and is listed only with
an active (not deactivated) account, so lists add up with `bot.services.roster.statistics`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlmodel import Session, col

from models.tables import (
    Account,
    AccountState,
    DistributionChannel,
    Guardian,
    Pupil,
    PupilGuardian,
    SchoolClass,
)

# Values per `IN (…)`: far below SQLite's bound-parameter cap (32,766) and PostgreSQL's
# (65,535), and few round trips.
IN_CHUNK = 500

_T = TypeVar("_T")


def in_chunks(values: Iterable[_T], size: int = IN_CHUNK) -> Iterator[list[_T]]:
    """`values` cut into lists of at most `size`: by default each small enough for one
    `column.in_(…)`; callers batching writes pass their own size."""
    items = values if isinstance(values, list) else list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class ClassRow:
    """An active class of a school."""

    id: int
    label: str
    label_key: str
    levels: str


@dataclass(frozen=True)
class ChildRow:
    """One enrolled child of a guardian."""

    guardian_id: int
    first_name: str
    last_name: str
    class_label: str | None


@dataclass(frozen=True)
class GuardianRow:
    """A guardian with their account, as lists and the export show them."""

    guardian_id: int
    civility: str | None
    first_name: str
    last_name: str
    usage_name: str | None
    email: str | None
    phone_mobile: str | None
    phone_home: str | None
    phone_work: str | None
    account_id: int
    identifier: str
    state: AccountState
    distributed_at: datetime | None
    distribution_channel: DistributionChannel | None
    activated_at: datetime | None
    deactivated_at: datetime | None


def active_classes(session: Session, school_id: int) -> list[ClassRow]:
    """The school's classes that are not archived, in no particular order."""
    statement = select(
        col(SchoolClass.id),
        col(SchoolClass.label),
        col(SchoolClass.label_key),
        col(SchoolClass.levels),
    ).where(col(SchoolClass.school_id) == school_id, col(SchoolClass.archived_at).is_(None))
    return [
        ClassRow(id=id_, label=label, label_key=key, levels=levels or "")
        for id_, label, key, levels in session.execute(statement)
    ]


def enrolled_levels(session: Session, school_id: int) -> set[str]:
    """The levels of the school's enrolled pupils."""
    statement = (
        select(col(Pupil.level))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(*_enrolled(school_id), col(Pupil.level).is_not(None))
        .distinct()
    )
    return {level for (level,) in session.execute(statement) if level}


def _enrolled(school_id: int) -> list[ColumnElement[bool]]:
    # Needs `SchoolClass` outer-joined on the pupil's class (NULL `archived_at` when classless).
    return [
        col(Pupil.school_id) == school_id,
        col(Pupil.archived_at).is_(None),
        col(SchoolClass.archived_at).is_(None),
    ]


def _guardians_in_scope(school_id: int, class_id: int | None, level: str | None) -> Select[Any]:
    """The ids of the guardians with an enrolled child in the scope."""
    conditions = _enrolled(school_id)
    if class_id is not None:
        conditions.append(col(Pupil.class_id) == class_id)
    if level is not None:
        conditions.append(col(Pupil.level) == level)
    return (
        select(col(PupilGuardian.guardian_id))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(*conditions)
    )


def _has_email() -> ColumnElement[bool]:
    return and_(col(Guardian.email).is_not(None), col(Guardian.email) != "")


def _guardian_columns() -> tuple[Any, ...]:
    return (
        col(Guardian.id),
        col(Guardian.civility),
        col(Guardian.first_name),
        col(Guardian.last_name),
        col(Guardian.usage_name),
        col(Guardian.email),
        col(Guardian.phone_mobile),
        col(Guardian.phone_home),
        col(Guardian.phone_work),
        col(Account.id),
        col(Account.identifier),
        col(Account.state),
        col(Account.distributed_at),
        col(Account.distribution_channel),
        col(Account.activated_at),
        col(Account.deactivated_at),
    )


def _guardian_row(values: Sequence[object]) -> GuardianRow:
    return GuardianRow(*values)  # type: ignore[arg-type]


def guardians_page(
    session: Session,
    *,
    school_id: int,
    class_id: int | None = None,
    level: str | None = None,
    has_email: bool | None = None,
    states: Collection[AccountState] = (),
    offset: int = 0,
    limit: int = 15,
) -> tuple[int, list[GuardianRow]]:
    """How many guardians of the scope match the filters, and one page of them by name."""
    conditions: list[ColumnElement[bool]] = [
        col(Guardian.school_id) == school_id,
        col(Guardian.id).in_(_guardians_in_scope(school_id, class_id, level)),
        col(Account.deactivated_at).is_(None),
    ]
    if has_email is True:
        conditions.append(_has_email())
    elif has_email is False:
        conditions.append(or_(col(Guardian.email).is_(None), col(Guardian.email) == ""))
    if states:
        conditions.append(col(Account.state).in_(sorted(states)))
    base = select(*_guardian_columns()).join(Account, col(Account.guardian_id) == col(Guardian.id))
    total = session.execute(
        select(func.count())
        .select_from(Guardian)
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(*conditions)
    ).scalar_one()
    name = func.coalesce(func.nullif(col(Guardian.usage_name), ""), col(Guardian.last_name))
    page = session.execute(
        base.where(*conditions)
        .order_by(func.lower(name), func.lower(col(Guardian.first_name)), col(Guardian.id))
        .offset(offset)
        .limit(limit)
    )
    return int(total), [_guardian_row(values) for values in page]


def school_accounts(session: Session, school_id: int) -> list[GuardianRow]:
    """Every account of the school's guardians, deactivated ones included, by name."""
    name = func.coalesce(func.nullif(col(Guardian.usage_name), ""), col(Guardian.last_name))
    statement = (
        select(*_guardian_columns())
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(col(Guardian.school_id) == school_id)
        .order_by(func.lower(name), func.lower(col(Guardian.first_name)), col(Guardian.id))
    )
    return [_guardian_row(values) for values in session.execute(statement)]


def children_of(session: Session, guardian_ids: Sequence[int]) -> dict[int, list[ChildRow]]:
    """The enrolled children of each guardian, in class then first-name order."""
    children: dict[int, list[ChildRow]] = defaultdict(list)
    ids = sorted(set(guardian_ids))
    for chunk in in_chunks(ids):
        statement = (
            select(
                col(PupilGuardian.guardian_id),
                col(Pupil.first_name),
                func.coalesce(func.nullif(col(Pupil.usage_name), ""), col(Pupil.last_name)),
                col(SchoolClass.label),
            )
            .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
            .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
            .where(
                col(PupilGuardian.guardian_id).in_(chunk),
                col(Pupil.archived_at).is_(None),
                col(SchoolClass.archived_at).is_(None),
            )
        )
        for guardian_id, first_name, last_name, label in session.execute(statement):
            children[guardian_id].append(ChildRow(guardian_id, first_name, last_name, label))
    for rows in children.values():
        rows.sort(key=lambda row: ((row.class_label or "").casefold(), row.first_name.casefold()))
    return dict(children)


def never_notified_by_email(
    session: Session, *, school_id: int, class_id: int | None = None, level: str | None = None
) -> dict[bool, int]:
    """How many never-notified active accounts of the scope have an e-mail address (True) or
    not (False): who gets credentials by e-mail, who on paper."""
    has_email = _has_email()
    statement = (
        select(has_email, func.count())
        .select_from(Guardian)
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(
            col(Guardian.school_id) == school_id,
            col(Guardian.id).in_(_guardians_in_scope(school_id, class_id, level)),
            col(Account.deactivated_at).is_(None),
            col(Account.state) == AccountState.NOT_NOTIFIED,
        )
        .group_by(has_email)
    )
    counts = {True: 0, False: 0}
    for email, number in session.execute(statement):
        counts[bool(email)] += int(number)
    return counts
