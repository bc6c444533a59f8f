"""The accounts per state and what is left to do, for many schools at once: per school and per
class, in one aggregate statement per 500 schools (a district's digests in a few queries).

Counted as `bot.services.roster.school_statistics` counts (/etat), over the same rows
(`bot.services.roster.enrolled_links`): enrolled pupils (not archived, in no archived class),
active accounts of their guardians; a guardian counts once in the school, and in each class
where they have a child.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    distinct,
    func,
    literal,
    null,
    select,
    tuple_,
    union_all,
)
from sqlmodel import Session, col

from bot.services.roster import Counts, enrolled_links
from models import Account, AccountState, Guardian, Pupil
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
    """The roster's enrolled links of these schools, with what each account needs next (the
    guardian's e-mail tells /envoyer from /pdf)."""
    return (
        enrolled_links(col(Pupil.school_id).in_(school_ids))
        .outerjoin(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .add_columns(_need(stale_before).label("need"))
    )


def _counted(links: Any) -> list[ColumnElement[Any]]:
    """The columns of a `Progress`, in `_progress`'s order. COUNT(DISTINCT …) because a
    guardian reaches a group once per child in it, and a pupil once per guardian: measured on
    PostgreSQL, one sorted pass with distinct counts costs half of de-duplicating the rows
    first with GROUP BY or DISTINCT (hash tables of 300,000 rows, spilled to disk)."""
    account, pupil, state, need = links.c.account_id, links.c.pupil_id, links.c.state, links.c.need
    return [
        func.count(distinct(account)),
        *(func.count(distinct(case((state == value, account)))) for value in AccountState),
        func.count(distinct(pupil)),
        func.count(distinct(case((state == AccountState.ACTIVATED, pupil)))),
        *(func.count(distinct(case((need == value, account)))) for value in _NEEDS.values()),
    ]


def _by_school_and_class(session: Session, links: Any) -> Any:
    """One row per school (`school_level` 1) and per class of it (NULL: the pupils without a
    class); PostgreSQL groups both levels in one pass (GROUPING SETS), SQLite twice."""
    school_id, class_id = links.c.school_id, links.c.class_id
    if session.get_bind().dialect.name == "postgresql":
        return select(school_id, class_id, func.grouping(class_id), *_counted(links)).group_by(
            func.grouping_sets(tuple_(school_id, class_id), tuple_(school_id))
        )
    return union_all(
        select(school_id, class_id, literal(0), *_counted(links)).group_by(school_id, class_id),
        select(school_id, null(), literal(1), *_counted(links)).group_by(school_id),
    )


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
    found: dict[tuple[int, int | None], Progress] = {}
    for chunk in in_chunks(sorted(set(school_ids))):
        links = _links(chunk, stale_before).cte("links")
        for school_id, class_id, school_level, *values in session.execute(
            _by_school_and_class(session, links)
        ):
            if school_level:
                found[(int(school_id), None)] = _progress(values)
            elif class_id is not None:
                found[(int(school_id), int(class_id))] = _progress(values)
    return found


def school_totals(
    session: Session, *, school_ids: Sequence[int], stale_before: datetime
) -> dict[int, Progress]:
    """The progress of each whole school, without the per-class work of `school_progress`
    (the same numbers as its `(school_id, None)` keys); schools without pupils are absent."""
    found: dict[int, Progress] = {}
    for chunk in in_chunks(sorted(set(school_ids))):
        links = _links(chunk, stale_before).subquery("links")
        statement = select(links.c.school_id, *_counted(links)).group_by(links.c.school_id)
        for school_id, *values in session.execute(statement):
            found[int(school_id)] = _progress(values)
    return found
