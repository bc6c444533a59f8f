"""The database failing under the sender (a PostgreSQL restart): outcomes it could not record
are kept and written once the database answers, so no message is sent twice and none waits for
its lease; recording the same outcomes twice changes nothing."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from bot.db import session_scope
from bot.jobs import outbox as outbox_module
from bot.jobs.outbox import start_sender
from bot.services.mail.claims import Outcome, Result, claim_due, record_outcomes
from models import AccountState, AuditEvent, OutboxStatus, utcnow
from tests.mailtools import SmtpTestServer
from tests.services.test_outbox import (
    accounts,
    enqueue_credentials,
    make_sender,
    rows,
    smtp_transport,
)


def _notified(engine: Engine) -> Counter[int | None]:
    with Session(engine) as session:
        return Counter(
            session.exec(
                select(AuditEvent.account_id).where(
                    col(AuditEvent.action).in_(["account.notified", "account.renotified"])
                )
            ).all()
        )


async def test_database_down_while_recording_sends_nothing_twice_and_records_on_return(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = sqlite_engine  # the database's failure is simulated: the dialect does not matter
    _batch, ids, _ = enqueue_credentials(engine, 40)
    real_record = outbox_module.record_outcomes
    down = threading.Event()
    failed = threading.Event()
    recorded_groups = 0

    def record_unless_down(**kwargs: Any) -> list[int]:
        nonlocal recorded_groups
        if down.is_set():
            failed.set()
            raise OperationalError("COMMIT", None, Exception("server closed the connection"))
        recorded_groups += 1
        if recorded_groups == 2:
            down.set()  # the database goes away after the second group
        return real_record(**kwargs)

    monkeypatch.setattr(outbox_module, "record_outcomes", record_unless_down)
    monkeypatch.setattr(outbox_module, "RECORD_RETRY_DELAYS", (0.01,))
    with SmtpTestServer() as server:
        server.handler.delay = 0.005
        sender = make_sender(engine, smtp_transport(server.port), poll_interval=0.05)
        running = start_sender(sender)
        try:
            await asyncio.to_thread(failed.wait, 10)
            await asyncio.sleep(0.3)  # down for a while: the sender retries and waits
            unrecorded = [row.id for row in rows(engine) if row.status == OutboxStatus.SENDING]
            assert unrecorded, "the failure left nothing in flight: the test proves nothing"
            down.clear()  # the database is back
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while {row.status for row in rows(engine)} != {OutboxStatus.SENT}:
                # Well within the 2-minute lease: nothing waited for a recovery.
                assert loop.time() < deadline, Counter(row.status for row in rows(engine))
                await asyncio.sleep(0.05)
        finally:
            await running.stop(timeout=5)
        received = Counter(message.message_id for message in server.messages)

    assert len(received) == 40 and set(received.values()) == {1}, "a message was sent twice"
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}
    assert _notified(engine) == Counter(ids)


async def test_an_outcome_recorded_twice_is_neither_lost_nor_notified_twice(
    engine: Engine,
) -> None:
    """The first commit went through but its answer was lost: the sender writes the same
    outcomes again once the database answers."""
    _batch, ids, _ = enqueue_credentials(engine, 3)
    with session_scope(engine) as session:
        claims = claim_due(session=session, worker="w", limit=10)
    outcomes = [Outcome(claim, Result.SENT, utcnow()) for claim in claims]
    for _ in range(2):
        with session_scope(engine) as session:
            assert record_outcomes(session=session, worker="w", outcomes=outcomes) == []
    assert {row.status for row in rows(engine)} == {OutboxStatus.SENT}
    assert _notified(engine) == Counter(ids)
