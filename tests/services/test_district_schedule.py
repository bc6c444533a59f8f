"""The inspectors' weekly district digest: due every Monday at 08:00 in Paris (across DST
changes), owed only to inspectors invited before that moment, late after ten minutes, and
claimed once; on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete
from sqlmodel import Session

from bot.db import session_scope
from bot.services.errors import ServiceError
from bot.services.scheduling import (
    DueDistrictDigest,
    claim_district_digest,
    due_district_digests,
    mark_district_digest_sent,
    next_district_digest_at,
)
from models import DistrictDigestRun, InspectorSchool, School

PARIS = ZoneInfo("Europe/Paris")
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
INSPECTOR = 7_123_456_789
OTHER_INSPECTOR = 7_000_000_001
# Monday 26 October 2026, the day after the autumn change: 08:00 in Paris is 07:00 UTC (CET).
OCTOBER_MONDAY = datetime(2026, 10, 26, 7, tzinfo=UTC)
# Monday 30 March 2026, the day after the spring change: 08:00 in Paris is 06:00 UTC (CEST).
MARCH_MONDAY = datetime(2026, 3, 30, 6, tzinfo=UTC)
_uai_numbers = itertools.count(770_001)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def inspector(
    session: Session, user: int = INSPECTOR, *, schools: int = 2, since: datetime = LONG_AGO
) -> list[int]:
    """An inspector of `schools` new schools since `since`: the schools' ids."""
    ids = []
    for _ in range(schools):
        school = School(uai=f"{next(_uai_numbers):07d}X", name="École Jules Ferry")
        session.add(school)
        session.flush()
        assert school.id is not None
        session.add(InspectorSchool(telegram_user_id=user, school_id=school.id, created_at=since))
        ids.append(school.id)
    session.commit()
    return ids


def due(session: Session, now: datetime) -> list[tuple[int, datetime, bool]]:
    return [
        (d.telegram_user_id, d.due_at, d.late)
        for d in due_district_digests(session, now=now, tz=PARIS)
    ]


@pytest.mark.parametrize(
    "monday", [OCTOBER_MONDAY, MARCH_MONDAY], ids=["october-cet", "march-cest"]
)
def test_due_on_monday_at_eight_in_paris_across_dst_changes(db: Session, monday: datetime) -> None:
    school_ids = inspector(db)
    # Wall-clock arithmetic: 08:00 in Paris seven days earlier, at the other UTC offset.
    previous_monday = (monday.astimezone(PARIS) - timedelta(days=7)).astimezone(UTC)
    assert previous_monday - monday in (timedelta(days=-7, hours=-1), timedelta(days=-7, hours=1))
    # Last week's digest went out: just before 08:00 this Monday nothing is owed.
    assert claim_district_digest(db, telegram_user_id=INSPECTOR, due_at=previous_monday)
    db.commit()
    assert due(db, monday - timedelta(seconds=1)) == []

    (owed,) = due_district_digests(db, now=monday, tz=PARIS)

    assert owed == DueDistrictDigest(INSPECTOR, monday, False, tuple(sorted(school_ids)))
    assert owed.due_at.astimezone(PARIS).hour == 8
    assert owed.due_at.astimezone(PARIS).weekday() == 0
    # A week earlier (other offset) it was owed too, at 08:00 local.
    db.rollback()
    db.execute(delete(DistrictDigestRun))
    db.commit()
    assert due(db, monday - timedelta(seconds=1)) == [(INSPECTOR, previous_monday, True)]


def test_a_digest_is_claimed_once_and_marked_sent(engine: Engine) -> None:
    with session_scope(engine) as session:
        inspector(session)
        inspector(session, OTHER_INSPECTOR)
    with session_scope(engine) as session:
        first = claim_district_digest(
            session, telegram_user_id=INSPECTOR, due_at=OCTOBER_MONDAY, now=OCTOBER_MONDAY
        )
    with session_scope(engine) as session:
        again = claim_district_digest(session, telegram_user_id=INSPECTOR, due_at=OCTOBER_MONDAY)
        # The failed claim leaves the transaction usable.
        other = claim_district_digest(
            session, telegram_user_id=OTHER_INSPECTOR, due_at=OCTOBER_MONDAY
        )
    assert first is not None and again is None and other is not None
    with session_scope(engine) as session:
        assert due(session, OCTOBER_MONDAY + timedelta(minutes=1)) == []
        later = OCTOBER_MONDAY + timedelta(minutes=2)
        mark_district_digest_sent(session, run_id=first, snapshot={"activated": {}}, sent_at=later)
    with session_scope(engine) as session:
        run = session.get(DistrictDigestRun, first)
        assert run is not None and run.snapshot == {"activated": {}}
        assert run.sent_at == OCTOBER_MONDAY + timedelta(minutes=2)
        assert run.claimed_at == OCTOBER_MONDAY
        with pytest.raises(ServiceError):
            mark_district_digest_sent(session, run_id=999_999, snapshot={})


def test_each_inspector_is_owed_their_own_digest(db: Session) -> None:
    mine = inspector(db, schools=1)
    theirs = inspector(db, OTHER_INSPECTOR, schools=3)
    assert claim_district_digest(db, telegram_user_id=OTHER_INSPECTOR, due_at=OCTOBER_MONDAY)
    db.commit()

    owed = due_district_digests(db, now=OCTOBER_MONDAY + timedelta(minutes=1), tz=PARIS)

    assert [(d.telegram_user_id, d.school_ids) for d in owed] == [(INSPECTOR, tuple(mine))]
    assert len(theirs) == 3


def test_late_after_ten_minutes_and_only_the_latest_missed_one(db: Session) -> None:
    inspector(db)
    assert due(db, OCTOBER_MONDAY + timedelta(minutes=10)) == [(INSPECTOR, OCTOBER_MONDAY, False)]
    assert due(db, OCTOBER_MONDAY + timedelta(minutes=10, seconds=1)) == [
        (INSPECTOR, OCTOBER_MONDAY, True)
    ]
    # Down for ten days: only the latest Monday is owed, once, late.
    back = OCTOBER_MONDAY + timedelta(days=10)
    assert due(db, back) == [(INSPECTOR, OCTOBER_MONDAY + timedelta(days=7), True)]


def test_an_inspector_invited_after_monday_eight_waits_for_the_next_monday(
    db: Session,
) -> None:
    inspector(db, since=OCTOBER_MONDAY + timedelta(hours=2))

    assert due(db, OCTOBER_MONDAY + timedelta(hours=3)) == []
    assert due(db, OCTOBER_MONDAY + timedelta(days=6)) == []
    next_monday = OCTOBER_MONDAY + timedelta(days=7)
    assert due(db, next_monday) == [(INSPECTOR, next_monday, False)]


def test_an_inspector_without_schools_is_owed_nothing(db: Session) -> None:
    inspector(db, schools=0)
    assert due(db, OCTOBER_MONDAY) == []
    assert next_district_digest_at(db, now=OCTOBER_MONDAY, tz=PARIS) is None


def test_next_digest_is_next_monday_at_eight_and_none_without_inspectors(db: Session) -> None:
    wednesday = OCTOBER_MONDAY - timedelta(days=5)  # 21 October, CEST
    assert next_district_digest_at(db, now=wednesday, tz=PARIS) is None

    inspector(db)

    assert next_district_digest_at(db, now=wednesday, tz=PARIS) == OCTOBER_MONDAY
    # At the very moment, the next one is a week later.
    assert next_district_digest_at(db, now=OCTOBER_MONDAY, tz=PARIS) == (
        OCTOBER_MONDAY + timedelta(days=7)
    )
    march_sunday = MARCH_MONDAY - timedelta(days=1)
    assert next_district_digest_at(db, now=march_sunday, tz=PARIS) == MARCH_MONDAY
