"""Inspectors (IEN) and the schools of their district: single-use, expiring invitations for a
list of schools (stored hashed, like directors'), redeemed with `/start <code>`; which schools
an inspector sees (read-only: the bot never lets them send or export anything); the operator
listing and removing them.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlmodel import Session, col

from bot.i18n import _
from bot.services.audit import record_event
from bot.services.schools.directors import DirectedSchool
from bot.services.schools.registry import (
    CODE_BYTES,
    DEFAULT_INVITATION_TTL,
    UnknownSchoolError,
    claim_invitation,
    get_school_by_uai,
    hash_invitation_code,
)
from models import InspectorInvitation, InspectorSchool, School, utcnow


@dataclass(frozen=True)
class InspectorInvite:
    """A new inspector invitation: the clear code (shown once), its expiry and its schools."""

    code: str
    expires_at: datetime
    schools: tuple[DirectedSchool, ...]


@dataclass(frozen=True)
class InspectorEntry:
    """An inspector as the operator lists them: who, since when, which schools."""

    telegram_user_id: int
    display_name: str | None
    since: datetime
    schools: tuple[DirectedSchool, ...]


def _school_ref(school: School) -> DirectedSchool:
    assert school.id is not None
    return DirectedSchool(id=school.id, uai=school.uai, name=school.name)


def create_inspector_invitation(
    session: Session,
    *,
    uais: Sequence[str],
    actor: str,
    ttl: timedelta = DEFAULT_INVITATION_TTL,
    now: datetime | None = None,
) -> InspectorInvite:
    """A single-use invitation for the inspector of the schools `uais` (each must be
    registered: InvalidUAIError / UnknownSchoolError otherwise). Only the code's hash is kept."""
    if ttl <= timedelta(0):
        raise ValueError("an invitation must be valid for a positive duration")
    schools: dict[int, School] = {}
    for uai in uais:
        school = get_school_by_uai(session, uai)
        assert school.id is not None
        schools.setdefault(school.id, school)
    if not schools:
        raise UnknownSchoolError(_("An inspector's invitation needs at least one school."))
    created_at = now or utcnow()
    code = secrets.token_urlsafe(CODE_BYTES)
    invitation = InspectorInvitation(
        code_hash=hash_invitation_code(code),
        school_ids=list(schools),
        created_at=created_at,
        expires_at=created_at + ttl,
    )
    session.add(invitation)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="inspector.invited",
        invitation_id=invitation.id,
        school_ids=list(schools),
        expires_at=invitation.expires_at.isoformat(),
    )
    ordered = sorted(schools.values(), key=lambda school: (school.name, school.uai))
    return InspectorInvite(code, invitation.expires_at, tuple(map(_school_ref, ordered)))


def redeem_inspector_invitation(
    session: Session,
    *,
    code: str,
    telegram_user_id: int,
    display_name: str | None = None,
    now: datetime | None = None,
) -> list[DirectedSchool]:
    """Give the Telegram user read-only access to the invitation's schools (added to any they
    see already); the code then stops working. Returns every school they now see. Raises
    UnknownInvitationError, InvitationAlreadyUsedError or InvitationExpiredError."""
    moment = now or utcnow()
    invitation = claim_invitation(session, InspectorInvitation, code, telegram_user_id, moment)
    school_ids = [int(school_id) for school_id in invitation.school_ids]
    existing = set(
        session.execute(
            select(col(InspectorSchool.school_id)).where(
                col(InspectorSchool.telegram_user_id) == telegram_user_id
            )
        ).scalars()
    )
    present = set(
        session.execute(select(col(School.id)).where(col(School.id).in_(school_ids))).scalars()
    )
    added = [i for i in school_ids if i in present and i not in existing]
    for school_id in added:
        session.add(
            InspectorSchool(
                telegram_user_id=telegram_user_id,
                school_id=school_id,
                display_name=display_name,
                created_at=moment,
            )
        )
    session.flush()
    record_event(
        session,
        actor=f"telegram:{telegram_user_id}",
        action="inspector.added",
        telegram_user_id=telegram_user_id,
        school_ids=added,
    )
    return inspected_schools(session, telegram_user_id=telegram_user_id)


def inspected_schools(session: Session, *, telegram_user_id: int) -> list[DirectedSchool]:
    """The schools this Telegram user sees as an inspector, by name (empty for anyone else)."""
    schools = session.execute(
        select(School)
        .join(InspectorSchool, col(InspectorSchool.school_id) == col(School.id))
        .where(col(InspectorSchool.telegram_user_id) == telegram_user_id)
        .order_by(col(School.name), col(School.uai))
    ).scalars()
    return [_school_ref(school) for school in schools]


def inspector_schools(session: Session) -> dict[int, list[int]]:
    """Every inspector's Telegram id, with the ids of the schools they see."""
    found: dict[int, list[int]] = defaultdict(list)
    rows = session.execute(
        select(col(InspectorSchool.telegram_user_id), col(InspectorSchool.school_id)).order_by(
            col(InspectorSchool.telegram_user_id), col(InspectorSchool.school_id)
        )
    )
    for telegram_user_id, school_id in rows:
        found[int(telegram_user_id)].append(int(school_id))
    return dict(found)


def list_inspectors(session: Session) -> list[InspectorEntry]:
    """Every inspector with their schools, for the operator (by Telegram id)."""
    rows = session.execute(
        select(InspectorSchool, School)
        .join(School, col(School.id) == col(InspectorSchool.school_id))
        .order_by(col(InspectorSchool.telegram_user_id), col(School.name), col(School.uai))
    ).all()
    grouped: dict[int, list[tuple[InspectorSchool, School]]] = defaultdict(list)
    for grant, school in rows:
        grouped[grant.telegram_user_id].append((grant, school))
    return [
        InspectorEntry(
            telegram_user_id=telegram_user_id,
            display_name=next((g.display_name for g, _s in grants if g.display_name), None),
            since=min(g.created_at for g, _s in grants),
            schools=tuple(_school_ref(school) for _g, school in grants),
        )
        for telegram_user_id, grants in grouped.items()
    ]


def remove_inspector(
    session: Session, *, telegram_user_id: int, uais: Sequence[str] = (), actor: str
) -> int:
    """Take away the inspector's access to the schools `uais` (all of them when empty); how
    many schools they lost. Their next update sees the change."""
    statement = delete(InspectorSchool).where(
        col(InspectorSchool.telegram_user_id) == telegram_user_id
    )
    school_ids: list[int] = []
    if uais:
        school_ids = [cast(int, get_school_by_uai(session, uai).id) for uai in uais]
        statement = statement.where(col(InspectorSchool.school_id).in_(school_ids))
    removed = cast(CursorResult[Any], session.execute(statement)).rowcount
    record_event(
        session,
        actor=actor,
        action="inspector.removed",
        telegram_user_id=telegram_user_id,
        school_ids=school_ids or "all",
        removed=removed,
    )
    return int(removed)
