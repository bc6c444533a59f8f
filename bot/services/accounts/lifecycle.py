"""The life cycle of EduConnect accounts (docs/PRODUCT.md): opening them, the family's
activation and password changes, deactivation. Distributing credentials is `credentials.py`,
checking a login `login.py`.

Each transition checks its guards, changes the accounts and records one audit event per account
(never a password or a hash) in the caller's transaction; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from bot.services.accounts.email_address import normalise_email
from bot.services.accounts.identifiers import allocate_identifiers
from bot.services.accounts.passwords import chosen_password_is_strong, hash_chosen_password
from bot.services.accounts.records import audit, load_accounts, load_one, unique_ids
from bot.services.accounts.refusals import (
    RefusalReason,
    TransitionRefused,
    raise_if_refused,
    unknown_refusals,
)
from bot.services.accounts.validity import aware, provisional_expired
from models import Account, AccountState, Guardian
from models.queries import in_chunks


def create_accounts(
    session: Session, *, guardians: Sequence[Guardian], actor: str, now: datetime | None = None
) -> list[Account]:
    """Open a `not_notified` account, with a new identifier and no password, for each guardian
    who has none yet; returns the new accounts (guardians who have one are left alone).

    The identifier is built from the name the guardian uses (usage name, else birth name).
    """
    now = aware(now)
    by_id: dict[int, Guardian] = {}
    for guardian in guardians:
        if guardian.id is None:
            raise ValueError("guardians must be flushed (have an id) before their accounts")
        by_id.setdefault(guardian.id, guardian)
    ids = list(by_id)
    for chunk in in_chunks(ids):
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
        audit(
            session,
            account,
            guardian,
            actor=actor,
            action="account.created",
            identifier=account.identifier,
        )
    return accounts


# --- Activating ------------------------------------------------------------------------------


def begin_activation(
    session: Session,
    *,
    account_id: int,
    new_password: str,
    email: str,
    actor: str,
    now: datetime | None = None,
    verified_by_phone: bool = False,
) -> Account:
    """The family chose a password and gave an e-mail: `notified` → `activating`.

    Also allowed again while `activating` (a corrected address, a reset in between). Refused
    when deactivated, not notified, already activated, or when the provisional password has
    expired; the password must meet `chosen_password_is_strong`. The chosen password replaces
    the provisional one (stronger hash parameters). The address is only checked: it stays
    pending on the confirmation link the caller then sends, and `confirm_activation` puts it
    on file — until then the school's address is the one reminders and resets go to, so a
    stranger holding the letter and a birth date cannot redirect the family's mail.

    `verified_by_phone`: the mobile number the family shared with the bot proved who it is,
    instead of the letter's provisional password — a `not_notified` account, or an expired
    provisional password, is then accepted (a `not_notified` account keeps no distribution
    date: no letter reached the family).
    """
    now = aware(now)
    account, guardian = load_one(session, account_id)
    address = normalise_email(email)
    reason = _activation_refusal(
        account, new_password, address, now=now, letter_proof=not verified_by_phone
    )
    if reason is not None:
        raise TransitionRefused(account_id, reason)
    assert address is not None
    details: dict[str, object] = {}
    if verified_by_phone:
        details = {"via": "phone", "previous_state": AccountState(account.state).value}
    return _start_activation(
        session, account, guardian, new_password, address, actor=actor, now=now, **details
    )


def _activation_refusal(
    account: Account, new_password: str, address: str | None, *, now: datetime, letter_proof: bool
) -> RefusalReason | None:
    """Why `account` may not start its activation, or None. `letter_proof`: the family proves
    who it is with the letter's provisional password, which must exist and be valid."""
    if account.deactivated_at is not None:
        return RefusalReason.DEACTIVATED
    if account.state == AccountState.ACTIVATED:
        return RefusalReason.ALREADY_ACTIVATED
    if letter_proof:
        if account.state == AccountState.NOT_NOTIFIED:
            return RefusalReason.NOT_YET_NOTIFIED
        if account.password_hash is None:
            return RefusalReason.NO_CREDENTIALS
        if provisional_expired(account, now):
            return RefusalReason.PROVISIONAL_PASSWORD_EXPIRED
    if not chosen_password_is_strong(new_password):
        return RefusalReason.WEAK_PASSWORD
    if address is None:
        return RefusalReason.INVALID_EMAIL
    return None


def _start_activation(
    session: Session,
    account: Account,
    guardian: Guardian,
    new_password: str,
    address: str,
    *,
    actor: str,
    now: datetime,
    **details: object,
) -> Account:
    """The chosen password replaces any provisional one and the account is `activating`;
    audited (whether the typed address differs from the one on file, never the address)."""
    email_changed = address != guardian.email
    account.password_hash = hash_chosen_password(new_password)
    account.provisional_expires_at = None
    account.state = AccountState.ACTIVATING
    account.last_access_at = now
    session.add(account)
    audit(
        session,
        account,
        guardian,
        actor=actor,
        action="account.activation_started",
        email_changed=email_changed,
        **details,
    )
    session.flush()
    return account


def confirm_activation(
    session: Session,
    *,
    account_id: int,
    actor: str,
    email: str | None = None,
    now: datetime | None = None,
) -> Account:
    """The confirmation link was followed: `activating` → `activated`, and `email`, the
    address the link was sent to (proven by following it), becomes the guardian's."""
    now = aware(now)
    account, guardian = load_one(session, account_id)
    if account.deactivated_at is not None:
        raise TransitionRefused(account_id, RefusalReason.DEACTIVATED)
    if account.state == AccountState.ACTIVATED:
        raise TransitionRefused(account_id, RefusalReason.ALREADY_ACTIVATED)
    if account.state != AccountState.ACTIVATING:
        raise TransitionRefused(account_id, RefusalReason.NOT_ACTIVATING)
    account.state = AccountState.ACTIVATED
    account.activated_at = now
    session.add(account)
    email_changed = email is not None and email != guardian.email
    if email_changed:
        guardian.email = email
        guardian.updated_at = now
        session.add(guardian)
    audit(
        session,
        account,
        guardian,
        actor=actor,
        action="account.activated",
        **({"email_changed": True} if email_changed else {}),
    )
    session.flush()
    return account


def change_password(
    session: Session,
    *,
    account_id: int,
    new_password: str,
    actor: str,
    now: datetime | None = None,
) -> Account:
    """An activated family sets a new password (after a reset, or a « mot de passe oublié »
    link); the state stays `activated`, any provisional password stops working and the
    session version moves on, so every portal session opened before ends."""
    now = aware(now)
    account, guardian = load_one(session, account_id)
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
    account.session_version += 1
    session.add(account)
    audit(session, account, guardian, actor=actor, action="account.password_changed")
    session.flush()
    return account


# --- Deactivating ----------------------------------------------------------------------------


def _set_deactivated(
    session: Session, account_ids: Sequence[int], *, deactivate: bool, actor: str, now: datetime
) -> list[int]:
    ids = unique_ids(account_ids)
    found = load_accounts(session, ids, lock=True)
    raise_if_refused(unknown_refusals(ids, found))
    changed: list[int] = []
    for id_ in ids:
        account, guardian = found[id_]
        if (account.deactivated_at is not None) == deactivate:
            continue  # already so: re-importing the same roster must not pile up events
        account.deactivated_at = now if deactivate else None
        session.add(account)
        audit(
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
    session: Session, *, account_ids: Sequence[int], actor: str, now: datetime | None = None
) -> list[int]:
    """Deactivate these accounts (guardian no longer linked to a pupil), keeping their state,
    identifier and history; returns the ids that changed (already deactivated ones do not)."""
    return _set_deactivated(session, account_ids, deactivate=True, actor=actor, now=aware(now))


def reactivate_accounts(
    session: Session, *, account_ids: Sequence[int], actor: str, now: datetime | None = None
) -> list[int]:
    """Reactivate these accounts (the guardian is back in the roster), in the state they had;
    returns the ids that changed."""
    return _set_deactivated(session, account_ids, deactivate=False, actor=actor, now=aware(now))
