"""Checking an identifier and a password typed on the portal, in the same time whatever fails."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlmodel import Session, col, select

from bot.services.accounts.passwords import (
    canonical_provisional_input,
    generate_provisional_password,
    hash_chosen_password,
    hash_provisional_password,
    needs_rehash,
    verify_password,
)
from bot.services.accounts.refusals import RefusalReason, TransitionRefused
from bot.services.accounts.validity import aware, provisional_expired, provisional_outstanding
from models import Account, AccountState


@lru_cache(maxsize=2)
def _decoy_hash(*, chosen: bool) -> str:
    """A hash no password matches, at today's chosen or provisional parameters: verified in
    place of the hash a failed login does not have (see `verify_login`)."""
    password = generate_provisional_password()
    return hash_chosen_password(password) if chosen else hash_provisional_password(password)


def verify_login(
    session: Session, *, identifier: str, password: str, now: datetime | None = None
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
    now = aware(now)
    account = session.exec(
        select(Account).where(col(Account.identifier) == identifier.strip().lower())
    ).first()
    if account is None or account.password_hash is None:
        verify_password(_decoy_hash(chosen=False), password)
        verify_password(_decoy_hash(chosen=True), password)
        return None
    provisional = provisional_outstanding(account)
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
    if provisional_expired(account, now):
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
