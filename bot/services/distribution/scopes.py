"""The scopes of a distribution and who is in them: the classes, levels or whole school a
director names, and every guardian of the scope with their account (the candidates that
planning sorts into who gets what and who is skipped).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlmodel import Session, col

from bot.i18n import _
from bot.services.distribution.errors import NoScopeError
from bot.services.roster import (
    ResolvedScope,
    Scope,
    ScopeKind,
    UnknownClassError,
    resolve_scope,
    scope_from_token,
)
from models import Account, AccountState, Guardian, Pupil, PupilGuardian, SchoolClass
from models.queries import in_chunks

# A `Scope.token` as buttons carry it (« e », « c12 », « lCM1 »).
_SCOPE_TOKEN = re.compile(r"^(?:e|c[0-9]+|l[A-Z0-9]+)$")


ScopeArgument = str | Scope | ResolvedScope


def resolve_scopes(
    session: Session, *, school_id: int, scope_tokens: Sequence[ScopeArgument]
) -> tuple[ResolvedScope, ...]:
    """The scopes named: class arguments as typed (« CM1 », « ce2 cm1 », « ecole »), `Scope`
    tokens from buttons (« c12 », « lCM1 », « e »), or scopes already resolved. The whole
    school absorbs the rest. Raises `UnknownClassError` (from `resolve_scope`) or `NoScopeError`.
    """
    resolved: dict[str, ResolvedScope] = {}
    for argument in scope_tokens:
        if isinstance(argument, ResolvedScope):
            item = argument
        elif isinstance(argument, Scope):
            item = scope_from_token(session=session, school_id=school_id, token=argument.token)
        else:
            text = " ".join(argument.split())
            if not text:
                continue
            try:
                item = resolve_scope(session=session, school_id=school_id, text=text)
            except UnknownClassError:
                if not _SCOPE_TOKEN.fullmatch(text):
                    raise
                item = scope_from_token(session=session, school_id=school_id, token=text)
        resolved.setdefault(item.scope.token, item)
    if not resolved:
        raise NoScopeError(_("Name a class, a level, or « ecole » for the whole school."))
    school = [item for item in resolved.values() if item.scope.kind is ScopeKind.SCHOOL]
    return tuple(school) if school else tuple(resolved.values())


def _pupil_filter(scopes: Sequence[ResolvedScope]) -> ColumnElement[bool] | None:
    """Which pupils the scopes cover (None: the whole school)."""
    if any(item.scope.kind is ScopeKind.SCHOOL for item in scopes):
        return None
    class_ids = [item.scope.class_id for item in scopes if item.scope.kind is ScopeKind.CLASS]
    levels = [item.scope.level for item in scopes if item.scope.kind is ScopeKind.LEVEL]
    conditions: list[ColumnElement[bool]] = []
    if class_ids:
        conditions.append(col(Pupil.class_id).in_(class_ids))
    if levels:
        conditions.append(col(Pupil.level).in_(levels))
    return or_(*conditions) if conditions else false()


def _enrolled_conditions(school_id: int) -> list[ColumnElement[bool]]:
    # Needs `SchoolClass` outer-joined on the pupil's class, as `models.queries` does.
    return [
        col(Pupil.school_id) == school_id,
        col(Pupil.archived_at).is_(None),
        col(SchoolClass.archived_at).is_(None),
    ]


def scope_pupil_count(session: Session, school_id: int, scopes: Sequence[ResolvedScope]) -> int:
    """How many enrolled pupils the scopes cover (a pupil in two of them counts once)."""
    if len(scopes) == 1:
        return scopes[0].pupils
    where = _pupil_filter(scopes)
    statement = (
        select(func.count(func.distinct(col(Pupil.id))))
        .select_from(Pupil)
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(*_enrolled_conditions(school_id))
    )
    if where is not None:
        statement = statement.where(where)
    return int(session.execute(statement).scalar_one())


def guardians_pupil_count(session: Session, school_id: int, guardian_ids: Sequence[int]) -> int:
    """How many enrolled pupils these guardians have between them (a shared child counts once)."""
    pupils: set[int] = set()
    for chunk in in_chunks(sorted(set(guardian_ids))):
        pupils.update(
            session.execute(
                select(col(Pupil.id))
                .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
                .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
                .where(*_enrolled_conditions(school_id), col(PupilGuardian.guardian_id).in_(chunk))
            ).scalars()
        )
    return len(pupils)


# --- The candidates: every guardian of the scope with their account -----------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A guardian of the scope with their account, before planning decides what they get."""

    account_id: int
    guardian_id: int
    identifier: str
    first_name: str
    last_name: str
    email: str | None
    state: AccountState
    deactivated: bool
    enrolled: bool


def _candidate_columns() -> tuple[Any, ...]:
    return (
        col(Account.id),
        col(Guardian.id),
        col(Account.identifier),
        col(Guardian.first_name),
        func.coalesce(func.nullif(col(Guardian.usage_name), ""), col(Guardian.last_name)),
        col(Guardian.email),
        col(Account.state),
        col(Account.deactivated_at),
    )


def _enrolled_guardians(
    session: Session, school_id: int, guardian_ids: Sequence[int] | None, where: Any
) -> set[int]:
    """Which guardians have an enrolled child (in the scope, when `where` is given)."""
    statement = (
        select(col(PupilGuardian.guardian_id))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(*_enrolled_conditions(school_id))
        .distinct()
    )
    if where is not None:
        statement = statement.where(where)
    enrolled = set(session.execute(statement).scalars())
    # The school's pupils are read anyway: filtering in SQL with `guardian_id IN (…)` made
    # SQLite probe the whole list once per pupil (0.2 s for a thousand guardians).
    return enrolled if guardian_ids is None else enrolled.intersection(guardian_ids)


def _candidate(values: Sequence[Any], enrolled: set[int]) -> Candidate:
    account_id, guardian_id, identifier, first, last, email, state, deactivated_at = values
    return Candidate(
        account_id=account_id,
        guardian_id=guardian_id,
        identifier=identifier,
        first_name=first,
        last_name=last,
        email=email or None,
        state=AccountState(state),
        deactivated=deactivated_at is not None,
        enrolled=guardian_id in enrolled,
    )


def scope_candidates(
    session: Session, school_id: int, scopes: Sequence[ResolvedScope]
) -> list[Candidate]:
    """Every guardian of the scope with their account: those with an enrolled child in it, and
    those whose child in it has left (archived), so the preview can say why they are skipped."""
    where = _pupil_filter(scopes)
    statement = (
        select(*_candidate_columns())
        .select_from(Guardian)
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(col(Guardian.school_id) == school_id)
    )
    if where is not None:
        # Any child in the scope, enrolled or not (a pupil who left is archived, not deleted).
        linked = (
            select(col(PupilGuardian.guardian_id))
            .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
            .where(col(Pupil.school_id) == school_id, where)
        )
        statement = statement.where(col(Guardian.id).in_(linked))
    rows = list(session.execute(statement))
    enrolled = _enrolled_guardians(session, school_id, None, where)
    return [_candidate(values, enrolled) for values in rows]


def account_candidates(
    session: Session, school_id: int, account_ids: Sequence[int]
) -> dict[int, Candidate]:
    """These accounts of the school with what planning needs (others are ignored)."""
    ids = sorted(set(account_ids))
    rows: list[Sequence[Any]] = []
    for chunk in in_chunks(ids):
        # The school is checked here rather than in SQL: with both conditions SQLite walked
        # the school's guardians and probed the whole id list for each (0.15 s a thousand).
        found = session.execute(
            select(*_candidate_columns(), col(Guardian.school_id))
            .select_from(Account)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(col(Account.id).in_(chunk))
        )
        rows.extend(tuple(values[:-1]) for values in found if values[-1] == school_id)
    enrolled = _enrolled_guardians(session, school_id, [values[1] for values in rows], None)
    candidates = (_candidate(values, enrolled) for values in rows)
    return {candidate.account_id: candidate for candidate in candidates}
