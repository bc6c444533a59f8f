"""The digest schedule: the LSU date as directors write it, the moments digests are due (in
local time, across DST changes), and each digest claimed once, even after a restart."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.db import session_scope
from bot.i18n import use_language
from bot.services.scheduling import (
    LsuDateError,
    Schedule,
    claim_digest,
    describe_schedule,
    digest_settings,
    due_digests,
    latest_moment,
    mark_digest_sent,
    moments_on,
    next_digest_at,
    next_moment,
    parse_lsu_date,
    set_digest_paused,
    set_digest_schedule,
    set_lsu_date,
    set_reminders,
)
from models import DigestKind, DigestRun, Director, School

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2026, 12, 3)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
_uai_numbers = itertools.count(760_001)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The messages' English ids, whatever the French catalogue says."""
    with use_language("en"):
        yield


def _school(session: Session, *, directors: int = 1, **fields: Any) -> int:
    school = School(
        uai=f"{next(_uai_numbers):07d}X", name="École Jules Ferry", created_at=LONG_AGO, **fields
    )
    session.add(school)
    session.flush()
    assert school.id is not None
    for n in range(directors):
        session.add(
            Director(telegram_user_id=9_000_000_000 + school.id * 10 + n, school_id=school.id)
        )
    session.flush()
    return school.id


def _weekly(day: date) -> datetime | None:
    moments = moments_on(Schedule(weekday=0, hour=8, lsu_date=None), day, PARIS)
    return moments[0].due_at if moments else None


# -- the LSU date ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "15/01/2027",
        "15/1/27",
        "15.01.2027",
        "2027-01-15",
        "15 janvier 2027",
        "15 Janvier 2027",
        "le 15 janv. 2027",
        "15 january 2027",
        "15/01",
        "15 janvier",
    ],
)
def test_lsu_date_is_read_as_directors_write_it(text: str) -> None:
    assert parse_lsu_date(text, today=TODAY) == date(2027, 1, 15)


def test_lsu_date_reads_the_first_of_the_month_and_accents() -> None:
    assert parse_lsu_date("1er février 2027", today=TODAY) == date(2027, 2, 1)
    assert parse_lsu_date("3 déc. 2026", today=TODAY) == TODAY


def test_lsu_date_without_year_is_the_next_one() -> None:
    assert parse_lsu_date("10/06", today=TODAY) == date(2027, 6, 10)
    assert parse_lsu_date("20/12", today=TODAY) == date(2026, 12, 20)


def test_lsu_date_in_the_past_is_refused_with_the_reason() -> None:
    with pytest.raises(LsuDateError, match="in the past"):
        parse_lsu_date("02/12/2026", today=TODAY)


def test_lsu_date_more_than_a_year_ahead_is_refused_with_the_reason() -> None:
    assert parse_lsu_date("03/12/2027", today=TODAY) == date(2027, 12, 3)
    with pytest.raises(LsuDateError, match="more than a year away"):
        parse_lsu_date("04/12/2027", today=TODAY)


@pytest.mark.parametrize("text", ["", "bientôt", "31/02/2027", "15 brumaire 2027", "<b>"])
def test_unreadable_lsu_date_says_how_to_write_it(text: str) -> None:
    with pytest.raises(LsuDateError, match="/lsu 15/01/2027") as raised:
        parse_lsu_date(text, today=TODAY)
    assert "<b>" not in raised.value.message


# -- the moments -------------------------------------------------------------------------


def test_weekly_digest_stays_at_eight_local_time_across_the_october_dst_change() -> None:
    assert _weekly(date(2026, 10, 19)) == datetime(2026, 10, 19, 6, tzinfo=UTC)  # CEST
    assert _weekly(date(2026, 10, 26)) == datetime(2026, 10, 26, 7, tzinfo=UTC)  # CET


def test_weekly_digest_stays_at_eight_local_time_across_the_march_dst_change() -> None:
    assert _weekly(date(2027, 3, 22)) == datetime(2027, 3, 22, 7, tzinfo=UTC)  # CET
    assert _weekly(date(2027, 3, 29)) == datetime(2027, 3, 29, 6, tzinfo=UTC)  # CEST


def test_daily_digests_in_the_last_seven_days_and_the_final_check_the_day_before() -> None:
    schedule = Schedule(weekday=0, hour=9, lsu_date=date(2027, 1, 15))
    day = date(2027, 1, 1)
    kinds: dict[date, list[tuple[DigestKind, int]]] = {}
    while day <= date(2027, 1, 19):
        moments = moments_on(schedule, day, PARIS)
        if moments:
            kinds[day] = [(m.kind, m.due_at.astimezone(PARIS).hour) for m in moments]
        day += timedelta(days=1)
    daily = [(DigestKind.DAILY, 8)]
    assert kinds == {
        date(2027, 1, 4): [(DigestKind.WEEKLY, 9)],
        **{date(2027, 1, d): daily for d in range(8, 14)},  # Monday 11 too: no weekly then
        date(2027, 1, 14): [(DigestKind.DAILY, 8), (DigestKind.FINAL, 17)],
        date(2027, 1, 18): [(DigestKind.WEEKLY, 9)],
    }


def test_latest_and_next_moments() -> None:
    schedule = Schedule(weekday=2, hour=18, lsu_date=None)  # Wednesday 18:00
    now = datetime(2026, 12, 3, 10, tzinfo=UTC)  # a Thursday
    latest = latest_moment(schedule, now=now, tz=PARIS)
    upcoming = next_moment(schedule, now=now, tz=PARIS)
    assert latest is not None and latest.due_at == datetime(2026, 12, 2, 17, tzinfo=UTC)
    assert upcoming is not None and upcoming.due_at == datetime(2026, 12, 9, 17, tzinfo=UTC)


# -- owed digests and claims ---------------------------------------------------------------


def test_claiming_a_digest_twice_gives_it_once(engine: Engine) -> None:
    due_at = datetime(2026, 11, 30, 7, tzinfo=UTC)
    with session_scope(engine) as session:
        school_id = _school(session)
    with session_scope(engine) as session:
        first = claim_digest(session, school_id=school_id, kind=DigestKind.WEEKLY, due_at=due_at)
    with session_scope(engine) as session:
        again = claim_digest(session, school_id=school_id, kind=DigestKind.WEEKLY, due_at=due_at)
        # The failed claim leaves the transaction usable.
        other = claim_digest(session, school_id=school_id, kind=DigestKind.DAILY, due_at=due_at)
    assert first is not None and again is None and other is not None
    with session_scope(engine) as session:
        mark_digest_sent(session, run_id=first, snapshot={"activated": 3}, sent_at=due_at)
    with session_scope(engine) as session:
        run = session.get(DigestRun, first)
        assert run is not None and run.snapshot == {"activated": 3} and run.sent_at == due_at


def test_a_digest_missed_while_down_is_owed_once_and_late(session: Session) -> None:
    school_id = _school(session)
    monday = datetime(2026, 11, 30, 7, tzinfo=UTC)  # 08:00 in Paris
    on_time = due_digests(session, now=monday + timedelta(seconds=30), tz=PARIS)
    assert [(d.school_id, d.kind, d.due_at, d.late) for d in on_time] == [
        (school_id, DigestKind.WEEKLY, monday, False)
    ]
    back = monday + timedelta(days=2)
    (missed,) = due_digests(session, now=back, tz=PARIS)
    assert missed.late and missed.due_at == monday and len(missed.director_ids) == 1
    assert claim_digest(session, school_id=school_id, kind=missed.kind, due_at=missed.due_at)
    assert due_digests(session, now=back, tz=PARIS) == []
    assert due_digests(session, now=back + timedelta(days=4), tz=PARIS) == []


def test_only_the_latest_missed_digest_is_owed(session: Session) -> None:
    _school(session, lsu_date=date(2027, 1, 15))
    (owed,) = due_digests(session, now=datetime(2027, 1, 12, 9, tzinfo=UTC), tz=PARIS)
    assert owed.kind is DigestKind.DAILY and owed.due_at == datetime(2027, 1, 12, 7, tzinfo=UTC)
    (final,) = due_digests(session, now=datetime(2027, 1, 15, 6, tzinfo=UTC), tz=PARIS)
    assert final.kind is DigestKind.FINAL and final.late


def test_paused_schools_and_schools_without_director_owe_nothing(session: Session) -> None:
    _school(session, digest_paused=True)
    _school(session, directors=0)
    assert due_digests(session, now=datetime(2026, 11, 30, 7, tzinfo=UTC), tz=PARIS) == []


def test_a_digest_due_before_the_schedule_changed_is_not_owed(session: Session) -> None:
    school_id = _school(session)
    set_digest_schedule(session, school_id=school_id, weekday=1, actor="test")
    # Tuesday 08:00 has passed today, but the director chose Tuesday only now.
    assert due_digests(session, now=datetime(2026, 12, 1, 12, tzinfo=UTC), tz=PARIS) == []
    owed = due_digests(session, now=datetime(2026, 12, 8, 7, tzinfo=UTC), tz=PARIS)
    assert [d.kind for d in owed] == [DigestKind.WEEKLY]


def test_next_digest_is_the_earliest_of_every_school(session: Session) -> None:
    _school(session, digest_weekday=4, digest_hour=17)
    _school(session, digest_weekday=3, digest_hour=9)
    _school(session, digest_weekday=2, digest_paused=True)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)  # Tuesday
    assert next_digest_at(session, now=now, tz=PARIS) == datetime(2026, 12, 3, 8, tzinfo=UTC)


# -- settings --------------------------------------------------------------------------------


def test_settings_are_changed_and_described_in_words(session: Session) -> None:
    school_id = _school(session)
    set_lsu_date(session, school_id=school_id, lsu_date=date(2027, 1, 15), today=TODAY, actor="t")
    set_digest_schedule(session, school_id=school_id, weekday=3, hour=7, actor="t")
    set_reminders(session, school_id=school_id, enabled=True, after_days=10, actor="t")
    settings = digest_settings(session, school_id=school_id)
    assert (settings.weekday, settings.hour, settings.lsu_date) == (3, 7, date(2027, 1, 15))
    assert settings.reminders_enabled and settings.reminder_after_days == 10
    with use_language("en"):
        lines = describe_schedule(settings, now=datetime(2026, 12, 3, 12, tzinfo=UTC), tz=PARIS)
    text = "\n".join(lines)
    assert "every Thursday at 7:00" in text
    assert "43 days left" in text
    assert "Thursday, December 10, 2026 at 7:00" in text
    assert "more than 10 days" in text
    paused = set_digest_paused(session, school_id=school_id, paused=True, actor="t")
    with use_language("en"):
        assert "Paused" in "\n".join(describe_schedule(paused, now=datetime.now(UTC), tz=PARIS))


def test_a_bad_hour_or_day_is_refused(session: Session) -> None:
    school_id = _school(session)
    with pytest.raises(LsuDateError):
        set_lsu_date(
            session, school_id=school_id, lsu_date=date(2020, 1, 1), today=TODAY, actor="t"
        )
    with pytest.raises(Exception, match="between 0 and 23"):
        set_digest_schedule(session, school_id=school_id, hour=24, actor="t")
