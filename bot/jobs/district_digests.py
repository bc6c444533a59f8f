"""Sending each inspector their weekly district digest (Monday 08:00, local time), across
restarts, like the schools' digests (`bot.jobs.digests`): a wake-up armed for the next
Monday, one at start for what was missed while the process was down (sent late, once), a
slow sweep as a safety net; each digest claimed in the database before it goes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from telegram.ext import Application

from bot.context import BotContext, educonnect
from bot.i18n import negotiate_language, use_language
from bot.jobs.broadcast import Delivery, deliver
from bot.jobs.district_message import compose_district_digest
from bot.services.digests import district_overview, district_snapshot, previous_district_digest
from bot.services.scheduling import (
    DueDistrictDigest,
    claim_district_digest,
    due_district_digests,
    mark_district_digest_sent,
    next_district_digest_at,
)
from models import utcnow

log = logging.getLogger(__name__)

WAKE_JOB = "district:wake"
SWEEP_JOB = "district:sweep"
SWEEP_INTERVAL = 900.0
JOB_KWARGS: dict[str, Any] = {"misfire_grace_time": 3600, "coalesce": True}

_locks: WeakKeyDictionary[Application[Any, Any, Any, Any, Any, Any], asyncio.Lock] = (
    WeakKeyDictionary()
)


async def _rearm(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app = educonnect(application)
    job_queue = application.job_queue
    upcoming = await app.db.run(next_district_digest_at, tz=app.settings.tz)
    if job_queue is None or upcoming is None:
        return
    for job in job_queue.get_jobs_by_name(WAKE_JOB):
        job.schedule_removal()
    job_queue.run_once(_wake, when=upcoming, name=WAKE_JOB, job_kwargs=JOB_KWARGS)


async def _send(
    application: Application[Any, Any, Any, Any, Any, Any], due: DueDistrictDigest
) -> bool:
    """Claim, compose and send one inspector's digest; whether it reached them."""
    app = educonnect(application)
    run_id = await app.db.run(
        claim_district_digest,
        telegram_user_id=due.telegram_user_id,
        due_at=due.due_at,
        late=due.late,
    )
    if run_id is None:
        return False  # another process (or an earlier pass) sends this one
    now = utcnow()
    previous = await app.db.run(
        previous_district_digest, telegram_user_id=due.telegram_user_id, before=now
    )
    overview = await app.db.run(
        district_overview,
        school_ids=list(due.school_ids),
        now=now,
        tz=app.settings.tz,
        previous=previous,
    )
    chosen = application.user_data.get(due.telegram_user_id, {}).get("language")
    with use_language(negotiate_language(chosen)):
        # The chart is drawn there: CPU-bound, kept off the event loop.
        message = await asyncio.to_thread(
            compose_district_digest, overview, late=due.late, tz=app.settings.tz
        )
    bot, chat_id = application.bot, due.telegram_user_id

    async def send() -> None:
        await bot.send_message(chat_id, message.text)
        if message.chart_png is not None:
            await bot.send_photo(chat_id, message.chart_png, filename="district.png")

    outcome = await deliver(application, chat_id, send)
    await app.db.run(mark_district_digest_sent, run_id=run_id, snapshot=district_snapshot(overview))
    return outcome is Delivery.DELIVERED


async def send_due_district_digests(
    application: Application[Any, Any, Any, Any, Any, Any], *, now: datetime | None = None
) -> int:
    """Send every district digest owed now, then arm the next wake-up; how many reached
    their inspector."""
    app = educonnect(application)
    lock = _locks.setdefault(application, asyncio.Lock())
    sent = 0
    async with lock:
        due = await app.db.run(due_district_digests, now=now, tz=app.settings.tz)
        for item in due:
            try:
                sent += await _send(application, item)
            except Exception:  # one inspector's failure must not stop the others' digests
                log.exception("a district digest failed")
        await _rearm(application)
    return sent


async def _wake(context: BotContext) -> None:
    """Send the district digests due now."""
    await send_due_district_digests(context.application)


def setup(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Send what is owed once the application runs, then every Monday, with a sweep every
    `SWEEP_INTERVAL` seconds."""
    job_queue = application.job_queue
    if job_queue is None:  # pragma: no cover - the job-queue extra is a dependency
        log.error("no job queue: no district digest will be sent")
        return
    job_queue.run_once(_wake, when=0, name=WAKE_JOB, job_kwargs=JOB_KWARGS)
    job_queue.run_repeating(
        _wake, interval=SWEEP_INTERVAL, first=SWEEP_INTERVAL, name=SWEEP_JOB, job_kwargs=JOB_KWARGS
    )
