"""The « Statistiques »: account states and both percentages, per school, class and
level, computed by aggregate queries in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from bot.services.roster.classes import LEVELS
from models import Account, AccountState, Pupil, PupilGuardian, SchoolClass

__all__ = [
    "LEVELS",
    "Counts",
    "GroupCounts",
    "SchoolStatistics",
    "class_statistics",
    "enrolled_links",
    "level_sort_key",
    "parse_levels",
    "school_statistics",
]

_LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}


@dataclass(frozen=True, kw_only=True)
class Counts:
    """Accounts per state and pupils covered, for one scope (school, class or level)."""

    accounts: int = 0
    not_notified: int = 0
    notified: int = 0
    activating: int = 0
    activated: int = 0
    pupils: int = 0
    pupils_with_activated_guardian: int = 0

    @property
    def activated_accounts_percent(self) -> float:
        """« % de comptes responsables activés » (0 when there is no account)."""
        return _percent(self.activated, self.accounts)

    @property
    def pupils_with_activated_guardian_percent(self) -> float:
        """« % d'élèves ayant au moins un responsable avec un compte activé » (0 without pupils)."""
        return _percent(self.pupils_with_activated_guardian, self.pupils)

    def by_state(self) -> dict[AccountState, int]:
        """The number of accounts in each state, in the order of the lights."""
        return {state: getattr(self, state.value) for state in AccountState}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, percentages included."""
        return asdict(self) | {
            "activated_accounts_percent": round(self.activated_accounts_percent, 2),
            "pupils_with_activated_guardian_percent": round(
                self.pupils_with_activated_guardian_percent, 2
            ),
        }


@dataclass(frozen=True, kw_only=True)
class GroupCounts(Counts):
    """The counts of one class (`class_id` set) or one level (`label` is the level)."""

    label: str
    class_id: int | None = None
    levels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["levels"] = list(self.levels)
        return data


@dataclass(frozen=True)
class SchoolStatistics:
    """The statistics of one school, or of the part of it a filter selected.

    `total` covers the whole scope: a guardian counts once there, but in every class and level
    where they have a child, so class or level totals can add up to more than `total`.
    """

    school_id: int
    total: Counts
    classes: list[GroupCounts] = field(default_factory=list)
    levels: list[GroupCounts] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for `--json` and for tests."""
        return {
            "school_id": self.school_id,
            "total": self.total.to_dict(),
            "classes": [group.to_dict() for group in self.classes],
            "levels": [group.to_dict() for group in self.levels],
        }


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def parse_levels(levels: str) -> tuple[str, ...]:
    """The levels of a class from its stored form (« CE2,CM1 »)."""
    return tuple(level for level in (item.strip() for item in levels.split(",")) if level)


def level_sort_key(level: str | None) -> tuple[int, str]:
    """Sorts levels in school order, unknown ones after, alphabetically."""
    if level is None:
        return (len(LEVELS) + 1, "")
    return (_LEVEL_RANK.get(level, len(LEVELS)), level)


def _class_sort_key(group: GroupCounts) -> tuple[tuple[int, str], str, int]:
    first_level = group.levels[0] if group.levels else None
    return (level_sort_key(first_level), group.label.casefold(), group.class_id or 0)


# --- queries ------------------------------------------------------------------------------
#
# One statement reads the school's enrolled pupils (by the index on school_id), their links
# (primary key of pupil_guardian) and active accounts (unique index on guardian_id) once, into
# a CTE, then aggregates it three ways. No correlated subquery: its per-row cost estimate would
# push a large school past PostgreSQL's JIT threshold, which costs more than the query itself.

_TOTAL, _CLASS, _LEVEL = "total", "class", "level"


def enrolled_links(*conditions: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """One row per (enrolled pupil, active account of one of their guardians), pupils without
    any active account once with NULL account columns: `school_id`, `class_id`, `level`,
    `pupil_id`, `account_id`, `state`. `conditions` choose the pupils (a school, a class…).

    The rows both /etat and the digests count; callers may join more (the digests join the
    guardian for their e-mail) and add columns."""
    # A pupil counts while enrolled: not archived, and not in an archived class (the left join
    # leaves `archived_at` NULL for pupils without a class).
    return (
        select(
            col(Pupil.school_id).label("school_id"),
            col(Pupil.class_id).label("class_id"),
            col(Pupil.level).label("level"),
            col(Pupil.id).label("pupil_id"),
            col(Account.id).label("account_id"),
            col(Account.state).label("state"),
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
        .where(
            col(Pupil.archived_at).is_(None), col(SchoolClass.archived_at).is_(None), *conditions
        )
    )


def _links(school_id: int, class_id: int | None, level: str | None) -> Any:
    """The school's enrolled links, or those of one of its classes or levels."""
    conditions: list[ColumnElement[bool]] = [col(Pupil.school_id) == school_id]
    if class_id is not None:
        conditions.append(col(Pupil.class_id) == class_id)
    if level is not None:
        conditions.append(col(Pupil.level) == level)
    return enrolled_links(*conditions).cte("links")


def _aggregate(links: Any, kind: str, key: ColumnElement[Any] | None) -> Select[*tuple[Any, ...]]:
    # COUNT(DISTINCT …) because a guardian reaches a group once per child in it, and a pupil
    # once per guardian.
    account, pupil, state = links.c.account_id, links.c.pupil_id, links.c.state
    query = select(
        cast(literal(kind), String).label("kind"),
        (cast(key, String) if key is not None else null()).label("key"),
        func.count(distinct(account)),
        *(func.count(distinct(case((state == value, account)))) for value in AccountState),
        func.count(distinct(pupil)),
        func.count(distinct(case((state == AccountState.ACTIVATED, pupil)))),
    ).select_from(links)
    if key is None:
        return query
    return query.where(key.is_not(None)).group_by(key)


class _CountValues(TypedDict):
    accounts: int
    not_notified: int
    notified: int
    activating: int
    activated: int
    pupils: int
    pupils_with_activated_guardian: int


def _counts(row: Sequence[Any] | None) -> _CountValues:
    # A row holds the columns of _aggregate() after kind and key; no row means zero.
    values = [int(value or 0) for value in (row or (0,) * 7)]
    return _CountValues(
        accounts=values[0],
        not_notified=values[1],
        notified=values[2],
        activating=values[3],
        activated=values[4],
        pupils=values[5],
        pupils_with_activated_guardian=values[6],
    )


def school_statistics(
    session: Session, *, school_id: int, class_id: int | None = None, level: str | None = None
) -> SchoolStatistics:
    """The statistics of a school, or of one of its classes (`class_id`) or levels (`level`).

    With a filter, `total` is the filtered scope; `classes` and `levels` break it down (the
    levels of a multi-level class, or the classes that have pupils of a level).
    """
    links = _links(school_id, class_id, level)
    statement = union_all(
        _aggregate(links, _TOTAL, None),
        _aggregate(links, _CLASS, links.c.class_id),
        _aggregate(links, _LEVEL, links.c.level),
    )
    rows: dict[str, dict[str, Sequence[Any]]] = {_TOTAL: {}, _CLASS: {}, _LEVEL: {}}
    for kind, key, *values in session.execute(statement):
        rows[kind][key or ""] = values

    levels = [GroupCounts(label=key, **_counts(values)) for key, values in rows[_LEVEL].items()]
    levels.sort(key=lambda group: level_sort_key(group.label))

    # Classes come from their own table, so that a class without pupils yet shows, with zeros.
    classes_query = select(
        col(SchoolClass.id), col(SchoolClass.label), col(SchoolClass.levels)
    ).where(col(SchoolClass.school_id) == school_id, col(SchoolClass.archived_at).is_(None))
    if class_id is not None:
        classes_query = classes_query.where(col(SchoolClass.id) == class_id)
    classes = [
        GroupCounts(
            label=label,
            class_id=group_id,
            levels=parse_levels(class_levels),
            **_counts(rows[_CLASS].get(str(group_id))),
        )
        for group_id, label, class_levels in session.execute(classes_query)
        # Filtering on a level lists only the classes that have pupils of that level.
        if level is None or str(group_id) in rows[_CLASS]
    ]
    classes.sort(key=_class_sort_key)
    return SchoolStatistics(
        school_id=school_id,
        total=Counts(**_counts(rows[_TOTAL].get(""))),
        classes=classes,
        levels=levels,
    )


def class_statistics(session: Session, *, school_id: int, class_id: int) -> GroupCounts | None:
    """The counts of one class of the school (None if it is not an active class of it)."""
    stats = school_statistics(session=session, school_id=school_id, class_id=class_id)
    return stats.classes[0] if stats.classes else None
