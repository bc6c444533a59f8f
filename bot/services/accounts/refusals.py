"""Why a guard of the account life cycle refuses a transition, and the exception that says so:
every transition is all or nothing, and a refusal changes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping


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


def raise_if_refused(refusals: Mapping[int, RefusalReason]) -> None:
    """Raise `TransitionRefused` listing every refusal, if there is any."""
    if refusals:
        first = next(iter(refusals))
        raise TransitionRefused(first, refusals[first], refusals)


def unknown_refusals(
    account_ids: Iterable[int], found: Mapping[int, object]
) -> dict[int, RefusalReason]:
    """`UNKNOWN_ACCOUNT` for each of `account_ids` that is not in `found`."""
    return {id_: RefusalReason.UNKNOWN_ACCOUNT for id_ in account_ids if id_ not in found}
