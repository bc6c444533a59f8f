"""Deleting the bot's own messages that carry letters (PDFs, ZIPs) once the school's retention
has passed, across restarts (started by `bot.app` beside the handlers).

PTB does not persist its jobs, so the schedule lives in the `scheduled_deletion`
table: at start, and whenever a new deletion is recorded, one wake-up job is armed for the
earliest one; each wake-up deletes everything due and arms the next. A slow sweep catches what
another process recorded.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from telegram import ReplyParameters
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application

from bot.context import BotContext, educonnect
from bot.i18n import _, format_datetime
from bot.services.letters import DueDeletion, due_deletions, mark_deletions_done, next_deletion_at
from models import utcnow

log = logging.getLogger(__name__)

WAKE_JOB = "letters:delete"
# Catches deletions recorded by another process (or a wake-up lost to a clock change).
SWEEP_INTERVAL = 600.0
RETRY_DELAY = timedelta(minutes=1)
_BATCH = 100


def arm(application: Application, at: datetime) -> None:
    """Make sure a wake-up runs at `at` at the latest (one wake-up job at a time)."""
    job_queue = application.job_queue
    if job_queue is None:
        return
    for job in job_queue.get_jobs_by_name(WAKE_JOB):
        planned = job.next_t
        if planned is not None and planned <= at:
            return  # an earlier wake-up will arm this one afterwards
        job.schedule_removal()
    delay = max(0.0, (at - utcnow()).total_seconds())
    job_queue.run_once(_wake, when=delay, name=WAKE_JOB)


async def _delete(application: Application, due: DueDeletion) -> bool:
    """Delete one message; False when it should be tried again later."""
    try:
        await application.bot.delete_message(due.chat_id, due.message_id)
    except BadRequest as error:
        if "not found" in str(error).lower():
            return True  # deleted by the director already
        # Too old for Telegram to let a bot delete it: the director must do it.
        log.warning("could not delete a letters message (%s)", error)
        await _ask_director_to_delete(application, due)
    except Forbidden:
        return True  # the chat blocked the bot: nothing more can be done
    except TelegramError as error:
        log.warning("deleting a letters message failed, will retry (%s)", type(error).__name__)
        return False
    return True


async def _ask_director_to_delete(application: Application, due: DueDeletion) -> None:
    settings = educonnect(application).settings
    text = _(
        "I could not delete a document carrying passwords that I sent in this chat (due for "
        "deletion on {date}): Telegram no longer lets me. Please delete it yourself: press and "
        "hold the message, then « Delete »."
    ).format(date=format_datetime(due.delete_at, tz=settings.tz))
    try:
        await application.bot.send_message(
            due.chat_id,
            text,
            reply_parameters=ReplyParameters(due.message_id, allow_sending_without_reply=True),
        )
    except TelegramError:
        log.warning("could not ask a director to delete a letters message")


async def sweep(application: Application) -> int:
    """Delete every message whose time has come, then arm the next wake-up; how many."""
    db = educonnect(application).db
    deleted = 0
    while True:
        due = await db.run(due_deletions, limit=_BATCH)
        done = [item.id for item in due if await _delete(application, item)]
        if done:
            await db.run(mark_deletions_done, deletion_ids=done)
        deleted += len(done)
        if len(due) < _BATCH or len(done) < len(due):
            break
    upcoming = await db.run(next_deletion_at)
    if upcoming is not None:
        now = utcnow()
        # Still due after this sweep: it failed for a moment (network); retry a bit later.
        arm(application, upcoming if upcoming > now else now + RETRY_DELAY)
    return deleted


async def _wake(context: BotContext) -> None:
    """Delete the messages whose retention has passed."""
    await sweep(context.application)


async def _sweep_job(context: BotContext) -> None:
    """Look for deletions recorded elsewhere (the safety net)."""
    await sweep(context.application)


def setup(application: Application) -> None:
    """Sweep once the application runs (deletions due while it was down happen at once), and
    every `SWEEP_INTERVAL` seconds."""
    job_queue = application.job_queue
    if job_queue is None:  # pragma: no cover - the job-queue extra is a dependency
        log.error("no job queue: PDFs of letters will not be deleted from chats")
        return
    job_queue.run_once(_wake, when=0, name=WAKE_JOB)
    job_queue.run_repeating(_sweep_job, interval=SWEEP_INTERVAL, first=SWEEP_INTERVAL)
