"""When an automatic reminder may reach a family: never between 20:00 and 08:00 local time,
never on a Sunday (a school does not knock at a family's door then)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Local hours a reminder may go out: from FIRST_HOUR:00 until just before LAST_HOUR:00.
FIRST_HOUR = 8
LAST_HOUR = 20
SUNDAY = 6


def reminders_allowed_at(now: datetime, tz: ZoneInfo) -> bool:
    """Whether a reminder may go out at `now` (aware) in the time zone `tz`."""
    local = now.astimezone(tz)
    return local.weekday() != SUNDAY and FIRST_HOUR <= local.hour < LAST_HOUR


def next_allowed(now: datetime, tz: ZoneInfo) -> datetime:
    """`now` if a reminder may go out then, else the next 08:00 local time that is not on a
    Sunday, in UTC."""
    if reminders_allowed_at(now, tz):
        return now
    local = now.astimezone(tz)
    day = local.date() if local.hour < FIRST_HOUR else local.date() + timedelta(days=1)
    if day.weekday() == SUNDAY:
        day += timedelta(days=1)
    # 08:00 always exists: the DST changes happen at night.
    return datetime.combine(day, time(FIRST_HOUR), tzinfo=tz).astimezone(UTC)
