"""The digests of several generated schools at once count as /etat counts each school alone:
imported ONDE extractions (guardians with children in two classes, pupils without a class, an
archived class, archived pupils, deactivated accounts), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, select, update
from sqlmodel import Session, col

from bot.db import session_scope
from bot.sandbox.onde_generator import generate_district
from bot.services.digests import (
    ClassProgress,
    DigestContent,
    digest_contents,
    school_totals,
)
from bot.services.digests.progress import school_progress
from bot.services.roster import (
    import_roster,
    known_classes,
    known_classes_by_school,
    school_statistics,
)
from bot.services.schools import add_school
from models import Account, AccountState, Guardian, Pupil, PupilGuardian, SchoolClass

NOW = datetime(2027, 1, 11, 7, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
STALE_BEFORE = NOW - timedelta(days=7)


def _load(engine: Engine) -> list[int]:
    """Three generated schools, imported, with accounts in every state and a few pupils,
    classes and accounts set aside."""
    ids = []
    for extraction in generate_district(seed="digests", schools=3, pupils_per_school=90):
        with session_scope(engine) as session:
            school = add_school(
                session, uai=extraction.uai, name=extraction.name, city=None, actor="test"
            )
            assert school.id is not None
            ids.append(school.id)
            import_roster(session, school_id=school.id, files=extraction.files, actor="test")
    with session_scope(engine) as session:
        bucket = col(Account.id) % 10
        session.execute(
            update(Account).values(
                state=case(
                    (bucket < 4, AccountState.ACTIVATED),
                    (bucket < 5, AccountState.ACTIVATING),
                    (bucket < 8, AccountState.NOTIFIED),
                    else_=AccountState.NOT_NOTIFIED,
                ),
                distributed_at=NOW - timedelta(days=3),
            )
        )
        session.execute(
            update(Account)
            .where(col(Account.id) % 3 == 0, bucket >= 5, bucket < 8)
            .values(distributed_at=NOW - timedelta(days=12))
        )
        session.execute(update(Account).where(col(Account.id) % 13 == 0).values(deactivated_at=NOW))
        session.execute(update(Pupil).where(col(Pupil.id) % 17 == 0).values(archived_at=NOW))
        session.execute(update(Pupil).where(col(Pupil.id) % 19 == 0).values(class_id=None))
        archived = session.execute(
            select(col(SchoolClass.id)).where(col(SchoolClass.school_id) == ids[1]).limit(1)
        ).scalar_one()
        session.execute(
            update(SchoolClass).where(col(SchoolClass.id) == archived).values(archived_at=NOW)
        )
    return ids


def _to_do(session: Session, school_id: int) -> Counter[str]:
    """What the school's accounts need next, counted in Python from plain rows: each active
    account of a guardian of an enrolled pupil once."""
    rows = session.execute(
        select(Account, Guardian.email)
        .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .join(PupilGuardian, col(PupilGuardian.guardian_id) == col(Guardian.id))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(
            col(Pupil.school_id) == school_id,
            col(Pupil.archived_at).is_(None),
            col(SchoolClass.archived_at).is_(None),
            col(Account.deactivated_at).is_(None),
        )
    ).all()
    needs: dict[int, str] = {}
    for account, email in rows:
        distributed = account.distributed_at
        if distributed is not None and distributed.tzinfo is None:
            distributed = distributed.replace(tzinfo=UTC)
        if account.state is AccountState.NOT_NOTIFIED:
            needs[account.id] = "email_never_notified" if email else "paper_never_notified"
        elif account.state is AccountState.NOTIFIED and distributed < STALE_BEFORE:
            needs[account.id] = "remind_stale"
        elif account.state is AccountState.ACTIVATING:
            needs[account.id] = "confirm_pending"
    return Counter(needs.values())


def _action_counts(content: DigestContent) -> Counter[str]:
    counts: Counter[str] = Counter()
    for action in content.actions:
        counts[action.kind.value] += action.count if action.class_label is None else 0
    return counts


def test_digests_of_generated_schools_count_as_etat_counts_each_school(engine: Engine) -> None:
    ids = _load(engine)

    with Session(engine) as session:
        contents = digest_contents(session, school_ids=ids, now=NOW, tz=PARIS)
        progress = school_progress(session, school_ids=ids, stale_before=STALE_BEFORE)
        totals = school_totals(session, school_ids=ids, stale_before=STALE_BEFORE)
        classes = known_classes_by_school(session, school_ids=ids)

        assert [content.school_id for content in contents] == ids
        shared = 0
        for content in contents:
            stats = school_statistics(session, school_id=content.school_id)
            assert content.total == ClassProgress.of(content.school_name, None, stats.total)
            assert content.classes == tuple(
                ClassProgress.of(group.label, group.class_id, group) for group in stats.classes
            )
            # A guardian with children in two classes counts in both, once in the school.
            shared += sum(group.accounts for group in content.classes) - content.total.accounts
            assert classes[content.school_id] == known_classes(session, school_id=content.school_id)
            whole = progress[(content.school_id, None)]
            assert totals[content.school_id] == whole
            expected = _to_do(session, content.school_id)
            assert {name: getattr(whole.to_do, name) for name in expected} == dict(expected)
            assert sum(expected.values()) > 0
    assert shared > 0
    # What was set aside is really gone from the counts.
    assert sum(content.total.pupils for content in contents) < 3 * 90


def test_school_totals_of_schools_without_pupils_are_absent(engine: Engine) -> None:
    with session_scope(engine) as session:
        school = add_school(session, uai="0590001A", name="École vide", actor="test")
        assert school.id is not None
        empty = school.id

    with Session(engine) as session:
        assert school_totals(session, school_ids=[empty], stale_before=STALE_BEFORE) == {}
        assert school_progress(session, school_ids=[empty], stale_before=STALE_BEFORE) == {}
