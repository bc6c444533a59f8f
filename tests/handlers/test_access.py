"""Access control: families are refused politely, directors only reach their own schools."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import Session, col

from bot.services.schools import create_inspector_invitation, remove_director
from bot.services.schools.directors import directed_schools
from handlers.menus import INSPECTOR_COMMANDS
from models import Director
from tests.handlers.conftest import BotHarness


async def test_family_calling_a_director_command_gets_a_polite_refusal(
    bot_harness: BotHarness,
) -> None:
    await bot_harness.new_director("0750099A")
    family = bot_harness.new_family()

    await family.send_text("/ecole")
    refusal = await family.next_message()

    assert "/start" in refusal.content
    assert "/aide" in refusal.content
    assert "0750099A" not in refusal.content
    assert refusal.inline_keyboard == ()


async def test_director_of_one_school_is_told_there_is_nothing_to_switch(
    bot_harness: BotHarness,
) -> None:
    director = await bot_harness.new_director()

    await director.user.send_text("/ecole")
    answer = await director.user.next_message()

    assert director.uai in answer.content
    assert answer.inline_keyboard == ()


async def test_director_of_two_schools_switches_with_buttons(bot_harness: BotHarness) -> None:
    first = await bot_harness.new_director(school_name="École A")
    second = await bot_harness.new_director(school_name="École B", user=first.user)
    user = first.user

    await user.send_text("/ecole")
    choice = await user.next_message()
    assert sorted(choice.button_labels) == sorted(
        [f"École A ({first.uai})", f"✅ École B ({second.uai})"]
    )
    callback = await user.press(choice, f"École A ({first.uai})")
    await user.answer_for(callback)
    switched = await user.next_edit()

    assert first.uai in switched.content
    assert f"✅ École A ({first.uai})" in switched.button_labels
    await user.send_text("/aide")
    assert first.uai in (await user.next_message()).content


async def test_director_can_name_the_school_to_switch_to(bot_harness: BotHarness) -> None:
    first = await bot_harness.new_director(school_name="École A")
    await bot_harness.new_director(school_name="École B", user=first.user)

    await first.user.send_text(f"/ecole {first.uai.lower()}")
    answer = await first.user.next_message()

    assert first.uai in answer.content
    await first.user.send_text("/aide")
    assert first.uai in (await first.user.next_message()).content


async def test_button_of_a_school_no_longer_directed_shows_nothing_of_it(
    bot_harness: BotHarness,
) -> None:
    first = await bot_harness.new_director(school_name="École A")
    second = await bot_harness.new_director(school_name="École B", user=first.user)
    user = first.user
    await user.send_text("/ecole")
    choice = await user.next_message()
    with Session(bot_harness.engine) as session:
        session.execute(
            delete(Director).where(
                col(Director.telegram_user_id) == user.id,
                col(Director.school_id) == first.school_id,
            )
        )
        session.commit()

    callback = await user.press(choice, f"École A ({first.uai})")
    answer = await user.answer_for(callback)

    assert answer.show_alert
    assert [s.id for s in bot_harness.call(directed_schools, telegram_user_id=user.id)] == [
        second.school_id
    ]
    await user.send_text("/aide")
    help_text = (await user.next_message()).content
    assert second.uai in help_text
    assert first.uai not in help_text


async def test_a_removed_director_is_refused_and_their_menu_reset(
    bot_harness: BotHarness,
) -> None:
    director = await bot_harness.new_director()
    user, server = director.user, bot_harness.server
    scope = {"type": "chat", "chat_id": user.id}
    assert server.commands(scope) and server.commands(scope, language_code="en")
    bot_harness.call(remove_director, uai=director.uai, telegram_user_id=user.id, actor="cli:test")

    await user.send_text("/classes")
    refusal = await user.next_message()
    await bot_harness.settle()

    assert director.uai not in refusal.content
    assert "/start" in refusal.content
    assert server.commands(scope) == [] and server.commands(scope, language_code="en") == []
    # The next refusal is the families' one: nothing left to reset.
    await user.send_text("/classes")
    assert (await user.next_message()).content != refusal.content


async def test_an_inspector_who_no_longer_directs_gets_the_inspector_menu_back(
    bot_harness: BotHarness,
) -> None:
    director = await bot_harness.new_director()
    user, server = director.user, bot_harness.server
    invite = bot_harness.call(create_inspector_invitation, uais=[director.uai], actor="test")
    await user.send_text(f"/start {invite.code}")
    await user.next_message()
    await bot_harness.settle()
    assert [c for c, _d in server.commands({"type": "chat", "chat_id": user.id})] != [
        command for command, _description in INSPECTOR_COMMANDS
    ]
    bot_harness.call(remove_director, uai=director.uai, telegram_user_id=user.id, actor="cli:test")

    await user.send_text("/classes")
    await user.next_message()
    await bot_harness.settle()

    assert [c for c, _d in server.commands({"type": "chat", "chat_id": user.id})] == [
        command for command, _description in INSPECTOR_COMMANDS
    ]


async def test_a_family_refused_a_director_command_keeps_the_family_menu(
    bot_harness: BotHarness,
) -> None:
    family = bot_harness.new_family()
    before = bot_harness.server.commands()

    await family.send_text("/classes")
    await family.next_message()
    await bot_harness.settle()

    assert bot_harness.server.commands() == before
    assert bot_harness.server.commands({"type": "chat", "chat_id": family.id}) == []
