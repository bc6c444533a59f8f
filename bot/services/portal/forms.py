"""The portal's forms, without HTTP: what is wrong with each field, and what a form or a request
that sends an e-mail became.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime

from bot.services.accounts import (
    PROVISIONAL_LENGTH,
    RefusalReason,
    canonical_provisional_input,
    chosen_password_is_strong,
    verify_password,
)
from bot.services.portal.passwords_common import is_common_password
from bot.services.portal.sessions import PortalAccount


class Problem(enum.StrEnum):
    """What is wrong with one field of a form; the portal words it next to the field."""

    REQUIRED = "required"
    PASSWORD_WEAK = "password_weak"
    PASSWORD_COMMON = "password_common"  # one of the most common ones, however dressed up
    PASSWORD_MISMATCH = "password_mismatch"
    PASSWORD_HAS_IDENTIFIER = "password_has_identifier"
    PASSWORD_IS_PROVISIONAL = "password_is_provisional"
    PASSWORD_WRONG = "password_wrong"
    PASSWORD_UNCHANGED = "password_unchanged"
    EMAIL_INVALID = "email_invalid"
    EMAIL_UNCHANGED = "email_unchanged"
    BIRTH_DATE_INVALID = "birth_date_invalid"
    BIRTH_DATE_WRONG = "birth_date_wrong"
    BIRTH_DATE_UNKNOWN = "birth_date_unknown"


@dataclass(frozen=True, slots=True)
class FormResult:
    """The outcome of a form: problems per field, a lockout, a refusal, or success."""

    problems: dict[str, Problem] = field(default_factory=dict)
    # Too many failures: nothing was checked; try again after this time.
    locked_until: datetime | None = None
    # The session no longer opens the account (password changed, deactivated…) or the account
    # is not in the state the form is for; UNKNOWN_ACCOUNT for a session that is no more.
    refusal: RefusalReason | None = None
    # On success: the account, with the fingerprint of its new password if it changed.
    account: PortalAccount | None = None
    # Too many wrong birth dates in all: the activation waits for the school (no time to wait).
    awaiting_school: bool = False

    @property
    def ok(self) -> bool:
        return self.account is not None and not self.problems and self.refusal is None


class RequestStatus(enum.StrEnum):
    """What a request that sends an e-mail became."""

    ACCEPTED = "accepted"  # sent (or, for the forgotten ones, maybe not: the page says the same)
    RATE_LIMITED = "rate_limited"  # too many from this client or for this account: try later
    REFUSED = "refused"  # the session no longer opens an account in the right state


@dataclass(frozen=True, slots=True)
class RequestResult:
    status: RequestStatus
    retry_at: datetime | None = None
    refusal: RefusalReason | None = None


def _identifier_stem(identifier: str) -> str:
    # « celine.dupont114 » → « celine.dupont »: the number alone does not make it personal.
    return re.sub(r"\d+$", "", identifier.lower())


def new_password_problems(
    password: str,
    confirmation: str,
    *,
    identifier: str,
    provisional_hash: str | None = None,
    field_name: str = "new_password",
    confirmation_name: str = "confirm_password",
) -> dict[str, Problem]:
    """What is wrong with a new password and its confirmation (CNIL 2022 and docs/PRODUCT.md): at
    least 12 characters of mixed kinds, never the identifier, never the provisional password,
    never one of the most common passwords (`passwords_common`)."""
    problems: dict[str, Problem] = {}
    stem = _identifier_stem(identifier)
    if not password:
        problems[field_name] = Problem.REQUIRED
    elif identifier and (
        identifier.lower() in password.lower() or (len(stem) >= 4 and stem in password.lower())
    ):
        problems[field_name] = Problem.PASSWORD_HAS_IDENTIFIER
    elif (
        provisional_hash is not None
        and len(canonical_provisional_input(password)) == PROVISIONAL_LENGTH
        and verify_password(provisional_hash, canonical_provisional_input(password))
    ):
        problems[field_name] = Problem.PASSWORD_IS_PROVISIONAL
    elif not chosen_password_is_strong(password):
        problems[field_name] = Problem.PASSWORD_WEAK
    elif is_common_password(password):
        problems[field_name] = Problem.PASSWORD_COMMON
    if field_name not in problems:
        if not confirmation:
            problems[confirmation_name] = Problem.REQUIRED
        elif not secrets.compare_digest(password.encode(), confirmation.encode()):
            problems[confirmation_name] = Problem.PASSWORD_MISMATCH
    return problems


_DATE_FORMATS = (
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<d>\d{1,2})[/.\- ](?P<m>\d{1,2})[/.\- ](?P<y>\d{4})$"),
    # The field opens a phone's number pad, which has no « / » on an iPhone: « 14032018 ».
    re.compile(r"^(?P<d>\d{2})(?P<m>\d{2})(?P<y>\d{4})$"),
)


def parse_birth_date(text: str) -> date | None:
    """A date typed or picked in the form: « 2018-03-14 » (a date field), « 14/03/2018 » or
    « 14032018 »."""
    cleaned = text.strip()
    for pattern in _DATE_FORMATS:
        match = pattern.fullmatch(cleaned)
        if match:
            try:
                return date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                return None
    return None
