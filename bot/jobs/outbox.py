"""The outbox sender: the long-running task that drains the outbox (`bot.services.mail`),
in the bot process (started and stopped with the application) or alone with
`educonnect-bot worker`.

It claims due rows, sends them over a few reused SMTP connections (or into the Maildir without
SMTP_HOST), and records each outcome. 4xx replies and network errors are retried with
exponential backoff and jitter; 5xx replies fail at once; a message still refused after
`DEFAULT_MAX_ATTEMPTS` tries fails for good.

**The mail server down.** When no connection can be made at all (refused, timed out, « 421 »
at the greeting, login refused), no message is to blame: the claimed messages go back to
pending, still due, without counting the try, and the sender tries one message every
`DEFAULT_RELAY_PROBE_INTERVAL` (15 s) until the server answers, then sends everything at once.
An outage of any length neither fails a message nor leaves it waiting long after it ends.

**The database restarting.** Outcomes that could not be written (after `RECORD_RETRY_DELAYS`)
are kept by the sender and written first once the database answers again; their rows stay
``sending`` under its name meanwhile, so a restart of the database costs no duplicate.

**Crash safety and the duplicate bound.** A sender sends over a few reused SMTP connections
at once and commits the outcomes in groups of `RECORD_GROUP` (8) while the next messages go
out; before starting a message it waits until the outcomes not yet being written plus the
messages in flight are fewer than 8, and only one group is written at a time. So at any
moment at most `MAX_UNRECORDED` = 2 × 8 = **16 messages per sender** have been accepted by the
server without their ``sent`` state being committed (a group of at most 8 being written, at
most 8 waiting or in flight). After a crash of a sender (kill -9, power loss, or its
database failing for good while it records), **at most 16 messages — those accepted by the
server but not yet recorded — are sent twice; every other message is sent exactly once and
none is lost**: rows left in ``sending`` go back to ``pending`` once their lease expires, or at
once when their sender's process is gone (`bot.services.mail.claims`). Independently of
crashes, SMTP itself leaves one case open: a connection lost after the server took a message
but before its « 250 » reached us looks like a failure, and that one message is sent again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from bot.config import Settings
from bot.db import session_scope
from bot.services.mail import (
    DEFAULT_LEASE,
    SENDER_ACTOR,
    Claim,
    DeliveryError,
    MailTransport,
    Outcome,
    Result,
    ServerUnavailable,
    claim_due,
    envelope_sender,
    new_worker_id,
    note_server_unreachable,
    record_outcomes,
    recover_stale_claims,
    register_sender,
    renew_claims,
    transport_from_settings,
    unregister_sender,
)
from models import utcnow

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 50
DEFAULT_POLL_INTERVAL = 3.0
DEFAULT_MAX_ATTEMPTS = 10
# Backoff before retry n: about RETRY_BASE × 2^(n-1) seconds (between half and all of it), at
# most RETRY_CAP: 30 s, 1 min, 2 min… then every 30 min; ten tries span about three hours.
DEFAULT_RETRY_BASE = 30.0
DEFAULT_RETRY_CAP = 1800.0
RECORD_GROUP = 8
MAX_UNRECORDED = 2 * RECORD_GROUP
# Pauses between the tries to record outcomes when the database fails (a restart, a lock).
RECORD_RETRY_DELAYS = (0.2, 0.4, 0.8, 1.6)
# While the mail server cannot be reached: one message tried this often, and a reminder in the
# log this often.
DEFAULT_RELAY_PROBE_INTERVAL = 15.0
RELAY_DOWN_REPORT_INTERVAL = 300.0


class _Recorder:
    """Writes outcomes in a worker thread, a group at a time, while the next messages are sent.

    `wait_for_room` holds a sender back while `group` outcomes (or sends in flight) wait behind
    the group being written, so at most 2 × `group` accepted messages are ever unrecorded. A
    group that fills slowly (a slow server) is written after `max_delay` seconds all the same.
    """

    def __init__(
        self, record: Callable[[list[Outcome]], None], group: int, max_delay: float = 0.5
    ) -> None:
        self._record = record
        self._group = group
        self._max_delay = max_delay
        self._waiting: list[Outcome] = []
        self._writing: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()
        self._failure: BaseException | None = None
        self._being_written: list[Outcome] = []
        self._not_written: list[Outcome] = []

    def add(self, outcome: Outcome) -> None:
        self._waiting.append(outcome)
        self._changed.set()
        self._write(force=False)

    def _write(self, *, force: bool) -> None:
        """Start writing what waits, if nothing is being written and there is enough of it.
        Never after a write failed for good: the sender is stopping, and what it could not
        record is recovered from the database later (see the module docstring)."""
        if self._writing is not None or not self._waiting or self._failure is not None:
            return
        if not force and len(self._waiting) < self._group:
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._max_delay, self._late)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._waiting = self._waiting, []
        self._being_written = group
        self._writing = asyncio.ensure_future(asyncio.to_thread(self._record, group))
        self._writing.add_done_callback(self._written)

    def _late(self) -> None:
        self._timer = None
        self._write(force=True)

    def _written(self, writing: asyncio.Future[None]) -> None:
        self._writing = None
        if not writing.cancelled() and writing.exception() is not None:
            self._failure = writing.exception()
            self._not_written = self._being_written
        self._being_written = []
        self._changed.set()
        self._write(force=False)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure  # a recording that failed for good stops the sender here

    def unrecorded(self) -> list[Outcome]:
        """After a write failed for good: every outcome added that is not committed."""
        return [*self._not_written, *self._being_written, *self._waiting]

    async def wait_for_room(self, in_flight: Callable[[], int]) -> None:
        """Return once the outcomes waiting plus the sends in flight are fewer than a group."""
        while True:
            self._raise_failure()
            if len(self._waiting) + in_flight() < self._group:
                return
            self._changed.clear()
            self._write(force=False)
            await self._changed.wait()

    async def flush(self) -> None:
        """Return once every outcome added so far is committed (raise if a write failed)."""
        while True:
            if self._writing is None and (self._failure is not None or not self._waiting):
                self._raise_failure()
                break
            self._changed.clear()
            self._write(force=True)
            await self._changed.wait()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class OutboxSender:
    """Drains the outbox: claims due rows, hands them to the transport over one reused
    connection, records each outcome. Run `run_forever` in the bot process (started and
    stopped with the application) or alone with `educonnect-bot worker`; `drain_once` sends
    what is due now and returns."""

    def __init__(
        self,
        *,
        engine: Engine,
        transport: MailTransport,
        envelope_from: str,
        name: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lease: timedelta = DEFAULT_LEASE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_base: float = DEFAULT_RETRY_BASE,
        retry_cap: float = DEFAULT_RETRY_CAP,
        record_group: int = RECORD_GROUP,
        relay_probe_interval: float = DEFAULT_RELAY_PROBE_INTERVAL,
        actor: str = SENDER_ACTOR,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.envelope_from = envelope_from
        self.worker_id = new_worker_id(name)
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.record_group = record_group
        self.relay_probe_interval = relay_probe_interval
        self.actor = actor
        # Since when (monotonic) the mail server cannot be reached, None while it answers.
        self._relay_down_since: float | None = None
        self._relay_next_report = 0.0
        # Outcomes a failed recording left behind, written first at the next drain.
        self._unrecorded: list[Outcome] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._stop_event: asyncio.Event | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine, *, name: str | None = None, **options: Any
    ) -> OutboxSender:
        """A sender for the SMTP server of the settings, or their Maildir without SMTP_HOST."""
        return cls(
            engine=engine,
            transport=transport_from_settings(settings),
            envelope_from=envelope_sender(settings),
            name=name,
            **options,
        )

    # -- waking and stopping

    def wake(self) -> None:
        """Make a sleeping `run_forever` look at the outbox now (callable from any thread)."""
        loop, wake_event = self._loop, self._wake_event
        if loop is None or wake_event is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(wake_event.set)

    def _stopping(self) -> bool:
        return self._stop_event is not None and self._stop_event.is_set()

    # -- the mail server's state

    @property
    def relay_down(self) -> bool:
        """Whether the last try found the mail server unreachable (one message is then tried
        every `relay_probe_interval` seconds, without counting against it)."""
        return self._relay_down_since is not None

    def _relay_unreachable(self, error: ServerUnavailable) -> None:
        now = time.monotonic()
        if self._relay_down_since is None:
            self._relay_down_since = now
            self._relay_next_report = now + RELAY_DOWN_REPORT_INTERVAL
            log.warning(
                "outbox: the mail server cannot be reached (%s); the e-mails wait in the outbox "
                "(their tries are not counted) and one is tried every %g s",
                error.reason,
                self.relay_probe_interval,
            )
        elif now >= self._relay_next_report:
            self._relay_next_report = now + RELAY_DOWN_REPORT_INTERVAL
            log.warning(
                "outbox: the mail server still cannot be reached after %.0f s (%s); the "
                "e-mails wait in the outbox",
                now - self._relay_down_since,
                error.reason,
            )

    def _relay_reachable(self) -> None:
        if self._relay_down_since is not None:
            log.warning(
                "outbox: the mail server answers again after %.0f s unreachable: sending resumes",
                time.monotonic() - self._relay_down_since,
            )
            self._relay_down_since = None

    # -- database steps, each in its own transaction

    def _db(self, function: Callable[..., Any], /, **kwargs: Any) -> Any:
        with session_scope(self.engine) as session:
            return function(session=session, **kwargs)

    def _record(self, outcomes: list[Outcome]) -> None:
        for delay in (*RECORD_RETRY_DELAYS, None):
            try:
                lost = self._db(
                    record_outcomes, worker=self.worker_id, outcomes=outcomes, actor=self.actor
                )
            except Exception:
                if delay is None:
                    raise
                log.warning("outbox: recording failed, trying again", exc_info=True)
                time.sleep(delay)
                continue
            if lost:
                log.warning(
                    "outbox: %d row(s) were taken over by another sender before their outcome "
                    "was recorded (ids %s)",
                    len(lost),
                    lost[:20],
                )
            return

    async def _record_carried_over(self) -> None:
        """Write the outcomes a failed recording left behind (the database was restarting).
        Their rows stayed ``sending`` under this sender's name, so no one sent them again
        meanwhile, unless their lease ran out (then they are reported as taken over)."""
        if not self._unrecorded:
            return
        outcomes = self._unrecorded
        await asyncio.to_thread(self._record, outcomes)
        self._unrecorded = []
        log.warning("outbox: %d outcome(s) recorded once the database answered", len(outcomes))

    async def recover(self) -> int:
        """Put back to pending what dead senders left ``sending`` (see the module docstring)."""
        recovered: int = await asyncio.to_thread(self._db, recover_stale_claims, lease=self.lease)
        return recovered

    # -- sending

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.retry_cap, self.retry_base * 2 ** max(0, attempts - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _after_error(self, claim: Claim, error: DeliveryError, now: datetime) -> Outcome:
        if error.permanent or claim.attempts >= self.max_attempts:
            return Outcome(claim, Result.FAILED, now, reason=error.reason)
        retry_at = now + timedelta(seconds=self._backoff(claim.attempts))
        return Outcome(claim, Result.RETRY, now, reason=error.reason, next_attempt_at=retry_at)

    async def drain_once(self) -> int:
        """Send every message due now (claims of `batch_size`, over the transport's reused
        connections), record each outcome, close the connections; returns how many messages
        were accepted.

        Stops early when the server cannot be reached (the messages stay due, their tries not
        counted; while it stays unreachable each call tries one message only) or when
        `run_forever` is asked to stop (unsent claims go back to pending). Outcomes an earlier
        call could not record are written first."""
        accepted = 0
        try:
            await self._record_carried_over()
            while not self._stopping():
                limit = 1 if self.relay_down else self.batch_size
                claims: list[Claim] = await asyncio.to_thread(
                    self._db, claim_due, worker=self.worker_id, limit=limit
                )
                if not claims:
                    break
                sent, unavailable = await self._deliver(claims)
                accepted += sent
                if unavailable is not None:
                    self._relay_unreachable(unavailable)
                    await asyncio.to_thread(
                        self._db, note_server_unreachable, reason=unavailable.reason
                    )
                    break
                self._relay_reachable()
        finally:
            await self.transport.close()
        return accepted

    async def _deliver(self, claims: list[Claim]) -> tuple[int, ServerUnavailable | None]:
        """Send claimed rows, over as many connections at once as the transport allows, and
        record every outcome; returns how many were accepted, and why the server could not be
        reached (None if it could). The database failing (recording, renewing) stops every
        connection before its next message; the messages in flight finish."""
        recorder = _Recorder(self._record, self.record_group)
        loop = asyncio.get_running_loop()
        untried = collections.deque(claims)
        in_flight: set[int] = set()
        accepted = 0
        unavailable: ServerUnavailable | None = None
        broken: Exception | None = None
        renewed = loop.time()

        async def renew_if_due() -> None:
            nonlocal renewed
            if loop.time() - renewed > self.lease.total_seconds() / 3:
                renewed = loop.time()
                ids = [claim.id for claim in untried] + sorted(in_flight)
                await asyncio.to_thread(
                    self._db, renew_claims, worker=self.worker_id, ids=ids, now=utcnow()
                )

        lanes_alive = max(1, min(self.transport.parallelism, self.record_group, len(claims)))

        def going_on() -> bool:
            return bool(untried) and unavailable is None and broken is None and not self._stopping()

        async def lane() -> None:
            nonlocal broken
            try:
                await send_in_turn()
            except Exception as error:  # the database: the other lanes stop too
                broken = broken or error

        async def send_in_turn() -> None:
            nonlocal accepted, unavailable, lanes_alive
            while going_on():
                await recorder.wait_for_room(lambda: len(in_flight))
                await renew_if_due()
                if not going_on():
                    return
                claim = untried.popleft()
                in_flight.add(claim.id)
                try:
                    outcome = await self._attempt(claim)
                except ServerUnavailable as error:
                    if lanes_alive > 1:
                        # The server may limit connections per client: go on with fewer.
                        log.info("outbox: one connection fewer (%s)", error.reason)
                        untried.appendleft(claim)
                        lanes_alive -= 1
                        return
                    # Nothing could be tried: this message and the rest wait for the server,
                    # their tries not counted (see the module docstring).
                    unavailable = error
                    recorder.add(Outcome(claim, Result.DEFERRED, utcnow(), reason=error.reason))
                else:
                    recorder.add(outcome)
                    accepted += outcome.result == Result.SENT
                finally:
                    in_flight.discard(claim.id)

        lanes = [asyncio.ensure_future(lane()) for _ in range(lanes_alive)]
        try:
            await asyncio.gather(*lanes)
        except BaseException:
            # Cancelled: the messages in flight may or may not have been accepted, so they stay
            # `sending` until recovery; the untried go back to pending.
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._settle(recorder, untried, None)
            raise
        await self._settle(recorder, untried, unavailable)
        if broken is not None:
            raise broken
        return accepted, unavailable

    async def _attempt(self, claim: Claim) -> Outcome:
        """Send one claimed message and say what became of it; `ServerUnavailable` is raised
        instead (no message is to blame when no connection can be made)."""
        try:
            await self.transport.send(
                sender=self.envelope_from, recipient=claim.to_address, body=claim.body
            )
        except ServerUnavailable:
            raise
        except DeliveryError as error:
            return self._after_error(claim, error, utcnow())
        return Outcome(claim, Result.SENT, utcnow())

    async def _settle(
        self,
        recorder: _Recorder,
        untried: collections.deque[Claim],
        unavailable: ServerUnavailable | None,
    ) -> None:
        """Put back what was never tried (deferred if the server could not be reached) and
        write every outcome; what cannot be written is kept for the next `drain_once`."""
        now = utcnow()
        for claim in untried:
            if unavailable is not None:
                recorder.add(Outcome(claim, Result.DEFERRED, now, reason=unavailable.reason))
            else:  # stopping, or the database failing: never tried, back to pending
                recorder.add(Outcome(claim, Result.RELEASED, now))
        try:
            await recorder.flush()
        except Exception:
            self._unrecorded = recorder.unrecorded()
            raise

    async def _pause(self, seconds: float, *, wakeable: bool = True) -> None:
        """Sleep `seconds`, or less if asked to stop or (`wakeable`) woken."""
        assert self._stop_event is not None and self._wake_event is not None
        waits = [asyncio.ensure_future(self._stop_event.wait())]
        if wakeable:
            waits.append(asyncio.ensure_future(self._wake_event.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def run_forever(self, stop_event: asyncio.Event) -> None:
        """Send as rows arrive (woken by `enqueue` in this process, polling every
        `poll_interval` seconds for the others) until `stop_event` is set. Before each look at
        the outbox (every poll while idle, and as soon as the outbox is drained) it recovers
        what dead senders left ``sending``: a worker killed on this machine costs no wait for
        its lease. While the mail server cannot be reached, one message is tried every
        `relay_probe_interval` seconds, new rows or not. Errors (the database down) are logged
        and retried with a growing pause; they never end the loop."""
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._stop_event = stop_event
        register_sender(self)
        log.info("outbox sender %s started: %s", self.worker_id, self.transport.description)
        failures = 0
        try:
            while not stop_event.is_set():
                self._wake_event.clear()
                pause = self.poll_interval
                try:
                    await self.recover()
                    await self.drain_once()
                    failures = 0
                    if self.relay_down:
                        pause = self.relay_probe_interval
                except Exception:
                    failures += 1
                    pause = min(60.0, self.poll_interval * 2**failures)
                    log.exception("outbox sender: error, next try in %.0f s", pause)
                # Woken by new rows, not while the server is down: they would wait all the same.
                await self._pause(pause, wakeable=not self.relay_down)
        finally:
            if self._unrecorded:  # the database may be back: spare these a resend
                with contextlib.suppress(Exception):
                    await self._record_carried_over()
            unregister_sender(self)
            await self.transport.close()
            log.info("outbox sender %s stopped", self.worker_id)


@dataclass
class RunningSender:
    """A sender running as a background task (the bot's), and how to stop it."""

    sender: OutboxSender
    task: asyncio.Task[None]
    stop_event: asyncio.Event

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask it to stop after the message in flight; cancel it if it takes too long."""
        self.stop_event.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def start_sender(sender: OutboxSender) -> RunningSender:
    """Run `sender.run_forever` as a task of the running loop."""
    stop_event = asyncio.Event()
    task = asyncio.create_task(sender.run_forever(stop_event), name="outbox-sender")
    return RunningSender(sender=sender, task=task, stop_event=stop_event)
