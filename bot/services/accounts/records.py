"""Reading and writing accounts for the life cycle's transitions: accounts loaded with their
guardians (locked for update or not, as ORM objects or plain rows), bulk updates that keep the
session's objects in line, and the audit events each transition records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.db import lock_for_writing
from bot.services.accounts.refusals import raise_if_refused, unknown_refusals
from bot.services.audit import record_event
from models import Account, AccountState, AuditEvent, Guardian, utcnow
from models.queries import in_chunks

# The bulk paths write with Core statements, a few per batch rather than one per account.
ACCOUNTS: Table = Account.__table__  # type: ignore[attr-defined]
_AUDIT_EVENTS: Table = AuditEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as the guards read it, with its guardian's school and address: the bulk paths
    read these without the ORM (a thousand accounts per distribution, a few per e-mail group
    hundreds of times a minute)."""

    id: int
    guardian_id: int
    identifier: str
    state: AccountState
    password_hash: str | None
    provisional_expires_at: datetime | None
    distributed_at: datetime | None
    deactivated_at: datetime | None
    school_id: int
    email: str | None


_ROW_COLUMNS = (
    ACCOUNTS.c.id,
    ACCOUNTS.c.guardian_id,
    ACCOUNTS.c.identifier,
    ACCOUNTS.c.state,
    ACCOUNTS.c.password_hash,
    ACCOUNTS.c.provisional_expires_at,
    ACCOUNTS.c.distributed_at,
    ACCOUNTS.c.deactivated_at,
    col(Guardian.school_id),
    col(Guardian.email),
)


def unique_ids(ids: Iterable[int]) -> list[int]:
    """`ids` without repeats, in their first order."""
    return list(dict.fromkeys(ids))


def load_accounts(
    session: Session, account_ids: Sequence[int], *, lock: bool
) -> dict[int, tuple[Account, Guardian]]:
    """Accounts with their guardians, one query per chunk of ids, locked for update if asked."""
    found: dict[int, tuple[Account, Guardian]] = {}
    ids = sorted(set(account_ids))  # one lock order for everyone: no deadlocks between batches
    if lock:
        lock_for_writing(session)
    for chunk in in_chunks(ids):
        statement = (
            select(Account, Guardian)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(col(Account.id).in_(chunk))
            .order_by(col(Account.id))
        )
        if lock:
            # Two directors (or the outbox worker) cannot both pass a guard on the same
            # account (SQLite: `lock_for_writing` above). Re-read rows already in the
            # session, or the guards would check stale states.
            statement = statement.with_for_update(of=Account).execution_options(
                populate_existing=True
            )
        for account, guardian in session.exec(statement):
            assert account.id is not None
            found[account.id] = (account, guardian)
    return found


def load_one(session: Session, account_id: int) -> tuple[Account, Guardian]:
    """One account and its guardian, locked for update; `TransitionRefused` if unknown."""
    found = load_accounts(session, [account_id], lock=True)
    raise_if_refused(unknown_refusals([account_id], found))
    return found[account_id]


def load_rows(session: Session, account_ids: Sequence[int], *, lock: bool) -> dict[int, AccountRow]:
    """As `load_accounts`, without the ORM: these accounts, one query per chunk of ids, locked for
    update if asked (PostgreSQL), always read from the database."""
    session.flush()  # a Core query does not flush the session's pending changes by itself
    found: dict[int, AccountRow] = {}
    ids = sorted(set(account_ids))  # one lock order for everyone, as `load_accounts`
    if lock:
        lock_for_writing(session)
    for chunk in in_chunks(ids):
        statement = (
            core_select(*_ROW_COLUMNS)
            .join(Guardian, col(Guardian.id) == ACCOUNTS.c.guardian_id)
            .where(ACCOUNTS.c.id.in_(chunk))
            .order_by(ACCOUNTS.c.id)
        )
        if lock:
            statement = statement.with_for_update(of=ACCOUNTS)
        for values in session.execute(statement):
            row = AccountRow(*values)
            found[row.id] = row
    return found


def sync_loaded(session: Session, account_id: int, values: Mapping[str, object]) -> None:
    """The account object the session holds, if any, gets the values just written, without
    being marked changed (which would write them a second time)."""
    loaded = session.identity_map.get(session.identity_key(Account, account_id))
    if loaded is not None:
        for key, value in values.items():
            set_committed_value(loaded, key, value)


def update_accounts(
    session: Session, account_ids: Sequence[int], values: Mapping[str, object]
) -> None:
    """Set the same `values` on these accounts: one UPDATE per chunk of ids, and the objects
    the session holds brought in line without being marked changed (no second UPDATE)."""
    for chunk in in_chunks(account_ids):
        session.execute(update(ACCOUNTS).where(ACCOUNTS.c.id.in_(chunk)).values(**values))
    for id_ in account_ids:
        sync_loaded(session, id_, values)


def audit(
    session: Session,
    account: Account,
    guardian: Guardian,
    *,
    actor: str,
    action: str,
    **details: object,
) -> None:
    """One audit event about `account`, in the school of its guardian."""
    # The event is stamped with the time it is recorded; business dates (distribution,
    # activation) live on the account itself.
    record_event(
        session,
        actor=actor,
        action=action,
        school_id=guardian.school_id,
        account_id=account.id,
        **details,
    )


def audit_many(
    session: Session,
    events: Sequence[tuple[int, int, str, dict[str, object]]],
    *,
    actor: str,
) -> None:
    """One audit event per (account id, school id, action, details), as `audit` records them,
    in one multi-row INSERT. The details are this module's own (kinds, dates, channels): never
    a password, a hash or a code."""
    if not events:
        return
    # Events the session still holds are written first, so the log keeps the order of actions.
    session.flush()
    at = utcnow()
    session.execute(
        insert(_AUDIT_EVENTS),
        [
            {
                "at": at,
                "actor": actor,
                "action": action,
                "school_id": school_id,
                "account_id": account_id,
                "details": details,
            }
            for account_id, school_id, action, details in events
        ],
    )
