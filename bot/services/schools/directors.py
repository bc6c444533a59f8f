"""Directors as the bot sees them: who directs what, redeeming an invitation into a plain
summary of the school, whether a school has a roster yet, and the operator listing and
removing a school's directors. No Telegram here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlmodel import Session, col

from bot.i18n import _
from bot.services.audit import record_event
from bot.services.schools.registry import (
    UnknownSchoolError,
    get_school_by_uai,
    redeem_invitation,
    schools_of_director,
)
from models import Director, Pupil, School


@dataclass(frozen=True)
class DirectedSchool:
    """A school as its director's chat shows it."""

    id: int
    uai: str
    name: str


@dataclass(frozen=True)
class DirectorEntry:
    """A director of a school as the operator lists them: who, and since when."""

    telegram_user_id: int
    display_name: str | None
    since: datetime


def _directed(school: School) -> DirectedSchool:
    assert school.id is not None
    return DirectedSchool(id=school.id, uai=school.uai, name=school.name)


def director_telegram_ids(session: Session) -> list[int]:
    """Every Telegram user who directs at least one school, once each, in id order."""
    return list(
        session.execute(
            select(col(Director.telegram_user_id))
            .distinct()
            .order_by(col(Director.telegram_user_id))
        ).scalars()
    )


def directed_schools(session: Session, *, telegram_user_id: int) -> list[DirectedSchool]:
    """The schools this Telegram user directs, by name (empty for anyone else)."""
    return [_directed(school) for school in schools_of_director(session, telegram_user_id)]


def redeem_director_invitation(
    session: Session,
    *,
    code: str,
    telegram_user_id: int,
    display_name: str | None = None,
    now: datetime | None = None,
) -> DirectedSchool:
    """Redeem an invitation code (see `redeem_invitation` for its errors) and return the school
    the Telegram user now directs."""
    director = redeem_invitation(
        session=session,
        code=code,
        telegram_user_id=telegram_user_id,
        display_name=display_name,
        now=now,
    )
    school = session.get(School, director.school_id)
    if school is None:  # a foreign key makes this impossible; say so clearly if it happens
        raise UnknownSchoolError(_("This school does not exist."))
    return _directed(school)


def enrolled_pupil_count(session: Session, *, school_id: int) -> int:
    """How many pupils the school has on its roster (archived pupils excluded)."""
    count = session.execute(
        select(func.count())
        .select_from(Pupil)
        .where(col(Pupil.school_id) == school_id, col(Pupil.archived_at).is_(None))
    ).scalar_one()
    return int(count)


def list_directors(session: Session, *, uai: str) -> list[DirectorEntry]:
    """The directors of the school `uai`, oldest first (InvalidUAIError / UnknownSchoolError
    for a bad UAI)."""
    school = get_school_by_uai(session, uai)
    rows = session.execute(
        select(Director)
        .where(col(Director.school_id) == school.id)
        .order_by(col(Director.created_at), col(Director.telegram_user_id))
    ).scalars()
    return [
        DirectorEntry(
            telegram_user_id=director.telegram_user_id,
            display_name=director.display_name,
            since=director.created_at,
        )
        for director in rows
    ]


def remove_director(session: Session, *, uai: str, telegram_user_id: int, actor: str) -> bool:
    """Take the school `uai` away from this director (their other schools stay theirs); False
    if they did not direct it. Access is checked on every update, so their next one is
    refused."""
    school = get_school_by_uai(session, uai)
    removed = cast(
        CursorResult[Any],
        session.execute(
            delete(Director).where(
                col(Director.school_id) == school.id,
                col(Director.telegram_user_id) == telegram_user_id,
            )
        ),
    ).rowcount
    if removed:
        record_event(
            session,
            actor=actor,
            action="director.removed",
            school_id=school.id,
            telegram_user_id=telegram_user_id,
        )
    return bool(removed)
