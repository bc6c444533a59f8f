"""A school's digest and reminder settings: reading them, changing them (each change audited),
and the schedule in words for /digest (« chaque lundi à 8 h »)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import get_day_names
from sqlmodel import Session

from bot.i18n import _, babel_locale, format_date, ngettext
from bot.services.audit import record_event
from bot.services.errors import ServiceError
from bot.services.scheduling.lsu import check_lsu_date
from bot.services.scheduling.moments import (
    DAILY_DAYS,
    DAILY_HOUR,
    FINAL_HOUR,
    Schedule,
    next_moment,
)
from models import DigestKind, School

# Audit actions after which a digest due earlier is no longer owed (see `due_digests`).
SCHEDULE_CHANGED = "digest_schedule_changed"
DIGEST_RESUMED = "digest_resumed"
LSU_DATE_SET = "lsu_date_set"
SCHEDULE_RESETS = (SCHEDULE_CHANGED, DIGEST_RESUMED, LSU_DATE_SET)
REMINDER_DAYS = (3, 5, 7, 10, 14)


@dataclass(frozen=True)
class DigestSettings:
    """What /digest shows and changes for one school."""

    school_id: int
    lsu_date: date | None
    weekday: int
    hour: int
    paused: bool
    reminders_enabled: bool
    reminder_after_days: int

    @property
    def schedule(self) -> Schedule:
        return Schedule(weekday=self.weekday, hour=self.hour, lsu_date=self.lsu_date)


def _school(session: Session, school_id: int) -> School:
    school = session.get(School, school_id)
    if school is None:
        raise ServiceError(_("This school does not exist."))
    return school


def _settings(school: School) -> DigestSettings:
    assert school.id is not None
    return DigestSettings(
        school_id=school.id,
        lsu_date=school.lsu_date,
        weekday=school.digest_weekday,
        hour=school.digest_hour,
        paused=school.digest_paused,
        reminders_enabled=school.reminders_enabled,
        reminder_after_days=school.reminder_after_days,
    )


def digest_settings(session: Session, *, school_id: int) -> DigestSettings:
    """The school's LSU date, digest schedule and reminder settings."""
    return _settings(_school(session, school_id))


def set_lsu_date(
    session: Session, *, school_id: int, lsu_date: date, today: date, actor: str
) -> DigestSettings:
    """Set the school's LSU date (checked against `today`: not past, within a year)."""
    school = _school(session, school_id)
    school.lsu_date = check_lsu_date(lsu_date, today=today)
    session.add(school)
    record_event(
        session, actor=actor, action=LSU_DATE_SET, school_id=school_id, date=lsu_date.isoformat()
    )
    return _settings(school)


def set_digest_schedule(
    session: Session,
    *,
    school_id: int,
    actor: str,
    weekday: int | None = None,
    hour: int | None = None,
) -> DigestSettings:
    """Change the weekly digest's day (0 = Monday) and/or hour (local time)."""
    if weekday is not None and not 0 <= weekday <= 6:
        raise ServiceError(_("The day must be between Monday and Sunday."))
    if hour is not None and not 0 <= hour <= 23:
        raise ServiceError(_("The hour must be between 0 and 23."))
    school = _school(session, school_id)
    if weekday is not None:
        school.digest_weekday = weekday
    if hour is not None:
        school.digest_hour = hour
    session.add(school)
    record_event(
        session,
        actor=actor,
        action=SCHEDULE_CHANGED,
        school_id=school_id,
        weekday=school.digest_weekday,
        hour=school.digest_hour,
    )
    return _settings(school)


def set_digest_paused(
    session: Session, *, school_id: int, paused: bool, actor: str
) -> DigestSettings:
    """Pause the school's digests, or resume them (the ones missed meanwhile are not sent)."""
    school = _school(session, school_id)
    school.digest_paused = paused
    session.add(school)
    action = "digest_paused" if paused else DIGEST_RESUMED
    record_event(session, actor=actor, action=action, school_id=school_id)
    return _settings(school)


def set_reminders(
    session: Session,
    *,
    school_id: int,
    actor: str,
    enabled: bool | None = None,
    after_days: int | None = None,
) -> DigestSettings:
    """Turn the automatic reminders on or off, and/or set after how many days they go."""
    if after_days is not None and not 1 <= after_days <= 60:
        raise ServiceError(_("The number of days must be between 1 and 60."))
    school = _school(session, school_id)
    if enabled is not None:
        school.reminders_enabled = enabled
    if after_days is not None:
        school.reminder_after_days = after_days
    session.add(school)
    record_event(
        session,
        actor=actor,
        action="reminders_changed",
        school_id=school_id,
        enabled=school.reminders_enabled,
        after_days=school.reminder_after_days,
    )
    return _settings(school)


def weekday_name(weekday: int) -> str:
    """« lundi » for 0 in French, in the current language."""
    return str(get_day_names("wide", locale=babel_locale())[weekday])


def hour_text(hour: int) -> str:
    """« 8 h » in French, « 8:00 » in English."""
    return _("{hour}:00").format(hour=hour)


def _kind_text(kind: DigestKind) -> str:
    if kind is DigestKind.FINAL:
        return _("the final check")
    if kind is DigestKind.DAILY:
        return _("the daily digest")
    return _("the weekly digest")


def _lsu_lines(settings: DigestSettings, today: date) -> list[str]:
    lsu = settings.lsu_date
    if lsu is None:
        return [
            _(
                "LSU date: not set. Set it with <code>/lsu 15/01/2027</code>: in the last "
                "{days} days before it you get a digest every morning."
            ).format(days=DAILY_DAYS)
        ]
    days_left = (lsu - today).days
    lines = [
        ngettext(
            "LSU date: <b>{date}</b> ({days} day left).",
            "LSU date: <b>{date}</b> ({days} days left).",
            days_left,
        ).format(date=format_date(lsu), days=days_left)
    ]
    if days_left >= 0:
        lines.append(
            _(
                "From {start}: a digest every day at {daily}, and on {eve} at {final} a final "
                "check listing every guardian not green yet, by class."
            ).format(
                start=format_date(lsu - timedelta(days=DAILY_DAYS)),
                daily=hour_text(DAILY_HOUR),
                eve=format_date(lsu - timedelta(days=1)),
                final=hour_text(FINAL_HOUR),
            )
        )
    return lines


def describe_schedule(settings: DigestSettings, *, now: datetime, tz: ZoneInfo) -> list[str]:
    """The schedule in words, one line each: weekly day and hour, LSU date and the last days,
    paused or the next digest, reminders."""
    lines = [
        _("Weekly digest: every {weekday} at {hour}.").format(
            weekday=weekday_name(settings.weekday), hour=hour_text(settings.hour)
        )
    ]
    lines += _lsu_lines(settings, now.astimezone(tz).date())
    upcoming = next_moment(settings.schedule, now=now, tz=tz)
    if settings.paused:
        lines.append(_("⏸ Paused: no digest is sent until you resume."))
    elif upcoming is not None:
        lines.append(
            _("Next: {what}, {day} at {hour}.").format(
                what=_kind_text(upcoming.kind),
                day=format_date(upcoming.due_at, tz=tz, fmt="full"),
                hour=hour_text(upcoming.due_at.astimezone(tz).hour),
            )
        )
    if settings.reminders_enabled:
        lines.append(
            ngettext(
                "🔔 Automatic reminders: on, to the guardians notified or activating for more "
                "than {days} day (at most one a week each, never between 20:00 and 08:00 nor "
                "on Sundays).",
                "🔔 Automatic reminders: on, to the guardians notified or activating for more "
                "than {days} days (at most one a week each, never between 20:00 and 08:00 nor "
                "on Sundays).",
                settings.reminder_after_days,
            ).format(days=settings.reminder_after_days)
        )
    else:
        lines.append(_("🔕 Automatic reminders: off."))
    return lines
