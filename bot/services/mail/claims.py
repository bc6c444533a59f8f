"""How senders take outbox rows and record what happened to them, each step in its own
short transaction (run in a worker thread): claiming due rows, renewing the claims' lease,
recovering what a dead sender left ``sending``, and recording the outcomes.

Claiming: on PostgreSQL, ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n`` then the rows are marked
``sending`` (claimed_at, claimed_by) in the same transaction, so several senders — the bot's,
``educonnect-bot worker`` processes on other machines — share the work and never take the same
row; on SQLite, one conditional ``UPDATE … WHERE status = 'pending' … RETURNING``.

Rows left in ``sending`` go back to ``pending`` when their claim is older than the lease
(`DEFAULT_LEASE`, 2 minutes; a live sender renews its claims long before), or at once when the
sender that claimed them ran on this machine and its process is gone (so a restarted bot does
not wait for the lease). A stale one (a newer password was issued since) is cancelled instead.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlmodel import Session

from bot.services.accounts import TransitionRefused, mark_distributed
from bot.services.mail.outbox import CREDENTIAL_KIND_VALUES, OUTBOX, cancel_superseded
from models import DistributionChannel, OutboxStatus, utcnow

log = logging.getLogger(__name__)

# How long a claim holds without being renewed before recovery takes the row back.
DEFAULT_LEASE = timedelta(minutes=2)
# The `last_error` of a row recovery put back to pending.
INTERRUPTED = "interrupted: the sender stopped before recording the outcome"
# The audit log's actor for what the sender does (marking accounts notified).
SENDER_ACTOR = "outbox"


# Worker ids of the senders created by this process, so that recovery can tell a sibling
# sender's claims from those of an earlier process that had the same pid.
_THIS_PROCESS_WORKERS: set[str] = set()


def new_worker_id(name: str | None = None) -> str:
    """A new sender's id, « host:pid:token », remembered as one of this process's senders."""
    # Recovery reads the host and pid back (see `_gone_local_workers`).
    token = f"{name}-{uuid.uuid4().hex[:8]}" if name else uuid.uuid4().hex[:12]
    worker = f"{socket.gethostname()}:{os.getpid()}:{token}"
    _THIS_PROCESS_WORKERS.add(worker)
    return worker


@dataclass(frozen=True, slots=True, repr=False)
class Claim:
    """A row this sender has marked ``sending``, with the message to send."""

    id: int
    kind: str
    account_id: int | None
    to_address: str
    body: bytes
    attempts: int  # including this one

    def __repr__(self) -> str:  # the body may carry a password: never in a log
        return f"Claim(id={self.id}, kind={self.kind}, attempts={self.attempts})"


class Result(enum.StrEnum):
    """What happened to a claimed row."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    RELEASED = "released"  # never tried (the sender is stopping): back to pending as it was
    # The server could not be reached: back to pending, this try not counted against the
    # message (the server is to blame, not it), the reason kept for the director's summary.
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed row, to be recorded."""

    claim: Claim
    result: Result
    at: datetime
    reason: str | None = None
    next_attempt_at: datetime | None = None


def claim_due(
    session: Session, *, worker: str, limit: int, now: datetime | None = None
) -> list[Claim]:
    """Mark up to `limit` due pending rows ``sending`` for `worker` and return them, oldest
    first. Rows another sender holds are skipped, never waited for nor taken twice."""
    now = now or utcnow()
    due = (
        select(OUTBOX.c.id)
        .where(OUTBOX.c.status == OutboxStatus.PENDING, OUTBOX.c.next_attempt_at <= now)
        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
        .limit(limit)
    )
    claim = update(OUTBOX).values(
        status=OutboxStatus.SENDING,
        claimed_at=now,
        claimed_by=worker,
        attempts=OUTBOX.c.attempts + 1,
    )
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.execute(due.with_for_update(skip_locked=True)).scalars())
        if not ids:
            return []
        claim = claim.where(OUTBOX.c.id.in_(ids))
    else:
        # SQLite has one writer at a time: one statement that only takes rows still pending.
        claim = claim.where(OUTBOX.c.id.in_(due.scalar_subquery()))
    claim = claim.where(OUTBOX.c.status == OutboxStatus.PENDING).returning(
        OUTBOX.c.id,
        OUTBOX.c.kind,
        OUTBOX.c.account_id,
        OUTBOX.c.to_address,
        OUTBOX.c.body,
        OUTBOX.c.attempts,
    )
    claims = [
        Claim(
            id=row.id,
            kind=row.kind,
            account_id=row.account_id,
            to_address=row.to_address,
            body=bytes(row.body or b""),
            attempts=row.attempts,
        )
        for row in session.execute(claim)
    ]
    return sorted(claims, key=lambda item: item.id)


def renew_claims(session: Session, *, worker: str, ids: Sequence[int], now: datetime) -> None:
    """Push back the lease of rows `worker` is still sending."""
    if ids:
        session.execute(
            update(OUTBOX)
            .where(
                OUTBOX.c.id.in_(list(ids)),
                OUTBOX.c.status == OutboxStatus.SENDING,
                OUTBOX.c.claimed_by == worker,
            )
            .values(claimed_at=now)
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not reaped yet is a zombie: gone for our purpose
        stat = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()  # noqa: SIM115
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _gone_local_workers(workers: Iterable[str]) -> list[str]:
    """The worker ids among `workers` that ran on this machine in a process that is gone."""
    host, me = socket.gethostname(), os.getpid()
    gone: list[str] = []
    for worker in workers:
        worker_host, _sep, rest = worker.rpartition(":")
        worker_host, _sep, pid_text = worker_host.rpartition(":")
        if worker_host != host or not pid_text.isdigit() or not rest:
            continue
        pid = int(pid_text)
        if pid == me:
            # Same pid as ours: a sibling sender of this process, or an earlier process that had
            # our pid (a container restarted); only the latter is gone.
            if worker not in _THIS_PROCESS_WORKERS:
                gone.append(worker)
        elif not _pid_alive(pid):
            gone.append(worker)
    return gone


def recover_stale_claims(
    session: Session, *, lease: timedelta = DEFAULT_LEASE, now: datetime | None = None
) -> int:
    """Put back to ``pending`` the rows left ``sending`` by a sender that died: claims older
    than `lease`, and at once those of a sender of this machine whose process is gone.
    Recovered credential e-mails made stale by a newer password are cancelled instead.
    Returns how many rows went back to pending."""
    now = now or utcnow()
    claimers = session.execute(
        select(OUTBOX.c.claimed_by)
        .where(OUTBOX.c.status == OutboxStatus.SENDING, OUTBOX.c.claimed_by.is_not(None))
        .distinct()
    ).scalars()
    gone = _gone_local_workers(claimers)
    stale = or_(OUTBOX.c.claimed_at.is_(None), OUTBOX.c.claimed_at < now - lease)
    if gone:
        stale = or_(stale, OUTBOX.c.claimed_by.in_(gone))
    recovered = session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.status == OutboxStatus.SENDING, stale)
        .values(
            status=OutboxStatus.PENDING,
            claimed_at=None,
            claimed_by=None,
            next_attempt_at=now,
            last_error=INTERRUPTED,
        )
        .returning(OUTBOX.c.id, OUTBOX.c.account_id)
    ).all()
    if not recovered:
        return 0
    accounts = {row.account_id for row in recovered if row.account_id is not None}
    cancelled = cancel_superseded(session=session, account_ids=accounts)
    log.warning(
        "outbox: %d message(s) left in sending by a stopped sender put back to pending "
        "(%d of them cancelled: superseded)",
        len(recovered),
        cancelled,
    )
    return len(recovered) - cancelled


def record_outcomes(
    session: Session, *, worker: str, outcomes: Sequence[Outcome], actor: str = SENDER_ACTOR
) -> list[int]:
    """Record what happened to claimed rows, in the caller's transaction: sent (body erased;
    credential e-mails mark their accounts distributed by e-mail), to retry, failed (body
    erased), released or deferred. Only rows still claimed by `worker` change; returns the ids
    that were not (another sender took them over after the lease: a possible duplicate).
    Recording the same outcomes twice (the first commit's answer was lost) changes nothing."""
    mine = and_(OUTBOX.c.status == OutboxStatus.SENDING, OUTBOX.c.claimed_by == worker)
    sent = [outcome for outcome in outcomes if outcome.result == Result.SENT]
    lost = _record_sent(session, worker, sent, mine=mine, actor=actor) if sent else []
    back: dict[str, Any] = {
        "status": OutboxStatus.PENDING,
        "claimed_at": None,
        "claimed_by": None,
    }
    released = [outcome.claim.id for outcome in outcomes if outcome.result == Result.RELEASED]
    if released:
        session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(released), mine)
            .values(back | {"attempts": OUTBOX.c.attempts - 1})
        )
    deferred = [outcome for outcome in outcomes if outcome.result == Result.DEFERRED]
    if deferred:
        # One reason for the group: they all met the same unreachable server.
        session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_([outcome.claim.id for outcome in deferred]), mine)
            .values(back | {"attempts": OUTBOX.c.attempts - 1, "last_error": deferred[0].reason})
        )
    for outcome in outcomes:
        values: dict[str, Any]
        if outcome.result == Result.FAILED:
            values = {"status": OutboxStatus.FAILED, "body": None, "last_error": outcome.reason}
        elif outcome.result == Result.RETRY:
            values = back | {
                "next_attempt_at": outcome.next_attempt_at or outcome.at,
                "last_error": outcome.reason,
            }
        else:
            continue
        session.execute(update(OUTBOX).where(OUTBOX.c.id == outcome.claim.id, mine).values(values))
    return lost


def _record_sent(
    session: Session, worker: str, sent: list[Outcome], *, mine: Any, actor: str
) -> list[int]:
    """Mark the accepted messages sent and their accounts notified; returns the ids another
    sender had taken over."""
    # One statement for the whole group: the common case, kept cheap.
    ids = [outcome.claim.id for outcome in sent]
    recorded = set(
        session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(ids), mine)
            .values(
                status=OutboxStatus.SENT,
                sent_at=case({o.claim.id: o.at for o in sent}, value=OUTBOX.c.id),
                body=None,
                last_error=None,
            )
            .returning(OUTBOX.c.id)
        ).scalars()
    )
    missed = [id_ for id_ in ids if id_ not in recorded]
    # Recorded by this worker already: an earlier commit went through though its answer was
    # lost (the database restarted), and these outcomes are being written again.
    already = _already_sent_by(session, worker, missed)
    # Marked even if another sender took the row over: the e-mail did leave.
    delivered = [
        o.claim.account_id
        for o in sent
        if o.claim.kind in CREDENTIAL_KIND_VALUES
        and o.claim.account_id is not None
        and o.claim.id not in already
    ]
    if delivered:
        _mark_delivered(session, delivered, at=max(o.at for o in sent), actor=actor)
    return [id_ for id_ in missed if id_ not in already]


def note_server_unreachable(session: Session, *, reason: str, now: datetime | None = None) -> int:
    """Give every due pending message not tried yet the reason it waits (the mail server cannot
    be reached), as the tried ones have: a batch's progress then counts them as waiting for a
    retry, with that reason. Returns how many rows were noted."""
    now = now or utcnow()
    result = session.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.status == OutboxStatus.PENDING,
            OUTBOX.c.next_attempt_at <= now,
            OUTBOX.c.last_error.is_(None),
        )
        .values(last_error=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _already_sent_by(session: Session, worker: str, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    return set(
        session.execute(
            select(OUTBOX.c.id).where(
                OUTBOX.c.id.in_(ids),
                OUTBOX.c.status == OutboxStatus.SENT,
                OUTBOX.c.claimed_by == worker,
            )
        ).scalars()
    )


def _mark_delivered(session: Session, account_ids: list[int], *, at: datetime, actor: str) -> None:
    ids = list(dict.fromkeys(account_ids))
    try:
        mark_distributed(
            session=session,
            account_ids=ids,
            channel=DistributionChannel.EMAIL,
            actor=actor,
            at=at,
        )
    except TransitionRefused as refused:
        # E.g. an account deactivated by a re-import while its e-mail was on its way: the
        # e-mail left all the same; the others are marked.
        log.warning("outbox: accounts not marked notified after their e-mail: %s", refused)
        rest = [id_ for id_ in ids if id_ not in refused.refusals]
        if rest:
            mark_distributed(
                session=session,
                account_ids=rest,
                channel=DistributionChannel.EMAIL,
                actor=actor,
                at=at,
            )
