"""/pdf and /relancer in two steps: the letters are made while only reading the database
(others keep writing meanwhile), then one short transaction records them — or refuses, writing
nothing, when an account changed in between. And `enqueue_many`, which writes their e-mails."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, update
from sqlmodel import Session, col

from bot.db import session_scope
from bot.services.accounts.passwords import verify_password
from bot.services.distribution.drafting import draft_paper_letters, draft_reminders
from bot.services.distribution.errors import StalePlanError
from bot.services.distribution.flows import prepare_paper_letters
from bot.services.distribution.planning import plan_reminders
from bot.services.distribution.recording import record_paper_letters, record_reminders
from bot.services.mail.outbox import (
    SUPERSEDED,
    OutgoingEmail,
    credentials_kind,
    enqueue,
    enqueue_many,
)
from models import (
    Account,
    AccountState,
    AuditEvent,
    DistributionChannel,
    FamilyLinkCode,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from tests.factories import make_school_with_guardians

PORTAL = "https://portail.example.org"
BOT = "educonnect_test_bot"
MAIL_FROM = "École Jules Ferry <ecole@example.org>"


def database_state(engine: Engine) -> tuple[Any, ...]:
    """Everything a distribution writes: the accounts' credentials and states, the link codes,
    the audit log and the outbox."""
    with Session(engine) as session:
        accounts = session.execute(
            select(
                col(Account.id),
                col(Account.state),
                col(Account.password_hash),
                col(Account.provisional_expires_at),
                col(Account.distributed_at),
                col(Account.distribution_channel),
            ).order_by(col(Account.id))
        ).all()
        counts = [
            session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (FamilyLinkCode, AuditEvent, OutboxMessage)
        ]
    return (tuple(accounts), *counts)


def short_waits(connection: Connection) -> None:
    """Make this connection give up at once on a lock instead of waiting for it."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA busy_timeout = 300")
    else:
        connection.exec_driver_sql("SET lock_timeout = '300ms'")


def school_without_addresses(engine: Engine, count: int = 5) -> tuple[int, list[int]]:
    with session_scope(engine) as session:
        built = make_school_with_guardians(session, count, with_email=False)
        assert built.school.id is not None
        return built.school.id, built.account_ids


def draft_letters(engine: Engine, school_id: int, **options: Any) -> Any:
    with session_scope(engine) as session:
        return draft_paper_letters(
            session=session,
            school_id=school_id,
            scope_tokens=["CM1"],
            actor="telegram:1",
            bot_username=BOT,
            portal_url=PORTAL,
            **options,
        )


def test_making_the_letters_writes_nothing_and_others_write_meanwhile(engine: Engine) -> None:
    school_id, ids = school_without_addresses(engine)
    before = database_state(engine)
    written_meanwhile: list[int] = []

    def another_writer(done: int, _total: int) -> None:
        # In the middle of the rendering, another connection writes to a planned account: it
        # would wait for (and on SQLite fail on) a write lock held by the letters.
        if done == 2:
            with engine.connect() as other:
                short_waits(other)
                other.execute(
                    update(Account).where(col(Account.id) == ids[0]).values(last_access_at=utcnow())
                )
                other.commit()
            written_meanwhile.append(done)

    draft = draft_letters(engine, school_id, progress=another_writer)
    assert written_meanwhile == [2]
    assert draft.paper is not None and draft.paper.count == len(ids)
    assert database_state(engine) == before  # drawn, hashed, rendered: nothing written

    with session_scope(engine) as session:
        paper = record_paper_letters(session=session, draft=draft)
    with Session(engine) as session:
        for letter in paper.letters:
            account = session.get(Account, letter.account_id)
            assert account is not None and letter.password is not None
            assert account.state == AccountState.NOTIFIED
            assert account.distribution_channel == DistributionChannel.PAPER
            assert verify_password(account.password_hash or "", letter.password)
        codes = session.execute(select(func.count()).select_from(FamilyLinkCode)).scalar_one()
        assert codes == len(ids)
        printed = session.execute(
            select(AuditEvent).where(col(AuditEvent.action) == "distribution.letters_printed")
        ).scalar_one()
        assert printed.details["accounts"] == len(ids)


@pytest.mark.parametrize(
    "meanwhile",
    ["another director printed one", "a family activated"],
)
def test_recording_refuses_when_an_account_changed_since_the_letters_were_made(
    engine: Engine, meanwhile: str
) -> None:
    school_id, ids = school_without_addresses(engine, 4)
    # Notified once already, so that a family can activate in between.
    with session_scope(engine) as session:
        prepare_paper_letters(
            session=session,
            school_id=school_id,
            scope_tokens=["CM1"],
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
        )
    draft = draft_letters(engine, school_id, reset=True)
    change: Callable[[Session], object]
    if meanwhile == "another director printed one":

        def change(session: Session) -> object:
            return prepare_paper_letters(
                session=session,
                school_id=school_id,
                preview_or_account_ids=[ids[1]],
                actor="telegram:2",
                bot_username=BOT,
                portal_url=PORTAL,
            )

    else:
        from bot.services.accounts.lifecycle import begin_activation

        def change(session: Session) -> object:
            return begin_activation(
                session=session,
                account_id=ids[2],
                new_password="Vacances-2026!",
                email="famille@example.org",
                actor="portal",
            )

    with session_scope(engine) as session:
        change(session)
    before = database_state(engine)

    with pytest.raises(StalePlanError), session_scope(engine) as session:
        record_paper_letters(session=session, draft=draft)
    assert database_state(engine) == before


def test_reminders_are_made_first_then_emails_and_letters_recorded_together(
    engine: Engine,
) -> None:
    with session_scope(engine) as session:
        built = make_school_with_guardians(session, 6, with_email=[True, False] * 3)
        assert built.school.id is not None
        school_id, ids = built.school.id, built.account_ids
        prepare_paper_letters(
            session=session,
            school_id=school_id,
            scope_tokens=["CM1"],
            include_all=True,
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
        )
    with session_scope(engine) as session:
        preview = plan_reminders(session=session, school_id=school_id, scope_tokens=["CM1"])
        draft = draft_reminders(
            session=session,
            school_id=school_id,
            preview_or_account_ids=preview,
            reset=False,
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
            mail_from=MAIL_FROM,
        )
    before = database_state(engine)
    assert len(draft.emails) == 3 and draft.paper is not None and draft.paper.count == 3
    assert before[-1] == 0  # no outbox row yet

    with session_scope(engine) as session:
        result = record_reminders(session=session, draft=draft)
    assert result.emails == 3 and result.batch_id == draft.batch_id
    with Session(engine) as session:
        rows = session.execute(select(OutboxMessage)).scalars().all()
        assert sorted(row.account_id or 0 for row in rows) == sorted(ids[0::2])
        assert {row.status for row in rows} == {OutboxStatus.PENDING}
        assert {row.batch_id for row in rows} == {draft.batch_id}
        for letter in draft.paper.letters:
            account = session.get(Account, letter.account_id)
            assert account is not None and account.distributed_at == draft.now


def test_enqueue_many_cancels_what_each_new_password_supersedes(engine: Engine) -> None:
    from bot.services.accounts.credentials import CredentialKind

    def message(number: int) -> EmailMessage:
        email = EmailMessage()
        email["From"] = MAIL_FROM
        email["To"] = f"famille{number}@example.org"
        email["Subject"] = "Identifiants"
        email.set_content(f"message {number}")
        return email

    first = credentials_kind(CredentialKind.FIRST)
    reminder = credentials_kind(CredentialKind.REMINDER)
    reset = credentials_kind(CredentialKind.RESET)
    with session_scope(engine) as session:
        built = make_school_with_guardians(session, 3)
        a, b, c = built.account_ids
        enqueue(session=session, message=message(1), kind=first, **of(built, a))
        enqueue(session=session, message=message(2), kind=first, **of(built, b))
    with session_scope(engine) as session:
        # Enqueued one by one earlier in the same transaction, not written yet.
        enqueue(session=session, message=message(3), kind=first, **of(built, c))
        written = enqueue_many(
            session=session,
            emails=[
                # First in the batch, and superseded within it: every row has every column.
                OutgoingEmail(message(4), reset, c),  # supersedes c's, still in the session
                OutgoingEmail(message(5), reset, c),  # and then this one too
                OutgoingEmail(message(6), reset, a),  # supersedes a's first e-mail
                OutgoingEmail(message(7), reminder, b),  # no new password: b's stays
            ],
            school_id=built.school.id,
            batch_id="batch",
        )
    assert written == 4
    with Session(engine) as session:
        rows = session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id))).scalars()
        statuses = [
            (row.account_id, row.kind, row.status, row.body is None, row.last_error) for row in rows
        ]
    cancelled, waiting = OutboxStatus.CANCELLED, OutboxStatus.PENDING
    assert statuses == [
        (a, first, cancelled, True, SUPERSEDED),
        (b, first, waiting, False, None),
        (c, first, cancelled, True, SUPERSEDED),
        (c, reset, cancelled, True, SUPERSEDED),
        (c, reset, waiting, False, None),
        (a, reset, waiting, False, None),
        (b, reminder, waiting, False, None),
    ]


def of(built: Any, account_id: int) -> dict[str, Any]:
    return {"school_id": built.school.id, "account_id": account_id, "batch_id": None}
