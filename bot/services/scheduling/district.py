"""When inspectors get their weekly district digest (Monday 08:00, local time), and claiming
each one once — like the schools' digests (`runs`): one missed while the process was down is
sent late when it comes back, never twice."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from bot.config import get_settings
from bot.services.scheduling.moments import Schedule, latest_moment, next_moment
from bot.services.scheduling.runs import LATE_AFTER, aware, claim_once, record_sent
from models import DistrictDigestRun, InspectorSchool

# Every Monday at 08:00: the week's figures for the week's work.
DISTRICT_SCHEDULE = Schedule(weekday=0, hour=8, lsu_date=None)


@dataclass(frozen=True)
class DueDistrictDigest:
    """A weekly district digest owed to an inspector: claim it, then send it."""

    telegram_user_id: int
    due_at: datetime
    late: bool
    school_ids: tuple[int, ...]


@dataclass(frozen=True)
class _Inspector:
    school_ids: tuple[int, ...]
    since: datetime


def _inspectors(session: Session) -> dict[int, _Inspector]:
    grants: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    rows = session.execute(
        select(
            col(InspectorSchool.telegram_user_id),
            col(InspectorSchool.school_id),
            col(InspectorSchool.created_at),
        ).order_by(col(InspectorSchool.telegram_user_id), col(InspectorSchool.school_id))
    )
    for telegram_user_id, school_id, created_at in rows:
        grants[int(telegram_user_id)].append((int(school_id), aware(created_at)))
    return {
        user: _Inspector(tuple(s for s, _at in items), min(at for _s, at in items))
        for user, items in grants.items()
    }


def due_district_digests(
    session: Session, *, now: datetime | None = None, tz: ZoneInfo | None = None
) -> list[DueDistrictDigest]:
    """Every weekly district digest owed now and not claimed yet (the latest one only: never
    two at once); late when its time is more than `LATE_AFTER` ago. An inspector invited
    after Monday's time gets the next Monday's."""
    now = aware(now)
    zone = tz or get_settings().tz
    moment = latest_moment(DISTRICT_SCHEDULE, now=now, tz=zone)
    if moment is None:
        return []
    claimed = set(
        session.execute(
            select(col(DistrictDigestRun.telegram_user_id)).where(
                col(DistrictDigestRun.due_at) == moment.due_at
            )
        ).scalars()
    )
    return [
        DueDistrictDigest(
            telegram_user_id=user,
            due_at=moment.due_at,
            late=now - moment.due_at > LATE_AFTER,
            school_ids=inspector.school_ids,
        )
        for user, inspector in _inspectors(session).items()
        if user not in claimed and inspector.since <= moment.due_at
    ]


def next_district_digest_at(
    session: Session, *, now: datetime | None = None, tz: ZoneInfo | None = None
) -> datetime | None:
    """When the next district digest is due (None: there is no inspector)."""
    if session.execute(select(col(InspectorSchool.id)).limit(1)).first() is None:
        return None
    moment = next_moment(DISTRICT_SCHEDULE, now=aware(now), tz=tz or get_settings().tz)
    return moment.due_at if moment else None


def claim_district_digest(
    session: Session,
    *,
    telegram_user_id: int,
    due_at: datetime,
    late: bool = False,
    now: datetime | None = None,
) -> int | None:
    """Claim the inspector's digest due at `due_at`: its run id, or None if it was claimed
    already (by this process before a restart, or by another one)."""
    run = DistrictDigestRun(
        telegram_user_id=telegram_user_id, due_at=aware(due_at), claimed_at=aware(now), late=late
    )
    return claim_once(session, run)


def mark_district_digest_sent(
    session: Session, *, run_id: int, snapshot: dict[str, Any], sent_at: datetime | None = None
) -> None:
    """Record that the claimed district digest went out, with what it said."""
    record_sent(session, DistrictDigestRun, run_id=run_id, snapshot=snapshot, sent_at=sent_at)
