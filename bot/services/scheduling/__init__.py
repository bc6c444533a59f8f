"""When digests go out: the LSU date, each school's digest schedule and reminder settings,
the moments digests are due (weekly, daily in the last days, the final check; the inspectors'
weekly district digest), and claiming each digest once."""

from __future__ import annotations

from bot.services.scheduling.district import (
    DISTRICT_SCHEDULE,
    DueDistrictDigest,
    claim_district_digest,
    due_district_digests,
    mark_district_digest_sent,
    next_district_digest_at,
)
from bot.services.scheduling.lsu import (
    LsuDateError,
    check_lsu_date,
    latest_lsu_date,
    parse_lsu_date,
)
from bot.services.scheduling.moments import (
    DAILY_DAYS,
    DAILY_HOUR,
    FINAL_HOUR,
    DigestMoment,
    Schedule,
    latest_moment,
    moments_on,
    next_moment,
)
from bot.services.scheduling.runs import (
    LATE_AFTER,
    DueDigest,
    claim_digest,
    due_digests,
    mark_digest_sent,
    next_digest_at,
    school_director_ids,
)
from bot.services.scheduling.settings import (
    REMINDER_DAYS,
    DigestSettings,
    describe_schedule,
    digest_settings,
    hour_text,
    set_digest_paused,
    set_digest_schedule,
    set_lsu_date,
    set_reminders,
    weekday_name,
)

__all__ = [
    "DAILY_DAYS",
    "DAILY_HOUR",
    "DISTRICT_SCHEDULE",
    "FINAL_HOUR",
    "LATE_AFTER",
    "REMINDER_DAYS",
    "DigestMoment",
    "DigestSettings",
    "DueDigest",
    "DueDistrictDigest",
    "LsuDateError",
    "Schedule",
    "check_lsu_date",
    "claim_digest",
    "claim_district_digest",
    "describe_schedule",
    "digest_settings",
    "due_digests",
    "due_district_digests",
    "hour_text",
    "latest_lsu_date",
    "latest_moment",
    "mark_digest_sent",
    "mark_district_digest_sent",
    "moments_on",
    "next_digest_at",
    "next_district_digest_at",
    "next_moment",
    "parse_lsu_date",
    "school_director_ids",
    "set_digest_paused",
    "set_digest_schedule",
    "set_lsu_date",
    "set_reminders",
    "weekday_name",
]
