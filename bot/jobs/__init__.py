"""The background and scheduled work that both the bot process and `educonnect-bot worker`
start: the outbox sender, the deletion of letter messages, later the digests.

`start_sender` runs an `OutboxSender` as a task of the running event loop (the bot's, or the
worker's); `setup_deletions` re-arms, at start, the deletions the database still holds, and
`arm_deletion` wakes the sweep when a new letter message is due to go.
"""

from __future__ import annotations

from bot.jobs.deletions import arm as arm_deletion
from bot.jobs.deletions import setup as setup_deletions
from bot.jobs.deletions import sweep as sweep_deletions
from bot.jobs.outbox import MAX_UNRECORDED, OutboxSender, RunningSender, start_sender

__all__ = [
    "MAX_UNRECORDED",
    "OutboxSender",
    "RunningSender",
    "arm_deletion",
    "setup_deletions",
    "start_sender",
    "sweep_deletions",
]
