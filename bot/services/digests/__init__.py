"""The digests a school's directors get before LSU day: what one says (`content`: the lights,
both percentages, the change since the previous one, the classes furthest behind, the next
actions, who was reminded, the final check's list) and its chart (`chart`, a PNG).

Scheduling them and sending them is `bot.services.scheduling` and `bot.jobs.digests`; the text
is written by `bot.jobs.digest_message`. Nothing here speaks Telegram.
"""

from __future__ import annotations

from bot.services.digests.chart import (
    STATE_COLOURS,
    ChartData,
    ChartSeries,
    chart_data,
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
    "NextAction",
    "SchoolNotFoundError",
    "chart_data",
    "digest_content",
    "digest_contents",
    "digest_snapshot",
    "render_chart",
]
