"""When a school's digests are due: the weekly one at its day and hour, daily at 08:00 in the
last 7 days before the LSU date, the final check the day before at 17:00. Local wall-clock
times in the deployment's time zone, turned into UTC moments (so DST changes move nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from models import DigestKind

# The last days before the LSU date get a digest every morning instead of the weekly one.
DAILY_DAYS = 7
DAILY_HOUR = 8
FINAL_HOUR = 17


@dataclass(frozen=True)
class Schedule:
    """A school's digest schedule: the weekly day (0 = Monday) and hour, and the LSU date."""

    weekday: int
    hour: int
    lsu_date: date | None


@dataclass(frozen=True, order=True)
class DigestMoment:
    """One digest due at `due_at` (UTC)."""

    due_at: datetime
    kind: DigestKind


def local_moment(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """`hour`:00 on `day` in `tz`, in UTC."""
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


def in_daily_window(schedule: Schedule, day: date) -> bool:
    """Whether `day` is one of the last `DAILY_DAYS` days before the LSU date."""
    lsu = schedule.lsu_date
    return lsu is not None and lsu - timedelta(days=DAILY_DAYS) <= day < lsu


def moments_on(schedule: Schedule, day: date, tz: ZoneInfo) -> list[DigestMoment]:
    """The digests due on `day` (local), in time order."""
    if in_daily_window(schedule, day):
        moments = [DigestMoment(local_moment(day, DAILY_HOUR, tz), DigestKind.DAILY)]
        if schedule.lsu_date is not None and day == schedule.lsu_date - timedelta(days=1):
            moments.append(DigestMoment(local_moment(day, FINAL_HOUR, tz), DigestKind.FINAL))
        return moments
    if day.weekday() == schedule.weekday:
        return [DigestMoment(local_moment(day, schedule.hour, tz), DigestKind.WEEKLY)]
    return []


def latest_moment(schedule: Schedule, *, now: datetime, tz: ZoneInfo) -> DigestMoment | None:
    """The most recent digest due at or before `now` (within the last week)."""
    today = now.astimezone(tz).date()
    for back in range(8):
        past = [
            m for m in moments_on(schedule, today - timedelta(days=back), tz) if m.due_at <= now
        ]
        if past:
            return max(past)
    return None


def next_moment(schedule: Schedule, *, now: datetime, tz: ZoneInfo) -> DigestMoment | None:
    """The next digest due after `now` (within the next week)."""
    today = now.astimezone(tz).date()
    for ahead in range(9):
        future = [
            m for m in moments_on(schedule, today + timedelta(days=ahead), tz) if m.due_at > now
        ]
        if future:
            return min(future)
    return None
