"""The accounts per state and what is left to do, for many schools at once: per school and per
class, in one aggregate statement per 500 schools (a district's digests in a few queries).

Counted as `bot.services.roster.school_statistics` counts (/etat): enrolled pupils (not
archived, in no archived class), active accounts of their guardians; a guardian counts once in
the school, and in each class where they have a child.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlmodel import Session, col

from bot.services.roster import Counts
from models import Account, AccountState, Guardian, Pupil, PupilGuardian, SchoolClass
from models.queries import in_chunks


@dataclass(frozen=True)
class ToDoCounts:
    """Accounts of a class (or of the school) that need one of the next actions."""

    email_never_notified: int = 0
    paper_never_notified: int = 0
    remind_stale: int = 0
    confirm_pending: int = 0


@dataclass(frozen=True)
class Progress:
    """The counts of a school (`class_id` None) or of one of its classes."""

    counts: Counts
    to_do: ToDoCounts


EMPTY = Progress(Counts(), ToDoCounts())


# What an account needs next (`_links`'s « need » column), 0 for nothing.
_NEEDS = {
    "email_never_notified": 1,
    "paper_never_notified": 2,
    "remind_stale": 3,
    "confirm_pending": 4,
}


def _need(stale_before: datetime) -> ColumnElement[int]:
    email, state = col(Guardian.email), col(Account.state)
    has_email = and_(email.is_not(None), email != "")
    return case(
        (and_(state == AccountState.NOT_NOTIFIED, has_email), _NEEDS["email_never_notified"]),
        (state == AccountState.NOT_NOTIFIED, _NEEDS["paper_never_notified"]),
        (
            and_(state == AccountState.NOTIFIED, col(Account.distributed_at) < stale_before),
            _NEEDS["remind_stale"],
        ),
        (state == AccountState.ACTIVATING, _NEEDS["confirm_pending"]),
        else_=0,
    )


def _links(school_ids: Sequence[int], stale_before: datetime) -> Any:
    """One row per (enrolled pupil, active account of one of their guardians), with what the
    account needs next; a pupil without any active account gets one row with NULL account
    columns."""
    return (
        select(
            col(Pupil.school_id).label("school_id"),
            col(Pupil.class_id).label("class_id"),
            col(Pupil.id).label("pupil_id"),
            col(Account.id).label("account_id"),
            col(Account.state).label("state"),
            _need(stale_before).label("need"),
        )
        .select_from(Pupil)
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .outerjoin(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
        .outerjoin(
            Account,
            and_(
                col(Account.guardian_id) == col(PupilGuardian.guardian_id),
                col(Account.deactivated_at).is_(None),
            ),
        )
        .outerjoin(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .where(
            col(Pupil.school_id).in_(school_ids),
            col(Pupil.archived_at).is_(None),
            col(SchoolClass.archived_at).is_(None),
        )
        .cte("links")
    )


def _accounts(links: Any, *, by_class: bool) -> Any:
    """Accounts per state and next action, per school or per class. Each account once per
    group (DISTINCT first, then plain sums: far cheaper than one COUNT(DISTINCT) per column)."""
    keys = [links.c.school_id, links.c.class_id] if by_class else [links.c.school_id]
    accounts = (
        select(
            *keys,
            links.c.account_id,
            links.c.state,
            links.c.need,
        )
        .where(links.c.account_id.is_not(None))
        .distinct()
        .subquery()
    )
    state = accounts.c.state

    def where(*conditions: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((and_(*conditions), 1), else_=0))

    query = select(
        cast(literal("class" if by_class else "school"), String),
        accounts.c.school_id,
        accounts.c.class_id if by_class else null(),
        func.count(),
        *(where(state == value) for value in AccountState),
        literal(0),
        literal(0),
        *(where(accounts.c.need == need) for need in _NEEDS.values()),
    )
    if by_class:
        return query.where(accounts.c.class_id.is_not(None)).group_by(
            accounts.c.school_id, accounts.c.class_id
        )
    return query.group_by(accounts.c.school_id)


def _pupils(links: Any) -> Any:
    """Pupils, and pupils with an activated guardian, per class (NULL: no class): a pupil is
    in one class, so the school's totals are the sums."""
    pupils = (
        select(
            links.c.school_id,
            links.c.class_id,
            links.c.pupil_id,
            func.max(case((links.c.state == AccountState.ACTIVATED, 1), else_=0)).label("covered"),
        )
        .group_by(links.c.school_id, links.c.class_id, links.c.pupil_id)
        .subquery()
    )
    zeros = [literal(0)] * 5
    return select(
        cast(literal("pupils"), String),
        pupils.c.school_id,
        pupils.c.class_id,
        *zeros,
        func.count(),
        func.sum(pupils.c.covered),
        *[literal(0)] * 4,
    ).group_by(pupils.c.school_id, pupils.c.class_id)


def _progress(values: Sequence[Any]) -> Progress:
    numbers = [int(value or 0) for value in values]
    counts = Counts(
        accounts=numbers[0],
        not_notified=numbers[1],
        notified=numbers[2],
        activating=numbers[3],
        activated=numbers[4],
        pupils=numbers[5],
        pupils_with_activated_guardian=numbers[6],
    )
    return Progress(counts, ToDoCounts(*numbers[7:11]))


def school_progress(
    session: Session, *, school_ids: Sequence[int], stale_before: datetime
) -> dict[tuple[int, int | None], Progress]:
    """The progress of each school (key `(school_id, None)`) and of each class with enrolled
    pupils (`(school_id, class_id)`); « stale » is notified before `stale_before`. Schools and
    classes without pupils are absent: `EMPTY`."""
    rows: dict[tuple[int, int | None], list[int]] = {}
    pupils: dict[tuple[int, int | None], tuple[int, int]] = {}
    for chunk in in_chunks(sorted(set(school_ids))):
        links = _links(chunk, stale_before)
        statement = union_all(
            _accounts(links, by_class=False),
            _accounts(links, by_class=True),
            _pupils(links),
        )
        for kind, school_id, class_id, *values in session.execute(statement):
            numbers = [int(value or 0) for value in values]
            if kind == "pupils":
                pupils[(int(school_id), class_id)] = (numbers[5], numbers[6])
            else:
                key = (int(school_id), int(class_id) if kind == "class" else None)
                rows[key] = numbers
    # The school's pupils: every class's, and those without a class.
    for (school_id, class_id), (count, covered) in list(pupils.items()):
        if class_id is not None:
            total = pupils.get((school_id, None), (0, 0))
            pupils[(school_id, None)] = (total[0] + count, total[1] + covered)
    for key, (count, covered) in pupils.items():
        numbers = rows.setdefault(key, [0] * 11)
        numbers[5:7] = [count, covered]
    return {key: _progress(numbers) for key, numbers in rows.items()}
