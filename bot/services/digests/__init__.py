"""The digests a school's directors get before LSU day: what one says (`content`: the lights,
both percentages, the change since the previous one, the classes furthest behind, the next
actions, who was reminded, the final check's list) and its chart (`chart`, a PNG); and the
inspector's district view (`district`: one line and one bar per school).

Scheduling them and sending them is `bot.services.scheduling` and `bot.jobs.digests`; the text
is written by `bot.jobs.digest_message`. Nothing here speaks Telegram.
"""

from __future__ import annotations

from bot.services.digests.chart import (
    STATE_COLOURS,
    ChartData,
    ChartSeries,
    chart_data,
    render_bars,
    render_chart,
)
from bot.services.digests.content import (
    BEHIND_CLASSES,
    MAX_CLASSES_PER_ACTION,
    SCHOOL_ARGUMENT,
    ActionKind,
    ClassProgress,
    DigestContent,
    NextAction,
    SchoolNotFoundError,
    digest_content,
    digest_contents,
    digest_snapshot,
)
from bot.services.digests.district import (
    DistrictOverview,
    SchoolLine,
    district_chart_data,
    district_overview,
    district_snapshot,
    previous_district_digest,
)
from bot.services.digests.progress import Progress, ToDoCounts, school_totals

__all__ = [
    "BEHIND_CLASSES",
    "MAX_CLASSES_PER_ACTION",
    "SCHOOL_ARGUMENT",
    "STATE_COLOURS",
    "ActionKind",
    "ChartData",
    "ChartSeries",
    "ClassProgress",
    "DigestContent",
    "DistrictOverview",
    "NextAction",
    "Progress",
    "SchoolLine",
    "SchoolNotFoundError",
    "ToDoCounts",
    "chart_data",
    "digest_content",
    "digest_contents",
    "digest_snapshot",
    "district_chart_data",
    "district_overview",
    "district_snapshot",
    "previous_district_digest",
    "render_bars",
    "render_chart",
    "school_totals",
]
