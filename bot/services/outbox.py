"""The outbox: every e-mail is a row written in the same transaction as the change it announces,
then sent by an asynchronous sender that loses nothing.

Life of a row: ``pending`` → ``sending`` (claimed by one sender) → ``sent`` (accepted by the
server; the body, which may carry a password, is erased) or ``failed`` (refused for good, or
still refused after `DEFAULT_MAX_ATTEMPTS` tries; the server's reason is kept in
``last_error``); an unsent credential e-mail made stale by a newer password is ``cancelled``.
4xx replies and network errors are retried with exponential backoff and jitter; 5xx replies
fail at once. A credential e-mail's account becomes `notified` in the same transaction that
records the e-mail as sent: never before the server accepted it.

Claiming: on PostgreSQL, ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n`` then the rows are marked
``sending`` (claimed_at, claimed_by) in the same transaction, so several senders — the bot's,
``educonnect-bot worker`` processes on other machines — share the work and never take the same
row; on SQLite, one conditional ``UPDATE … WHERE status = 'pending' … RETURNING``.

**Crash safety and the duplicate bound.** A sender sends over a few reused SMTP connections
at once and commits the outcomes in groups of `RECORD_GROUP` (8) while the next messages go
out; before starting a message it waits until the outcomes not yet being written plus the
messages in flight are fewer than 8, and only one group is written at a time. So at any
moment at most `MAX_UNRECORDED` = 2 × 8 = **16 messages per sender** have been accepted by the
server without their ``sent`` state being committed (a group of at most 8 being written, at
most 8 waiting or in flight). After a crash of a sender (kill -9, power loss, or its
database failing for good while it records), **at most 16 messages — those accepted by the
server but not yet recorded — are sent twice; every other message is sent exactly once and
none is lost**: rows left in ``sending`` go back to ``pending`` when their claim is older than
the lease (`DEFAULT_LEASE`, 2 minutes; a live sender renews its claims long before), or at
once when the sender that claimed them ran on this machine and its process is gone (so a
restarted bot does not wait for the lease). A stale one (a newer password was issued since)
is cancelled instead. Independently of crashes, SMTP itself leaves one case open: a
connection lost after the server took a message but before its « 250 » reached us looks like
a failure, and that one message is sent again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses, make_msgid
from io import BytesIO
from typing import Any, cast

from sqlalchemy import (
    Engine,
    Table,
    and_,
    case,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from bot.config import Settings
from bot.db import session_scope
from bot.services.accounts import CredentialKind, TransitionRefused, mark_distributed
from bot.services.mail import message_id_domain
from bot.services.mail_transport import (
    DeliveryError,
    MailTransport,
    ServerUnavailable,
    envelope_sender,
    transport_from_settings,
)
from models import Account, DistributionChannel, Guardian, OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

OUTBOX: Table = cast(Table, OutboxMessage.__table__)  # type: ignore[attr-defined]

# The kinds of credential e-mails; their acceptance marks the account distributed.
CREDENTIAL_KINDS: dict[CredentialKind, str] = {
    CredentialKind.FIRST: "credentials_first",
    CredentialKind.REMINDER: "credentials_reminder",
    CredentialKind.RESET: "credentials_reset",
}
CREDENTIAL_KIND_VALUES = frozenset(CREDENTIAL_KINDS.values())
# The ones that carry a newly drawn password: they make any older unsent credential e-mail of
# the same account stale (its password no longer works).
PASSWORD_KIND_VALUES = frozenset(
    {CREDENTIAL_KINDS[CredentialKind.FIRST], CREDENTIAL_KINDS[CredentialKind.RESET]}
)

DEFAULT_BATCH_SIZE = 50
DEFAULT_LEASE = timedelta(minutes=2)
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
SUPERSEDED = "superseded by a newer password"
INTERRUPTED = "interrupted: the sender stopped before recording the outcome"
# The audit log's actor for what the sender does (marking accounts notified).
SENDER_ACTOR = "outbox"


def credentials_kind(kind: CredentialKind) -> str:
    """The outbox kind of a credential e-mail (« credentials_first »…)."""
    return CREDENTIAL_KINDS[kind]


# --- Waking the senders of this process ----------------------------------------------------

_SENDERS: weakref.WeakSet[OutboxSender] = weakref.WeakSet()
# Commits happen in worker threads while the loop adds and removes senders.
_SENDERS_LOCK = threading.Lock()
# Worker ids of the senders created by this process, so that recovery can tell a sibling
# sender's claims from those of an earlier process that had the same pid.
_THIS_PROCESS_WORKERS: set[str] = set()


def wake_senders() -> None:
    """Tell the senders running in this process that new rows are waiting (thread-safe).

    `enqueue` calls it by itself once the caller's transaction commits; other processes'
    senders find the rows at their next poll.
    """
    with _SENDERS_LOCK:
        senders = list(_SENDERS)
    for sender in senders:
        sender.wake()


# What `enqueue` keeps in `session.info` until the rows reach the database.
_WAKE = "outbox_wake"
_LISTENING = "outbox_listening"
_SUPERSEDING = "outbox_superseding"  # accounts whose older pending e-mails are to cancel
_ADDED = "outbox_added"  # account id → credential rows added since the last flush


def _before_flush(session: Session, _context: object, _instances: object) -> None:
    # One UPDATE per flush, before the new rows are inserted, rather than one per enqueue.
    accounts = sorted(session.info.pop(_SUPERSEDING, ()))
    session.info.pop(_ADDED, None)
    for start in range(0, len(accounts), 500):
        _cancel_pending_credentials(session, OUTBOX.c.account_id.in_(accounts[start : start + 500]))


def _after_commit(session: Session) -> None:
    session.info.pop(_SUPERSEDING, None)
    session.info.pop(_ADDED, None)
    if session.info.pop(_WAKE, False):
        wake_senders()


def _after_rollback(session: Session) -> None:
    for key in (_WAKE, _SUPERSEDING, _ADDED):
        session.info.pop(key, None)


def _listen(session: Session) -> None:
    if not session.info.get(_LISTENING):
        event.listen(session, "before_flush", _before_flush)
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_LISTENING] = True


# --- Writing ---------------------------------------------------------------------------------


def _single_recipient(message: Message) -> str:
    addresses = [addr for _name, addr in getaddresses(message.get_all("To", [])) if addr]
    if len(addresses) != 1:
        raise ValueError(f"an outbox message has exactly one recipient, not {len(addresses)}")
    return addresses[0]


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _BodyGenerator(BytesGenerator):
    """The standard generator, writing each text payload in one piece rather than line by
    line (the same bytes: the line breaks become `linesep` all the same). Line by line was
    half of the time spent serialising a credential e-mail."""

    def _write_lines(self, lines: str) -> None:
        if lines:
            self.write(self._NL.join(_LINE_BREAK.split(lines)))  # type: ignore[attr-defined]


def _serialized(message: Message) -> bytes:
    """`message.as_bytes()` with CRLF line endings, as SMTP carries it."""
    out = BytesIO()
    _BodyGenerator(out, mangle_from_=False, policy=message.policy.clone(linesep="\r\n")).flatten(
        message
    )
    return out.getvalue()


def _cancel_pending_credentials(session: Session, *conditions: Any) -> int:
    result = session.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.status == OutboxStatus.PENDING,
            OUTBOX.c.kind.in_(sorted(CREDENTIAL_KIND_VALUES)),
            *conditions,
        )
        .values(status=OutboxStatus.CANCELLED, body=None, last_error=SUPERSEDED)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def cancel_superseded(*, session: Session, account_ids: Iterable[int]) -> int:
    """Cancel the pending credential e-mails of these accounts that a newer e-mail carrying a
    password made stale (their password no longer works); returns how many."""
    ids = sorted(set(account_ids))
    if not ids:
        return 0
    newer = aliased(OUTBOX)
    return _cancel_pending_credentials(
        session,
        OUTBOX.c.account_id.in_(ids),
        exists().where(
            newer.c.account_id == OUTBOX.c.account_id,
            newer.c.id > OUTBOX.c.id,
            newer.c.kind.in_(sorted(PASSWORD_KIND_VALUES)),
        ),
    )


def _row_values(
    message: EmailMessage | Message,
    *,
    kind: str,
    school_id: int | None,
    account_id: int | None,
    batch_id: str | None,
    now: datetime,
    recipient: str | None = None,
) -> dict[str, Any]:
    """The columns of a new ``pending`` row; gives the message a Message-ID and a Date if it
    has none. `recipient` saves parsing the To header when the caller knows it."""
    recipient = recipient or _single_recipient(message)
    if message["Message-ID"] is None:
        sender = getaddresses(message.get_all("From", []))
        domain = message_id_domain(sender[0][1] if sender else "")
        message["Message-ID"] = make_msgid(domain=domain)
    if message["Date"] is None:
        message["Date"] = format_datetime(now)
    return {
        "school_id": school_id,
        "account_id": account_id,
        "batch_id": batch_id,
        "kind": kind,
        "to_address": recipient,
        "message_id": str(message["Message-ID"]).strip(),
        "body": _serialized(message),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        # Every row carries every key: one executemany INSERT takes its columns from the first.
        "last_error": None,
        # Due at once by the real clock, whatever `now` the caller dates its change with.
        "next_attempt_at": min(now, utcnow()),
        "created_at": now,
    }


def enqueue(
    *,
    session: Session,
    message: EmailMessage | Message,
    kind: str,
    school_id: int | None,
    account_id: int | None,
    batch_id: str | None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Add `message` (one recipient) to the outbox, in the caller's transaction, as ``pending``.

    A credential e-mail that carries a new password (`credentials_first`, `credentials_reset`)
    cancels the older unsent credential e-mails of the same account: their password no longer
    works (at the next flush; in the database, the new row is always the newest). The
    senders of this process are woken when the transaction commits.
    """
    now = now or utcnow()
    row = OutboxMessage(
        **_row_values(
            message,
            kind=kind,
            school_id=school_id,
            account_id=account_id,
            batch_id=batch_id,
            now=now,
        )
    )
    _listen(session)
    if account_id is not None and kind in CREDENTIAL_KIND_VALUES:
        added: dict[int, list[OutboxMessage]] = session.info.setdefault(_ADDED, {})
        earlier = added.setdefault(account_id, [])
        if kind in PASSWORD_KIND_VALUES:
            # Older rows still in this session are cancelled here; those already in the
            # database by one UPDATE at the next flush, before this row is inserted.
            for stale in earlier:
                if stale.status == OutboxStatus.PENDING:
                    stale.status = OutboxStatus.CANCELLED
                    stale.body = None
                    stale.last_error = SUPERSEDED
            session.info.setdefault(_SUPERSEDING, set()).add(account_id)
        earlier.append(row)
    session.add(row)
    session.info[_WAKE] = True
    return row


@dataclass(frozen=True, slots=True, repr=False)
class OutgoingEmail:
    """One e-mail for `enqueue_many`: the message (one recipient), its outbox kind, the
    account it concerns (None for none), and its recipient's address if the caller knows it
    (else read from the To header)."""

    message: EmailMessage | Message
    kind: str
    account_id: int | None
    recipient: str | None = None

    def __repr__(self) -> str:  # the message may carry a password: never in a log
        return f"OutgoingEmail(kind={self.kind}, account_id={self.account_id})"


def enqueue_many(
    *,
    session: Session,
    emails: Sequence[OutgoingEmail],
    school_id: int | None,
    batch_id: str | None,
    now: datetime | None = None,
) -> int:
    """`enqueue` for many e-mails at once, in the caller's transaction: the same rows, written
    by one multi-row INSERT, and the same cancelling — an e-mail carrying a new password
    cancels the older unsent credential e-mails of its account (those already written, those
    enqueued earlier in this session, and those before it in `emails`). The senders of this
    process are woken when the transaction commits. Returns how many rows were written."""
    if not emails:
        return 0
    now = now or utcnow()
    rows: list[dict[str, Any]] = []
    latest: dict[int, list[dict[str, Any]]] = {}
    superseding: set[int] = set()
    for email in emails:
        row = _row_values(
            email.message,
            kind=email.kind,
            school_id=school_id,
            account_id=email.account_id,
            batch_id=batch_id,
            now=now,
            recipient=email.recipient,
        )
        if email.account_id is not None and email.kind in CREDENTIAL_KIND_VALUES:
            earlier = latest.setdefault(email.account_id, [])
            if email.kind in PASSWORD_KIND_VALUES:
                for stale in earlier:
                    if stale["status"] == OutboxStatus.PENDING:
                        stale |= {
                            "status": OutboxStatus.CANCELLED,
                            "body": None,
                            "last_error": SUPERSEDED,
                        }
                superseding.add(email.account_id)
            earlier.append(row)
        rows.append(row)
    _listen(session)
    # Rows `enqueue` left in the session go first (and cancel what they supersede), then what
    # these e-mails supersede is cancelled, before they are written: theirs are the newest.
    session.flush()
    accounts = sorted(superseding)
    for start in range(0, len(accounts), 500):
        _cancel_pending_credentials(session, OUTBOX.c.account_id.in_(accounts[start : start + 500]))
    session.execute(insert(OUTBOX), rows)
    session.info[_WAKE] = True
    return len(rows)


# --- Progress --------------------------------------------------------------------------------


class FailureKind(enum.StrEnum):
    """Why a message failed, for the director's summary (the server's words are kept too)."""

    REFUSED = "refused"  # the server refused it for good (5xx), e.g. unknown mailbox
    INVALID_ADDRESS = "invalid_address"  # the address cannot be sent to at all
    GAVE_UP = "gave_up"  # temporary errors (4xx, network) until the retries ran out


_REPLY = re.compile(r"^([2-5])\d\d\b")


def classify_failure(last_error: str | None) -> FailureKind:
    """The kind of a failure from the reason the outbox kept."""
    reason = last_error or ""
    match = _REPLY.match(reason)
    if match and match.group(1) == "5":
        return FailureKind.REFUSED
    if reason.startswith("address:"):
        return FailureKind.INVALID_ADDRESS
    return FailureKind.GAVE_UP


@dataclass(frozen=True, slots=True)
class FailedMessage:
    """One e-mail of a batch that did not reach its guardian, and why."""

    outbox_id: int
    account_id: int | None
    guardian_name: str | None  # « Prénom NOM »
    identifier: str | None
    to_address: str
    kind: FailureKind
    reason: str  # the server's reply, « 550 5.1.1 Unknown user », or the network error
    attempts: int


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Where the e-mails of one batch (one /envoyer) stand."""

    batch_id: str
    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    # Pending again after a temporary failure (they will be retried), with the latest reason.
    retrying: int = 0
    last_retry_reason: str | None = None
    failures: tuple[FailedMessage, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return self.pending + self.sending + self.sent + self.failed + self.cancelled

    @property
    def done(self) -> bool:
        """Every message has its final state (sent, failed or cancelled)."""
        return self.pending == 0 and self.sending == 0


def batch_progress(*, session: Session, batch_id: str) -> BatchProgress:
    """Counts per state for `batch_id`, the retries waiting, and each failure with its reason."""
    counts: dict[str, int] = {}
    retrying = 0
    for status, retried, count in session.execute(
        select(
            OUTBOX.c.status,
            and_(OUTBOX.c.status == OutboxStatus.PENDING, OUTBOX.c.last_error.is_not(None)),
            func.count(),
        )
        .where(OUTBOX.c.batch_id == batch_id)
        .group_by(OUTBOX.c.status, OUTBOX.c.last_error.is_not(None))
    ):
        counts[str(status)] = counts.get(str(status), 0) + int(count)
        if retried:
            retrying += int(count)
    last_retry_reason = None
    if retrying:
        last_retry_reason = session.execute(
            select(OUTBOX.c.last_error)
            .where(
                OUTBOX.c.batch_id == batch_id,
                OUTBOX.c.status == OutboxStatus.PENDING,
                OUTBOX.c.last_error.is_not(None),
            )
            .order_by(OUTBOX.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    failures: list[FailedMessage] = []
    if counts.get(OutboxStatus.FAILED.value):
        rows = session.execute(
            select(
                OUTBOX.c.id,
                OUTBOX.c.account_id,
                OUTBOX.c.to_address,
                OUTBOX.c.last_error,
                OUTBOX.c.attempts,
                col(Account.identifier),
                col(Guardian.first_name),
                col(Guardian.last_name),
                col(Guardian.usage_name),
            )
            .select_from(OUTBOX)
            .outerjoin(Account, col(Account.id) == OUTBOX.c.account_id)
            .outerjoin(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(OUTBOX.c.batch_id == batch_id, OUTBOX.c.status == OutboxStatus.FAILED)
            .order_by(OUTBOX.c.id)
        )
        for row in rows:
            surname = row.usage_name or row.last_name
            name = f"{row.first_name} {surname.upper()}" if row.first_name else None
            failures.append(
                FailedMessage(
                    outbox_id=row.id,
                    account_id=row.account_id,
                    guardian_name=name,
                    identifier=row.identifier,
                    to_address=row.to_address,
                    kind=classify_failure(row.last_error),
                    reason=row.last_error or "",
                    attempts=row.attempts,
                )
            )
    return BatchProgress(
        batch_id=batch_id,
        pending=counts.get(OutboxStatus.PENDING.value, 0),
        sending=counts.get(OutboxStatus.SENDING.value, 0),
        sent=counts.get(OutboxStatus.SENT.value, 0),
        failed=counts.get(OutboxStatus.FAILED.value, 0),
        cancelled=counts.get(OutboxStatus.CANCELLED.value, 0),
        retrying=retrying,
        last_retry_reason=last_retry_reason,
        failures=tuple(failures),
    )


# --- Claiming and recording (synchronous: run in a worker thread) ---------------------------


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
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    RELEASED = "released"  # never tried (the sender is stopping): back to pending as it was


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed row, to be recorded."""

    claim: Claim
    result: Result
    at: datetime
    reason: str | None = None
    next_attempt_at: datetime | None = None


def claim_due(
    *, session: Session, worker: str, limit: int, now: datetime | None = None
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


def renew_claims(*, session: Session, worker: str, ids: Sequence[int], now: datetime) -> None:
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
    *, session: Session, lease: timedelta = DEFAULT_LEASE, now: datetime | None = None
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
    *, session: Session, worker: str, outcomes: Sequence[Outcome], actor: str = SENDER_ACTOR
) -> list[int]:
    """Record what happened to claimed rows, in the caller's transaction: sent (body erased;
    credential e-mails mark their accounts distributed by e-mail), to retry, failed (body
    erased) or released. Only rows still claimed by `worker` change; returns the ids that were
    not (another sender took them over after the lease: a possible duplicate)."""
    mine = and_(OUTBOX.c.status == OutboxStatus.SENDING, OUTBOX.c.claimed_by == worker)
    lost: list[int] = []
    sent = [outcome for outcome in outcomes if outcome.result == Result.SENT]
    released = [outcome.claim.id for outcome in outcomes if outcome.result == Result.RELEASED]
    if sent:
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
        lost += [id_ for id_ in ids if id_ not in recorded]
        # Marked even if another sender took the row over: the e-mail did leave.
        delivered = [
            o.claim.account_id
            for o in sent
            if o.claim.kind in CREDENTIAL_KIND_VALUES and o.claim.account_id is not None
        ]
        if delivered:
            _mark_delivered(session, delivered, at=max(o.at for o in sent), actor=actor)
    if released:
        session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(released), mine)
            .values(
                status=OutboxStatus.PENDING,
                attempts=OUTBOX.c.attempts - 1,
                claimed_at=None,
                claimed_by=None,
            )
        )
    for outcome in outcomes:
        values: dict[str, Any]
        if outcome.result == Result.FAILED:
            values = {"status": OutboxStatus.FAILED, "body": None, "last_error": outcome.reason}
        elif outcome.result == Result.RETRY:
            values = {
                "status": OutboxStatus.PENDING,
                "next_attempt_at": outcome.next_attempt_at or outcome.at,
                "last_error": outcome.reason,
                "claimed_at": None,
                "claimed_by": None,
            }
        else:
            continue
        session.execute(update(OUTBOX).where(OUTBOX.c.id == outcome.claim.id, mine).values(values))
    return lost


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


def pending_count(*, session: Session) -> int:
    """How many messages wait to be sent (pending or being sent)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(OUTBOX)
            .where(OUTBOX.c.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
        ).scalar_one()
    )


# --- The sender ------------------------------------------------------------------------------


def _worker_id(name: str | None) -> str:
    # host:pid:token — recovery reads the host and pid back (see `_gone_local_workers`).
    token = f"{name}-{uuid.uuid4().hex[:8]}" if name else uuid.uuid4().hex[:12]
    return f"{socket.gethostname()}:{os.getpid()}:{token}"


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
        self._writing = asyncio.ensure_future(asyncio.to_thread(self._record, group))
        self._writing.add_done_callback(self._written)

    def _late(self) -> None:
        self._timer = None
        self._write(force=True)

    def _written(self, writing: asyncio.Future[None]) -> None:
        self._writing = None
        if not writing.cancelled() and writing.exception() is not None:
            self._failure = writing.exception()
        self._changed.set()
        self._write(force=False)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure  # a recording that failed for good stops the sender here

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
        actor: str = SENDER_ACTOR,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.envelope_from = envelope_from
        self.worker_id = _worker_id(name)
        _THIS_PROCESS_WORKERS.add(self.worker_id)
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.record_group = record_group
        self.actor = actor
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

        Stops early when the server cannot be reached (the messages wait for their retry) or
        when `run_forever` is asked to stop (unsent claims go back to pending)."""
        accepted = 0
        try:
            while not self._stopping():
                claims: list[Claim] = await asyncio.to_thread(
                    self._db, claim_due, worker=self.worker_id, limit=self.batch_size
                )
                if not claims:
                    break
                sent, reachable = await self._deliver(claims)
                accepted += sent
                if not reachable:
                    break
        finally:
            await self.transport.close()
        return accepted

    async def _deliver(self, claims: list[Claim]) -> tuple[int, bool]:
        """Send claimed rows, over as many connections at once as the transport allows, and
        record every outcome; returns how many were accepted, and whether the server could
        be reached."""
        recorder = _Recorder(self._record, self.record_group)
        loop = asyncio.get_running_loop()
        untried = collections.deque(claims)
        in_flight: set[int] = set()
        accepted = 0
        unavailable: ServerUnavailable | None = None
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

        async def lane() -> None:
            nonlocal accepted, unavailable, lanes_alive
            while untried and unavailable is None and not self._stopping():
                await recorder.wait_for_room(lambda: len(in_flight))
                await renew_if_due()
                if not untried or unavailable is not None or self._stopping():
                    return
                claim = untried.popleft()
                in_flight.add(claim.id)
                try:
                    await self.transport.send(
                        sender=self.envelope_from, recipient=claim.to_address, body=claim.body
                    )
                except ServerUnavailable as error:
                    if lanes_alive > 1:
                        # The server may limit connections per client: go on with fewer.
                        log.info("outbox: one connection fewer (%s)", error.reason)
                        untried.appendleft(claim)
                        lanes_alive -= 1
                        return
                    # Nothing could be tried: this message and the rest wait for the server.
                    log.warning("outbox: mail server unavailable: %s", error.reason)
                    unavailable = error
                    recorder.add(self._after_error(claim, error, utcnow()))
                except DeliveryError as error:
                    recorder.add(self._after_error(claim, error, utcnow()))
                else:
                    recorder.add(Outcome(claim, Result.SENT, utcnow()))
                    accepted += 1
                finally:
                    in_flight.discard(claim.id)

        lanes = [asyncio.ensure_future(lane()) for _ in range(lanes_alive)]
        try:
            await asyncio.gather(*lanes)
        except BaseException:
            # Cancelled (or a recording failed): the messages in flight may or may not have been
            # accepted, so they stay `sending` until recovery; the untried go back to pending.
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            now = utcnow()
            for claim in untried:
                recorder.add(Outcome(claim, Result.RELEASED, now))
            with contextlib.suppress(Exception):
                await recorder.flush()
            raise
        now = utcnow()
        for claim in untried:
            if unavailable is not None:
                recorder.add(self._after_error(claim, unavailable, now))
            else:  # stopping: never tried, back to pending as they were
                recorder.add(Outcome(claim, Result.RELEASED, now))
        await recorder.flush()
        return accepted, unavailable is None

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if woken or asked to stop."""
        assert self._stop_event is not None and self._wake_event is not None
        waits = [
            asyncio.ensure_future(self._stop_event.wait()),
            asyncio.ensure_future(self._wake_event.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def run_forever(self, stop_event: asyncio.Event) -> None:
        """Send as rows arrive (woken by `enqueue` in this process, polling every
        `poll_interval` seconds for the others) until `stop_event` is set; recover dead
        senders' claims at start and every half lease. Errors (database or server down) are
        logged and retried with a growing pause; they never end the loop."""
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._stop_event = stop_event
        with _SENDERS_LOCK:
            _SENDERS.add(self)
        log.info("outbox sender %s started: %s", self.worker_id, self.transport.description)
        next_recovery = 0.0
        failures = 0
        try:
            while not stop_event.is_set():
                self._wake_event.clear()
                pause = self.poll_interval
                try:
                    if self._loop.time() >= next_recovery:
                        await self.recover()
                        next_recovery = self._loop.time() + self.lease.total_seconds() / 2
                    await self.drain_once()
                    failures = 0
                except Exception:
                    failures += 1
                    pause = min(60.0, self.poll_interval * 2**failures)
                    log.exception("outbox sender: error, next try in %.0f s", pause)
                await self._pause(pause)
        finally:
            with _SENDERS_LOCK:
                _SENDERS.discard(self)
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
