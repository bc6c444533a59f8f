"""Confirming a preview: the accounts it showed are planned again, now, and refused if one
changed in between (another send, an activation, a re-import), so nothing is ever done on a
stale plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.i18n import _
from bot.services.accounts import DistributionPlanItem
from bot.services.distribution.errors import NothingToDistributeError, stale_plan_error
from bot.services.distribution.planning import (
    DistributionPreview,
    PlanEntry,
    Purpose,
    plan_entries,
)
from bot.services.distribution.scopes import account_candidates
from models import AccountState

# What a confirmation gives back: the preview shown, its `confirmation()` (kept in a chat's
# user_data), or account ids picked by hand.
Confirmation = DistributionPreview | Mapping[str, Any] | Sequence[int]


@dataclass(frozen=True)
class ConfirmedAccounts:
    """The accounts confirmed, and the state each had in the preview."""

    account_ids: list[int]
    expected: dict[int, AccountState] | None  # None: ids picked by hand, no preview
    include_all: bool


def confirmed_accounts(confirmation: Confirmation, purpose: Purpose) -> ConfirmedAccounts:
    """What `confirmation` confirms; `ValueError` if it was made for another purpose."""
    if isinstance(confirmation, DistributionPreview):
        return ConfirmedAccounts(
            account_ids=confirmation.account_ids,
            expected={entry.account_id: entry.state for entry in confirmation.planned},
            include_all=confirmation.include_all,
        )
    if isinstance(confirmation, Mapping):
        accounts = confirmation.get("accounts") or {}
        expected = {int(key): AccountState(value) for key, value in accounts.items()}
        if confirmation.get("purpose", purpose.value) != purpose.value:
            raise ValueError("this confirmation belongs to another kind of distribution")
        return ConfirmedAccounts(
            account_ids=list(expected),
            expected=expected,
            include_all=bool(confirmation.get("include_all", False)),
        )
    ids = [int(account_id) for account_id in confirmation]
    return ConfirmedAccounts(account_ids=list(dict.fromkeys(ids)), expected=None, include_all=True)


@dataclass(frozen=True)
class Replanned:
    """The confirmed plan, made again: the entries planned, and the accounts service's items."""

    entries: list[PlanEntry]
    items: dict[int, DistributionPlanItem]


def replan(
    session: Session,
    school_id: int,
    confirmed: ConfirmedAccounts,
    *,
    purpose: Purpose,
    reset: bool,
    now: datetime,
) -> Replanned:
    """Plan the confirmed accounts again, now; refuse if one changed since its preview."""
    candidates = account_candidates(session, school_id, confirmed.account_ids)
    if confirmed.expected is not None and set(candidates) != set(confirmed.expected):
        raise stale_plan_error()
    entries, items = plan_entries(
        session,
        candidates.values(),
        purpose=purpose,
        include_all=confirmed.include_all,
        explicit=confirmed.expected is None,
        reset=reset,
        now=now,
    )
    if confirmed.expected is not None:
        for entry in entries:
            if entry.kind is None or confirmed.expected[entry.account_id] != entry.state:
                raise stale_plan_error()
    planned = [entry for entry in entries if entry.kind is not None]
    if not planned:
        raise NothingToDistributeError(
            _("Nobody is left to send credentials to: every account of the list is up to date.")
        )
    return Replanned(planned, items)
