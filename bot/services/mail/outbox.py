"""The outbox: every e-mail is a row written in the same transaction as the change it announces,
then sent by an asynchronous sender (`bot.jobs.outbox`) that loses nothing.

Life of a row: ``pending`` → ``sending`` (claimed by one sender) → ``sent`` (accepted by the
server; the body, which may carry a password, is erased) or ``failed`` (refused for good, or
still refused after the sender's last try; the server's reason is kept in ``last_error``); an
unsent credential e-mail made stale by a newer password is ``cancelled``. A credential e-mail's
account becomes `notified` in the same transaction that records the e-mail as sent: never
before the server accepted it.

This module writes the rows (`enqueue`, `enqueue_many`) and wakes the senders of this process
once they are committed; `claims` is how senders take and record rows, `progress` how a batch
stands.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses, make_msgid
from io import BytesIO
from typing import Any, Protocol, cast

from sqlalchemy import Table, event, exists, insert, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from bot.services.accounts import CredentialKind
from bot.services.mail.composition import message_id_domain
from models import OutboxMessage, OutboxStatus, utcnow
from models.queries import in_chunks

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
# Why a pending credential e-mail was cancelled (its `last_error`).
SUPERSEDED = "superseded by a newer password"


def credentials_kind(kind: CredentialKind) -> str:
    """The outbox kind of a credential e-mail (« credentials_first »…)."""
    return CREDENTIAL_KINDS[kind]


# --- Waking the senders of this process ----------------------------------------------------


class Wakeable(Protocol):
    """A sender of this process: told when new rows are committed (`bot.jobs.outbox`)."""

    def wake(self) -> None: ...


_SENDERS: weakref.WeakSet[Wakeable] = weakref.WeakSet()
# Commits happen in worker threads while the loop adds and removes senders.
_SENDERS_LOCK = threading.Lock()


def register_sender(sender: Wakeable) -> None:
    """Have `sender` woken when rows are enqueued in this process (until it is unregistered)."""
    with _SENDERS_LOCK:
        _SENDERS.add(sender)


def unregister_sender(sender: Wakeable) -> None:
    """Stop waking `sender` (it stopped)."""
    with _SENDERS_LOCK:
        _SENDERS.discard(sender)


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
    for chunk in in_chunks(accounts):
        _cancel_pending_credentials(session, OUTBOX.c.account_id.in_(chunk))


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


def cancel_superseded(session: Session, *, account_ids: Iterable[int]) -> int:
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
    session: Session,
    *,
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
    session: Session,
    *,
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
    for chunk in in_chunks(accounts):
        _cancel_pending_credentials(session, OUTBOX.c.account_id.in_(chunk))
    session.execute(insert(OUTBOX), rows)
    session.info[_WAKE] = True
    return len(rows)
