"""The hourly job of automatic reminders (issue 11, §3), driven through PTB's JobQueue on a
controlled clock: nothing on a Sunday, then on Monday morning an e-mail to each family due one
and a message in its linked chat — a chat that blocked the bot is skipped, the others go on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from sqlmodel import Session, col, select

from bot.jobs.reminders import JOB_KWARGS, JOB_NAME
from bot.services.accounts.credentials import CredentialKind, issue_credentials, mark_distributed
from models import DistributionChannel, FamilyChat, FamilyReminder, OutboxMessage
from tests.factories import SchoolWithGuardians, make_school_with_guardians
from tests.handlers.conftest import BotHarness

PARIS = ZoneInfo("Europe/Paris")
SUNDAY = datetime(2026, 12, 13, 10, 30, tzinfo=PARIS)
MONDAY = datetime(2026, 12, 14, 10, 30, tzinfo=PARIS)


def school_of_waiting_families(session: Session, *, chats: Sequence[int]) -> SchoolWithGuardians:
    """Three guardians with an address, e-mailed ten days before MONDAY and not activated,
    reminders on; the first ones' chats linked to `chats`."""
    built = make_school_with_guardians(session, 3)
    notified_at = (MONDAY - timedelta(days=10)).astimezone(UTC)
    issue_credentials(
        session=session,
        account_ids=built.account_ids,
        kind=CredentialKind.FIRST,
        actor="t",
        now=notified_at,
    )
    mark_distributed(
        session=session,
        account_ids=built.account_ids,
        channel=DistributionChannel.EMAIL,
        actor="t",
        at=notified_at,
    )
    for guardian, chat_id in zip(built.guardians, chats, strict=False):
        session.add(FamilyChat(telegram_user_id=chat_id, guardian_id=guardian.id or 0))
    built.school.reminders_enabled = True
    session.add(built.school)
    session.flush()
    return built


def reminders(session: Session) -> dict[int, list[str]]:
    """account id → channels of each automatic reminder."""
    rows = session.exec(select(FamilyReminder).order_by(col(FamilyReminder.id))).all()
    return {row.account_id: row.channels for row in rows}


async def run_hourly_job_at(harness: BotHarness, moment: datetime) -> None:
    """Let the clock reach `moment`, then the job queue's next hourly run, and wait for it."""
    scheduler = harness.app.job_queue.scheduler  # type: ignore[union-attr]
    (job,) = harness.app.job_queue.get_jobs_by_name(JOB_NAME)  # type: ignore[union-attr]
    done = asyncio.Event()

    def finished(event: JobEvent) -> None:
        if event.job_id == job.job.id:
            done.set()

    scheduler.add_listener(finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    try:
        with time_machine.travel(moment, tick=True):
            planned = job.next_t
            assert planned is not None
            if planned <= moment:
                # Woken long after its planned run (the clock jumped): a run missed by more than
                # the grace time is not made up; the job is rescheduled for its next hour.
                scheduler.wakeup()
                await asyncio.wait_for(done.wait(), 5)
            next_run = job.next_t
        assert next_run is not None and next_run > moment
        assert next_run - moment <= timedelta(hours=1)
        done.clear()
        with time_machine.travel(next_run, tick=True):
            scheduler.wakeup()
            await asyncio.wait_for(done.wait(), 10)
    finally:
        scheduler.remove_listener(finished)


async def test_the_hourly_job_is_registered_at_start(bot_harness: BotHarness) -> None:
    jobs = bot_harness.app.job_queue.get_jobs_by_name(JOB_NAME)  # type: ignore[union-attr]
    assert len(jobs) == 1
    assert jobs[0].job.misfire_grace_time == JOB_KWARGS["misfire_grace_time"]
    assert jobs[0].job.coalesce is True

    await bot_harness.restart()

    assert len(bot_harness.app.job_queue.get_jobs_by_name(JOB_NAME)) == 1  # type: ignore[union-attr]


async def test_families_are_reminded_on_monday_morning_not_on_sunday(
    bot_harness: BotHarness,
) -> None:
    linked = bot_harness.new_family("Camille")
    blocked = bot_harness.new_family("Éloïse")
    built = bot_harness.call(school_of_waiting_families, chats=[linked.id, blocked.id])
    first, second, third = built.account_ids
    await blocked.block()
    await bot_harness.settle()

    await run_hourly_job_at(bot_harness, SUNDAY)
    assert bot_harness.call(reminders) == {}

    await run_hourly_job_at(bot_harness, MONDAY)

    assert bot_harness.call(reminders) == {
        first: ["email", "chat"],
        second: ["email"],  # the chat blocked the bot: by e-mail only
        third: ["email"],  # no linked chat
    }
    queued = bot_harness.call(
        lambda session: session.exec(
            select(OutboxMessage.account_id).where(
                col(OutboxMessage.kind) == "credentials_reminder"
            )
        ).all()
    )
    assert sorted(queued) == sorted(built.account_ids)
    message = await linked.next_message()
    assert "École Jules Ferry" in message.content
    assert built.accounts[0].identifier in message.content
    assert "pas encore activé" in message.content or "not activated" in message.content

    # The next hour, nobody is reminded twice.
    await run_hourly_job_at(bot_harness, MONDAY + timedelta(hours=1))
    assert len(bot_harness.call(reminders)) == 3
    await linked.expect_no_message()
