"""The life cycle of EduConnect accounts (SPEC §2), as the one service every caller goes through.

Each transition checks its guards, changes the accounts and records one audit event per account
(never a password or a hash) in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.config import get_settings
from bot.db import lock_for_writing
from bot.services.audit import record_event
from bot.services.identifiers import allocate_identifiers
from bot.services.passwords import (
    canonical_provisional_input,
    chosen_password_is_strong,
    generate_provisional_password,
    hash_chosen_password,
    hash_provisional_password,
    hash_provisional_passwords,
    needs_rehash,
    verify_password,
)
from models import Account, AccountState, AuditEvent, DistributionChannel, Guardian, utcnow

# SPEC §2: a provisional password is valid 3 months from the letter's date.
PROVISIONAL_VALIDITY_MONTHS = 3
# Ids per `IN (...)` query: far below SQLite's bound-parameter cap, few round trips.
_ID_CHUNK = 500
# The bulk paths write with Core statements, a few per batch rather than one per account.
_ACCOUNTS: Table = Account.__table__  # type: ignore[attr-defined]
_AUDIT_EVENTS: Table = AuditEvent.__table__  # type: ignore[attr-defined]


class CredentialKind(enum.StrEnum):
    """What a letter or e-mail carries (SPEC §2 « Letters »)."""

    FIRST = "first"  # identifier + a newly drawn provisional password
    REMINDER = "reminder"  # identifier only: « votre mot de passe est inchangé »
    RESET = "reset"  # identifier + a new provisional password; the previous one stops working


class RefusalReason(enum.StrEnum):
    """Why a guard refused a transition; callers word it in the user's language."""

    UNKNOWN_ACCOUNT = "unknown_account"
    DEACTIVATED = "deactivated"
    NOT_YET_NOTIFIED = "not_yet_notified"
    ALREADY_NOTIFIED = "already_notified"
    ALREADY_ACTIVATED = "already_activated"
    NOT_ACTIVATING = "not_activating"
    NOT_ACTIVATED = "not_activated"
    NO_CREDENTIALS = "no_credentials"
    PROVISIONAL_PASSWORD_EXPIRED = "provisional_password_expired"
    WEAK_PASSWORD = "weak_password"
    INVALID_EMAIL = "invalid_email"
    # Changed since its credentials were drafted (another letter, an activation): draft again.
    CHANGED = "changed"


class TransitionRefused(Exception):
    """A guard refused a transition and nothing was changed.

    For a batch, `account_id` and `reason` are the first refusal and `refusals` holds them all:
    batch transitions are all-or-nothing. Use `plan_distribution` beforehand to learn who would
    be skipped and why.
    """

    def __init__(
        self,
        account_id: int,
        reason: RefusalReason,
        refusals: Mapping[int, RefusalReason] | None = None,
    ) -> None:
        self.account_id = account_id
        self.reason = reason
        self.refusals: dict[int, RefusalReason] = dict(refusals or {account_id: reason})
        super().__init__(account_id, reason, self.refusals)

    def __str__(self) -> str:
        more = len(self.refusals) - 1
        suffix = f" (and {more} more)" if more else ""
        return f"account {self.account_id}: {self.reason.value}{suffix}"


@dataclass(frozen=True, slots=True, repr=False)
class IssuedCredential:
    """What one letter or e-mail must carry. The clear password lives only here, in memory."""

    account_id: int
    guardian_id: int
    identifier: str
    kind: CredentialKind
    password: str | None
    # The provisional password's expiry (for a reminder: the unchanged one's, if any).
    expires_at: datetime | None

    def __repr__(self) -> str:
        # Keeps the password out of logs, tracebacks and debugger views.
        password = "<hidden>" if self.password is not None else "None"
        return (
            f"IssuedCredential(account_id={self.account_id}, guardian_id={self.guardian_id}, "
            f"identifier={self.identifier!r}, kind={self.kind.value}, password={password}, "
            f"expires_at={self.expires_at!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True, repr=False)
class CredentialDraft:
    """Credentials drawn and hashed in memory, nothing stored yet (`draft_credentials`); the
    clear passwords live only in `credentials`. `record_credentials` stores them if no account
    changed in between."""

    credentials: tuple[IssuedCredential, ...]
    now: datetime  # the letters' date: drawn passwords expire 3 months after it
    hashes: dict[int, str]  # account id → the new password's hash (not for reminders)
    seen: dict[int, tuple[object, ...]]  # account id → what the account was when drafted

    def __repr__(self) -> str:
        return f"CredentialDraft({len(self.credentials)} credentials, now={self.now!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class DistributionPlanItem:
    """What distributing credentials would do for one account: « who will get what »."""

    account_id: int
    guardian_id: int
    identifier: str
    state: AccountState
    has_email: bool
    # None when the account is skipped; then `skip_reason` says why.
    kind: CredentialKind | None
    skip_reason: RefusalReason | None = None
    # The outstanding provisional password has expired: a reset replaces a useless reminder.
    provisional_expired: bool = False


@dataclass(frozen=True, slots=True)
class NotificationBatch:
    """The outcome of `notify_accounts`: the letters to print, and who was skipped and why."""

    issued: list[IssuedCredential]
    skipped: list[DistributionPlanItem]


# --- Time -----------------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    # Calendar months, clamped to the month's last day: 30 November + 3 months = 28/29 February.
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def provisional_expiry(letter_time: datetime, tz: ZoneInfo | None = None) -> datetime:
    """When a provisional password dated `letter_time` expires: the end of the local day three
    calendar months later, so the date printed on the letter is valid all day (in UTC)."""
    zone = tz or get_settings().tz
    letter_day = _aware(letter_time).astimezone(zone).date()
    last_day = _add_months(letter_day, PROVISIONAL_VALIDITY_MONTHS)
    return datetime.combine(last_day, time.max, tzinfo=zone).astimezone(UTC)


def _provisional_outstanding(account: Account | _AccountRow) -> bool:
    # `provisional_expires_at` is set exactly while the stored hash is a provisional password's;
    # choosing a password clears it.
    return account.password_hash is not None and account.provisional_expires_at is not None


def _provisional_expired(account: Account | _AccountRow, now: datetime) -> bool:
    expires_at = account.provisional_expires_at
    return _provisional_outstanding(account) and expires_at is not None and now > expires_at


# --- Loading --------------------------------------------------------------------------------


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(ids))


def _load(
    session: Session, account_ids: Sequence[int], *, lock: bool
) -> dict[int, tuple[Account, Guardian]]:
    """Accounts with their guardians, one query per chunk of ids, locked for update if asked."""
    found: dict[int, tuple[Account, Guardian]] = {}
    ids = sorted(set(account_ids))  # one lock order for everyone: no deadlocks between batches
    if lock:
        lock_for_writing(session)
    for start in range(0, len(ids), _ID_CHUNK):
        statement = (
            select(Account, Guardian)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(col(Account.id).in_(ids[start : start + _ID_CHUNK]))
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


def _raise_if_refused(refusals: Mapping[int, RefusalReason]) -> None:
    if refusals:
        first = next(iter(refusals))
        raise TransitionRefused(first, refusals[first], refusals)


def _unknown(account_ids: Iterable[int], found: Mapping[int, object]) -> dict[int, RefusalReason]:
    return {id_: RefusalReason.UNKNOWN_ACCOUNT for id_ in account_ids if id_ not in found}


def _load_one(session: Session, account_id: int) -> tuple[Account, Guardian]:
    found = _load(session, [account_id], lock=True)
    _raise_if_refused(_unknown([account_id], found))
    return found[account_id]


def _audit(
    session: Session,
    account: Account,
    guardian: Guardian,
    *,
    actor: str,
    action: str,
    **details: object,
) -> None:
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


def _audit_many(
    session: Session,
    events: Sequence[tuple[int, int, str, dict[str, object]]],
    *,
    actor: str,
) -> None:
    """One audit event per (account id, school id, action, details), as `_audit` records them,
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


def _update_accounts(
    session: Session, account_ids: Sequence[int], values: Mapping[str, object]
) -> None:
    """Set the same `values` on these accounts: one UPDATE per chunk of ids, and the objects
    the session holds brought in line without being marked changed (no second UPDATE)."""
    for start in range(0, len(account_ids), _ID_CHUNK):
        chunk = account_ids[start : start + _ID_CHUNK]
        session.execute(update(_ACCOUNTS).where(_ACCOUNTS.c.id.in_(chunk)).values(**values))
    for id_ in account_ids:
        _sync_loaded(session, id_, values)


@dataclass(frozen=True, slots=True)
class _AccountRow:
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
    _ACCOUNTS.c.id,
    _ACCOUNTS.c.guardian_id,
    _ACCOUNTS.c.identifier,
    _ACCOUNTS.c.state,
    _ACCOUNTS.c.password_hash,
    _ACCOUNTS.c.provisional_expires_at,
    _ACCOUNTS.c.distributed_at,
    _ACCOUNTS.c.deactivated_at,
    col(Guardian.school_id),
    col(Guardian.email),
)


def _load_rows(
    session: Session, account_ids: Sequence[int], *, lock: bool
) -> dict[int, _AccountRow]:
    """As `_load`, without the ORM: these accounts, one query per chunk of ids, locked for
    update if asked (PostgreSQL), always read from the database."""
    session.flush()  # a Core query does not flush the session's pending changes by itself
    found: dict[int, _AccountRow] = {}
    ids = sorted(set(account_ids))  # one lock order for everyone, as `_load`
    if lock:
        lock_for_writing(session)
    for start in range(0, len(ids), _ID_CHUNK):
        statement = (
            core_select(*_ROW_COLUMNS)
            .join(Guardian, col(Guardian.id) == _ACCOUNTS.c.guardian_id)
            .where(_ACCOUNTS.c.id.in_(ids[start : start + _ID_CHUNK]))
            .order_by(_ACCOUNTS.c.id)
        )
        if lock:
            statement = statement.with_for_update(of=_ACCOUNTS)
        for values in session.execute(statement):
            row = _AccountRow(*values)
            found[row.id] = row
    return found


def _sync_loaded(session: Session, account_id: int, values: Mapping[str, object]) -> None:
    # An account object the session holds gets the values just written, without being marked
    # changed (which would write them a second time).
    loaded = session.identity_map.get(session.identity_key(Account, account_id))
    if loaded is not None:
        for key, value in values.items():
            set_committed_value(loaded, key, value)


# --- Creating accounts ----------------------------------------------------------------------


def create_accounts(
    *, session: Session, guardians: Sequence[Guardian], actor: str, now: datetime | None = None
) -> list[Account]:
    """Open a `not_notified` account, with a new identifier and no password, for each guardian
    who has none yet; returns the new accounts (guardians who have one are left alone).

    The identifier is built from the name the guardian uses (usage name, else birth name).
    """
    now = _aware(now)
    by_id: dict[int, Guardian] = {}
    for guardian in guardians:
        if guardian.id is None:
            raise ValueError("guardians must be flushed (have an id) before their accounts")
        by_id.setdefault(guardian.id, guardian)
    ids = list(by_id)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        for guardian_id in session.exec(
            select(Account.guardian_id).where(col(Account.guardian_id).in_(chunk))
        ):
            del by_id[guardian_id]
    pending = list(by_id.items())
    identifiers = allocate_identifiers(
        session, [(g.first_name, g.usage_name or g.last_name) for _, g in pending]
    )
    accounts = [
        Account(guardian_id=guardian_id, identifier=identifier, created_at=now)
        for (guardian_id, _), identifier in zip(pending, identifiers, strict=True)
    ]
    session.add_all(accounts)
    session.flush()  # the audit events need the accounts' ids
    for account, (_, guardian) in zip(accounts, pending, strict=True):
        _audit(
            session,
            account,
            guardian,
            actor=actor,
            action="account.created",
            identifier=account.identifier,
        )
    return accounts


# --- Distributing credentials ---------------------------------------------------------------


def _plan_one(account: _AccountRow, *, reset: bool, now: datetime) -> DistributionPlanItem:
    kind: CredentialKind | None = None
    skip: RefusalReason | None = None
    expired = _provisional_expired(account, now)
    if account.deactivated_at is not None:
        skip = RefusalReason.DEACTIVATED
    elif account.state == AccountState.NOT_NOTIFIED:
        # Never notified: a first letter, whether or not a reset was asked (it draws anyway).
        kind = CredentialKind.FIRST
    elif reset:
        kind = CredentialKind.RESET
    elif account.state == AccountState.ACTIVATED:
        # As in the official tool, reminding an activated family of its identifier is noise.
        skip = RefusalReason.ALREADY_ACTIVATED
    elif expired or account.password_hash is None:
        # « Votre mot de passe est inchangé » about a dead password would help nobody.
        kind = CredentialKind.RESET
    else:
        kind = CredentialKind.REMINDER
    return DistributionPlanItem(
        account_id=account.id,
        guardian_id=account.guardian_id,
        identifier=account.identifier,
        state=AccountState(account.state),
        has_email=bool(account.email),
        kind=kind,
        skip_reason=skip,
        provisional_expired=expired,
    )


def plan_distribution(
    *,
    session: Session,
    account_ids: Sequence[int],
    reset: bool,
    now: datetime | None = None,
) -> list[DistributionPlanItem]:
    """What distributing credentials to these accounts would do, account by account, in order.

    Never notified → first distribution; notified or activating → reminder, or reset when
    `reset` is asked or the provisional password has expired; activated → skipped unless
    `reset`; deactivated → skipped. Changes nothing.
    """
    now = _aware(now)
    ids = _unique(account_ids)
    found = _load_rows(session, ids, lock=False)
    # Ids come from the caller's own query and accounts are never deleted: a miss is a bug.
    _raise_if_refused(_unknown(ids, found))
    return [_plan_one(found[id_], reset=reset, now=now) for id_ in ids]


def _issue_refusal(
    account: Account | _AccountRow, kind: CredentialKind, now: datetime
) -> RefusalReason | None:
    if account.deactivated_at is not None:
        return RefusalReason.DEACTIVATED
    if kind == CredentialKind.FIRST:
        # Drawing again is fine while nothing reached the family (a failed e-mail, a lost print).
        if account.state != AccountState.NOT_NOTIFIED:
            return RefusalReason.ALREADY_NOTIFIED
        return None
    if account.state == AccountState.NOT_NOTIFIED:
        # SPEC §2: a reset is only possible once notified; a reminder of nothing is not a letter.
        return RefusalReason.NOT_YET_NOTIFIED
    if kind == CredentialKind.REMINDER:
        if account.state == AccountState.ACTIVATED:
            return RefusalReason.ALREADY_ACTIVATED
        if account.password_hash is None:
            return RefusalReason.NO_CREDENTIALS
        if _provisional_expired(account, now):
            return RefusalReason.PROVISIONAL_PASSWORD_EXPIRED
    return None


def _snapshot(account: _AccountRow) -> tuple[object, ...]:
    # What must not change between a draft and its recording: any letter, e-mail, activation,
    # reset or deactivation in between changes one of these.
    return (
        account.state,
        account.deactivated_at,
        account.password_hash,
        account.provisional_expires_at,
        account.distributed_at,
    )


def _draft(
    session: Session, requests: Sequence[tuple[int, CredentialKind]], *, now: datetime
) -> CredentialDraft:
    """Validate every request, then draw and hash in memory; writes and locks nothing."""
    wanted = list(dict(requests).items())  # one request per account, the last one wins
    found = _load_rows(session, [id_ for id_, _ in wanted], lock=False)
    refusals: dict[int, RefusalReason] = {}
    for id_, kind in wanted:
        if id_ not in found:
            refusals[id_] = RefusalReason.UNKNOWN_ACCOUNT
        elif (reason := _issue_refusal(found[id_], kind, now)) is not None:
            refusals[id_] = reason
    _raise_if_refused(refusals)
    drawing = [id_ for id_, kind in wanted if kind != CredentialKind.REMINDER]
    passwords = {id_: generate_provisional_password() for id_ in drawing}
    # Hashing is the slow part: one batch over every core, before anything is written or
    # locked (on SQLite no write lock is taken, on PostgreSQL no row is locked).
    hashes = dict(zip(drawing, hash_provisional_passwords(list(passwords.values())), strict=True))
    expires_at = provisional_expiry(now)
    credentials = tuple(
        IssuedCredential(
            account_id=id_,
            guardian_id=found[id_].guardian_id,
            identifier=found[id_].identifier,
            kind=kind,
            password=passwords.get(id_),
            expires_at=expires_at if id_ in hashes else found[id_].provisional_expires_at,
        )
        for id_, kind in wanted
    )
    return CredentialDraft(
        credentials=credentials,
        now=now,
        hashes=hashes,
        seen={id_: _snapshot(found[id_]) for id_, _kind in wanted},
    )


def draft_credentials(
    *,
    session: Session,
    plan: Sequence[DistributionPlanItem],
    now: datetime | None = None,
) -> CredentialDraft:
    """What `issue_planned` would issue, drawn and hashed in memory: the guards are checked
    (`TransitionRefused` as `issue_planned` raises it) but nothing is written or locked, so the
    slow part — hashing, then whatever the caller makes of the letters — holds no lock. Store
    it with `record_credentials`, in a transaction of its own if need be."""
    requests = [(item.account_id, item.kind) for item in plan if item.kind is not None]
    return _draft(session, requests, now=_aware(now))


def record_credentials(
    *, session: Session, draft: CredentialDraft, actor: str
) -> list[IssuedCredential]:
    """Store drafted credentials — the new hashes and expiries, one audit event per account —
    after checking every account again under lock: the same guards, and no change at all since
    the draft (a letter or an e-mail, an activation, a reset). All or nothing: any change
    raises `TransitionRefused` (`RefusalReason.CHANGED` when no other guard says more) and
    nothing is written. Returns the credentials, in the draft's order."""
    ids = [credential.account_id for credential in draft.credentials]
    found = _load_rows(session, ids, lock=True)
    refusals: dict[int, RefusalReason] = {}
    for credential in draft.credentials:
        id_ = credential.account_id
        if id_ not in found:
            refusals[id_] = RefusalReason.UNKNOWN_ACCOUNT
        elif (reason := _issue_refusal(found[id_], credential.kind, draft.now)) is not None:
            refusals[id_] = reason
        elif _snapshot(found[id_]) != draft.seen[id_]:
            refusals[id_] = RefusalReason.CHANGED
    _raise_if_refused(refusals)
    if draft.hashes:
        # One statement executed for many rows: each account gets its own hash.
        session.execute(
            update(_ACCOUNTS)
            .where(_ACCOUNTS.c.id == bindparam("account_id"))
            .values(
                password_hash=bindparam("new_hash"),
                provisional_expires_at=bindparam("new_expiry"),
            ),
            [
                {"account_id": credential.account_id, "new_hash": new_hash, "new_expiry": expiry}
                for credential in draft.credentials
                if (new_hash := draft.hashes.get(credential.account_id)) is not None
                and (expiry := credential.expires_at) is not None
            ],
        )
        for credential in draft.credentials:
            if credential.account_id in draft.hashes:
                _sync_loaded(
                    session,
                    credential.account_id,
                    {
                        "password_hash": draft.hashes[credential.account_id],
                        "provisional_expires_at": credential.expires_at,
                    },
                )
    _audit_many(
        session,
        [
            (
                credential.account_id,
                found[credential.account_id].school_id,
                "account.credentials_issued",
                {
                    "kind": credential.kind.value,
                    "expires_at": (
                        credential.expires_at.isoformat() if credential.expires_at else None
                    ),
                },
            )
            for credential in draft.credentials
        ],
        actor=actor,
    )
    return list(draft.credentials)


def _issue(
    session: Session,
    requests: Sequence[tuple[int, CredentialKind]],
    *,
    actor: str,
    now: datetime,
) -> list[IssuedCredential]:
    """Validate every request, then draw, hash and store; all or nothing."""
    return record_credentials(
        session=session, draft=_draft(session, requests, now=now), actor=actor
    )


def issue_credentials(
    *,
    session: Session,
    account_ids: Sequence[int],
    kind: CredentialKind,
    actor: str,
    now: datetime | None = None,
) -> list[IssuedCredential]:
    """Prepare the credentials of one kind for these accounts, in order; states do not change.

    FIRST draws a provisional password for accounts never notified (again, if an earlier draw
    never reached the family); RESET draws a new one for notified accounts and the previous
    password stops working at once; REMINDER draws nothing (notified or activating accounts).
    A drawn password expires 3 calendar months after `now`, the letter's date. The clear
    passwords are returned, never stored. All or nothing: raises `TransitionRefused` listing
    every refused account, and then nothing is changed.
    """
    return _issue(session, [(id_, kind) for id_ in account_ids], actor=actor, now=_aware(now))


def issue_planned(
    *,
    session: Session,
    plan: Sequence[DistributionPlanItem],
    actor: str,
    now: datetime | None = None,
) -> list[IssuedCredential]:
    """Issue what `plan_distribution` planned, skipping the skipped; all or nothing.

    The guards are checked again under lock: if an account changed since the plan was shown,
    `TransitionRefused` is raised and the caller plans again.
    """
    requests = [(item.account_id, item.kind) for item in plan if item.kind is not None]
    return _issue(session, requests, actor=actor, now=_aware(now))


def mark_distributed(
    *,
    session: Session,
    account_ids: Sequence[int],
    channel: DistributionChannel,
    actor: str,
    at: datetime | None = None,
) -> None:
    """Record that credentials reached these accounts' guardians (an e-mail accepted, a letter
    printed): `not_notified` becomes `notified`; other states are kept. All or nothing.
    """
    at = _aware(at)
    ids = _unique(account_ids)
    found = _load_rows(session, ids, lock=True)
    refusals: dict[int, RefusalReason] = {}
    for id_ in ids:
        if id_ not in found:
            refusals[id_] = RefusalReason.UNKNOWN_ACCOUNT
            continue
        account = found[id_]
        if account.deactivated_at is not None:
            refusals[id_] = RefusalReason.DEACTIVATED
        elif account.state == AccountState.NOT_NOTIFIED and not _provisional_outstanding(account):
            # Nothing was issued, so nothing can have been distributed.
            refusals[id_] = RefusalReason.NO_CREDENTIALS
    _raise_if_refused(refusals)
    first = {id_ for id_ in ids if found[id_].state == AccountState.NOT_NOTIFIED}
    # One UPDATE per group (and chunk of ids) rather than one per account.
    _update_accounts(
        session,
        [id_ for id_ in ids if id_ in first],
        {"state": AccountState.NOTIFIED, "distributed_at": at, "distribution_channel": channel},
    )
    _update_accounts(
        session,
        [id_ for id_ in ids if id_ not in first],
        {"distributed_at": at, "distribution_channel": channel},
    )
    _audit_many(
        session,
        [
            (
                id_,
                found[id_].school_id,
                "account.notified" if id_ in first else "account.renotified",
                {"channel": channel.value},
            )
            for id_ in ids
        ],
        actor=actor,
    )


def notify_accounts(
    *,
    session: Session,
    account_ids: Sequence[int],
    actor: str,
    reset: bool = False,
    now: datetime | None = None,
) -> NotificationBatch:
    """Paper letters: plan, issue and mark as distributed in one go, since a letter counts as
    delivered when it is produced. Skipped accounts are reported, not refused.

    E-mail does not use this: an account becomes notified only when its e-mail was accepted,
    so /envoyer issues the credentials first (`draft_credentials`, `record_credentials`) and
    the outbox calls `mark_distributed` per accepted message.
    """
    now = _aware(now)
    plan = plan_distribution(session=session, account_ids=account_ids, reset=reset, now=now)
    issued = issue_planned(session=session, plan=plan, actor=actor, now=now)
    mark_distributed(
        session=session,
        account_ids=[credential.account_id for credential in issued],
        channel=DistributionChannel.PAPER,
        actor=actor,
        at=now,
    )
    return NotificationBatch(issued=issued, skipped=[item for item in plan if item.kind is None])


# --- Portal: logging in and activating ------------------------------------------------------


@lru_cache(maxsize=2)
def _decoy_hash(*, chosen: bool) -> str:
    """A hash no password matches, at today's chosen or provisional parameters: verified in
    place of the hash a failed login does not have (see `verify_login`)."""
    password = generate_provisional_password()
    return hash_chosen_password(password) if chosen else hash_provisional_password(password)


def verify_login(
    *, session: Session, identifier: str, password: str, now: datetime | None = None
) -> Account | None:
    """The account these credentials open, or None for any wrong identifier or password.

    While a provisional password is outstanding it is the one checked (typed in any case, with
    stray spaces), valid 3 months; after a password was chosen, that one. Only once the password
    is proven right does it raise `TransitionRefused` — deactivated, provisional password
    expired, credentials not distributed yet — so the portal can say what to do without
    revealing to a guesser whether an identifier exists. Records `last_access_at`.

    A failure takes the same time whatever the identifier: it always costs one argon2
    verification at the provisional parameters and one at the chosen ones, the hash the
    account lacks being replaced by a decoy of the same parameters (an unknown identifier
    verifies two decoys). One decoy at the chosen parameters would have been enough to hide
    unknown identifiers among activated accounts, but a wrong password on an account still
    waiting for its activation (≈ 26 ms) would then stand out from both (≈ 125 ms) and tell
    a guesser « this name is a family of the school that has not activated yet », the very
    accounts a guesser targets. Failures cost the sum (≈ 150 ms); successes only their own
    verification.
    """
    now = _aware(now)
    account = session.exec(
        select(Account).where(col(Account.identifier) == identifier.strip().lower())
    ).first()
    if account is None or account.password_hash is None:
        verify_password(_decoy_hash(chosen=False), password)
        verify_password(_decoy_hash(chosen=True), password)
        return None
    provisional = _provisional_outstanding(account)
    typed = canonical_provisional_input(password) if provisional else password
    if not verify_password(account.password_hash, typed):
        # The other kind's decoy: every failure verifies one hash of each kind.
        verify_password(_decoy_hash(chosen=provisional), password)
        return None
    assert account.id is not None
    if account.deactivated_at is not None:
        raise TransitionRefused(account.id, RefusalReason.DEACTIVATED)
    if account.state == AccountState.NOT_NOTIFIED:
        raise TransitionRefused(account.id, RefusalReason.NOT_YET_NOTIFIED)
    if _provisional_expired(account, now):
        raise TransitionRefused(account.id, RefusalReason.PROVISIONAL_PASSWORD_EXPIRED)
    if needs_rehash(account.password_hash, chosen=not provisional):
        # The parameters were raised since this hash was made: upgrade it while we hold the
        # clear password, the only moment we ever do.
        account.password_hash = (
            hash_provisional_password(typed) if provisional else hash_chosen_password(typed)
        )
    account.last_access_at = now
    session.add(account)
    session.flush()
    return account


def _normalized_email(email: str) -> str | None:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def begin_activation(
    *,
    session: Session,
    account_id: int,
    new_password: str,
    email: str,
    actor: str,
    now: datetime | None = None,
) -> Account:
    """The family chose a password and gave an e-mail: `notified` → `activating`.

    Also allowed again while `activating` (a corrected address, a reset in between). Refused
    when deactivated, not notified, already activated, or when the provisional password has
    expired; the password must meet `chosen_password_is_strong`. The chosen password replaces
    the provisional one (stronger hash parameters) and the address goes to the guardian.
    The caller then sends the confirmation link.
    """
    now = _aware(now)
    account, guardian = _load_one(session, account_id)
    reason: RefusalReason | None = None
    address = _normalized_email(email)
    if account.deactivated_at is not None:
        reason = RefusalReason.DEACTIVATED
    elif account.state == AccountState.NOT_NOTIFIED:
        reason = RefusalReason.NOT_YET_NOTIFIED
    elif account.state == AccountState.ACTIVATED:
        reason = RefusalReason.ALREADY_ACTIVATED
    elif account.password_hash is None:
        reason = RefusalReason.NO_CREDENTIALS
    elif _provisional_expired(account, now):
        reason = RefusalReason.PROVISIONAL_PASSWORD_EXPIRED
    elif not chosen_password_is_strong(new_password):
        reason = RefusalReason.WEAK_PASSWORD
    elif address is None:
        reason = RefusalReason.INVALID_EMAIL
    if reason is not None:
        raise TransitionRefused(account_id, reason)
    assert address is not None
    email_changed = address != guardian.email
    account.password_hash = hash_chosen_password(new_password)
    account.provisional_expires_at = None
    account.state = AccountState.ACTIVATING
    account.last_access_at = now
    guardian.email = address
    guardian.updated_at = now
    session.add_all([account, guardian])
    _audit(
        session,
        account,
        guardian,
        actor=actor,
        action="account.activation_started",
        email_changed=email_changed,
    )
    session.flush()
    return account


def confirm_activation(
    *, session: Session, account_id: int, actor: str, now: datetime | None = None
) -> Account:
    """The confirmation link was followed: `activating` → `activated`."""
    now = _aware(now)
    account, guardian = _load_one(session, account_id)
    if account.deactivated_at is not None:
        raise TransitionRefused(account_id, RefusalReason.DEACTIVATED)
    if account.state == AccountState.ACTIVATED:
        raise TransitionRefused(account_id, RefusalReason.ALREADY_ACTIVATED)
    if account.state != AccountState.ACTIVATING:
        raise TransitionRefused(account_id, RefusalReason.NOT_ACTIVATING)
    account.state = AccountState.ACTIVATED
    account.activated_at = now
    session.add(account)
    _audit(session, account, guardian, actor=actor, action="account.activated")
    session.flush()
    return account


def change_password(
    *,
    session: Session,
    account_id: int,
    new_password: str,
    actor: str,
    now: datetime | None = None,
) -> Account:
    """An activated family sets a new password (after a reset, or a « mot de passe oublié »
    link); the state stays `activated` and any provisional password stops working."""
    now = _aware(now)
    account, guardian = _load_one(session, account_id)
    reason: RefusalReason | None = None
    if account.deactivated_at is not None:
        reason = RefusalReason.DEACTIVATED
    elif account.state != AccountState.ACTIVATED:
        reason = RefusalReason.NOT_ACTIVATED
    elif not chosen_password_is_strong(new_password):
        reason = RefusalReason.WEAK_PASSWORD
    if reason is not None:
        raise TransitionRefused(account_id, reason)
    account.password_hash = hash_chosen_password(new_password)
    account.provisional_expires_at = None
    session.add(account)
    _audit(session, account, guardian, actor=actor, action="account.password_changed")
    session.flush()
    return account


# --- Deactivating ---------------------------------------------------------------------------


def _set_deactivated(
    session: Session, account_ids: Sequence[int], *, deactivate: bool, actor: str, now: datetime
) -> list[int]:
    ids = _unique(account_ids)
    found = _load(session, ids, lock=True)
    _raise_if_refused(_unknown(ids, found))
    changed: list[int] = []
    for id_ in ids:
        account, guardian = found[id_]
        if (account.deactivated_at is not None) == deactivate:
            continue  # already so: re-importing the same roster must not pile up events
        account.deactivated_at = now if deactivate else None
        session.add(account)
        _audit(
            session,
            account,
            guardian,
            actor=actor,
            action="account.deactivated" if deactivate else "account.reactivated",
            state=AccountState(account.state).value,
        )
        changed.append(id_)
    session.flush()
    return changed


def deactivate_accounts(
    *, session: Session, account_ids: Sequence[int], actor: str, now: datetime | None = None
) -> list[int]:
    """Deactivate these accounts (guardian no longer linked to a pupil), keeping their state,
    identifier and history; returns the ids that changed (already deactivated ones do not)."""
    return _set_deactivated(session, account_ids, deactivate=True, actor=actor, now=_aware(now))


def reactivate_accounts(
    *, session: Session, account_ids: Sequence[int], actor: str, now: datetime | None = None
) -> list[int]:
    """Reactivate these accounts (the guardian is back in the roster), in the state they had;
    returns the ids that changed."""
    return _set_deactivated(session, account_ids, deactivate=False, actor=actor, now=_aware(now))
