"""Sending the digests to the directors when they are due, across restarts (started by
`bot.app` beside the handlers).

PTB does not persist its jobs: the schedules are the schools' rows, so at start one wake-up
runs at once (sending, marked late, what was due while the process was down) and arms the
next one for the earliest digest due; a slow sweep catches schedules changed by another
process. Each digest is claimed in the database before it goes, so it never goes twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from telegram.ext import Application

from bot.context import BotContext, educonnect
from bot.jobs.broadcast import Delivery, deliver
from bot.jobs.digest_message import DigestMessage, compose_digest
from bot.services.digests import digest_content, digest_snapshot
from bot.services.errors import ServiceError
from bot.services.scheduling import (
    DueDigest,
    claim_digest,
    due_digests,
    mark_digest_sent,
    next_digest_at,
)
from models import DigestKind, utcnow

log = logging.getLogger(__name__)

WAKE_JOB = "digests:wake"
SWEEP_JOB = "digests:sweep"
# Catches schedules changed by another process (or a wake-up lost to a suspended machine).
SWEEP_INTERVAL = 300.0
# A wake-up up to an hour late still runs (once, however many were missed meanwhile).
JOB_KWARGS: dict[str, Any] = {"misfire_grace_time": 3600, "coalesce": True}

# One pass at a time per application: the wake-up and the sweep may fire together.
_locks: WeakKeyDictionary[Application[Any, Any, Any, Any, Any, Any], asyncio.Lock] = (
    WeakKeyDictionary()
)


def arm(application: Application[Any, Any, Any, Any, Any, Any], at: datetime) -> None:
    """Make sure a wake-up runs at `at` at the latest (one wake-up job at a time)."""
    job_queue = application.job_queue
    if job_queue is None:
        return
    for job in job_queue.get_jobs_by_name(WAKE_JOB):
        planned = job.next_t
        if planned is not None and planned <= at:
            return  # an earlier wake-up will arm this one afterwards
        job.schedule_removal()
    job_queue.run_once(_wake, when=at, name=WAKE_JOB, job_kwargs=JOB_KWARGS)


async def rearm(application: Application[Any, Any, Any, Any, Any, Any]) -> datetime | None:
    """Arm the wake-up for the next digest of any school (after a schedule changed, say)."""
    app = educonnect(application)
    upcoming = await app.db.run(next_digest_at, tz=app.settings.tz)
    if upcoming is not None:
        arm(application, upcoming)
    return upcoming


async def _compose(
    application: Application[Any, Any, Any, Any, Any, Any],
    *,
    school_id: int,
    kind: DigestKind,
    late: bool,
    now: datetime,
) -> tuple[DigestMessage, dict[str, Any]]:
    app = educonnect(application)
    tz = app.settings.tz
    content = await app.db.run(
        digest_content,
        school_id=school_id,
        now=now,
        with_missing=kind is DigestKind.FINAL,
        tz=tz,
    )
    # The chart is drawn there: CPU-bound, kept off the event loop.
    message = await asyncio.to_thread(compose_digest, content, kind=kind, late=late, tz=tz)
    return message, digest_snapshot(content)


async def _deliver(
    application: Application[Any, Any, Any, Any, Any, Any], chat_id: int, message: DigestMessage
) -> bool:
    """Send the text, the chart and the document to one director; False if it did not go (a
    director who blocked the bot is skipped for the whole digest, and recorded at the first
    403; the others still get it)."""
    bot = application.bot

    async def send() -> None:
        await bot.send_message(chat_id, message.text)
        if message.chart_png is not None:
            # Named, so that it saves as a picture rather than « application.octet-stream ».
            await bot.send_photo(chat_id, message.chart_png, filename="activation.png")
        if message.document is not None:
            filename, data = message.document
            await bot.send_document(chat_id, data, filename=filename)

    return await deliver(application, chat_id, send) is Delivery.DELIVERED


async def _send(
    application: Application[Any, Any, Any, Any, Any, Any],
    *,
    run_id: int,
    school_id: int,
    kind: DigestKind,
    late: bool,
    chat_ids: tuple[int, ...],
) -> int:
    """Compose the claimed digest, send it to each chat, record it; how many chats got it."""
    app = educonnect(application)
    now = utcnow()
    try:
        message, snapshot = await _compose(
            application, school_id=school_id, kind=kind, late=late, now=now
        )
    except ServiceError as error:  # the school disappeared meanwhile
        log.warning("digest of school %s not composed (%s)", school_id, error)
        return 0
    delivered = 0
    for chat_id in chat_ids:
        delivered += await _deliver(application, chat_id, message)
    await app.db.run(mark_digest_sent, run_id=run_id, snapshot=snapshot, sent_at=utcnow())
    return delivered


async def _send_due(application: Application[Any, Any, Any, Any, Any, Any], due: DueDigest) -> int:
    app = educonnect(application)
    run_id = await app.db.run(
        claim_digest, school_id=due.school_id, kind=due.kind, due_at=due.due_at, late=due.late
    )
    if run_id is None:
        return 0  # another process (or an earlier pass) sends this one
    return await _send(
        application,
        run_id=run_id,
        school_id=due.school_id,
        kind=due.kind,
        late=due.late,
        chat_ids=due.director_ids,
    )


async def send_due_digests(
    application: Application[Any, Any, Any, Any, Any, Any], *, now: datetime | None = None
) -> int:
    """Send every digest owed now (one message set per school and director), then arm the next
    wake-up; how many digests went out."""
    app = educonnect(application)
    lock = _locks.setdefault(application, asyncio.Lock())
    sent = 0
    async with lock:
        due = await app.db.run(due_digests, now=now, tz=app.settings.tz)
        for item in due:
            try:
                sent += bool(await _send_due(application, item))
            except Exception:  # one school's failure must not stop the others' digests
                log.exception("the digest of school %s failed", item.school_id)
        await rearm(application)
    return sent


async def send_digest_now(
    application: Application[Any, Any, Any, Any, Any, Any], *, school_id: int, chat_id: int
) -> bool:
    """Send the school's digest now to one director's chat (/digest « send one now »)."""
    app = educonnect(application)
    now = utcnow()
    run_id = await app.db.run(
        claim_digest, school_id=school_id, kind=DigestKind.MANUAL, due_at=now, now=now
    )
    if run_id is None:
        return False  # the same instant twice: the first one is on its way
    delivered = await _send(
        application,
        run_id=run_id,
        school_id=school_id,
        kind=DigestKind.MANUAL,
        late=False,
        chat_ids=(chat_id,),
    )
    return delivered > 0


async def _wake(context: BotContext) -> None:
    """Send the digests due now."""
    await send_due_digests(context.application)


async def _sweep(context: BotContext) -> None:
    """Look for digests owed that no wake-up was armed for (the safety net)."""
    await send_due_digests(context.application)


def setup(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Send what is owed once the application runs (late, if it was due while the process was
    down), then at each digest's time, with a sweep every `SWEEP_INTERVAL` seconds."""
    job_queue = application.job_queue
    if job_queue is None:  # pragma: no cover - the job-queue extra is a dependency
        log.error("no job queue: no digest will be sent")
        return
    job_queue.run_once(_wake, when=0, name=WAKE_JOB, job_kwargs=JOB_KWARGS)
    job_queue.run_repeating(
        _sweep, interval=SWEEP_INTERVAL, first=SWEEP_INTERVAL, name=SWEEP_JOB, job_kwargs=JOB_KWARGS
    )
