"""The inspector's district view: each school's lights as /etat counts them, furthest behind
first, the district's totals, the LSU dates and days left in local time, the open help
requests, the change since the inspector's previous digest, and the chart's bars; on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.digests import (
    DistrictOverview,
    district_chart_data,
    district_overview,
    district_snapshot,
    previous_district_digest,
)
from bot.services.roster import Counts, school_statistics
from models import AccountState, DistrictDigestRun, HelpStatus
from tests.services.test_digests import (
    ACTIVATED,
    ACTIVATING,
    NOT_NOTIFIED,
    NOTIFIED,
    NOW,
    PARIS,
    SchoolBuilder,
    random_school,
)

INSPECTOR = 7_123_456_789
OTHER_INSPECTOR = 7_000_000_001
UNKNOWN_SCHOOL = 999_999


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def named(db: Session, name: str, states: list[AccountState], **kwargs: Any) -> SchoolBuilder:
    """A school called `name` with one class and one guardian (of one child) per state given."""
    school = SchoolBuilder(db, **kwargs)
    school.school.name = name
    klass = school.klass("CM1")
    for state in states:
        school.guardian([school.pupil(klass)], state)
    return school


def overview_of(db: Session, ids: list[int], **kwargs: Any) -> DistrictOverview:
    db.commit()
    return district_overview(db, school_ids=ids, now=kwargs.pop("now", NOW), tz=PARIS, **kwargs)


def sent_run(db: Session, user: int, sent_at: datetime | None, snapshot: dict[str, Any]) -> None:
    db.add(
        DistrictDigestRun(
            telegram_user_id=user,
            due_at=sent_at or NOW,
            claimed_at=sent_at or NOW,
            sent_at=sent_at,
            snapshot=snapshot,
        )
    )
    db.commit()


def test_each_school_counts_as_its_statistics_and_the_totals_are_their_sums(db: Session) -> None:
    schools = [random_school(db, seed) for seed in (5, 6, 7)]
    ids = [school.id for school in schools]

    overview = overview_of(db, [*ids, UNKNOWN_SCHOOL])

    assert sorted(line.school_id for line in overview.schools) == sorted(ids)
    assert overview.line(UNKNOWN_SCHOOL) is None
    for school in schools:
        line = overview.line(school.id)
        assert line is not None
        assert line.counts == school_statistics(db, school_id=school.id).total
        assert (line.uai, line.name) == (school.school.uai, school.school.name)
    sums = {
        name: sum(getattr(line.counts, name) for line in overview.schools)
        for name in ("accounts", "not_notified", "notified", "activating", "activated", "pupils")
    }
    assert sums["accounts"] > 0 and sums["activated"] > 0
    for name, value in sums.items():
        assert getattr(overview.total, name) == value
    assert overview.total.pupils_with_activated_guardian == sum(
        line.counts.pupils_with_activated_guardian for line in overview.schools
    )
    assert overview.now == NOW


def test_furthest_behind_first_then_the_larger_school_then_by_name(db: Session) -> None:
    half = named(db, "École Moitié", [ACTIVATED, NOTIFIED])
    small = named(db, "École Petite", [NOTIFIED, NOT_NOTIFIED])
    large_b = named(db, "École Bert", [NOTIFIED, ACTIVATING, NOT_NOTIFIED])
    large_a = named(db, "École Arago", [NOTIFIED, NOTIFIED, NOTIFIED])
    third = named(db, "École Tiers", [ACTIVATED, NOTIFIED, NOTIFIED])
    done = named(db, "École Verte", [ACTIVATED])
    empty = named(db, "École Vide", [])

    overview = overview_of(db, [s.id for s in (done, half, small, large_b, empty, third, large_a)])

    assert [line.name for line in overview.schools] == [
        "École Arago",  # 0 %, 3 accounts
        "École Bert",  # 0 %, 3 accounts
        "École Petite",  # 0 %, 2 accounts
        "École Vide",  # 0 %, no account yet
        "École Tiers",  # 33 %
        "École Moitié",  # 50 %
        "École Verte",  # 100 %
    ]
    assert overview.total == Counts(
        accounts=14,
        not_notified=2,
        notified=8,
        activating=1,
        activated=3,
        pupils=14,
        pupils_with_activated_guardian=3,
    )


def test_lsu_dates_and_days_left_are_counted_in_paris(db: Session) -> None:
    soon = named(db, "École A", [NOTIFIED], lsu_date=date(2027, 1, 15))
    later = named(db, "École B", [NOTIFIED], lsu_date=date(2027, 2, 1))
    past = named(db, "École C", [NOTIFIED], lsu_date=date(2027, 1, 10))
    none = named(db, "École D", [NOTIFIED])
    # 23:30 UTC on the 13th is already the 14th in Paris: one day left, not two.
    late_evening = datetime(2027, 1, 13, 23, 30, tzinfo=UTC)

    overview = overview_of(db, [soon.id, later.id, past.id, none.id], now=late_evening)

    days = {line.name: (line.lsu_date, line.days_left) for line in overview.schools}
    assert days == {
        "École A": (date(2027, 1, 15), 1),
        "École B": (date(2027, 2, 1), 18),
        "École C": (date(2027, 1, 10), -4),
        "École D": (None, None),
    }
    # The earliest LSU date still ahead, not one already past.
    assert overview.next_lsu_date == date(2027, 1, 15)
    assert overview_of(db, [none.id]).next_lsu_date is None


def test_open_help_requests_are_those_open_or_in_progress(db: Session) -> None:
    busy = named(db, "École A", [NOTIFIED])
    for status in (HelpStatus.OPEN, HelpStatus.IN_PROGRESS, HelpStatus.ANSWERED):
        busy.help_request(status)
    busy.help_request(HelpStatus.CLOSED)
    busy.help_request(HelpStatus.OPEN)
    quiet = named(db, "École B", [NOTIFIED])
    quiet.help_request(HelpStatus.CLOSED)
    elsewhere = named(db, "École C", [NOTIFIED])
    elsewhere.help_request(HelpStatus.OPEN)

    overview = overview_of(db, [busy.id, quiet.id])

    requests = {line.name: line.open_requests for line in overview.schools}
    assert requests == {"École A": 3, "École B": 0}


def test_previous_digest_is_the_latest_sent_one_of_that_inspector(db: Session) -> None:
    monday = NOW - timedelta(days=7)
    assert previous_district_digest(db, telegram_user_id=INSPECTOR, before=NOW) is None
    sent_run(db, INSPECTOR, monday - timedelta(days=7), {"activated": {"1": 1}})
    sent_run(db, INSPECTOR, monday, {"activated": {"1": 2}})
    sent_run(db, INSPECTOR, None, {})  # claimed, not sent (yet)
    sent_run(db, OTHER_INSPECTOR, NOW - timedelta(days=1), {"activated": {"1": 9}})
    sent_run(db, INSPECTOR, NOW + timedelta(hours=1), {"activated": {"1": 5}})  # after `before`

    found = previous_district_digest(db, telegram_user_id=INSPECTOR, before=NOW)

    assert found == (monday, {"activated": {"1": 2}})
    assert found[0].tzinfo is not None
    other = previous_district_digest(db, telegram_user_id=OTHER_INSPECTOR, before=NOW)
    assert other is not None and other[1] == {"activated": {"1": 9}}
    assert previous_district_digest(db, telegram_user_id=12345, before=NOW) is None


def test_change_since_the_previous_digest_per_school_and_in_total(db: Session) -> None:
    a = named(db, "École A", [ACTIVATED])
    a_class = a.klass("CE1")
    waiting = [a.guardian([a.pupil(a_class)], NOTIFIED) for _ in range(3)]
    b = named(db, "École B", [ACTIVATED, NOTIFIED])
    b_waiting = b.guardian([b.pupil(None)], ACTIVATING)
    monday = NOW - timedelta(days=7)
    before = overview_of(db, [a.id, b.id], now=monday)
    assert before.previous_sent_at is None and before.activated_since is None
    assert all(line.activated_since is None for line in before.schools)
    snapshot = district_snapshot(before)
    assert snapshot == {
        "at": monday.isoformat(),
        "activated": {str(a.id): 1, str(b.id): 1},
        "accounts": 7,
        "activated_total": 2,
    }
    sent_run(db, INSPECTOR, monday, snapshot)
    # Another inspector's digest, sent later, is not this one's « previous ».
    sent_run(db, OTHER_INSPECTOR, NOW - timedelta(days=1), {"activated": {str(a.id): 0}})
    # Since then: two more activated in A, one in B; C joined the district.
    for account in (*waiting[:2], b_waiting):
        account.state = ACTIVATED
    c = named(db, "École C", [ACTIVATED, ACTIVATED, NOTIFIED])
    db.commit()

    previous = previous_district_digest(db, telegram_user_id=INSPECTOR, before=NOW)
    overview = overview_of(db, [a.id, b.id, c.id], previous=previous)

    assert overview.previous_sent_at == monday
    since = {line.name: line.activated_since for line in overview.schools}
    assert since == {"École A": 2, "École B": 1, "École C": None}  # C: nothing to compare
    assert overview.activated_since == 3
    assert overview.total.activated == 3 + 2 + 2


def test_chart_has_one_bar_per_school_in_order_stacked_by_state(db: Session) -> None:
    a = named(db, "École élémentaire publique Jules Ferry", [ACTIVATED, NOTIFIED])
    b = named(db, "Groupe scolaire Paul Bert", [NOT_NOTIFIED, ACTIVATING, ACTIVATING])
    c = named(db, "École", [ACTIVATED])

    data = district_chart_data(overview_of(db, [c.id, a.id, b.id, UNKNOWN_SCHOOL]))

    # The bars are told apart by what follows the kind of school.
    assert data.labels == ("Paul Bert", "Jules Ferry", "École")
    assert [series.state for series in data.series] == list(AccountState)
    assert data.values(NOT_NOTIFIED) == (1, 0, 0)
    assert data.values(NOTIFIED) == (0, 1, 0)
    assert data.values(ACTIVATING) == (2, 0, 0)
    assert data.values(ACTIVATED) == (0, 1, 1)
    assert data.activated_percent == (0.0, 50.0, 100.0)


def test_an_empty_district_has_no_line_and_zero_totals(db: Session) -> None:
    overview = overview_of(db, [UNKNOWN_SCHOOL])
    assert overview.schools == ()
    assert overview.total == Counts()
    assert district_chart_data(overview).labels == ()
