"""The bulk paths of the account state machine: credentials drafted in memory then recorded
under lock, and accounts marked distributed by a few statements per batch — with the same
states, guards, refusals and audit events as one account at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.services.accounts.credentials import (
    CredentialKind,
    draft_credentials,
    issue_credentials,
    mark_distributed,
    plan_distribution,
    record_credentials,
)
from bot.services.accounts.lifecycle import begin_activation, deactivate_accounts
from bot.services.accounts.passwords import verify_password
from bot.services.accounts.refusals import RefusalReason, TransitionRefused
from bot.services.accounts.validity import provisional_expiry
from models import Account, AccountState, AuditEvent, DistributionChannel
from tests.factories import make_school_with_guardians

LETTER_DAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LATER = LETTER_DAY + timedelta(days=10)
ACTOR = "director:42"


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on SQLite and on PostgreSQL."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def fresh(session: Session, account_id: int) -> Account:
    """The account as the database has it."""
    with Session(session.get_bind()) as other:
        found = other.get(Account, account_id)
        assert found is not None
        return found


def account_events(session: Session, account_ids: list[int]) -> list[tuple[int, str, dict]]:
    rows = session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.account_id).in_(account_ids))
        .where(col(AuditEvent.action) != "account.created")
        .order_by(col(AuditEvent.id))
    )
    return [(row.account_id or 0, row.action, row.details) for row in rows]


def first_notified(session: Session, count: int) -> list[int]:
    """`count` accounts of a new school: the first half notified on LETTER_DAY, the rest
    never notified but with a first password drawn."""
    school = make_school_with_guardians(session, count)
    ids = school.account_ids
    issue_credentials(
        session=session, account_ids=ids, kind=CredentialKind.FIRST, actor=ACTOR, now=LETTER_DAY
    )
    half = ids[: count // 2]
    mark_distributed(
        session=session,
        account_ids=half,
        channel=DistributionChannel.PAPER,
        actor=ACTOR,
        at=LETTER_DAY,
    )
    session.commit()
    return ids


def test_marking_a_mix_of_first_and_renotified_accounts_keeps_one_event_each(
    db: Session,
) -> None:
    ids = first_notified(db, 6)
    notified, waiting = ids[:3], ids[3:]
    # The session holds the accounts: it must see the new values without a reload.
    held = {id_: db.get(Account, id_) for id_ in ids}
    before = len(account_events(db, ids))
    mixed = [waiting[0], notified[0], waiting[1], notified[1], waiting[2], notified[2]]
    mark_distributed(
        session=db, account_ids=mixed, channel=DistributionChannel.EMAIL, actor="outbox", at=LATER
    )
    db.commit()

    for id_ in ids:
        stored = fresh(db, id_)
        assert stored.state == AccountState.NOTIFIED
        assert stored.distributed_at == LATER
        assert stored.distribution_channel == DistributionChannel.EMAIL
        in_session = held[id_]
        assert in_session is not None and in_session.state == AccountState.NOTIFIED
        assert in_session.distributed_at == LATER
    new_events = account_events(db, ids)[before:]
    assert [(id_, action) for id_, action, _details in new_events] == [
        (id_, "account.notified" if id_ in waiting else "account.renotified") for id_ in mixed
    ]
    assert all(details == {"channel": "email"} for _id, _action, details in new_events)


def test_marking_refuses_the_whole_batch_for_one_refused_account(db: Session) -> None:
    ids = first_notified(db, 4)
    deactivate_accounts(session=db, account_ids=[ids[3]], actor=ACTOR)
    db.commit()
    before = len(account_events(db, ids))
    with pytest.raises(TransitionRefused) as refused:
        mark_distributed(
            session=db,
            account_ids=[ids[2], ids[3], 999_999],
            channel=DistributionChannel.EMAIL,
            actor=ACTOR,
            at=LATER,
        )
    db.rollback()
    assert refused.value.refusals == {
        ids[3]: RefusalReason.DEACTIVATED,
        999_999: RefusalReason.UNKNOWN_ACCOUNT,
    }
    assert fresh(db, ids[2]).state == AccountState.NOT_NOTIFIED
    assert len(account_events(db, ids)) == before


def test_a_draft_writes_nothing_and_its_record_stores_each_own_hash(db: Session) -> None:
    ids = first_notified(db, 4)  # two notified, two never notified
    old_hashes = {id_: fresh(db, id_).password_hash for id_ in ids}
    plan = plan_distribution(session=db, account_ids=ids, reset=False, now=LATER)
    assert [item.kind for item in plan] == [
        CredentialKind.REMINDER,
        CredentialKind.REMINDER,
        CredentialKind.FIRST,
        CredentialKind.FIRST,
    ]
    before = len(account_events(db, ids))
    draft = draft_credentials(session=db, plan=plan, now=LATER)
    db.commit()
    assert all(c.password is None or c.password not in repr(draft) for c in draft.credentials)
    assert {id_: fresh(db, id_).password_hash for id_ in ids} == old_hashes
    assert len(account_events(db, ids)) == before

    issued = record_credentials(session=db, draft=draft, actor=ACTOR)
    db.commit()
    by_id = {credential.account_id: credential for credential in issued}
    for id_ in ids[:2]:  # reminders: nothing drawn, the stored password kept
        assert by_id[id_].password is None
        assert fresh(db, id_).password_hash == old_hashes[id_]
        assert by_id[id_].expires_at == provisional_expiry(LETTER_DAY)
    for id_ in ids[2:]:  # first letters drawn again: a new password each
        credential = by_id[id_]
        stored = fresh(db, id_)
        assert credential.password and verify_password(stored.password_hash, credential.password)
        assert stored.provisional_expires_at == provisional_expiry(LATER)
        assert stored.state == AccountState.NOT_NOTIFIED
    assert len({fresh(db, id_).password_hash for id_ in ids[2:]}) == 2
    assert [
        (id_, action, details) for id_, action, details in account_events(db, ids)[before:]
    ] == [
        (
            credential.account_id,
            "account.credentials_issued",
            {
                "kind": credential.kind.value,
                "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
            },
        )
        for credential in issued
    ]


def test_recording_a_draft_refuses_every_account_changed_since_and_writes_nothing(
    db: Session,
) -> None:
    ids = first_notified(db, 4)
    plan = plan_distribution(session=db, account_ids=ids, reset=True, now=LATER)
    draft = draft_credentials(session=db, plan=plan, now=LATER)
    db.commit()
    # Meanwhile: a family activates, another letter is printed, an account is deactivated.
    begin_activation(
        session=db,
        account_id=ids[0],
        new_password="Vacances-2026!",
        email="famille@example.org",
        actor="portal",
        now=LATER,
    )
    mark_distributed(
        session=db,
        account_ids=[ids[1]],
        channel=DistributionChannel.PAPER,
        actor="director:7",
        at=LATER,
    )
    deactivate_accounts(session=db, account_ids=[ids[2]], actor="import")
    db.commit()
    hashes = {id_: fresh(db, id_).password_hash for id_ in ids}
    before = len(account_events(db, ids))

    with pytest.raises(TransitionRefused) as refused:
        record_credentials(session=db, draft=draft, actor=ACTOR)
    db.rollback()
    assert refused.value.refusals == {
        ids[0]: RefusalReason.CHANGED,  # a reset of an activating account passes the guards
        ids[1]: RefusalReason.CHANGED,
        ids[2]: RefusalReason.DEACTIVATED,
    }
    assert {id_: fresh(db, id_).password_hash for id_ in ids} == hashes
    assert len(account_events(db, ids)) == before


def test_two_records_of_the_same_accounts_at_once_the_second_waits_then_is_refused(
    engine: Engine,
) -> None:
    """Two directors print the same letters at the same moment: the second recording waits for
    the first to commit, then sees the change and records nothing (SQLite included, where
    pysqlite would otherwise read the guards before taking any lock)."""
    with Session(engine, expire_on_commit=False) as setup:
        ids = make_school_with_guardians(setup, 2).account_ids
        setup.commit()
    drafts = []
    for _ in range(2):
        with Session(engine, expire_on_commit=False) as planning:
            plan = plan_distribution(session=planning, account_ids=ids, reset=False, now=LATER)
            drafts.append(draft_credentials(session=planning, plan=plan, now=LATER))
    outcome: dict[str, object] = {}

    def second_director() -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                record_credentials(session=session, draft=drafts[1], actor="director:2")
                session.commit()
                outcome["second"] = "recorded"
            except TransitionRefused as refused:
                session.rollback()
                outcome["second"] = refused.refusals

    with Session(engine, expire_on_commit=False) as first:
        record_credentials(session=first, draft=drafts[0], actor="director:1")
        waiting = threading.Thread(target=second_director)
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive(), "the second recording did not wait for the first"
        first.commit()
    waiting.join(timeout=10)

    assert outcome["second"] == {id_: RefusalReason.CHANGED for id_ in ids}
    with Session(engine) as check:
        for credential in drafts[0].credentials:
            stored = check.get(Account, credential.account_id)
            assert stored is not None and credential.password is not None
            assert verify_password(stored.password_hash, credential.password)
