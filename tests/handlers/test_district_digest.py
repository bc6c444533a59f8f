"""The inspector's weekly district digest, sent by PTB's JobQueue on a controlled clock: Monday
08:00 local time (across the October DST change), once, with the chart; the next week's says
what changed; one missed while the bot was down comes once, late, after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.jobs import send_due_district_digests
from bot.jobs.district_digests import WAKE_JOB
from bot.sandbox.botapi import SandboxUser
from bot.services.schools import create_inspector_invitation
from models import Account, AccountState, DistrictDigestRun
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness

START = datetime(2026, 10, 24, 10, tzinfo=UTC)  # Saturday before the October DST change
MONDAY = datetime(2026, 10, 26, 7, tzinfo=UTC)  # 08:00 in Paris, winter time


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=True) as traveller:
        yield traveller


def _school(session: Session, *, uai: str, name: str) -> int:
    built = make_school_with_guardians(session, n=4, uai=uai)
    built.school.name = name
    session.add(built.school)
    assert built.school.id is not None
    return built.school.id


def _activate(session: Session, *, count: int) -> None:
    """Activate `count` more accounts of the district."""
    ids = session.exec(
        select(Account.id).where(col(Account.state) != AccountState.ACTIVATED).limit(count)
    ).all()
    session.execute(
        update(Account).where(col(Account.id).in_(ids)).values(state=AccountState.ACTIVATED)
    )


def _runs(session: Session) -> list[tuple[int, datetime, bool, bool]]:
    rows = session.exec(select(DistrictDigestRun).order_by(col(DistrictDigestRun.id)))
    return [(r.telegram_user_id, r.due_at, r.late, r.sent_at is not None) for r in rows]


async def _inspector(harness: BotHarness) -> SandboxUser:
    harness.call(_school, uai="0750001A", name="École Hugo")
    harness.call(_school, uai="0750002B", name="École Ferry")
    invite = harness.call(create_inspector_invitation, uais=["0750001A", "0750002B"], actor="t")
    user = harness.new_family("Inspectrice")
    await user.send_text(f"/start {invite.code}")
    await user.next_message()
    user.drain()
    await send_due_district_digests(harness.app)  # arm the wake-up for Monday
    return user


async def _tick(harness: BotHarness, clock: time_machine.Traveller, at: datetime) -> None:
    clock.move_to(at)
    job_queue = harness.app.job_queue
    assert job_queue is not None
    job_queue.scheduler.wakeup()
    await asyncio.sleep(0.2)


async def _sent(harness: BotHarness, count: int) -> list[tuple[int, datetime, bool, bool]]:
    for _ in range(200):
        runs = harness.call(_runs)
        if sum(run[3] for run in runs) >= count:
            return runs
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} district digests were not sent: {harness.call(_runs)}")


def _armed_at(harness: BotHarness) -> datetime | None:
    job_queue = harness.app.job_queue
    assert job_queue is not None
    jobs = job_queue.get_jobs_by_name(WAKE_JOB)
    return jobs[0].next_t.astimezone(UTC) if jobs and jobs[0].next_t else None


async def _armed_for(harness: BotHarness, at: datetime) -> None:
    """Wait until the job has armed its next wake-up (after the digest's row is written)."""
    for _ in range(200):
        if _armed_at(harness) == at:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the next district digest is armed for {_armed_at(harness)}, not {at}")


async def test_the_district_digest_comes_on_monday_at_eight_with_its_chart(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    inspector = await _inspector(bot_harness)
    await _armed_for(bot_harness, MONDAY)

    await _tick(bot_harness, clock, MONDAY - timedelta(minutes=1))
    assert bot_harness.call(_runs) == []
    await _tick(bot_harness, clock, MONDAY + timedelta(seconds=1))
    runs = await _sent(bot_harness, 1)
    text = await inspector.next_message()
    chart = await inspector.next_message()

    assert runs == [(inspector.id, MONDAY, False, True)]
    assert "Bilan hebdomadaire de la circonscription — 2 écoles" in text.content
    assert "École Hugo" in text.content and "École Ferry" in text.content
    assert chart.photo is not None and chart.photo.data.startswith(b"\x89PNG")
    # The next one is armed for the Monday after.
    await _armed_for(bot_harness, MONDAY + timedelta(days=7))


async def test_the_next_week_says_what_changed(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    inspector = await _inspector(bot_harness)
    await _tick(bot_harness, clock, MONDAY + timedelta(seconds=1))
    await _sent(bot_harness, 1)
    await _armed_for(bot_harness, MONDAY + timedelta(days=7))
    inspector.drain()

    bot_harness.call(_activate, count=3)
    await _tick(bot_harness, clock, MONDAY + timedelta(days=7, seconds=1))
    await _sent(bot_harness, 2)
    text = (await inspector.next_message()).content

    assert "+3" in text and "activés depuis lundi 26 octobre" in text, text


async def test_a_district_digest_missed_while_down_comes_once_late(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    inspector = await _inspector(bot_harness)
    await bot_harness.stop()
    clock.move_to(MONDAY + timedelta(hours=3))

    await bot_harness.start(install_menus=False)
    late = await inspector.next_message()
    await _sent(bot_harness, 1)
    await bot_harness.restart()
    await _tick(bot_harness, clock, MONDAY + timedelta(hours=4))
    await asyncio.sleep(0.3)

    assert "en retard" in late.content
    assert bot_harness.call(_runs) == [(inspector.id, MONDAY, True, True)]
