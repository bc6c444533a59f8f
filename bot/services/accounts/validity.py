"""When a provisional password expires, and whether one is outstanding: the dates every guard
of the account life cycle compares.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from bot.config import get_settings
from bot.services.accounts.records import AccountRow
from models import Account, utcnow

# docs/PRODUCT.md: a provisional password is valid 3 months from the letter's date.
PROVISIONAL_VALIDITY_MONTHS = 3


def aware(moment: datetime | None) -> datetime:
    """`moment` in UTC (now when None); a naive datetime is a caller's bug."""
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
    letter_day = aware(letter_time).astimezone(zone).date()
    last_day = _add_months(letter_day, PROVISIONAL_VALIDITY_MONTHS)
    return datetime.combine(last_day, time.max, tzinfo=zone).astimezone(UTC)


def provisional_outstanding(account: Account | AccountRow) -> bool:
    """Whether the account's password is still a provisional one."""
    # `provisional_expires_at` is set exactly while the stored hash is a provisional password's;
    # choosing a password clears it.
    return account.password_hash is not None and account.provisional_expires_at is not None


def provisional_expired(account: Account | AccountRow, now: datetime) -> bool:
    """Whether the account's provisional password is outstanding and expired at `now`."""
    expires_at = account.provisional_expires_at
    return provisional_outstanding(account) and expires_at is not None and now > expires_at
