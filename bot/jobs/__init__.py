"""The background and scheduled work: the outbox sender (the bot process and
`educonnect-bot worker`), and in the bot process the deletion of letter messages, the digests
before LSU day, the inspectors' weekly district digests and the automatic reminders to
families.

`start_sender` runs an `OutboxSender` as a task of the running event loop (the bot's, or the
worker's); `setup_deletions` re-arms, at start, the deletions the database still holds, and
`arm_deletion` wakes the sweep when a new letter message is due to go; `setup_digests`,
`setup_district_digests` and `setup_reminders` register their JobQueue jobs again at every
start (schedules live in the database), and `rearm_digests` moves the next wake-up after a
director changes a schedule.
Every broadcast sends to each chat through `deliver` (a chat that blocked the bot is recorded
and skipped until `forget_unblocked` sees its user write again).
"""

from __future__ import annotations

from bot.jobs.broadcast import Delivery, deliver, forget_unblocked
from bot.jobs.deletions import arm as arm_deletion
from bot.jobs.deletions import setup as setup_deletions
from bot.jobs.deletions import sweep as sweep_deletions
from bot.jobs.digests import rearm as rearm_digests
from bot.jobs.digests import send_digest_now, send_due_digests
from bot.jobs.digests import setup as setup_digests
from bot.jobs.district_digests import send_due_district_digests
from bot.jobs.district_digests import setup as setup_district_digests
from bot.jobs.district_message import (
    PAGE_SIZE as DISTRICT_PAGE_SIZE,
)
from bot.jobs.district_message import (
    district_chart,
    district_page,
    district_page_count,
    district_page_lines,
)
from bot.jobs.outbox import MAX_UNRECORDED, OutboxSender, RunningSender, start_sender
from bot.jobs.reminders import run_reminders
from bot.jobs.reminders import setup as setup_reminders

__all__ = [
    "DISTRICT_PAGE_SIZE",
    "MAX_UNRECORDED",
    "Delivery",
    "OutboxSender",
    "RunningSender",
    "arm_deletion",
    "deliver",
    "district_chart",
    "district_page",
    "district_page_count",
    "district_page_lines",
    "forget_unblocked",
    "rearm_digests",
    "run_reminders",
    "send_digest_now",
    "send_due_digests",
    "send_due_district_digests",
    "setup_deletions",
    "setup_digests",
    "setup_district_digests",
    "setup_reminders",
    "start_sender",
    "sweep_deletions",
]
