"""The automatic reminders to families (opt-in per school, /digest): an hourly job that, when
a reminder may go out (not 20:00–08:00, not on a Sunday), reminds every guardian due one by
e-mail through the outbox, and writes in their linked chat too.

Registered again at every start (`setup`); PTB keeps no jobs, and needs none kept: what is
due is read from the database at each run, so an hour missed while the process was down is
caught up by the next run.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from functools import partial

from telegram.ext import Application

from bot.context import BotContext, educonnect
from bot.i18n import _, negotiate_language, use_language
from bot.jobs.broadcast import Delivery, deliver
from bot.services.reminders import (
    RemindedGuardian,
    ReminderBatch,
    record_chat_reminders,
    reminders_allowed_at,
    schools_with_reminders,
    send_due_reminders,
)
from models import utcnow

log = logging.getLogger(__name__)

JOB_NAME = "reminders:hourly"
ACTOR = "scheduler:reminders"
INTERVAL = 3600.0
# The first run comes soon after a start, so an hour missed while down is not waited for.
FIRST_RUN = 60.0
# One late run is as good as several: run once, and up to half an hour late.
JOB_KWARGS = {"misfire_grace_time": 1800, "coalesce": True, "max_instances": 1}


def chat_text(school_name: str, guardian: RemindedGuardian, portal_url: str) -> str:
    """The message in a reminded guardian's linked chat (in the current language)."""
    if guardian.activating:
        return _(
            "🔔 <b>{school}</b>: your EduConnect account is almost ready. Open the e-mail we "
            "sent to confirm your address and click its confirmation link: your account is "
            "then activated."
        ).format(school=html.escape(school_name))
    return _(
        "🔔 <b>{school}</b>: your EduConnect account is not activated yet. We have just "
        "e-mailed you a reminder. Go to {portal} and log in with your identifier "
        "<code>{identifier}</code> and the provisional password you received; you will then "
        "choose your own password."
    ).format(
        school=html.escape(school_name),
        portal=html.escape(portal_url),
        identifier=html.escape(guardian.identifier),
    )


def _language(application: Application, chat_id: int, guardian: RemindedGuardian) -> str:
    # The language the family chose in the bot first, else the one the school knows.
    chosen = application.user_data.get(chat_id, {}).get("language")
    return negotiate_language(chosen or guardian.language)


async def _message_chats(application: Application, batch: ReminderBatch) -> list[int]:
    """Write to the linked chats of the guardians reminded; the reminders that reached one.
    A chat that blocked the bot is recorded and skipped from then on (the e-mail went anyway)."""
    portal_url = educonnect(application).settings.portal_url
    reached: list[int] = []
    for guardian in batch.reminded:
        for chat_id in guardian.chat_ids:
            with use_language(_language(application, chat_id, guardian)):
                text = chat_text(batch.school_name, guardian, portal_url)
            send = partial(application.bot.send_message, chat_id, text)
            if await deliver(application, chat_id, send) is Delivery.DELIVERED:
                reached.append(guardian.reminder_id)
    return reached


async def run_reminders(application: Application, *, now: datetime | None = None) -> int:
    """Send every reminder due at `now` (now when None), school by school; how many guardians
    were reminded. Nothing in the quiet hours. One school's failure stops no other."""
    app = educonnect(application)
    moment = now or utcnow()
    if not reminders_allowed_at(moment, app.settings.tz):
        return 0
    reminded = 0
    for school_id in await app.db.run(schools_with_reminders):
        try:
            batch = await app.db.run(
                send_due_reminders,
                school_id=school_id,
                now=moment,
                actor=ACTOR,
                bot_username=application.bot.username,
                portal_url=app.settings.portal_url,
                mail_from=app.settings.mail_from,
            )
        except Exception:
            log.exception("automatic reminders of school %s failed", school_id)
            continue
        if not batch.reminded:
            continue
        log.info("school %s: %d families reminded", school_id, batch.count)
        reminded += batch.count
        reached = await _message_chats(application, batch)
        if reached:
            await app.db.run(record_chat_reminders, reminder_ids=reached)
    return reminded


async def _hourly(context: BotContext) -> None:
    """Remind the families due a reminder."""
    await run_reminders(context.application)


def setup(application: Application) -> None:
    """Register the hourly job (at every start: PTB does not keep jobs)."""
    job_queue = application.job_queue
    if job_queue is None:  # pragma: no cover - the job-queue extra is a dependency
        log.error("no job queue: families will get no automatic reminders")
        return
    for job in job_queue.get_jobs_by_name(JOB_NAME):
        job.schedule_removal()
    job_queue.run_repeating(
        _hourly, interval=INTERVAL, first=FIRST_RUN, name=JOB_NAME, job_kwargs=JOB_KWARGS
    )
