"""/langue and the order a family's language comes from: its own choice (kept across restarts
and stored on its guardian when the chat is linked), then the school's setting for the guardian
(the guardian card's « 🌐 Langue »), then Telegram's language; else French."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from bot.i18n import _, use_language
from bot.sandbox.botapi import SandboxUser
from bot.services.accounts.family_links import known_bot_username
from bot.services.distribution.flows import prepare_paper_letters
from bot.services.letters.content import Letter
from models import Account, AuditEvent, Guardian
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness

pytestmark = pytest.mark.timeout(60)

LANGUAGES = ["Français", "English", "العربية", "Português", "Español", "Türkçe"]


def _in(language: str, message: str) -> str:
    with use_language(language):
        return _(message)


def _help_line(language: str) -> str:
    """A line of the family help (/aide), as the bot writes it in `language`."""
    return _in(
        language, "/annuler stops the operation in progress. I never ask for your password here."
    )


def _school(session: Session) -> int:
    built = make_school_with_guardians(session, 1, with_email=False, names=[("Inès", "Martin")])
    assert built.school.id is not None
    return built.school.id


def _letter(harness: BotHarness, school_id: int) -> Letter:
    paper = harness.call(
        prepare_paper_letters,
        school_id=school_id,
        scope_tokens=["ecole"],
        actor="test",
        bot_username=harness.call(known_bot_username),
        portal_url="https://portail.example.org",
    )
    return paper.letters[0]


def _guardian_language(session: Session, *, account_id: int) -> str | None:
    account = session.get(Account, account_id)
    assert account is not None
    guardian = session.get(Guardian, account.guardian_id)
    assert guardian is not None
    return guardian.preferred_language


async def _linked(harness: BotHarness, letter: Letter, language_code: str | None) -> SandboxUser:
    family = harness.new_family("Inès", language_code=language_code)
    await family.send_text(f"/start {letter.family_link_code}")
    await family.next_message()
    family.drain()
    return family


async def test_langue_offers_each_language_in_its_own_name_and_survives_a_restart(
    bot_harness: BotHarness,
) -> None:
    family = bot_harness.new_family("Ana")

    await family.send_text("/langue")
    menu = await family.next_message()
    assert [b.text.removeprefix("✅ ") for row in menu.inline_keyboard for b in row] == LANGUAGES
    await family.press(menu, "Español")
    done = await family.next_edit()
    assert done.content.startswith("✅")
    await bot_harness.restart()
    await family.send_text("/aide")

    assert _help_line("es") in (await family.next_message()).content
    assert _help_line("es") != _help_line("fr")


async def test_a_linked_familys_choice_is_stored_on_its_guardian(bot_harness: BotHarness) -> None:
    letter = _letter(bot_harness, bot_harness.call(_school))
    family = await _linked(bot_harness, letter, "fr")

    await family.send_text("/langue ar")
    reply = (await family.next_message()).content

    assert "العربية" in reply
    assert bot_harness.call(_guardian_language, account_id=letter.account_id) == "ar"
    await family.send_text("/langue français")
    await family.next_message()
    assert bot_harness.call(_guardian_language, account_id=letter.account_id) is None


async def test_the_schools_setting_beats_telegram_and_the_familys_choice_beats_both(
    bot_harness: BotHarness,
) -> None:
    school_id = bot_harness.call(_school)
    director = bot_harness.new_family("Directrice")
    await director.send_text(f"/start {bot_harness.invite(school_id)}")
    await director.next_message()
    director.drain()
    letter = _letter(bot_harness, school_id)
    family = await _linked(bot_harness, letter, "es")
    await family.send_text("/aide")
    assert _help_line("es") in (await family.next_message()).content

    # The director opens the guardian's card and sets Portuguese.
    await director.send_text("/responsables ecole")
    listing = await director.next_message()
    # The card button of the listing's « 👤 Fiche… » page.
    await director.press_data(listing, f"ga:card:{letter.account_id}")
    card = await director.next_message()
    await director.press(card, "🌐 Langue")
    languages = await director.next_edit()
    await director.press(languages, "Português")
    updated = await director.next_edit()
    assert "Langue : Português" in updated.content

    await family.send_text("/aide")
    assert _help_line("pt") in (await family.next_message()).content
    await family.send_text("/langue tr")
    await family.next_message()
    await family.send_text("/aide")
    assert _help_line("tr") in (await family.next_message()).content


async def test_a_director_cannot_set_the_language_of_another_schools_guardian(
    bot_harness: BotHarness,
) -> None:
    chat = await bot_harness.new_director()
    director = chat.user
    other_letter = _letter(bot_harness, bot_harness.call(_school))
    await director.send_text("/aide")
    listing_message = await director.next_message()

    answer = await director.answer_for(
        await director.press_data(listing_message, f"gl:{other_letter.account_id}:ar")
    )

    assert answer.show_alert
    assert bot_harness.call(_guardian_language, account_id=other_letter.account_id) is None

    def events(session: Session) -> int:
        found = session.exec(
            select(AuditEvent).where(AuditEvent.action == "guardian.language_set")
        ).all()
        return len(found)

    assert bot_harness.call(events) == 0


@pytest.mark.parametrize("language", ["en", "ar", "pt", "es", "tr"])
async def test_a_linked_family_gets_its_identifier_in_its_language(
    bot_harness: BotHarness, language: str
) -> None:
    letter = _letter(bot_harness, bot_harness.call(_school))
    family = await _linked(bot_harness, letter, language_code=None)
    await family.send_text(f"/langue {language}")
    await family.next_message()

    await family.send_text("/identifiant")
    reply = (await family.next_message()).content

    assert (
        _in(language, "<b>Your EduConnect identifier</b>").removeprefix("<b>").removesuffix("</b>")
        in reply
    )
    assert letter.identifier in reply
    if language != "en":
        assert _in(language, "<b>Your EduConnect identifier</b>") != _in(
            "fr", "<b>Your EduConnect identifier</b>"
        )
