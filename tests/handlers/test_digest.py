"""/lsu and /digest as a director uses them: the LSU date typed or chosen with buttons, refused
with the reason; the schedule in words, changed with buttons; a digest sent on demand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlmodel import Session, select

from bot.services.scheduling import digest_settings
from models import DigestKind, DigestRun
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness, DirectorChat

NOW = datetime(2026, 12, 3, 10, tzinfo=UTC)  # a Thursday


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def _runs(session: Session) -> list[DigestRun]:
    return list(session.exec(select(DigestRun)))


async def _ask(director: DirectorChat, text: str) -> str:
    await director.user.send_text(text)
    return (await director.user.next_message()).content


async def test_lsu_date_typed_in_french_is_set(bot_harness: BotHarness) -> None:
    director = await bot_harness.new_director()

    answer = await _ask(director, "/lsu 15 janvier 2027")

    assert "15 janvier 2027" in answer
    settings = bot_harness.call(digest_settings, school_id=director.school_id)
    assert settings.lsu_date == date(2027, 1, 15)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("/lsu 01/09/2026", "1 septembre 2026"),
        ("/lsu 15/01/2028", "15 janvier 2028"),
        ("/lsu demain", "/lsu 15/01/2027"),
    ],
)
async def test_lsu_date_refused_with_the_reason(
    bot_harness: BotHarness, typed: str, reason: str
) -> None:
    director = await bot_harness.new_director()

    answer = await _ask(director, typed)

    assert reason in answer
    assert bot_harness.call(digest_settings, school_id=director.school_id).lsu_date is None


async def test_lsu_date_chosen_with_buttons(bot_harness: BotHarness) -> None:
    director = await bot_harness.new_director()
    user = director.user
    await user.send_text("/lsu")
    months = await user.next_message()
    assert "décembre 2026" in months.button_labels and "décembre 2027" in months.button_labels

    await user.answer_for(await user.press(months, "lsu:m:2027-01"))
    days = await user.next_edit()
    await user.answer_for(await user.press(days, "lsu:d:2027-01-15"))
    done = await user.next_edit()

    assert "15 janvier 2027" in done.content
    settings = bot_harness.call(digest_settings, school_id=director.school_id)
    assert settings.lsu_date == date(2027, 1, 15)


async def test_a_day_past_pressed_on_an_old_button_is_refused(bot_harness: BotHarness) -> None:
    director = await bot_harness.new_director()
    await director.user.send_text("/lsu")
    months = await director.user.next_message()

    answer = await director.user.answer_for(
        await director.user.press_data(months, "lsu:d:2026-11-30")
    )

    assert answer.show_alert and "30 novembre 2026" in (answer.text or "")
    assert bot_harness.call(digest_settings, school_id=director.school_id).lsu_date is None


async def test_digest_shows_the_schedule_and_changes_it_with_buttons(
    bot_harness: BotHarness,
) -> None:
    director = await bot_harness.new_director()
    user = director.user
    await user.send_text("/digest")
    screen = await user.next_message()
    assert "lundi" in screen.content

    await user.answer_for(await user.press(screen, "dg:day"))
    days = await user.next_edit()
    await user.answer_for(await user.press(days, "dg:weekday:2"))
    changed = await user.next_edit()
    assert "mercredi" in changed.content
    await user.answer_for(await user.press(changed, "dg:hour"))
    hours = await user.next_edit()
    await user.answer_for(await user.press(hours, "dg:at:17"))
    changed = await user.next_edit()
    await user.answer_for(await user.press(changed, "dg:pause"))
    paused = await user.next_edit()
    assert "dg:resume" in [data for row in paused.buttons for _label, data in row]
    await user.answer_for(await user.press(paused, "dg:reminders:1"))
    reminders = await user.next_edit()
    await user.answer_for(await user.press(reminders, "dg:after:10"))
    await user.next_edit()

    settings = bot_harness.call(digest_settings, school_id=director.school_id)
    assert (settings.weekday, settings.hour, settings.paused) == (2, 17, True)
    assert settings.reminders_enabled and settings.reminder_after_days == 10


async def test_send_one_now_gives_the_text_and_the_chart(bot_harness: BotHarness) -> None:
    school = bot_harness.call(make_school_with_guardians, n=4)
    assert school.school.id is not None
    code = bot_harness.invite(school.school.id)
    user = bot_harness.new_family("Directrice")
    await user.send_text(f"/start {code}")
    await bot_harness.settle()
    user.drain()

    await user.send_text("/digest")
    screen = await user.next_message()
    await user.answer_for(await user.press(screen, "dg:now"))
    text = await user.next_message()
    chart = await user.next_message()

    assert school.school.name in text.content
    assert chart.photo is not None
    await bot_harness.settle()
    runs = bot_harness.call(_runs)
    assert [(run.kind, run.sent_at is not None) for run in runs] == [(DigestKind.MANUAL, True)]


async def test_families_cannot_use_lsu_or_digest(bot_harness: BotHarness) -> None:
    family = bot_harness.new_family()
    for command in ("/lsu 15/01/2027", "/digest"):
        await family.send_text(command)
        assert "/start" in (await family.next_message()).content
