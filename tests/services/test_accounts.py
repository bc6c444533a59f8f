"""The account state machine: guards, transitions, expiry and their audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from bot.services.accounts import passwords
from bot.services.accounts.credentials import (
    CredentialKind,
    IssuedCredential,
    issue_credentials,
    issue_planned,
    mark_distributed,
    notify_accounts,
    plan_distribution,
)
from bot.services.accounts.lifecycle import (
    begin_activation,
    change_password,
    confirm_activation,
    create_accounts,
    deactivate_accounts,
    reactivate_accounts,
)
from bot.services.accounts.login import verify_login
from bot.services.accounts.passwords import hash_parameters, verify_password
from bot.services.accounts.refusals import RefusalReason, TransitionRefused
from bot.services.accounts.validity import provisional_expiry
from models import Account, AccountState, AuditEvent, DistributionChannel, Guardian
from tests.factories import make_school_with_guardians

PARIS = ZoneInfo("Europe/Paris")
LETTER_DAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LATER = LETTER_DAY + timedelta(days=10)
AFTER_EXPIRY = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
CHOSEN = "Vacances-2026!"
ACTOR = "director:42"
EMAIL = DistributionChannel.EMAIL
PAPER = DistributionChannel.PAPER


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on SQLite and on PostgreSQL: the integration tests run on both."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def account(session: Session, account_id: int) -> Account:
    session.expire_all()
    found = session.get(Account, account_id)
    assert found is not None
    return found


def events(session: Session, account_id: int | None = None) -> list[AuditEvent]:
    statement = select(AuditEvent).order_by(col(AuditEvent.id))
    if account_id is not None:
        statement = statement.where(AuditEvent.account_id == account_id)
    return list(session.exec(statement))


def actions(session: Session, account_id: int) -> list[str]:
    return [e.action for e in events(session, account_id) if e.action != "account.created"]


def notified_account(session: Session, *, channel: DistributionChannel = PAPER) -> IssuedCredential:
    """A school with one guardian whose account was notified on LETTER_DAY."""
    school = make_school_with_guardians(session, 1)
    [issued] = issue_credentials(
        session=session,
        account_ids=school.account_ids,
        kind=CredentialKind.FIRST,
        actor=ACTOR,
        now=LETTER_DAY,
    )
    mark_distributed(
        session=session, account_ids=school.account_ids, channel=channel, actor=ACTOR, at=LETTER_DAY
    )
    session.commit()
    return issued


def login(session: Session, issued: IssuedCredential, password: str | None, **kw: Any) -> bool:
    assert password is not None
    return (
        verify_login(session=session, identifier=issued.identifier, password=password, **kw)
        is not None
    )


# --- Notifying ------------------------------------------------------------------------------


def test_notifying_makes_the_account_notified_with_date_channel_and_3_month_expiry(
    db: Session,
) -> None:
    school = make_school_with_guardians(db, 1, with_email=False)
    [account_id] = school.account_ids

    batch = notify_accounts(session=db, account_ids=[account_id], actor=ACTOR, now=LETTER_DAY)
    db.commit()

    [issued] = batch.issued
    assert batch.skipped == []
    assert issued.kind == CredentialKind.FIRST and issued.password is not None
    row = account(db, account_id)
    assert row.state == AccountState.NOTIFIED
    assert row.distributed_at == LETTER_DAY
    assert row.distribution_channel == PAPER
    # Letter of 30 November: valid through 28 February, the whole day, Paris time.
    assert row.provisional_expires_at == datetime(2027, 2, 28, 23, 59, 59, 999999, tzinfo=PARIS)
    assert issued.expires_at == row.provisional_expires_at
    assert verify_password(row.password_hash, issued.password)
    assert actions(db, account_id) == ["account.credentials_issued", "account.notified"]
    [issued_event, notified_event] = events(db, account_id)[1:]
    assert issued_event.details["kind"] == "first" and issued_event.actor == ACTOR
    assert notified_event.details == {"channel": "paper"}
    assert issued_event.school_id == school.school.id


def test_the_clear_password_is_never_stored(db: Session) -> None:
    issued = notified_account(db)
    assert issued.password is not None

    for table in (Account, Guardian, AuditEvent):
        rows = db.connection().exec_driver_sql(f"SELECT * FROM {table.__tablename__}").all()
        assert issued.password not in json.dumps([list(map(str, row)) for row in rows])


def test_an_issued_credential_hides_its_password_when_printed(db: Session) -> None:
    issued = notified_account(db)
    assert issued.password is not None

    assert issued.password not in repr(issued) and issued.password not in str(issued)
    assert "<hidden>" in repr(issued)


def test_e_mail_credentials_notify_the_account_only_once_the_mail_is_accepted(
    db: Session,
) -> None:
    school = make_school_with_guardians(db, 1)
    plan = plan_distribution(session=db, account_ids=school.account_ids, reset=False)
    [issued] = issue_planned(session=db, plan=plan, actor=ACTOR, now=LETTER_DAY)
    db.commit()
    assert account(db, issued.account_id).state == AccountState.NOT_NOTIFIED

    accepted_at = LETTER_DAY + timedelta(minutes=3)
    mark_distributed(
        session=db, account_ids=[issued.account_id], channel=EMAIL, actor="outbox", at=accepted_at
    )
    db.commit()

    row = account(db, issued.account_id)
    assert row.state == AccountState.NOTIFIED
    assert row.distributed_at == accepted_at and row.distribution_channel == EMAIL


def test_a_first_letter_can_be_drawn_again_until_it_reaches_the_family(db: Session) -> None:
    school = make_school_with_guardians(db, 1)
    first = issue_credentials(
        session=db, account_ids=school.account_ids, kind=CredentialKind.FIRST, actor=ACTOR
    )
    again = issue_credentials(
        session=db, account_ids=school.account_ids, kind=CredentialKind.FIRST, actor=ACTOR
    )
    row = account(db, school.account_ids[0])

    assert not verify_password(row.password_hash, first[0].password or "")
    assert verify_password(row.password_hash, again[0].password or "")
    assert row.state == AccountState.NOT_NOTIFIED


def test_a_first_letter_is_refused_once_notified(db: Session) -> None:
    issued = notified_account(db)

    with pytest.raises(TransitionRefused) as refused:
        issue_credentials(
            session=db, account_ids=[issued.account_id], kind=CredentialKind.FIRST, actor=ACTOR
        )

    assert refused.value.reason == RefusalReason.ALREADY_NOTIFIED


def test_marking_distributed_needs_issued_credentials(db: Session) -> None:
    school = make_school_with_guardians(db, 1)

    with pytest.raises(TransitionRefused) as refused:
        mark_distributed(session=db, account_ids=school.account_ids, channel=PAPER, actor=ACTOR)

    assert refused.value.reason == RefusalReason.NO_CREDENTIALS


# --- Re-notifying and resetting -------------------------------------------------------------


def test_renotifying_keeps_the_state_and_password_and_updates_the_date(db: Session) -> None:
    issued = notified_account(db)
    hash_before = account(db, issued.account_id).password_hash

    batch = notify_accounts(session=db, account_ids=[issued.account_id], actor=ACTOR, now=LATER)
    db.commit()

    [reminder] = batch.issued
    assert reminder.kind == CredentialKind.REMINDER
    assert reminder.password is None  # « votre mot de passe est inchangé »
    assert reminder.expires_at == issued.expires_at
    row = account(db, issued.account_id)
    assert row.state == AccountState.NOTIFIED
    assert row.distributed_at == LATER
    assert row.password_hash == hash_before
    assert actions(db, issued.account_id)[-2:] == [
        "account.credentials_issued",
        "account.renotified",
    ]
    assert events(db, issued.account_id)[-2].details["kind"] == "reminder"


def test_a_reminder_is_refused_before_notification(db: Session) -> None:
    school = make_school_with_guardians(db, 1)

    with pytest.raises(TransitionRefused) as refused:
        issue_credentials(
            session=db, account_ids=school.account_ids, kind=CredentialKind.REMINDER, actor=ACTOR
        )

    assert refused.value.reason == RefusalReason.NOT_YET_NOTIFIED


def test_a_reset_is_refused_before_notification_and_writes_nothing(db: Session) -> None:
    school = make_school_with_guardians(db, 1)
    db.commit()
    before = len(events(db))

    with pytest.raises(TransitionRefused) as refused:
        issue_credentials(
            session=db, account_ids=school.account_ids, kind=CredentialKind.RESET, actor=ACTOR
        )

    assert refused.value.reason == RefusalReason.NOT_YET_NOTIFIED
    assert refused.value.account_id == school.account_ids[0]
    assert len(events(db)) == before
    assert account(db, school.account_ids[0]).password_hash is None


def test_a_reset_gives_a_new_password_at_once_and_keeps_the_state(db: Session) -> None:
    issued = notified_account(db)

    [reset] = issue_credentials(
        session=db,
        account_ids=[issued.account_id],
        kind=CredentialKind.RESET,
        actor=ACTOR,
        now=LATER,
    )
    db.commit()

    assert reset.kind == CredentialKind.RESET and reset.password not in (None, issued.password)
    row = account(db, issued.account_id)
    assert row.state == AccountState.NOTIFIED
    assert row.distributed_at == LETTER_DAY  # the new letter is not delivered yet
    assert row.provisional_expires_at == provisional_expiry(LATER)
    assert not login(db, issued, issued.password, now=LATER)
    assert login(db, reset, reset.password, now=LATER)
    assert events(db, issued.account_id)[-1].details["kind"] == "reset"


def test_a_reset_replaces_an_activated_familys_password_without_changing_the_state(
    db: Session,
) -> None:
    issued = activated_account(db)

    [reset] = issue_credentials(
        session=db, account_ids=[issued.account_id], kind=CredentialKind.RESET, actor=ACTOR
    )
    db.commit()

    assert account(db, issued.account_id).state == AccountState.ACTIVATED
    assert not login(db, issued, CHOSEN)
    assert login(db, reset, reset.password)
    change_password(
        session=db, account_id=issued.account_id, new_password="Rentrée-2027!", actor="portal"
    )
    db.commit()
    assert login(db, issued, "Rentrée-2027!") and not login(db, reset, reset.password)


# --- Planning -------------------------------------------------------------------------------


def test_the_plan_says_who_gets_what_and_who_is_skipped_and_why(db: Session) -> None:
    school = make_school_with_guardians(
        db, 7, with_email=[True, False, True, True, True, True, True]
    )
    never, notified, expired, activating, activated, deactivated, _ = school.account_ids
    some_hash = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID).hash(
        "BUNZ57DM"
    )
    states = {
        notified: (AccountState.NOTIFIED, LATER + timedelta(days=90)),
        expired: (AccountState.NOTIFIED, LATER - timedelta(days=1)),
        activating: (AccountState.ACTIVATING, None),
        activated: (AccountState.ACTIVATED, None),
        deactivated: (AccountState.NOTIFIED, LATER + timedelta(days=90)),
    }
    for account_id, (state, expires_at) in states.items():
        row = account(db, account_id)
        row.state, row.password_hash, row.provisional_expires_at = state, some_hash, expires_at
        db.add(row)
        db.flush()
    deactivate_accounts(session=db, account_ids=[deactivated], actor=ACTOR)
    db.commit()
    ids = [never, notified, expired, activating, activated, deactivated]

    plan = plan_distribution(session=db, account_ids=ids, reset=False, now=LATER)
    with_reset = plan_distribution(session=db, account_ids=ids, reset=True, now=LATER)

    assert [(item.kind, item.skip_reason) for item in plan] == [
        (CredentialKind.FIRST, None),
        (CredentialKind.REMINDER, None),
        (CredentialKind.RESET, None),  # a reminder of an expired password would help nobody
        (CredentialKind.REMINDER, None),
        (None, RefusalReason.ALREADY_ACTIVATED),
        (None, RefusalReason.DEACTIVATED),
    ]
    assert plan[2].provisional_expired and not plan[1].provisional_expired
    assert [item.has_email for item in plan] == [True, False, True, True, True, True]
    assert [item.account_id for item in plan] == ids
    assert [(item.kind, item.skip_reason) for item in with_reset] == [
        (CredentialKind.FIRST, None),
        (CredentialKind.RESET, None),
        (CredentialKind.RESET, None),
        (CredentialKind.RESET, None),
        (CredentialKind.RESET, None),
        (None, RefusalReason.DEACTIVATED),
    ]
    assert len(events(db)) == 7 + 1  # created ×7, deactivated: planning writes nothing


def test_paper_letters_skip_and_report_activated_and_deactivated_accounts(db: Session) -> None:
    school = make_school_with_guardians(db, 3)
    keep, gone, done = school.account_ids
    deactivate_accounts(session=db, account_ids=[gone], actor=ACTOR)
    row = account(db, done)
    row.state = AccountState.ACTIVATED
    db.add(row)
    db.commit()

    batch = notify_accounts(session=db, account_ids=school.account_ids, actor=ACTOR)

    assert [credential.account_id for credential in batch.issued] == [keep]
    assert {(item.account_id, item.skip_reason) for item in batch.skipped} == {
        (gone, RefusalReason.DEACTIVATED),
        (done, RefusalReason.ALREADY_ACTIVATED),
    }


def test_a_plan_gone_stale_is_refused_whole(db: Session) -> None:
    school = make_school_with_guardians(db, 2)
    plan = plan_distribution(session=db, account_ids=school.account_ids, reset=False)
    deactivate_accounts(session=db, account_ids=school.account_ids[1:], actor="import")
    db.commit()
    before = len(events(db))

    with pytest.raises(TransitionRefused) as refused:
        issue_planned(session=db, plan=plan, actor=ACTOR)

    assert refused.value.refusals == {school.account_ids[1]: RefusalReason.DEACTIVATED}
    assert len(events(db)) == before
    assert account(db, school.account_ids[0]).password_hash is None


# --- Logging in and activating --------------------------------------------------------------


def activated_account(session: Session) -> IssuedCredential:
    issued = notified_account(session)
    begin_activation(
        session=session,
        account_id=issued.account_id,
        new_password=CHOSEN,
        email="famille@example.org",
        actor="portal",
        now=LATER,
    )
    confirm_activation(session=session, account_id=issued.account_id, actor="portal", now=LATER)
    session.commit()
    return issued


def test_the_provisional_password_opens_the_account_and_records_the_access(db: Session) -> None:
    issued = notified_account(db)
    assert issued.password is not None

    opened = verify_login(
        session=db,
        identifier=issued.identifier.upper(),
        password=issued.password.lower(),
        now=LATER,
    )

    assert opened is not None and opened.id == issued.account_id
    assert account(db, issued.account_id).last_access_at == LATER
    assert not login(db, issued, "ABCDEFGH", now=LATER)
    assert verify_login(session=db, identifier="nobody.here", password="X", now=LATER) is None


def test_an_expired_provisional_password_is_refused_once_proven_right(db: Session) -> None:
    issued = notified_account(db)

    with pytest.raises(TransitionRefused) as refused:
        login(db, issued, issued.password, now=AFTER_EXPIRY)

    assert refused.value.reason == RefusalReason.PROVISIONAL_PASSWORD_EXPIRED
    assert not login(db, issued, "ABCDEFGH", now=AFTER_EXPIRY)  # a guesser learns nothing


def test_activation_makes_the_account_activating_then_activated(db: Session) -> None:
    issued = notified_account(db)

    begin_activation(
        session=db,
        account_id=issued.account_id,
        new_password=CHOSEN,
        email=" Famille.Durand@Example.ORG ",
        actor="portal",
        now=LATER,
    )
    db.commit()

    row = account(db, issued.account_id)
    assert row.state == AccountState.ACTIVATING
    assert row.provisional_expires_at is None
    chosen = passwords.CHOSEN_HASHER
    assert hash_parameters(row.password_hash or "") == (
        chosen.memory_cost,
        chosen.time_cost,
        chosen.parallelism,
    )
    guardian = db.get(Guardian, row.guardian_id)
    # The typed address is pending on the confirmation link until it is followed.
    assert guardian is not None and guardian.email == "parent0@example.org"
    assert not login(db, issued, issued.password, now=LATER)  # only until activation
    assert login(db, issued, CHOSEN, now=LATER)

    confirm_activation(
        session=db,
        account_id=issued.account_id,
        actor="portal",
        email="Famille.Durand@example.org",
        now=LATER,
    )
    db.commit()

    row = account(db, issued.account_id)
    assert row.state == AccountState.ACTIVATED and row.activated_at == LATER
    db.refresh(guardian)
    assert guardian.email == "Famille.Durand@example.org"
    assert login(db, issued, CHOSEN, now=AFTER_EXPIRY)  # a chosen password does not expire
    assert actions(db, issued.account_id)[-2:] == [
        "account.activation_started",
        "account.activated",
    ]
    assert events(db, issued.account_id)[-2].details == {"email_changed": True}


@pytest.mark.parametrize(
    ("situation", "reason"),
    [
        ("expired", RefusalReason.PROVISIONAL_PASSWORD_EXPIRED),
        ("deactivated", RefusalReason.DEACTIVATED),
        ("not_notified", RefusalReason.NOT_YET_NOTIFIED),
        ("activated", RefusalReason.ALREADY_ACTIVATED),
        ("weak_password", RefusalReason.WEAK_PASSWORD),
        ("bad_email", RefusalReason.INVALID_EMAIL),
    ],
)
def test_activation_is_refused(session: Session, situation: str, reason: RefusalReason) -> None:
    now, password, email = LATER, CHOSEN, "famille@example.org"
    if situation == "not_notified":
        account_id = make_school_with_guardians(session, 1).account_ids[0]
    else:
        account_id = notified_account(session).account_id
    if situation == "expired":
        now = AFTER_EXPIRY
    elif situation == "deactivated":
        deactivate_accounts(session=session, account_ids=[account_id], actor=ACTOR)
    elif situation == "activated":
        row = account(session, account_id)
        row.state = AccountState.ACTIVATED
        session.add(row)
    elif situation == "weak_password":
        password = "motdepasse"
    elif situation == "bad_email":
        email = "famille@"
    session.commit()
    before = account(session, account_id).model_dump()
    audit_before = len(events(session))

    with pytest.raises(TransitionRefused) as refused:
        begin_activation(
            session=session,
            account_id=account_id,
            new_password=password,
            email=email,
            actor="portal",
            now=now,
        )

    assert refused.value.reason == reason
    assert account(session, account_id).model_dump() == before
    assert len(events(session)) == audit_before


def test_confirming_needs_an_activation_in_progress(session: Session) -> None:
    issued = notified_account(session)

    with pytest.raises(TransitionRefused) as refused:
        confirm_activation(session=session, account_id=issued.account_id, actor="portal")

    assert refused.value.reason == RefusalReason.NOT_ACTIVATING


@pytest.mark.production_argon2
def test_a_chosen_hash_made_with_older_parameters_is_upgraded_at_login(session: Session) -> None:
    issued = activated_account(session)
    weak = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)
    row = account(session, issued.account_id)
    row.password_hash = weak.hash(CHOSEN)
    session.add(row)
    session.commit()

    assert login(session, issued, CHOSEN)

    assert hash_parameters(account(session, issued.account_id).password_hash or "") == (
        65536,
        3,
        4,
    )


# --- Deactivation ---------------------------------------------------------------------------


def test_deactivated_accounts_are_refused_everywhere(db: Session) -> None:
    issued = activated_account(db)
    account_id = issued.account_id
    assert deactivate_accounts(session=db, account_ids=[account_id], actor="import") == [account_id]
    db.commit()
    audit_before = len(events(db))

    for kind in CredentialKind:
        with pytest.raises(TransitionRefused) as refused:
            issue_credentials(session=db, account_ids=[account_id], kind=kind, actor=ACTOR)
        assert refused.value.reason == RefusalReason.DEACTIVATED
    attempts = [
        lambda: mark_distributed(session=db, account_ids=[account_id], channel=PAPER, actor=ACTOR),
        lambda: begin_activation(
            session=db, account_id=account_id, new_password=CHOSEN, email="a@b.fr", actor="p"
        ),
        lambda: confirm_activation(session=db, account_id=account_id, actor="p"),
        lambda: change_password(session=db, account_id=account_id, new_password=CHOSEN, actor="p"),
        lambda: login(db, issued, CHOSEN),
    ]
    for attempt in attempts:
        with pytest.raises(TransitionRefused) as refused:
            attempt()
        assert refused.value.reason == RefusalReason.DEACTIVATED
    [item] = plan_distribution(session=db, account_ids=[account_id], reset=True)
    assert item.kind is None and item.skip_reason == RefusalReason.DEACTIVATED
    assert len(events(db)) == audit_before


def test_deactivation_keeps_the_state_and_is_idempotent(db: Session) -> None:
    issued = notified_account(db)
    account_id = issued.account_id

    assert deactivate_accounts(session=db, account_ids=[account_id], actor="import") == [account_id]
    assert deactivate_accounts(session=db, account_ids=[account_id], actor="import") == []
    db.commit()
    assert account(db, account_id).state == AccountState.NOTIFIED
    assert account(db, account_id).deactivated_at is not None

    assert reactivate_accounts(session=db, account_ids=[account_id], actor="import") == [account_id]
    db.commit()

    row = account(db, account_id)
    assert row.deactivated_at is None and row.state == AccountState.NOTIFIED
    assert login(db, issued, issued.password)
    assert actions(db, account_id)[-2:] == ["account.deactivated", "account.reactivated"]


# --- Batches and the audit trail ------------------------------------------------------------


def test_a_refused_batch_writes_nothing(db: Session) -> None:
    school = make_school_with_guardians(db, 3)
    ok, gone, ok_too = school.account_ids
    deactivate_accounts(session=db, account_ids=[gone], actor="import")
    db.commit()
    audit_before = len(events(db))

    with pytest.raises(TransitionRefused) as refused:
        issue_credentials(
            session=db,
            account_ids=[ok, gone, ok_too, 999_999],
            kind=CredentialKind.FIRST,
            actor=ACTOR,
        )

    assert refused.value.refusals == {
        gone: RefusalReason.DEACTIVATED,
        999_999: RefusalReason.UNKNOWN_ACCOUNT,
    }
    db.rollback()
    assert all(account(db, id_).password_hash is None for id_ in (ok, ok_too))
    assert len(events(db)) == audit_before


def test_a_whole_life_cycle_leaves_no_secret_in_the_audit_log(db: Session) -> None:
    issued = activated_account(db)
    [reset] = issue_credentials(
        session=db, account_ids=[issued.account_id], kind=CredentialKind.RESET, actor=ACTOR
    )
    db.commit()
    secrets = [
        issued.password,
        reset.password,
        CHOSEN,
        account(db, issued.account_id).password_hash,
    ]

    logged = json.dumps([(e.action, e.details) for e in events(db)])

    assert all(secret and secret not in logged for secret in secrets)
    assert "password" not in json.dumps([e.details for e in events(db)]).lower()
    assert actions(db, issued.account_id) == [
        "account.credentials_issued",
        "account.notified",
        "account.activation_started",
        "account.activated",
        "account.credentials_issued",
    ]


def test_batches_cost_the_same_number_of_queries_whatever_their_size(db: Session) -> None:
    def statements_for(count: int) -> int:
        school = make_school_with_guardians(db, count)
        db.commit()
        seen: list[str] = []

        def remember(*args: Any) -> None:
            seen.append(args[2])

        connection = db.connection()
        event.listen(connection.engine, "before_cursor_execute", remember)
        try:
            notify_accounts(session=db, account_ids=school.account_ids, actor=ACTOR)
            db.flush()
        finally:
            event.remove(connection.engine, "before_cursor_execute", remember)
        return sum(1 for statement in seen if statement.lstrip().upper().startswith("SELECT"))

    assert statements_for(2) == statements_for(9)


def test_accounts_are_created_once_per_guardian_with_an_audit_event(db: Session) -> None:
    school = make_school_with_guardians(
        db, 2, names=[("Éloïse", "D'Almeida-Nuñez"), ("A", "Cosams")]
    )

    assert [a.identifier for a in school.accounts] == ["eloise.dalmeidanunez", "a.cosams"]
    assert all(
        a.state == AccountState.NOT_NOTIFIED and a.password_hash is None for a in school.accounts
    )
    assert create_accounts(session=db, guardians=school.guardians, actor="import") == []
    created = [e for e in events(db) if e.action == "account.created"]
    assert [e.details["identifier"] for e in created] == ["eloise.dalmeidanunez", "a.cosams"]


def test_provisional_expiry_counts_calendar_months_from_the_local_letter_date() -> None:
    def expiry(moment: datetime) -> datetime:
        return provisional_expiry(moment, PARIS).astimezone(PARIS)

    assert expiry(datetime(2026, 11, 30, 9, tzinfo=UTC)).date().isoformat() == "2027-02-28"
    assert expiry(datetime(2027, 11, 30, 9, tzinfo=UTC)).date().isoformat() == "2028-02-29"
    # 31 December 23:30 UTC is already 1 January in Paris: the letter is dated 1 January.
    assert expiry(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)).date().isoformat() == "2027-04-01"
    assert expiry(datetime(2026, 9, 1, 8, tzinfo=UTC)).time().isoformat() == "23:59:59.999999"
