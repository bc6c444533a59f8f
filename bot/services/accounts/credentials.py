"""Distributing credentials: planning who gets what, drawing and hashing provisional passwords
in a draft that locks nothing, storing it after checking again under lock, and recording that
letters or e-mails reached the families. The bulk paths: a thousand accounts per distribution.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import Session

from bot.services.accounts.passwords import (
    generate_provisional_password,
    hash_provisional_passwords,
)
from bot.services.accounts.records import (
    ACCOUNTS,
    AccountRow,
    audit_many,
    load_rows,
    sync_loaded,
    unique_ids,
    update_accounts,
)
from bot.services.accounts.refusals import (
    RefusalReason,
    raise_if_refused,
    unknown_refusals,
)
from bot.services.accounts.validity import (
    aware,
    provisional_expired,
    provisional_expiry,
    provisional_outstanding,
)
from models import Account, AccountState, DistributionChannel


class CredentialKind(enum.StrEnum):
    """What a letter or e-mail carries (docs/PRODUCT.md)."""

    FIRST = "first"  # identifier + a newly drawn provisional password
    REMINDER = "reminder"  # identifier only: « votre mot de passe est inchangé »
    RESET = "reset"  # identifier + a new provisional password; the previous one stops working


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


# --- Planning --------------------------------------------------------------------------------


def _plan_one(account: AccountRow, *, reset: bool, now: datetime) -> DistributionPlanItem:
    kind: CredentialKind | None = None
    skip: RefusalReason | None = None
    expired = provisional_expired(account, now)
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
    session: Session,
    *,
    account_ids: Sequence[int],
    reset: bool,
    now: datetime | None = None,
) -> list[DistributionPlanItem]:
    """What distributing credentials to these accounts would do, account by account, in order.

    Never notified → first distribution; notified or activating → reminder, or reset when
    `reset` is asked or the provisional password has expired; activated → skipped unless
    `reset`; deactivated → skipped. Changes nothing.
    """
    now = aware(now)
    ids = unique_ids(account_ids)
    found = load_rows(session, ids, lock=False)
    # Ids come from the caller's own query and accounts are never deleted: a miss is a bug.
    raise_if_refused(unknown_refusals(ids, found))
    return [_plan_one(found[id_], reset=reset, now=now) for id_ in ids]


# --- Drafting and recording ------------------------------------------------------------------


def _issue_refusal(
    account: Account | AccountRow, kind: CredentialKind, now: datetime
) -> RefusalReason | None:
    if account.deactivated_at is not None:
        return RefusalReason.DEACTIVATED
    if kind == CredentialKind.FIRST:
        # Drawing again is fine while nothing reached the family (a failed e-mail, a lost print).
        if account.state != AccountState.NOT_NOTIFIED:
            return RefusalReason.ALREADY_NOTIFIED
        return None
    if account.state == AccountState.NOT_NOTIFIED:
        # A reset is only possible once notified; a reminder of nothing is not a letter.
        return RefusalReason.NOT_YET_NOTIFIED
    if kind == CredentialKind.REMINDER:
        if account.state == AccountState.ACTIVATED:
            return RefusalReason.ALREADY_ACTIVATED
        if account.password_hash is None:
            return RefusalReason.NO_CREDENTIALS
        if provisional_expired(account, now):
            return RefusalReason.PROVISIONAL_PASSWORD_EXPIRED
    return None


def _snapshot(account: AccountRow) -> tuple[object, ...]:
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
    found = load_rows(session, [id_ for id_, _ in wanted], lock=False)
    refusals: dict[int, RefusalReason] = {}
    for id_, kind in wanted:
        if id_ not in found:
            refusals[id_] = RefusalReason.UNKNOWN_ACCOUNT
        elif (reason := _issue_refusal(found[id_], kind, now)) is not None:
            refusals[id_] = reason
    raise_if_refused(refusals)
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
    session: Session,
    *,
    plan: Sequence[DistributionPlanItem],
    now: datetime | None = None,
) -> CredentialDraft:
    """What `issue_planned` would issue, drawn and hashed in memory: the guards are checked
    (`TransitionRefused` as `issue_planned` raises it) but nothing is written or locked, so the
    slow part — hashing, then whatever the caller makes of the letters — holds no lock. Store
    it with `record_credentials`, in a transaction of its own if need be."""
    requests = [(item.account_id, item.kind) for item in plan if item.kind is not None]
    return _draft(session, requests, now=aware(now))


def record_credentials(
    session: Session, *, draft: CredentialDraft, actor: str
) -> list[IssuedCredential]:
    """Store drafted credentials — the new hashes and expiries, one audit event per account —
    after checking every account again under lock: the same guards, and no change at all since
    the draft (a letter or an e-mail, an activation, a reset). All or nothing: any change
    raises `TransitionRefused` (`RefusalReason.CHANGED` when no other guard says more) and
    nothing is written. Returns the credentials, in the draft's order."""
    ids = [credential.account_id for credential in draft.credentials]
    found = load_rows(session, ids, lock=True)
    refusals: dict[int, RefusalReason] = {}
    for credential in draft.credentials:
        id_ = credential.account_id
        if id_ not in found:
            refusals[id_] = RefusalReason.UNKNOWN_ACCOUNT
        elif (reason := _issue_refusal(found[id_], credential.kind, draft.now)) is not None:
            refusals[id_] = reason
        elif _snapshot(found[id_]) != draft.seen[id_]:
            refusals[id_] = RefusalReason.CHANGED
    raise_if_refused(refusals)
    if draft.hashes:
        # One statement executed for many rows: each account gets its own hash.
        session.execute(
            update(ACCOUNTS)
            .where(ACCOUNTS.c.id == bindparam("account_id"))
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
                sync_loaded(
                    session,
                    credential.account_id,
                    {
                        "password_hash": draft.hashes[credential.account_id],
                        "provisional_expires_at": credential.expires_at,
                    },
                )
    audit_many(
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
    session: Session,
    *,
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
    return _issue(session, [(id_, kind) for id_ in account_ids], actor=actor, now=aware(now))


def issue_planned(
    session: Session,
    *,
    plan: Sequence[DistributionPlanItem],
    actor: str,
    now: datetime | None = None,
) -> list[IssuedCredential]:
    """Issue what `plan_distribution` planned, skipping the skipped; all or nothing.

    The guards are checked again under lock: if an account changed since the plan was shown,
    `TransitionRefused` is raised and the caller plans again.
    """
    requests = [(item.account_id, item.kind) for item in plan if item.kind is not None]
    return _issue(session, requests, actor=actor, now=aware(now))


# --- Reaching the families -------------------------------------------------------------------


def mark_distributed(
    session: Session,
    *,
    account_ids: Sequence[int],
    channel: DistributionChannel,
    actor: str,
    at: datetime | None = None,
) -> None:
    """Record that credentials reached these accounts' guardians (an e-mail accepted, a letter
    printed): `not_notified` becomes `notified`; other states are kept. All or nothing.
    """
    at = aware(at)
    ids = unique_ids(account_ids)
    found = load_rows(session, ids, lock=True)
    refusals: dict[int, RefusalReason] = {}
    for id_ in ids:
        if id_ not in found:
            refusals[id_] = RefusalReason.UNKNOWN_ACCOUNT
            continue
        account = found[id_]
        if account.deactivated_at is not None:
            refusals[id_] = RefusalReason.DEACTIVATED
        elif account.state == AccountState.NOT_NOTIFIED and not provisional_outstanding(account):
            # Nothing was issued, so nothing can have been distributed.
            refusals[id_] = RefusalReason.NO_CREDENTIALS
    raise_if_refused(refusals)
    first = {id_ for id_ in ids if found[id_].state == AccountState.NOT_NOTIFIED}
    # One UPDATE per group (and chunk of ids) rather than one per account.
    update_accounts(
        session,
        [id_ for id_ in ids if id_ in first],
        {"state": AccountState.NOTIFIED, "distributed_at": at, "distribution_channel": channel},
    )
    update_accounts(
        session,
        [id_ for id_ in ids if id_ not in first],
        {"distributed_at": at, "distribution_channel": channel},
    )
    audit_many(
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
    session: Session,
    *,
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
    now = aware(now)
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
