"""Automatic reminders to families (issue 11, §3): guardians notified or activating for more
than N days get a reminder by e-mail through /relancer's services, at most once a week, never
after activation, never on paper, never between 20:00 and 08:00 nor on a Sunday."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.services.accounts.credentials import CredentialKind, issue_credentials, mark_distributed
from bot.services.accounts.lifecycle import begin_activation, confirm_activation
from bot.services.reminders import (
    EMAIL_CHANNEL,
    due_reminders,
    next_allowed,
    reminded_since,
    reminders_allowed_at,
    send_due_reminders,
    send_reminders,
)
from models import Account, DistributionChannel, FamilyReminder, OutboxMessage, School
from tests.factories import SchoolWithGuardians, make_school_with_guardians

PARIS = ZoneInfo("Europe/Paris")
PORTAL = "https://portail.example.org"
MAIL_FROM = "École Jules Ferry <ecole@example.org>"
# A Monday at 10:00 in Paris, in winter.
MONDAY = datetime(2026, 12, 7, 10, 0, tzinfo=PARIS).astimezone(UTC)
STRONG_PASSWORD = "Cheval-Batterie-42!"


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL (the school is locked FOR UPDATE)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def notify(session: Session, account_ids: Sequence[int], *, at: datetime) -> None:
    """Credentials e-mailed to these accounts at `at` and accepted: they are `notified`."""
    issue_credentials(
        session=session, account_ids=account_ids, kind=CredentialKind.FIRST, actor="t", now=at
    )
    mark_distributed(
        session=session,
        account_ids=account_ids,
        channel=DistributionChannel.EMAIL,
        actor="t",
        at=at,
    )


def remind(session: Session, school_id: int, now: datetime) -> list[int]:
    """Run one school's automatic reminders at `now`; the accounts reminded."""
    batch = send_due_reminders(
        session,
        school_id=school_id,
        now=now,
        actor="scheduler:reminders",
        bot_username="educonnect_test_bot",
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
    )
    return [guardian.account_id for guardian in batch.reminded]


def enable(session: Session, school: School, *, after_days: int = 7) -> None:
    school.reminders_enabled = True
    school.reminder_after_days = after_days
    session.add(school)
    session.flush()


@pytest.fixture
def school(session: Session) -> SchoolWithGuardians:
    """Four guardians with an address, all notified ten days before MONDAY, reminders on."""
    built = make_school_with_guardians(session, 4)
    notify(session, built.account_ids, at=MONDAY - timedelta(days=10))
    enable(session, built.school)
    return built


# --- Quiet hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        (datetime(2026, 12, 7, 8, 0), True),  # Monday 08:00
        (datetime(2026, 12, 7, 19, 59), True),
        (datetime(2026, 12, 7, 20, 0), False),  # evening
        (datetime(2026, 12, 8, 7, 59), False),  # early morning
        (datetime(2026, 12, 12, 11, 0), True),  # Saturday
        (datetime(2026, 12, 13, 11, 0), False),  # Sunday
        (datetime(2027, 3, 28, 12, 0), False),  # the Sunday of the March change
        (datetime(2027, 3, 29, 8, 30), True),  # the Monday after it (CEST)
    ],
)
def test_reminders_only_between_8_and_20_and_never_on_sunday(
    local: datetime, allowed: bool
) -> None:
    assert reminders_allowed_at(local.replace(tzinfo=PARIS).astimezone(UTC), PARIS) is allowed


def test_next_allowed_moment_skips_the_night_and_sunday() -> None:
    def at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
        return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)

    assert next_allowed(at(2026, 12, 7, 10, 0), PARIS) == at(2026, 12, 7, 10, 0)
    assert next_allowed(at(2026, 12, 7, 21, 0), PARIS) == at(2026, 12, 8, 8, 0)
    assert next_allowed(at(2026, 12, 8, 6, 0), PARIS) == at(2026, 12, 8, 8, 0)
    # Saturday evening and Sunday both wait for Monday 08:00.
    assert next_allowed(at(2026, 12, 12, 20, 30), PARIS) == at(2026, 12, 14, 8, 0)
    assert next_allowed(at(2026, 12, 13, 15, 0), PARIS) == at(2026, 12, 14, 8, 0)
    # Across the March change: Monday 08:00 is 06:00 UTC (summer time).
    assert next_allowed(at(2027, 3, 27, 22, 0), PARIS) == datetime(2027, 3, 29, 6, 0, tzinfo=UTC)


# --- Who is due a reminder -----------------------------------------------------------------


def test_due_after_n_days_only(session: Session) -> None:
    built = make_school_with_guardians(session, 3)
    old, recent, never = built.account_ids
    notify(session, [old], at=MONDAY - timedelta(days=8))
    notify(session, [recent], at=MONDAY - timedelta(days=6))
    enable(session, built.school)

    assert due_reminders(session, school_id=built.school.id or 0, now=MONDAY) == [old]
    # The school's own N days.
    enable(session, built.school, after_days=5)
    assert set(due_reminders(session, school_id=built.school.id or 0, now=MONDAY)) == {
        old,
        recent,
    }
    assert never not in due_reminders(session, school_id=built.school.id or 0, now=MONDAY)


def test_paper_is_never_automatic(session: Session) -> None:
    built = make_school_with_guardians(session, 2, with_email=[True, False])
    with_address, without = built.account_ids
    issue_credentials(
        session=session,
        account_ids=[without],
        kind=CredentialKind.FIRST,
        actor="t",
        now=MONDAY - timedelta(days=10),
    )
    mark_distributed(
        session=session,
        account_ids=[without],
        channel=DistributionChannel.PAPER,
        actor="t",
        at=MONDAY - timedelta(days=10),
    )
    notify(session, [with_address], at=MONDAY - timedelta(days=10))
    enable(session, built.school)

    assert remind(session, built.school.id or 0, MONDAY) == [with_address]
    # Even when asked for by hand, a guardian without an address gets no letter.
    batch = send_reminders(
        session,
        school_id=built.school.id or 0,
        account_ids=[without],
        now=MONDAY,
        actor="t",
        bot_username=None,
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
    )
    assert batch.reminded == () and batch.batch_id is None


def test_reminder_by_email_keeps_the_password(
    session: Session, school: SchoolWithGuardians
) -> None:
    hashes = {a.id: a.password_hash for a in session.exec(select(Account)).all()}

    reminded = remind(session, school.school.id or 0, MONDAY)

    assert sorted(reminded) == sorted(school.account_ids)
    outbox = session.exec(
        select(OutboxMessage).where(col(OutboxMessage.kind) == "credentials_reminder")
    ).all()
    assert sorted(row.account_id or 0 for row in outbox) == sorted(school.account_ids)
    session.expire_all()
    assert {a.id: a.password_hash for a in session.exec(select(Account)).all()} == hashes
    rows = session.exec(select(FamilyReminder)).all()
    assert sorted(row.account_id for row in rows) == sorted(school.account_ids)
    assert all(row.channels == [EMAIL_CHANNEL] for row in rows)


def test_at_most_one_reminder_a_week(session: Session, school: SchoolWithGuardians) -> None:
    school_id = school.school.id or 0
    assert len(remind(session, school_id, MONDAY)) == 4

    assert remind(session, school_id, MONDAY + timedelta(hours=1)) == []
    assert remind(session, school_id, MONDAY + timedelta(days=6, hours=23)) == []
    # A week later, still not activated (the e-mail was never accepted here): again.
    assert len(remind(session, school_id, MONDAY + timedelta(days=7, hours=1))) == 4


def test_never_after_activation(session: Session, school: SchoolWithGuardians) -> None:
    school_id = school.school.id or 0
    activating, activated, *_rest = school.account_ids
    for account_id in (activating, activated):
        begin_activation(
            session,
            account_id=account_id,
            new_password=STRONG_PASSWORD,
            email=f"famille{account_id}@example.org",
            actor="t",
            now=MONDAY - timedelta(days=9),
        )
    confirm_activation(session, account_id=activated, actor="t", now=MONDAY - timedelta(days=9))

    due = due_reminders(session, school_id=school_id, now=MONDAY)

    assert activating in due
    assert activated not in due
    assert len(due) == 3


def test_an_expired_provisional_password_is_left_to_the_director(session: Session) -> None:
    built = make_school_with_guardians(session, 1)
    # Notified four months ago: the provisional password (3 months) has expired, and a
    # reminder would need a new one.
    notify(session, built.account_ids, at=MONDAY - timedelta(days=120))
    enable(session, built.school)

    assert due_reminders(session, school_id=built.school.id or 0, now=MONDAY) == []


def test_nothing_when_reminders_are_off(session: Session, school: SchoolWithGuardians) -> None:
    school.school.reminders_enabled = False
    session.add(school.school)
    session.flush()

    assert remind(session, school.school.id or 0, MONDAY) == []
    assert session.exec(select(FamilyReminder)).all() == []


def test_reminded_since_lists_the_guardians_for_the_digest(session: Session) -> None:
    built = make_school_with_guardians(session, 2, names=[("Inès", "Lefèvre"), ("Hugo", "Martin")])
    notify(session, built.account_ids, at=MONDAY - timedelta(days=10))
    enable(session, built.school)
    school_id = built.school.id or 0

    remind(session, school_id, MONDAY)

    assert reminded_since(session, school_id=school_id, since=MONDAY - timedelta(days=1)) == [
        "Inès LEFÈVRE",
        "Hugo MARTIN",
    ]
    assert reminded_since(session, school_id=school_id, since=MONDAY + timedelta(hours=1)) == []
