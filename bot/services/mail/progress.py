"""Where the outbox stands: the progress of one batch (one /envoyer) with each failure and its
reason, for the director's summary, and how many messages still wait.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlmodel import Session, col

from bot.services.mail.outbox import OUTBOX
from models import Account, Guardian, OutboxStatus


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


def batch_progress(session: Session, *, batch_id: str) -> BatchProgress:
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


def pending_count(session: Session) -> int:
    """How many messages wait to be sent (pending or being sent)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(OUTBOX)
            .where(OUTBOX.c.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
        ).scalar_one()
    )
