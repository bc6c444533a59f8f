"""The digests sent by PTB's JobQueue on a controlled clock (time-machine): at 08:00 local time
across the DST changes, every day in the last 7 days, the final check the day before, a digest
missed while the bot was down sent once and late after a restart, one per school and director."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlmodel import Session, col, select

from bot.jobs import send_due_digests
from bot.jobs.digests import WAKE_JOB, _locks
from bot.sandbox.botapi import ChatMessage, SandboxUser
from bot.services.scheduling import set_lsu_date
from models import DigestKind, DigestRun
from tests.handlers.conftest import BotHarness, DirectorChat

START = datetime(2026, 10, 24, 10, tzinfo=UTC)  # Saturday before the October DST change


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=True) as traveller:
        yield traveller


def _runs(session: Session) -> list[tuple[int, DigestKind, datetime, bool, bool]]:
    rows = session.exec(select(DigestRun).order_by(col(DigestRun.id)))
    return [(r.school_id, r.kind, r.due_at, r.late, r.sent_at is not None) for r in rows]


def _armed_at(harness: BotHarness) -> datetime | None:
    job_queue = harness.app.job_queue
    assert job_queue is not None
    jobs = job_queue.get_jobs_by_name(WAKE_JOB)
    return jobs[0].next_t.astimezone(UTC) if jobs and jobs[0].next_t else None


async def _tick(harness: BotHarness, clock: time_machine.Traveller, at: datetime) -> None:
    """Move the clock to `at` and let the job queue run what is due then."""
    clock.move_to(at)
    job_queue = harness.app.job_queue
    assert job_queue is not None
    job_queue.scheduler.wakeup()
    await asyncio.sleep(0.2)


async def _sent_runs(
    harness: BotHarness, count: int
) -> list[tuple[int, DigestKind, datetime, bool, bool]]:
    """The digest runs once `count` of them are sent and the next wake-up is armed."""
    for _ in range(200):
        runs = harness.call(_runs)
        if sum(run[4] for run in runs) >= count and not _pass_running(harness):
            return runs
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} digests were not sent: {harness.call(_runs)}")


def _pass_running(harness: BotHarness) -> bool:
    lock = _locks.get(harness.app)
    return lock is not None and lock.locked()


def _digests(user: SandboxUser, since: int = 1) -> list[ChatMessage]:
    """The texts the bot sent this user after its first `since` messages (the welcome)."""
    return [m for m in user.bot_messages[since:] if m.photo is None and m.document is None]


async def _director(harness: BotHarness) -> DirectorChat:
    director = await harness.new_director()
    await send_due_digests(harness.app)  # what a schedule change does: arm the next wake-up
    return director


async def test_weekly_digest_fires_at_eight_local_time_across_the_october_dst_change(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    director = await _director(bot_harness)
    monday = datetime(2026, 10, 26, 7, tzinfo=UTC)  # 08:00 CET, the day after the change
    assert _armed_at(bot_harness) == monday

    await _tick(bot_harness, clock, monday - timedelta(seconds=30))
    assert _digests(director.user) == []
    await _tick(bot_harness, clock, monday + timedelta(seconds=1))
    await director.user.next_message()

    assert await _sent_runs(bot_harness, 1) == [
        (director.school_id, DigestKind.WEEKLY, monday, False, True)
    ]
    assert _armed_at(bot_harness) == monday + timedelta(days=7)


async def test_weekly_digest_fires_at_eight_local_time_across_the_march_dst_change(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    clock.move_to(datetime(2027, 3, 20, 10, tzinfo=UTC))
    director = await _director(bot_harness)
    assert _armed_at(bot_harness) == datetime(2027, 3, 22, 7, tzinfo=UTC)  # CET
    await _tick(bot_harness, clock, datetime(2027, 3, 22, 7, 0, 1, tzinfo=UTC))
    await director.user.next_message()
    await _sent_runs(bot_harness, 1)

    assert _armed_at(bot_harness) == datetime(2027, 3, 29, 6, tzinfo=UTC)  # 08:00 CEST
    await _tick(bot_harness, clock, datetime(2027, 3, 29, 6, 0, 1, tzinfo=UTC))
    await director.user.next_message()
    assert [run[1:4] for run in await _sent_runs(bot_harness, 2)] == [
        (DigestKind.WEEKLY, datetime(2027, 3, 22, 7, tzinfo=UTC), False),
        (DigestKind.WEEKLY, datetime(2027, 3, 29, 6, tzinfo=UTC), False),
    ]


async def test_daily_digests_in_the_last_week_and_the_final_check_the_day_before(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    clock.move_to(datetime(2027, 1, 9, 12, tzinfo=UTC))  # Saturday; LSU on Friday 15
    director = await bot_harness.new_director()
    bot_harness.call(
        set_lsu_date,
        school_id=director.school_id,
        lsu_date=date(2027, 1, 15),
        today=date(2027, 1, 9),
        actor="test",
    )
    await send_due_digests(bot_harness.app)
    for sent, day in enumerate(range(10, 15)):
        eight = datetime(2027, 1, day, 7, tzinfo=UTC)
        assert _armed_at(bot_harness) == eight
        await _tick(bot_harness, clock, eight + timedelta(seconds=1))
        await _sent_runs(bot_harness, sent + 1)
    final = datetime(2027, 1, 14, 16, tzinfo=UTC)  # 17:00 in Paris
    assert _armed_at(bot_harness) == final
    await _tick(bot_harness, clock, final + timedelta(seconds=1))

    kinds = [run[1] for run in await _sent_runs(bot_harness, 6)]
    texts = [m.content for m in _digests(director.user)]
    assert len(texts) == 6 and all(director.school_name in text for text in texts)
    assert kinds == [DigestKind.DAILY] * 5 + [DigestKind.FINAL]
    # After the LSU date, the weekly digest again (Monday 18, 08:00).
    assert _armed_at(bot_harness) == datetime(2027, 1, 18, 7, tzinfo=UTC)


async def test_a_digest_missed_while_down_is_sent_once_late_after_a_restart(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    director = await _director(bot_harness)
    await bot_harness.stop()
    monday = datetime(2026, 10, 26, 7, tzinfo=UTC)
    clock.move_to(monday + timedelta(hours=3))

    await bot_harness.start(install_menus=False)
    late = await director.user.next_message()
    await _sent_runs(bot_harness, 1)
    await bot_harness.restart()
    await _tick(bot_harness, clock, monday + timedelta(hours=4))
    await _sent_runs(bot_harness, 1)

    assert director.school_name in late.content
    assert len(_digests(director.user)) == 1
    assert bot_harness.call(_runs) == [(director.school_id, DigestKind.WEEKLY, monday, True, True)]


async def test_every_director_gets_it_and_a_director_of_two_schools_gets_two(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    first = await bot_harness.new_director(school_name="École A")
    second = await bot_harness.new_director(school_name="École B", user=first.user)
    colleague = await bot_harness.new_director(school_name="École C")
    # A second director of École A.
    code = bot_harness.invite(first.school_id)
    deputy = bot_harness.new_family("Adjoint")
    await deputy.send_text(f"/start {code}")
    await bot_harness.settle()
    deputy.drain()
    await send_due_digests(bot_harness.app)

    await _tick(bot_harness, clock, datetime(2026, 10, 26, 7, 0, 1, tzinfo=UTC))
    await _sent_runs(bot_harness, 3)

    texts = [m.content for m in _digests(first.user, since=2)]  # two welcomes
    assert len(texts) == 2
    assert any("École A" in t for t in texts) and any(second.school_name in t for t in texts)
    assert len(_digests(deputy)) == 1 and "École A" in _digests(deputy)[0].content
    assert len(_digests(colleague.user)) == 1
