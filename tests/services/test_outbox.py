"""The outbox and its sender, against a real local SMTP server (aiosmtpd) that misbehaves on
demand, on SQLite and PostgreSQL: nothing lost, nothing sent twice, accounts notified only
once their e-mail was accepted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import session_scope
from bot.jobs import outbox as outbox_module
from bot.jobs.outbox import MAX_UNRECORDED, OutboxSender, start_sender
from bot.services.accounts.credentials import CredentialKind, issue_credentials, mark_distributed
from bot.services.accounts.lifecycle import deactivate_accounts
from bot.services.mail.claims import claim_due, recover_stale_claims
from bot.services.mail.composition import compose_credentials_email
from bot.services.mail.outbox import credentials_kind, enqueue
from bot.services.mail.progress import FailureKind, batch_progress, classify_failure
from bot.services.mail.transport import (
    DeliveryError,
    MaildirTransport,
    ServerUnavailable,
    SmtpTransport,
    local_hostname,
    smtp_port,
    transport_from_settings,
)
from models import (
    Account,
    AccountState,
    AuditEvent,
    DistributionChannel,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from tests.factories import make_school_with_guardians
from tests.mailtools import (
    MAIL_FROM,
    SmtpTestServer,
    free_port,
    letters_for,
    plain_text,
    read_maildir,
    self_signed_certificate,
)

ENVELOPE_FROM = "no-reply@ecole-test.fr"


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


def smtp_transport(port: int, **kwargs: Any) -> SmtpTransport:
    return SmtpTransport(
        host="127.0.0.1", port=port, security="none", local_hostname="test.local", **kwargs
    )


def make_sender(engine: Engine, transport: Any, **options: Any) -> OutboxSender:
    options.setdefault("retry_base", 0.05)
    options.setdefault("retry_cap", 0.2)
    return OutboxSender(engine=engine, transport=transport, envelope_from=ENVELOPE_FROM, **options)


def enqueue_credentials(
    engine: Engine,
    n: int = 3,
    *,
    kind: CredentialKind = CredentialKind.FIRST,
    batch_id: str | None = None,
    **school: Any,
) -> tuple[str, list[int], dict[int, str]]:
    """A school of `n` guardians whose credential e-mails are in the outbox (one committed
    transaction, as /envoyer does). Returns the batch id, the account ids and each account's
    clear password."""
    batch_id = batch_id or uuid.uuid4().hex
    with session_scope(engine) as session:
        built = make_school_with_guardians(session, n, **school)
        issued = issue_credentials(
            session=session, account_ids=built.account_ids, kind=kind, actor="test"
        )
        for letter in letters_for(session, issued):
            if letter.email is None:
                continue
            enqueue(
                session=session,
                message=compose_credentials_email(letter, mail_from=MAIL_FROM),
                kind=credentials_kind(letter.kind),
                school_id=built.school.id,
                account_id=letter.account_id,
                batch_id=batch_id,
            )
        passwords = {c.account_id: c.password or "" for c in issued}
        return batch_id, built.account_ids, passwords


def rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def accounts(engine: Engine, ids: list[int]) -> dict[int, Account]:
    with Session(engine) as session:
        found = session.exec(select(Account).where(col(Account.id).in_(ids))).all()
        return {account.id: account for account in found if account.id is not None}


def make_due_now(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


async def drain_until_done(sender: OutboxSender, engine: Engine, *, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await sender.drain_once()
        statuses = {row.status for row in rows(engine)}
        if not statuses & {OutboxStatus.PENDING, OutboxStatus.SENDING}:
            return
        assert loop.time() < deadline, f"outbox not drained: {statuses}"
        await asyncio.sleep(0.05)


# --- The happy path ---------------------------------------------------------------------------


async def test_credential_emails_are_sent_once_and_accounts_notified(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    batch_id, ids, passwords = enqueue_credentials(engine, 5)
    assert all(a.state == AccountState.NOT_NOTIFIED for a in accounts(engine, ids).values())

    stored = rows(engine)[0].body
    assert stored is not None and stored.count(b"\r\n") == stored.count(b"\n")  # SMTP's CRLF
    sender = make_sender(engine, smtp_transport(smtp_server.port))
    assert await sender.drain_once() == 5

    received = smtp_server.messages
    assert len(received) == 5
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(r.to_address for r in rows(engine))
    assert all(m.mail_from == ENVELOPE_FROM for m in received)
    assert len({m.message_id for m in received}) == 5
    for row in rows(engine):
        assert row.status == OutboxStatus.SENT
        assert row.body is None  # the password it carried is gone
        assert row.sent_at is not None and row.attempts == 1
    by_address = {m.rcpt_tos[0]: plain_text(m.parsed()) for m in received}
    for account in accounts(engine, ids).values():
        assert account.state == AccountState.NOTIFIED
        assert account.distribution_channel == DistributionChannel.EMAIL
        assert account.distributed_at is not None
    for row in rows(engine):
        assert row.account_id is not None
        assert passwords[row.account_id] in by_address[row.to_address]
    # Connections are reused: one per concurrent send at most, not one per message.
    assert 1 <= sender.transport.connections_opened <= 3  # type: ignore[attr-defined]
    with Session(engine) as session:
        progress = batch_progress(session=session, batch_id=batch_id)
    assert (progress.sent, progress.total, progress.done, progress.failures) == (5, 5, True, ())


async def test_account_stays_not_notified_until_its_email_is_accepted(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    batch_id, ids, _ = enqueue_credentials(engine, 2)
    with Session(engine) as session:
        progress = batch_progress(session=session, batch_id=batch_id)
    assert (progress.pending, progress.done) == (2, False)
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOT_NOTIFIED}


async def test_without_smtp_host_mail_lands_in_the_maildir(tmp_path: Path, engine: Engine) -> None:
    settings = Settings(data_dir=tmp_path / "data", smtp_host=None, mail_from=MAIL_FROM)
    _batch, ids, passwords = enqueue_credentials(engine, 3)
    sender = OutboxSender.from_settings(settings, engine)
    assert isinstance(sender.transport, MaildirTransport)
    assert await sender.drain_once() == 3

    maildir = tmp_path / "data" / "maildir"
    assert (maildir.stat().st_mode & 0o777) == 0o700
    delivered = read_maildir(maildir)
    assert len(delivered) == 3
    texts = " ".join(plain_text(message) for message in delivered)
    assert all(password in texts for password in passwords.values())
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}
    assert all(row.body is None for row in rows(engine))


# --- SMTP faults ----------------------------------------------------------------------------


async def test_550_on_one_recipient_fails_that_one_only(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    names = [("Camille", "Martin"), ("Éloïse", "Lefèvre"), ("Inès", "Nguyen"), ("Noah", "Strauß")]
    batch_id, ids, _ = enqueue_credentials(engine, 4, names=names)
    smtp_server.refuse["parent1@example.org"] = "550 5.1.1 <parent1@example.org>: Unknown user"
    sender = make_sender(engine, smtp_transport(smtp_server.port))
    assert await sender.drain_once() == 3

    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "parent0@example.org",
        "parent2@example.org",
        "parent3@example.org",
    ]
    failed = [row for row in rows(engine) if row.status == OutboxStatus.FAILED]
    assert len(failed) == 1
    assert failed[0].to_address == "parent1@example.org"
    assert failed[0].last_error == "550 5.1.1 <parent1@example.org>: Unknown user"
    assert failed[0].body is None and failed[0].attempts == 1
    states = accounts(engine, ids)
    assert failed[0].account_id is not None
    assert states[failed[0].account_id].state == AccountState.NOT_NOTIFIED
    assert sum(a.state == AccountState.NOTIFIED for a in states.values()) == 3
    with Session(engine) as session:
        progress = batch_progress(session=session, batch_id=batch_id)
    assert (progress.sent, progress.failed, progress.done) == (3, 1, True)
    (failure,) = progress.failures
    assert failure.kind == FailureKind.REFUSED
    assert failure.reason.startswith("550 5.1.1")
    assert failure.to_address == "parent1@example.org"
    assert failure.guardian_name == "Éloïse LEFÈVRE"
    assert failure.account_id == failed[0].account_id


async def test_421_then_success_is_retried(engine: Engine, smtp_server: SmtpTestServer) -> None:
    batch_id, ids, _ = enqueue_credentials(engine, 3)
    smtp_server.data_faults.append("421 4.3.2 Service shutting down, try again later")
    # A backoff long enough that the retry cannot fall due within the same drain, however
    # slow the machine; the retry is then made due by hand.
    patient = make_sender(engine, smtp_transport(smtp_server.port), retry_base=60.0, retry_cap=60.0)
    await patient.drain_once()
    with Session(engine) as session:
        progress = batch_progress(session=session, batch_id=batch_id)
    assert (progress.sent, progress.retrying, progress.done) == (2, 1, False)
    assert progress.last_retry_reason is not None and progress.last_retry_reason.startswith("421")

    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
            .values(next_attempt_at=utcnow())
        )
    sender = make_sender(engine, smtp_transport(smtp_server.port))
    await drain_until_done(sender, engine)
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert sorted(received.values()) == [1, 1, 1]
    assert sorted(row.attempts for row in rows(engine)) == [1, 1, 2]
    assert {row.status for row in rows(engine)} == {OutboxStatus.SENT}
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}


async def test_dropped_connection_mid_batch_resumes_without_duplicates(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    _batch, ids, _ = enqueue_credentials(engine, 20)
    smtp_server.drop_at_data = 8  # the 8th message meets a cut connection
    transport = smtp_transport(smtp_server.port, connections=1)
    sender = make_sender(engine, transport)
    await drain_until_done(sender, engine)

    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert len(received) == 20 and set(received.values()) == {1}
    assert transport.connections_opened == 2
    assert {row.status for row in rows(engine)} == {OutboxStatus.SENT}
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}


async def test_server_down_marks_nothing_and_sends_once_it_answers(engine: Engine) -> None:
    port = free_port()  # nobody listens here yet
    batch_id, ids, _ = enqueue_credentials(engine, 3)
    sender = make_sender(engine, smtp_transport(port), retry_base=3600, retry_cap=3600)
    assert await sender.drain_once() == 0

    for row in rows(engine):
        assert row.status == OutboxStatus.PENDING
        assert row.body is not None
        assert row.last_error is not None and row.last_error.startswith("connection:")
        assert row.attempts == 0  # the server is to blame, not the message
        assert row.next_attempt_at <= utcnow()  # due again as soon as the server answers
    assert sender.relay_down
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOT_NOTIFIED}

    with SmtpTestServer(port=port) as server:
        assert await sender.drain_once() == 3
        assert len(server.messages) == 3
    assert not sender.relay_down
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}
    with Session(engine) as session:
        assert batch_progress(session=session, batch_id=batch_id).sent == 3


async def test_temporary_failures_give_up_after_the_last_attempt(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    batch_id, _ids, _ = enqueue_credentials(engine, 1)
    smtp_server.data_faults.extend(["451 4.3.0 Mail server temporarily rejected message"] * 3)
    sender = make_sender(engine, smtp_transport(smtp_server.port), max_attempts=3)
    await drain_until_done(sender, engine)
    (row,) = rows(engine)
    assert (row.status, row.attempts, row.body) == (OutboxStatus.FAILED, 3, None)
    with Session(engine) as session:
        (failure,) = batch_progress(session=session, batch_id=batch_id).failures
    assert failure.kind == FailureKind.GAVE_UP
    assert failure.reason.startswith("451")
    assert smtp_server.messages == []


async def test_account_deactivated_meanwhile_is_sent_but_not_marked(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    _batch, ids, _ = enqueue_credentials(engine, 3)
    with session_scope(engine) as session:
        deactivate_accounts(session=session, account_ids=[ids[0]], actor="test")
    sender = make_sender(engine, smtp_transport(smtp_server.port))
    assert await sender.drain_once() == 3
    states = accounts(engine, ids)
    assert states[ids[0]].state == AccountState.NOT_NOTIFIED
    assert states[ids[1]].state == states[ids[2]].state == AccountState.NOTIFIED
    assert {row.status for row in rows(engine)} == {OutboxStatus.SENT}


# --- Superseded messages --------------------------------------------------------------------


async def test_newer_password_cancels_the_unsent_older_email(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    _batch, ids, first_passwords = enqueue_credentials(engine, 2)
    # Before anything was sent, the director sends again: new passwords are drawn.
    with session_scope(engine) as session:
        issued = issue_credentials(
            session=session, account_ids=[ids[0]], kind=CredentialKind.FIRST, actor="test"
        )
        for letter in letters_for(session, issued):
            enqueue(
                session=session,
                message=compose_credentials_email(letter, mail_from=MAIL_FROM),
                kind=credentials_kind(letter.kind),
                school_id=None,
                account_id=letter.account_id,
                batch_id="second",
            )
    new_password = issued[0].password
    assert new_password is not None
    cancelled = [row for row in rows(engine) if row.status == OutboxStatus.CANCELLED]
    assert [(row.account_id, row.body) for row in cancelled] == [(ids[0], None)]

    sender = make_sender(engine, smtp_transport(smtp_server.port))
    assert await sender.drain_once() == 2
    texts = {m.rcpt_tos[0]: plain_text(m.parsed()) for m in smtp_server.messages}
    assert len(smtp_server.messages) == 2
    assert new_password in texts["parent0@example.org"]
    assert first_passwords[ids[0]] not in texts["parent0@example.org"]


async def test_reminder_does_not_cancel_an_unsent_password_email(engine: Engine) -> None:
    _batch, ids, _ = enqueue_credentials(engine, 1)
    with session_scope(engine) as session:
        mark_distributed(
            session=session, account_ids=ids, channel=DistributionChannel.PAPER, actor="test"
        )
        issued = issue_credentials(
            session=session, account_ids=ids, kind=CredentialKind.REMINDER, actor="test"
        )
        (letter,) = letters_for(session, issued)
        enqueue(
            session=session,
            message=compose_credentials_email(letter, mail_from=MAIL_FROM),
            kind=credentials_kind(CredentialKind.REMINDER),
            school_id=None,
            account_id=ids[0],
            batch_id=None,
        )
    assert [row.status for row in rows(engine)] == [OutboxStatus.PENDING, OutboxStatus.PENDING]


async def test_a_second_password_in_the_same_transaction_cancels_the_first(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    with session_scope(engine) as session:
        built = make_school_with_guardians(session, 1)
        passwords = []
        for _ in range(2):
            issued = issue_credentials(
                session=session,
                account_ids=built.account_ids,
                kind=CredentialKind.FIRST,
                actor="test",
            )
            (letter,) = letters_for(session, issued)
            passwords.append(letter.password)
            enqueue(
                session=session,
                message=compose_credentials_email(letter, mail_from=MAIL_FROM),
                kind=credentials_kind(CredentialKind.FIRST),
                school_id=built.school.id,
                account_id=letter.account_id,
                batch_id=None,
            )
    assert [row.status for row in rows(engine)] == [OutboxStatus.CANCELLED, OutboxStatus.PENDING]
    sender = make_sender(engine, smtp_transport(smtp_server.port))
    assert await sender.drain_once() == 1
    (received,) = smtp_server.messages
    assert passwords[1] is not None and passwords[1] in plain_text(received.parsed())


# --- Crashes and leases ---------------------------------------------------------------------


def _claim_as(engine: Engine, worker: str, *, age: timedelta) -> list[int]:
    with session_scope(engine) as session:
        claims = claim_due(session=session, worker=worker, limit=100)
        ids = [claim.id for claim in claims]
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids))
            .values(claimed_at=utcnow() - age)
        )
    return ids


async def test_rows_left_sending_by_a_crashed_sender_are_recovered_after_the_lease(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    _batch, ids, _ = enqueue_credentials(engine, 3)
    # Another machine's sender claimed them, then died (kill -9): the rows stay `sending`.
    claimed = _claim_as(engine, "elsewhere:4242:dead", age=timedelta(minutes=5))
    assert len(claimed) == 3
    sender = make_sender(engine, smtp_transport(smtp_server.port))
    assert await sender.drain_once() == 0  # claimed rows are not anybody's to take

    with session_scope(engine) as session:
        assert recover_stale_claims(session=session, lease=timedelta(minutes=10)) == 0
        assert recover_stale_claims(session=session, lease=timedelta(minutes=2)) == 3
    assert {row.status for row in rows(engine)} == {OutboxStatus.PENDING}
    assert await sender.drain_once() == 3
    assert len(smtp_server.messages) == 3
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}


async def test_fresh_claims_of_a_live_sender_are_left_alone(engine: Engine) -> None:
    enqueue_credentials(engine, 2)
    _claim_as(engine, "elsewhere:4242:alive", age=timedelta(seconds=10))
    with session_scope(engine) as session:
        assert recover_stale_claims(session=session, lease=timedelta(minutes=2)) == 0
    assert {row.status for row in rows(engine)} == {OutboxStatus.SENDING}


async def test_claims_of_a_dead_process_on_this_machine_are_recovered_at_once(
    engine: Engine,
) -> None:
    enqueue_credentials(engine, 2)
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(child.stdout)
    _claim_as(engine, f"{socket.gethostname()}:{dead_pid}:bot", age=timedelta(seconds=1))
    # A sibling sender of this very process must keep its claims.
    sibling = make_sender(engine, MaildirTransport(Path("/nonexistent")))
    _claim_as(engine, sibling.worker_id, age=timedelta(seconds=1))
    with session_scope(engine) as session:
        assert recover_stale_claims(session=session, lease=timedelta(minutes=2)) == 2
    assert os.getpid() != dead_pid


async def test_recovered_email_superseded_meanwhile_is_cancelled(engine: Engine) -> None:
    _batch, ids, _ = enqueue_credentials(engine, 1)
    _claim_as(engine, "elsewhere:1:dead", age=timedelta(minutes=5))
    with session_scope(engine) as session:
        issued = issue_credentials(
            session=session, account_ids=ids, kind=CredentialKind.FIRST, actor="test"
        )
        (letter,) = letters_for(session, issued)
        enqueue(
            session=session,
            message=compose_credentials_email(letter, mail_from=MAIL_FROM),
            kind=credentials_kind(CredentialKind.FIRST),
            school_id=None,
            account_id=ids[0],
            batch_id=None,
        )
        recover_stale_claims(session=session)
    assert [row.status for row in rows(engine)] == [OutboxStatus.CANCELLED, OutboxStatus.PENDING]


async def test_a_crash_sends_at_most_the_unrecorded_messages_twice(
    engine: Engine, smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stops answering after the first recorded group, then the sender dies: the
    server got at most MAX_UNRECORDED messages that the outbox does not know were sent."""
    _batch, ids, _ = enqueue_credentials(engine, 60)
    real_record = outbox_module.record_outcomes
    stalled = threading.Event()
    release = threading.Event()
    calls = 0

    def record_then_stall(**kwargs: Any) -> list[int]:
        nonlocal calls
        calls += 1
        if calls > 1:
            stalled.set()
            release.wait(10)
            raise RuntimeError("the process died before this commit")
        return real_record(**kwargs)

    monkeypatch.setattr(outbox_module, "record_outcomes", record_then_stall)
    monkeypatch.setattr(outbox_module, "RECORD_RETRY_DELAYS", (0.01,))
    sender = make_sender(engine, smtp_transport(smtp_server.port), batch_size=60)
    task = asyncio.create_task(sender.drain_once())
    await asyncio.to_thread(stalled.wait, 10)
    await asyncio.sleep(0.3)  # give the sender every chance to go on sending
    task.cancel()  # the crash
    release.set()
    with pytest.raises((asyncio.CancelledError, RuntimeError)):
        await task
    monkeypatch.setattr(outbox_module, "record_outcomes", real_record)

    recorded = [row for row in rows(engine) if row.status == OutboxStatus.SENT]
    unrecorded = len(smtp_server.messages) - len(recorded)
    assert 0 < unrecorded <= MAX_UNRECORDED

    # The restarted sender: everything not recorded as sent is sent again.
    with session_scope(engine) as session:
        recover_stale_claims(session=session, lease=timedelta(0))
    await drain_until_done(make_sender(engine, smtp_transport(smtp_server.port)), engine)
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert len(received) == 60  # no guardian without an e-mail
    assert sum(count - 1 for count in received.values()) == unrecorded <= MAX_UNRECORDED
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}


# --- Several senders ------------------------------------------------------------------------


async def test_several_senders_share_the_outbox_and_send_each_message_once(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    """On PostgreSQL (FOR UPDATE SKIP LOCKED) as on SQLite (conditional UPDATE)."""
    with session_scope(engine) as session:
        for number in range(200):
            message = EmailMessage()
            message["To"] = f"parent{number}@example.org"
            message["From"] = MAIL_FROM
            message["Subject"] = f"Message {number}"
            message.set_content("Bonjour")
            enqueue(
                session=session,
                message=message,
                kind="test",
                school_id=None,
                account_id=None,
                batch_id="shared",
            )
    senders = [
        make_sender(engine, smtp_transport(smtp_server.port), batch_size=10, name=f"w{i}")
        for i in range(3)
    ]
    counts = await asyncio.gather(*(sender.drain_once() for sender in senders))
    assert sum(counts) == 200
    message_ids = Counter(m.message_id for m in smtp_server.messages)
    assert len(message_ids) == 200 and set(message_ids.values()) == {1}
    claimed_by = Counter(row.claimed_by for row in rows(engine))
    assert sum(claimed_by.values()) == 200
    assert len(claimed_by) >= 2, claimed_by  # the work was shared
    with Session(engine) as session:
        progress = batch_progress(session=session, batch_id="shared")
    assert (progress.sent, progress.done) == (200, True)


async def test_several_senders_notify_each_account_once(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    _batch, ids, _ = enqueue_credentials(engine, 30)
    senders = [
        make_sender(engine, smtp_transport(smtp_server.port), batch_size=4) for _ in range(3)
    ]
    assert sum(await asyncio.gather(*(sender.drain_once() for sender in senders))) == 30
    assert len(Counter(m.message_id for m in smtp_server.messages)) == 30
    assert len(smtp_server.messages) == 30
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}
    with Session(engine) as session:
        notified = session.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "account.notified")
        ).all()
    assert Counter(event.account_id for event in notified) == Counter(ids)


async def test_one_sender_uses_a_few_connections_at_once(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    _batch, ids, _ = enqueue_credentials(engine, 30)
    transport = smtp_transport(smtp_server.port, connections=3)
    assert await make_sender(engine, transport).drain_once() == 30
    assert transport.connections_opened == 3
    assert len(smtp_server.messages) == len({m.message_id for m in smtp_server.messages}) == 30
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}


class _OneConnectionServer:
    """A relay that accepts one connection per client: a second one at once is refused."""

    description = "test"
    parallelism = 3

    def __init__(self) -> None:
        self.active = 0
        self.sent: list[str] = []

    async def send(self, *, sender: str, recipient: str, body: bytes) -> None:
        if self.active:
            raise ServerUnavailable("421 4.7.0 Too many connections from your host")
        self.active += 1
        try:
            await asyncio.sleep(0.001)
            self.sent.append(recipient)
        finally:
            self.active -= 1

    async def close(self) -> None:
        return None


async def test_a_server_that_limits_connections_gets_fewer(engine: Engine) -> None:
    enqueue_credentials(engine, 12)
    transport = _OneConnectionServer()
    assert await make_sender(engine, transport).drain_once() == 12
    assert len(transport.sent) == len(set(transport.sent)) == 12
    assert all(row.attempts == 1 for row in rows(engine))


# --- Running in the background ---------------------------------------------------------------


async def test_running_sender_is_woken_by_a_commit_and_stops_cleanly(
    engine: Engine, smtp_server: SmtpTestServer
) -> None:
    sender = make_sender(engine, smtp_transport(smtp_server.port), poll_interval=60)
    running = start_sender(sender)
    try:
        await asyncio.sleep(0.2)  # it has looked once and is asleep for a minute
        await asyncio.to_thread(enqueue_credentials, engine, 2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(smtp_server.messages) < 2:
            assert loop.time() < deadline, "the sender was not woken by the commit"
            await asyncio.sleep(0.02)
    finally:
        await running.stop(timeout=5)
    assert running.task.done() and running.task.exception() is None


async def test_the_bot_sends_its_mail_to_the_maildir_in_the_sandbox(tmp_path: Path) -> None:
    """The application's post_init starts the sender (the sandbox calls it as run_polling
    does); the sandbox's mail lands in DATA_DIR/maildir, even with a relay configured (its
    demo addresses are invented); post_stop stops it."""
    from bot.sandbox.session import open_sandbox

    settings = Settings(data_dir=tmp_path, smtp_host="smtp.example.org", mail_from=MAIL_FROM)
    async with open_sandbox(settings, tmp_path / "sandbox.db") as sandbox:
        await sandbox.run_service(_enqueue_one)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not (tmp_path / "maildir").exists() or not read_maildir(tmp_path / "maildir"):
            assert loop.time() < deadline, "the bot's sender did not deliver"
            await asyncio.sleep(0.05)
    (message,) = read_maildir(tmp_path / "maildir")
    assert message["To"] == "famille@example.org"


def _enqueue_one(session: Session) -> None:
    message = EmailMessage()
    message["To"] = "famille@example.org"
    message["From"] = MAIL_FROM
    message["Subject"] = "Bonjour"
    message.set_content("Bonjour")
    enqueue(
        session=session,
        message=message,
        kind="test",
        school_id=None,
        account_id=None,
        batch_id=None,
    )


class _StoppingTransport:
    """Accepts messages, and asks the sender to stop after the first."""

    description = "test"
    parallelism = 1

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.sent: list[str] = []

    async def send(self, *, sender: str, recipient: str, body: bytes) -> None:
        self.sent.append(recipient)
        self.stop.set()

    async def close(self) -> None:
        return None


async def test_stopping_puts_untried_claims_back_to_pending(engine: Engine) -> None:
    enqueue_credentials(engine, 5)
    stop = asyncio.Event()
    transport = _StoppingTransport(stop)
    sender = make_sender(engine, transport, poll_interval=60)
    await asyncio.wait_for(sender.run_forever(stop), 10)
    assert len(transport.sent) == 1
    statuses = Counter(row.status for row in rows(engine))
    assert statuses == {OutboxStatus.SENT: 1, OutboxStatus.PENDING: 4}
    assert all(row.attempts == 0 for row in rows(engine) if row.status == OutboxStatus.PENDING)


# --- Transports -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    try:
        return self_signed_certificate(tmp_path_factory.mktemp("tls"))
    except (OSError, subprocess.CalledProcessError) as error:  # no openssl tool
        pytest.skip(f"cannot make a test certificate: {error}")


def _contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_starttls_with_login(certificate: tuple[Path, Path]) -> None:
    server_context, client_context = _contexts(certificate)
    with SmtpTestServer(starttls_context=server_context, credentials=("ecole", "s3cret")) as server:
        transport = SmtpTransport(
            host="127.0.0.1",
            port=server.port,
            security="starttls",
            username="ecole",
            password="s3cret",
            local_hostname="test.local",
            tls_context=client_context,
        )
        await transport.send(
            sender=ENVELOPE_FROM, recipient="a@example.org", body=b"Subject: x\r\n\r\nhi\r\n"
        )
        await transport.close()
        assert len(server.messages) == 1
        assert server.logins == ["ecole"]


async def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    server_context, client_context = _contexts(certificate)
    with SmtpTestServer(tls_context=server_context) as server:
        transport = SmtpTransport(
            host="127.0.0.1",
            port=server.port,
            security="tls",
            local_hostname="test.local",
            tls_context=client_context,
        )
        await transport.send(
            sender=ENVELOPE_FROM, recipient="a@example.org", body=b"Subject: x\r\n\r\nhi\r\n"
        )
        await transport.close()
        assert len(server.messages) == 1


async def test_starttls_is_required_never_falls_back_to_clear_text(
    smtp_server: SmtpTestServer,
) -> None:
    transport = SmtpTransport(
        host="127.0.0.1", port=smtp_server.port, security="starttls", local_hostname="t.local"
    )
    with pytest.raises(ServerUnavailable):
        await transport.send(sender=ENVELOPE_FROM, recipient="a@example.org", body=b"x\r\n")
    assert smtp_server.messages == []


async def test_wrong_login_makes_the_server_unavailable(certificate: tuple[Path, Path]) -> None:
    server_context, client_context = _contexts(certificate)
    with SmtpTestServer(starttls_context=server_context, credentials=("ecole", "s3cret")) as server:
        transport = SmtpTransport(
            host="127.0.0.1",
            port=server.port,
            security="starttls",
            username="ecole",
            password="wrong",
            local_hostname="test.local",
            tls_context=client_context,
        )
        with pytest.raises(ServerUnavailable) as raised:
            await transport.send(sender=ENVELOPE_FROM, recipient="a@example.org", body=b"x\r\n")
        assert raised.value.reason.startswith("535")


async def test_unsendable_address_fails_for_good(smtp_server: SmtpTestServer) -> None:
    transport = smtp_transport(smtp_server.port)
    with pytest.raises(DeliveryError) as raised:
        await transport.send(sender=ENVELOPE_FROM, recipient="bad address@", body=b"x\r\n")
    assert raised.value.permanent
    await transport.close()


def test_transport_follows_the_settings(tmp_path: Path) -> None:
    maildir = transport_from_settings(Settings(data_dir=tmp_path, smtp_host=None))
    assert isinstance(maildir, MaildirTransport) and maildir.path == tmp_path.resolve() / "maildir"
    for security, port in (("starttls", 587), ("tls", 465), ("none", 25)):
        settings = Settings(smtp_host="smtp.example.org", smtp_security=security)
        assert smtp_port(settings) == port
        transport = transport_from_settings(settings)
        assert isinstance(transport, SmtpTransport)
        assert (transport.port, transport.security) == (port, security)
    explicit = Settings(smtp_host="smtp.example.org", smtp_security="tls", smtp_port=2465)
    assert smtp_port(explicit) == 2465
    login = transport_from_settings(
        Settings(smtp_host="h", smtp_username="u", smtp_password="p", mail_from=MAIL_FROM)
    )
    assert isinstance(login, SmtpTransport)
    assert (login.username, login.password) == ("u", "p")
    assert "p" not in login.description.replace("smtp", "").replace("SMTP", "")
    assert local_hostname(Settings(mail_from=MAIL_FROM))  # never a DNS lookup, never empty


def test_failures_are_classified_from_the_kept_reason() -> None:
    assert classify_failure("550 5.1.1 Unknown user") == FailureKind.REFUSED
    assert classify_failure("554 5.7.1 Rejected") == FailureKind.REFUSED
    assert classify_failure("451 4.3.0 Try later") == FailureKind.GAVE_UP
    assert classify_failure("connection: [Errno 111] Connection refused") == FailureKind.GAVE_UP
    assert classify_failure("address: invalid") == FailureKind.INVALID_ADDRESS


# --- `educonnect-bot worker`, a process of its own -----------------------------------------


def _worker_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL"} and not key.startswith("SMTP_")
    }
    env.update(DATA_DIR=str(data_dir), MAIL_FROM=MAIL_FROM, **extra)
    return env


def _enqueue_plain(engine: Engine, count: int) -> None:
    with session_scope(engine) as session:
        for number in range(count):
            message = EmailMessage()
            message["To"] = f"parent{number}@example.org"
            message["From"] = MAIL_FROM
            message["Subject"] = f"Message {number}"
            message.set_content("Bonjour")
            enqueue(
                session=session,
                message=message,
                kind="test",
                school_id=None,
                account_id=None,
                batch_id="worker",
            )


@pytest.fixture
def data_dir_engine(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    """The SQLite database a worker started with DATA_DIR=`data_dir` uses."""
    from bot.db import make_engine, upgrade_schema

    data_dir = tmp_path / "data"
    engine = make_engine(f"sqlite:///{data_dir / 'educonnect.db'}")
    upgrade_schema(engine)
    try:
        yield data_dir, engine
    finally:
        engine.dispose()


def test_worker_once_sends_what_is_due_to_the_maildir(
    data_dir_engine: tuple[Path, Engine], tmp_path: Path
) -> None:
    data_dir, engine = data_dir_engine
    _enqueue_plain(engine, 4)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "worker", "--once"],
        cwd=tmp_path,
        env=_worker_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "4" in result.stdout
    assert "Maildir" in result.stderr
    assert len(read_maildir(data_dir / "maildir")) == 4
    assert {row.status for row in rows(engine)} == {OutboxStatus.SENT}


@pytest.mark.slow
def test_worker_killed_mid_batch_loses_nothing_and_duplicates_within_the_bound(
    data_dir_engine: tuple[Path, Engine], tmp_path: Path
) -> None:
    """kill -9 of `educonnect-bot worker` during a 300-message batch, then a restart: every
    message reaches the server, at most MAX_UNRECORDED of them twice."""
    data_dir, engine = data_dir_engine
    _enqueue_plain(engine, 300)
    with SmtpTestServer() as server:
        server.handler.delay = 0.004  # about 250 messages/s: the kill lands mid-batch
        env = _worker_env(
            data_dir, SMTP_HOST="127.0.0.1", SMTP_PORT=str(server.port), SMTP_SECURITY="none"
        )

        def start() -> subprocess.Popen[str]:
            return subprocess.Popen(
                [sys.executable, "-m", "bot", "worker"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )

        def wait_for(condition: Any, what: str, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while not condition():
                assert time.monotonic() < deadline, what
                time.sleep(0.01)

        worker = start()
        try:
            wait_for(lambda: len(server.messages) >= 100, "the worker did not start sending")
        finally:
            worker.kill()  # SIGKILL: no cleanup at all
            worker.wait(10)
        at_kill = len(server.messages)
        assert at_kill < 300, "the batch was over before the kill: make the server slower"
        recorded = sum(row.status == OutboxStatus.SENT for row in rows(engine))
        assert at_kill - recorded <= MAX_UNRECORDED

        restarted = start()
        try:
            # Its claims belonged to a process of this machine that is gone: no lease to wait.
            wait_for(
                lambda: len({m.rcpt_tos[0] for m in server.messages}) == 300,
                "some messages were never sent after the restart",
                timeout=30,
            )
            wait_for(
                lambda: all(row.status == OutboxStatus.SENT for row in rows(engine)),
                "not every message was recorded as sent",
            )
        finally:
            restarted.send_signal(signal.SIGTERM)
            _out, stderr = restarted.communicate(timeout=30)
        assert restarted.returncode == 0, stderr
        received = Counter(m.rcpt_tos[0] for m in server.messages)
        duplicates = sum(count - 1 for count in received.values())
        assert duplicates <= MAX_UNRECORDED
        assert duplicates <= at_kill - recorded
