"""The mail relay down for a long while (« 10 minutes », simulated with a probe every 0.1 s
instead of 15 s): the outbox keeps every message, counts no try against any, tries one message
per probe, and drains as soon as the relay answers again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.jobs import outbox as outbox_module
from bot.jobs.outbox import OutboxSender, start_sender
from bot.services.mail.progress import batch_progress
from bot.services.mail.transport import SmtpTransport
from models import AccountState, OutboxStatus
from tests.mailtools import SmtpTestServer, free_port
from tests.services.test_outbox import ENVELOPE_FROM, accounts, enqueue_credentials, rows

PROBE = 0.1  # seconds between two tries while the relay is down (15 s in production)
# The outage, in probes: 40 probes of 15 s are ten minutes.
OUTAGE_PROBES = 40


class _CountingSmtp(SmtpTransport):
    """The real SMTP transport, counting the messages it was asked to send."""

    def __init__(self, port: int) -> None:
        super().__init__(host="127.0.0.1", port=port, security="none", local_hostname="test.local")
        self.tries = 0

    async def send(self, *, sender: str, recipient: str, body: bytes) -> None:
        self.tries += 1
        await super().send(sender=sender, recipient=recipient, body=body)


async def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> float:
    """Wait for `condition` (checked in a thread: it reads the database); returns how long."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await asyncio.to_thread(condition):
        assert loop.time() - start < timeout, what
        await asyncio.sleep(0.02)
    return loop.time() - start


def _statuses(engine: Engine) -> Counter[OutboxStatus]:
    return Counter(row.status for row in rows(engine))


async def test_relay_down_ten_minutes_fails_nothing_and_drains_as_soon_as_it_returns(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = sqlite_engine
    caplog.set_level(logging.INFO, logger="bot.jobs.outbox")
    monkeypatch.setattr(outbox_module, "RELAY_DOWN_REPORT_INTERVAL", PROBE * OUTAGE_PROBES / 3)
    port = free_port()
    transport = _CountingSmtp(port)
    # The production backoff (30 s, doubling) and only two tries per message: a relay-down
    # counted against the messages would fail them for good or leave them waiting for minutes.
    sender = OutboxSender(
        engine=engine,
        transport=transport,
        envelope_from=ENVELOPE_FROM,
        poll_interval=PROBE,
        relay_probe_interval=PROBE,
        max_attempts=2,
    )
    server = SmtpTestServer(port=port).start()
    running = start_sender(sender)
    try:
        _batch, before, _ = await asyncio.to_thread(enqueue_credentials, engine, 5)
        await _wait_until(lambda: len(server.messages) == 5, "the relay was up: mail goes out")

        server.stop()  # the relay goes down; mail keeps being written meanwhile
        batch, during, _ = await asyncio.to_thread(enqueue_credentials, engine, 20)
        tries_before = transport.tries
        await asyncio.sleep(PROBE * OUTAGE_PROBES / 2)
        await asyncio.to_thread(enqueue_credentials, engine, 10, batch_id=batch)
        await asyncio.sleep(PROBE * OUTAGE_PROBES / 2)

        assert sender.relay_down
        waiting = [row for row in rows(engine) if row.status != OutboxStatus.SENT]
        assert len(waiting) == 30
        for row in waiting:
            assert row.status == OutboxStatus.PENDING, row.last_error
            assert row.attempts == 0, "the relay's outage was counted against a message"
            assert row.body is not None
            # Tried or not, each says why it waits (the director's summary shows it).
            assert row.last_error is not None and row.last_error.startswith("connection:")
        # One message per probe, not the whole outbox at every poll (a few spare: the first
        # try uses every connection, and a probe may land on either side of a sleep).
        assert transport.tries - tries_before <= OUTAGE_PROBES + 5
        with Session(engine) as session:
            progress = batch_progress(session=session, batch_id=batch)
        assert (progress.pending, progress.retrying, progress.failed) == (30, 30, 0)
        assert progress.last_retry_reason is not None
        assert "connection:" in progress.last_retry_reason

        server = SmtpTestServer(port=port).start()  # the relay is back
        drained = await _wait_until(
            lambda: _statuses(engine) == {OutboxStatus.SENT: 35},
            "the outbox did not drain after the relay came back",
        )
        # Within a probe or two and the sending itself: not at the next backoff step.
        assert drained < 10 * PROBE + 1.0, drained
        assert not sender.relay_down
    finally:
        await running.stop(timeout=5)
        with contextlib.suppress(AssertionError):  # already stopped
            server.stop()

    received = Counter(message.message_id for message in server.messages)
    assert len(received) == 30 and set(received.values()) == {1}
    ids = before + during
    assert {a.state for a in accounts(engine, ids).values()} == {AccountState.NOTIFIED}
    logged = caplog.text
    assert "the mail server cannot be reached" in logged
    assert "still cannot be reached" in logged
    assert "answers again" in logged
    assert logged.count("the mail server cannot be reached") == 1  # not one line per probe


async def test_relay_down_the_sender_ignores_wakes_between_probes(
    sqlite_engine: Engine,
) -> None:
    """New rows committed while the relay is down do not bring the next try forward: they
    would wait all the same, and each commit would otherwise be one more useless try."""
    engine = sqlite_engine
    transport = _CountingSmtp(free_port())
    sender = OutboxSender(
        engine=engine,
        transport=transport,
        envelope_from=ENVELOPE_FROM,
        poll_interval=0.05,
        relay_probe_interval=60,
    )
    running = start_sender(sender)
    try:
        await asyncio.to_thread(enqueue_credentials, engine, 2)
        await _wait_until(lambda: sender.relay_down, "the sender did not find the relay down")
        tries = transport.tries
        for _ in range(5):
            await asyncio.to_thread(enqueue_credentials, engine, 1)
        await asyncio.sleep(0.3)
        assert transport.tries == tries
    finally:
        await running.stop(timeout=5)
    assert all(row.attempts == 0 for row in rows(engine))


async def test_worker_once_with_the_relay_down_keeps_every_message(
    sqlite_engine: Engine,
) -> None:
    """`drain_once` (`worker --once`, the CLI's `send`) with the relay down: every claimed
    message goes back to pending, due, no try counted, and every waiting message of the batch
    says why — the CLI's `send` stops when all that is left waits for a retry, rather than
    probing a dead relay until it returns."""
    engine = sqlite_engine
    batch, _ids, _ = enqueue_credentials(engine, 12)
    options: dict[str, Any] = {"batch_size": 5, "max_attempts": 1}
    sender = OutboxSender(
        engine=engine, transport=_CountingSmtp(free_port()), envelope_from=ENVELOPE_FROM, **options
    )
    assert await sender.drain_once() == 0
    with Session(engine) as session:
        progress = batch_progress(session=session, batch_id=batch)
    assert (progress.pending, progress.retrying, progress.failed) == (12, 12, 0)
    for _ in range(2):
        assert await sender.drain_once() == 0
    assert _statuses(engine) == {OutboxStatus.PENDING: 12}
    assert all(row.attempts == 0 and row.body for row in rows(engine))
