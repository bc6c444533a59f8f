"""Which digests are owed now, and claiming each one once: a digest missed while the process
was down is owed when it comes back (late), and the unique key of `digest_run` makes sure no
two processes, and no restart, ever send it twice."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.config import get_settings
from bot.services.errors import ServiceError
from bot.services.scheduling.moments import (
    DigestMoment,
    Schedule,
    latest_moment,
    next_moment,
)
from bot.services.scheduling.settings import SCHEDULE_RESETS
from models import AuditEvent, DigestKind, DigestRun, Director, DistrictDigestRun, School, utcnow

# A digest sent more than this after its time says so (« en retard »).
LATE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class DueDigest:
    """A digest owed to a school's directors: claim it, then send it."""

    school_id: int
    kind: DigestKind
    due_at: datetime
    late: bool
    director_ids: tuple[int, ...]


def aware(moment: datetime | None) -> datetime:
    """`moment` in UTC (now when None); naive datetimes are refused."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


def _directors_by_school(session: Session) -> dict[int, list[int]]:
    directors: dict[int, list[int]] = defaultdict(list)
    rows = session.execute(
        select(col(Director.school_id), col(Director.telegram_user_id)).order_by(
            col(Director.school_id), col(Director.telegram_user_id)
        )
    )
    for school_id, telegram_user_id in rows:
        directors[school_id].append(telegram_user_id)
    return directors


def _active_schools(session: Session) -> list[tuple[School, tuple[int, ...]]]:
    """Schools whose digests run (not paused) and that have a director to get them."""
    directors = _directors_by_school(session)
    schools = session.execute(
        select(School)
        .where(col(School.digest_paused).is_(False), col(School.id).in_(list(directors)))
        .order_by(col(School.id))
    ).scalars()
    return [(school, tuple(directors[school.id])) for school in schools if school.id is not None]


def _schedule(school: School) -> Schedule:
    return Schedule(
        weekday=school.digest_weekday, hour=school.digest_hour, lsu_date=school.lsu_date
    )


def _schedule_changes(session: Session) -> dict[int, datetime]:
    """When each school's schedule last changed: what was due before is no longer owed."""
    rows = session.execute(
        select(col(AuditEvent.school_id), func.max(AuditEvent.at))
        .where(col(AuditEvent.action).in_(SCHEDULE_RESETS), col(AuditEvent.school_id).is_not(None))
        .group_by(col(AuditEvent.school_id))
    )
    return {school_id: aware(at) for school_id, at in rows if school_id is not None}


def _claimed(session: Session, since: datetime) -> set[tuple[int, DigestKind, datetime]]:
    rows = session.execute(
        select(col(DigestRun.school_id), col(DigestRun.kind), col(DigestRun.due_at)).where(
            col(DigestRun.due_at) >= since
        )
    )
    return {(school_id, DigestKind(kind), aware(due_at)) for school_id, kind, due_at in rows}


def due_digests(
    session: Session, *, now: datetime | None = None, tz: ZoneInfo | None = None
) -> list[DueDigest]:
    """Every digest owed now and not claimed yet: for each school, its latest due moment
    (a newer one replaces an older one missed: never two at once), late when its time is
    more than `LATE_AFTER` ago. Paused schools and schools without directors owe nothing."""
    now = aware(now)
    zone = tz or get_settings().tz
    changes = _schedule_changes(session)
    claimed = _claimed(session, now - timedelta(days=9))
    due: list[DueDigest] = []
    for school, director_ids in _active_schools(session):
        assert school.id is not None
        moment = latest_moment(_schedule(school), now=now, tz=zone)
        if moment is None:
            continue
        owed_since = max(aware(school.created_at), changes.get(school.id, aware(school.created_at)))
        if moment.due_at < owed_since or (school.id, moment.kind, moment.due_at) in claimed:
            continue
        due.append(
            DueDigest(
                school_id=school.id,
                kind=moment.kind,
                due_at=moment.due_at,
                late=now - moment.due_at > LATE_AFTER,
                director_ids=director_ids,
            )
        )
    return due


def next_digest_at(
    session: Session, *, now: datetime | None = None, tz: ZoneInfo | None = None
) -> datetime | None:
    """When the next digest of any school is due (None: no school has any), to wake up then."""
    now = aware(now)
    zone = tz or get_settings().tz
    upcoming: list[DigestMoment] = []
    for school, _directors in _active_schools(session):
        moment = next_moment(_schedule(school), now=now, tz=zone)
        if moment is not None:
            upcoming.append(moment)
    return min(upcoming).due_at if upcoming else None


def claim_digest(
    session: Session,
    *,
    school_id: int,
    kind: DigestKind,
    due_at: datetime,
    late: bool = False,
    now: datetime | None = None,
) -> int | None:
    """Claim the school's digest due at `due_at`: its run id, or None if it was claimed
    already (by this process before a restart, or by another one)."""
    run = DigestRun(
        school_id=school_id, kind=kind, due_at=aware(due_at), claimed_at=aware(now), late=late
    )
    return claim_once(session, run)


def claim_once(session: Session, run: DigestRun | DistrictDigestRun) -> int | None:
    """Insert a claimed run: its id, or None when its unique key says it was claimed already
    (by this process before a restart, or by another one)."""
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None
    return run.id


def mark_digest_sent(
    session: Session, *, run_id: int, snapshot: dict[str, Any], sent_at: datetime | None = None
) -> None:
    """Record that the claimed digest went out, with what it said (for the next one's change)."""
    record_sent(session, DigestRun, run_id=run_id, snapshot=snapshot, sent_at=sent_at)


def record_sent(
    session: Session,
    table: type[DigestRun] | type[DistrictDigestRun],
    *,
    run_id: int,
    snapshot: dict[str, Any],
    sent_at: datetime | None,
) -> None:
    """Record that a claimed run went out, with what it said (for the next one's change)."""
    run = session.get(table, run_id)
    if run is None:
        raise ServiceError(f"no {table.__tablename__} {run_id}")
    run.sent_at = aware(sent_at)
    run.snapshot = snapshot
    session.add(run)


def school_director_ids(session: Session, *, school_id: int) -> list[int]:
    """The Telegram ids of the school's directors, in id order."""
    return list(
        session.execute(
            select(col(Director.telegram_user_id))
            .where(col(Director.school_id) == school_id)
            .order_by(col(Director.telegram_user_id))
        ).scalars()
    )
