"""The inspector (IEN) as they use the bot: redeem an invitation for the district's schools, see
them all at a glance (furthest behind first, a chart, pages), drill into one school read-only,
never reach a school that is not theirs (typed, or forged buttons), never act, lose access the
moment the operator removes them."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.sandbox.botapi import SandboxUser
from bot.services.schools import create_inspector_invitation, remove_inspector
from models import AccountState
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness


def _school(session: Session, *, name: str, uai: str, guardians: int, activated: int) -> int:
    """A school of `guardians` accounts, the first `activated` of them activated, the others
    notified."""
    built = make_school_with_guardians(session, n=guardians, uai=uai)
    built.school.name = name
    for index, account in enumerate(built.accounts):
        account.state = AccountState.ACTIVATED if index < activated else AccountState.NOTIFIED
    session.add_all([built.school, *built.accounts])
    assert built.school.id is not None
    return built.school.id


def _district(harness: BotHarness) -> dict[str, int]:
    """Three schools: Hugo 1/4 activated, Ferry 3/4, Zola 2/4."""
    return {
        uai: harness.call(_school, name=name, uai=uai, guardians=4, activated=activated)
        for uai, name, activated in (
            ("0750001A", "École Hugo", 1),
            ("0750002B", "École Ferry", 3),
            ("0750003C", "École Zola", 2),
        )
    }


async def _inspector(
    harness: BotHarness, uais: list[str], name: str = "Inspectrice"
) -> SandboxUser:
    invite = harness.call(create_inspector_invitation, uais=uais, actor="test")
    user = harness.new_family(name)
    await user.send_text(f"/start {invite.code}")
    welcome = await user.next_message()
    assert "read-only" in welcome.content or "lecture seule" in welcome.content, welcome.content
    user.drain()
    return user


async def test_an_inspector_sees_every_school_furthest_behind_first_with_a_chart(
    bot_harness: BotHarness,
) -> None:
    _district(bot_harness)
    inspector = await _inspector(bot_harness, ["0750001A", "0750002B", "0750003C"])

    await inspector.send_text("/etat")
    overview = await inspector.next_message()
    chart = await inspector.next_message()

    text = overview.content
    assert "3 écoles" in text
    positions = [text.index(name) for name in ("École Hugo", "École Zola", "École Ferry")]
    assert positions == sorted(positions), text
    assert "25\xa0%" in text and "75\xa0%" in text
    # Totals over the district: 6 of 12 accounts activated.
    assert "6 sur 12" in text or "(6 of 12)" in text, text
    buttons = [button.text for row in overview.inline_keyboard for button in row]
    assert buttons == ["1. École Hugo", "2. École Zola", "3. École Ferry"]
    assert chart.photo is not None
    assert chart.photo.data.startswith(b"\x89PNG")


async def test_an_inspector_drills_into_a_school_read_only(bot_harness: BotHarness) -> None:
    schools = _district(bot_harness)
    inspector = await _inspector(bot_harness, list(schools))

    await inspector.send_text("/etat 0750001a")
    school = (await inspector.next_message()).content

    assert "École Hugo" in school and "0750001A" in school
    assert "lecture seule" in school
    # Counts only, and no command an inspector cannot use.
    for command in ("/envoyer", "/pdf", "/relancer", "/responsables"):
        assert command not in school
    assert "Camille" not in school and "Martin" not in school
    assert "3 responsables notifiés" in school, school


async def test_a_school_button_then_a_class_then_back_to_the_district(
    bot_harness: BotHarness,
) -> None:
    _district(bot_harness)
    inspector = await _inspector(bot_harness, ["0750001A", "0750002B"])
    await inspector.send_text("/etat")
    overview = await inspector.next_message()
    await inspector.next_message()  # the chart

    await inspector.press(overview, "1. École Hugo")
    school = await inspector.next_edit()
    assert "École Hugo" in school.content and "lecture seule" in school.content
    await inspector.press(school, "CM1")
    cm1 = await inspector.next_edit()
    assert "Classe CM1" in cm1.content, cm1.content
    await inspector.press(cm1, "⬅️ Circonscription")
    back = await inspector.next_edit()
    assert "2 écoles" in back.content


async def test_an_inspector_never_reaches_a_school_that_is_not_theirs(
    bot_harness: BotHarness,
) -> None:
    schools = _district(bot_harness)
    inspector = await _inspector(bot_harness, ["0750001A"])

    await inspector.send_text("/etat 0750002B")
    refusal = (await inspector.next_message()).content
    assert "0750002B" in refusal and "École Ferry" not in refusal

    await inspector.send_text("/etat")
    overview = await inspector.next_message()
    await inspector.next_message()  # the chart
    assert "École Ferry" not in overview.content and "École Zola" not in overview.content
    # A forged button for another school's figures, and for a director's /etat button.
    answer = await inspector.answer_for(
        await inspector.press_data(overview, f"ien:{schools['0750002B']}:e")
    )
    assert answer.show_alert and "/etat" in (answer.text or "")
    assert "École Ferry" not in inspector.message(overview.message_id).content
    await inspector.press_data(overview, "etat:e")
    assert "directeurs" in (await inspector.next_message()).content


@pytest.mark.parametrize("command", ["/envoyer ecole", "/pdf ecole", "/export", "/responsables"])
async def test_an_inspector_cannot_act_on_a_school(bot_harness: BotHarness, command: str) -> None:
    _district(bot_harness)
    inspector = await _inspector(bot_harness, ["0750001A"])

    await inspector.send_text(command)

    assert "directeurs" in (await inspector.next_message()).content


async def test_a_removed_inspector_loses_access_at_once(bot_harness: BotHarness) -> None:
    _district(bot_harness)
    inspector = await _inspector(bot_harness, ["0750001A", "0750002B"])
    await inspector.send_text("/etat")
    overview = await inspector.next_message()
    await inspector.next_message()  # the chart

    bot_harness.call(remove_inspector, telegram_user_id=inspector.id, actor="test")

    answer = await inspector.answer_for(await inspector.press(overview, "1. École Hugo"))
    assert answer.show_alert
    await inspector.send_text("/etat 0750001A")
    assert "École Hugo" not in (await inspector.next_message()).content


async def test_a_director_who_also_inspects_keeps_their_school_and_reaches_the_district(
    bot_harness: BotHarness,
) -> None:
    _district(bot_harness)
    director = await bot_harness.new_director(school_name="École Prévert")
    invite = bot_harness.call(create_inspector_invitation, uais=["0750001A"], actor="test")
    await director.user.send_text(f"/start {invite.code}")
    await director.user.next_message()

    await director.user.send_text("/etat")
    assert "École Prévert" in (await director.user.next_message()).content
    await director.user.send_text("/etat district")
    assert "École Hugo" in (await director.user.next_message()).content


async def test_a_large_district_comes_a_page_at_a_time(bot_harness: BotHarness) -> None:
    uais = [f"07501{index:02d}X" for index in range(12)]
    for index, uai in enumerate(uais):
        bot_harness.call(
            _school, name=f"École {index:02d}", uai=uai, guardians=2, activated=index % 3
        )
    inspector = await _inspector(bot_harness, uais)

    await inspector.send_text("/etat")
    first = await inspector.next_message()
    await inspector.next_message()  # the chart
    assert "page 1 sur 2" in first.content
    assert len([b for row in first.inline_keyboard for b in row if b.text[0].isdigit()]) == 10

    await inspector.press(first, "Suivante ▶️")
    second = await inspector.next_edit()
    assert "page 2 sur 2" in second.content
    assert "11." in second.content and "12." in second.content


async def test_inspector_help_and_menu(bot_harness: BotHarness) -> None:
    _district(bot_harness)
    inspector = await _inspector(bot_harness, ["0750001A"])

    await inspector.send_text("/aide")
    help_text = (await inspector.next_message()).content

    assert "/etat" in help_text and "/envoyer" not in help_text
    scope = {"type": "chat", "chat_id": inspector.id}
    assert [command for command, _text in bot_harness.server.commands(scope)] == ["etat", "aide"]
