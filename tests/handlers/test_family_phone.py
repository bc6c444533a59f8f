"""A family shares its phone number with the welcome's « 📱 Partager mon numéro » button: a number
the school has links the chat and brings a single-use activation button; anything else gets one
polite answer that reveals nothing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlmodel import Session

from bot.i18n import _, use_language
from bot.sandbox.botapi import ChatMessage, SandboxUser
from bot.services.accounts import MAX_CONTACT_SHARES_PER_DAY, normalise_phone
from bot.services.accounts.family_links import linked_guardians
from handlers import family_phone
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness

pytestmark = pytest.mark.timeout(60)


def _fr(message: str) -> str:
    """`message` as the bot says it in French (the tests' users speak French)."""
    with use_language("fr"):
        return _(message)


def _school(
    session: Session, *, names: Sequence[tuple[str, str]], phones: Sequence[str]
) -> list[int]:
    """A school whose guardians have these ONDE mobile numbers; their ids."""
    built = make_school_with_guardians(session, len(names), names=names)
    for guardian, phone in zip(built.guardians, phones, strict=True):
        guardian.phone_mobile = phone
        guardian.mobile_e164 = normalise_phone(phone)
        session.add(guardian)
    session.flush()
    return [g.id for g in built.guardians if g.id is not None]


async def _welcome(harness: BotHarness, family: SandboxUser) -> ChatMessage:
    await family.send_text("/start")
    welcome = await family.next_message()
    assert family.contact_button == _fr("📱 Share my number")
    return welcome


async def _answers(family: SandboxUser, count: int) -> list[ChatMessage]:
    return [await family.next_message() for _ in range(count)]


async def test_own_number_in_telegrams_format_links_and_gives_the_activation_button(
    bot_harness: BotHarness,
) -> None:
    [guardian_id, _other] = bot_harness.call(
        _school, names=[("Inès", "Gonçalves"), ("Léo", "Martin")],
        phones=["06 12 34 56 78", "06 98 76 54 32"],
    )  # fmt: skip
    family = bot_harness.new_family("Inès", phone_number="33612345678")
    welcome = await _welcome(bot_harness, family)
    assert "Telegram" in welcome.content  # why sharing the number is enough
    assert family.reply_buttons is not None

    await family.tap(_fr("📱 Share my number"))
    linked, button = await _answers(family, 2)

    assert "Inès GONÇALVES" in linked.content
    assert linked.remove_keyboard and family.reply_keyboard is None
    [[(label, url)]] = button.buttons
    assert label == _fr("Activate my account")
    assert url is not None
    assert url.startswith(f"{bot_harness.settings.portal_url}/telephone/")
    assert any(ch.isdigit() for ch in button.content)  # « … jusqu'à 14:35 »
    [link] = bot_harness.call(linked_guardians, telegram_user_id=family.id)
    assert link.guardian_id == guardian_id


async def test_someone_elses_or_a_typed_contact_gets_the_unknown_answer(
    bot_harness: BotHarness,
) -> None:
    bot_harness.call(_school, names=[("Inès", "Gonçalves")], phones=["06 12 34 56 78"])
    stranger = bot_harness.new_family("Eve")
    await stranger.share_contact("+33 6 99 99 99 99")
    [unknown, ask] = await _answers(stranger, 2)
    with use_language("fr"):
        assert unknown.content == family_phone.unknown_number()
    assert ask.button_labels == [_fr("✍️ Ask the school")]

    # Inès's number, but sent by Eve as someone else's card or typed in: same answer.
    await stranger.share_contact("33612345678", user_id=stranger.id + 1, first_name="Inès")
    [forwarded, _ask] = await _answers(stranger, 2)
    await stranger.share_contact("0612345678", user_id=None, first_name="Inès")
    [typed, _ask] = await _answers(stranger, 2)
    assert forwarded.content == typed.content == unknown.content
    assert "Inès" not in unknown.content
    assert bot_harness.call(linked_guardians, telegram_user_id=stranger.id) == []


async def test_a_family_phone_asks_which_one_then_links(bot_harness: BotHarness) -> None:
    [marie, paul] = bot_harness.call(
        _school, names=[("Marie", "Dupont"), ("Paul", "Durand")],
        phones=["06.12.34.56.78", "+33 6 12 34 56 78"],
    )  # fmt: skip
    family = bot_harness.new_family("Marie", phone_number="33612345678")
    await _welcome(bot_harness, family)
    await family.tap(_fr("📱 Share my number"))
    _several, choice = await _answers(family, 2)
    assert sorted(choice.button_labels) == ["Marie D.", "Paul D."]
    assert "Dupont" not in choice.content and "Durand" not in choice.content
    assert bot_harness.call(linked_guardians, telegram_user_id=family.id) == []

    await family.press(choice, "Marie D.")
    linked, button = await _answers(family, 2)
    assert "Marie DUPONT" in linked.content
    assert button.button_labels == [_fr("Activate my account")]
    [link] = bot_harness.call(linked_guardians, telegram_user_id=family.id)
    assert link.guardian_id == marie != paul


async def test_the_fourth_share_of_the_day_is_refused(bot_harness: BotHarness) -> None:
    bot_harness.call(_school, names=[("Inès", "Gonçalves")], phones=["06 12 34 56 78"])
    family = bot_harness.new_family("Eve")
    answers = []
    for attempt in range(MAX_CONTACT_SHARES_PER_DAY):
        await family.share_contact(f"+33 6 99 99 99 {attempt:02d}")
        answers += (await _answers(family, 2))[:1]
    assert len({a.content for a in answers}) == 1
    await family.share_contact("33612345678")  # even the right number
    [limited] = await _answers(family, 1)
    assert limited.content != answers[0].content
    assert any(ch.isdigit() for ch in limited.content)  # when to try again
    assert bot_harness.call(linked_guardians, telegram_user_id=family.id) == []


async def test_a_director_gets_no_phone_button(bot_harness: BotHarness) -> None:
    director = await bot_harness.new_director()
    assert director.user.contact_button is None
    await director.user.send_text("/start")
    await director.user.next_message()
    assert director.user.contact_button is None
    assert director.user.reply_keyboard is None


async def test_a_linked_family_is_not_asked_for_its_number_again(bot_harness: BotHarness) -> None:
    bot_harness.call(_school, names=[("Inès", "Gonçalves")], phones=["06 12 34 56 78"])
    family = bot_harness.new_family("Inès", phone_number="33612345678")
    await _welcome(bot_harness, family)
    await family.tap(_fr("📱 Share my number"))
    await _answers(family, 2)

    await family.send_text("/start")
    welcome = await family.next_message()
    assert welcome.content
    assert family.contact_button is None and family.reply_keyboard is None
