"""/etat from a family: a linked chat sees its own account (the light, what it means, the next
step, the identifier, the children and their class, the school), never a password nor anyone
else's; an unlinked chat is told how to link it; a director's /etat is unchanged."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.i18n import _, use_language
from bot.sandbox.botapi import SandboxUser
from bot.services.accounts import begin_activation
from bot.services.accounts.family_links import known_bot_username
from bot.services.distribution.flows import prepare_paper_letters
from bot.services.letters.content import Letter
from bot.services.portal import send_confirmation_link_again
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness

pytestmark = pytest.mark.timeout(60)

PORTAL = "https://portail.example.org"


def _fr(message: str) -> str:
    """`message` as the bot says it in French (the tests' users speak French)."""
    with use_language("fr"):
        return _(message)


def _school(session: Session) -> int:
    built = make_school_with_guardians(
        session, 2, with_email=False, names=[("Inès", "Gonçalves"), ("Léo", "Martin")]
    )
    assert built.school.id is not None
    return built.school.id


def _letters(harness: BotHarness) -> list[Letter]:
    """The school's printed letters, as /pdf makes them (with their bot link codes)."""
    school_id = harness.call(_school)
    paper = harness.call(
        prepare_paper_letters,
        school_id=school_id,
        scope_tokens=["ecole"],
        actor="test",
        bot_username=harness.call(known_bot_username),
        portal_url=PORTAL,
    )
    return list(paper.letters)


async def _linked_family(harness: BotHarness, letter: Letter) -> SandboxUser:
    family = harness.new_family("Inès")
    await family.send_text(f"/start {letter.family_link_code}")
    await family.next_message()
    family.drain()
    return family


async def test_a_linked_family_sees_its_own_account_and_what_to_do_next(
    bot_harness: BotHarness,
) -> None:
    mine, other = _letters(bot_harness)
    family = await _linked_family(bot_harness, mine)

    await family.send_text("/etat")
    reply = await family.next_message()

    assert "Inès GONÇALVES" in reply.content
    assert "École Jules Ferry" in reply.content
    assert "🟠" in reply.content  # a printed letter: notified, not activated
    assert f"<code>{mine.identifier}</code>" in reply.content or mine.identifier in reply.content
    assert "Enfant (CM1)" in reply.content
    assert bot_harness.settings.portal_url in reply.content
    assert "/motdepasse" in reply.content
    assert mine.password is not None and mine.password not in reply.content
    assert other.identifier not in reply.content and "Martin" not in reply.content
    assert family.contact_button is None


async def test_an_activating_family_is_told_where_the_confirmation_link_went(
    bot_harness: BotHarness,
) -> None:
    mine, _other = _letters(bot_harness)
    family = await _linked_family(bot_harness, mine)

    def activating(session: Session) -> None:
        begin_activation(
            session,
            account_id=mine.account_id,
            new_password="Un-mot-de-passe-solide-42",
            email="ines.goncalves@example.fr",
            actor="portal",
        )
        # The link goes to the address typed at activation, pending until it is followed.
        send_confirmation_link_again(
            session,
            account_id=mine.account_id,
            actor="tests",
            portal_url=PORTAL,
            mail_from="ecole@example.org",
            email="ines.goncalves@example.fr",
        )

    bot_harness.call(activating)
    await family.send_text("/etat")
    reply = await family.next_message()

    assert "🟡" in reply.content
    assert "i•••@example.fr" in reply.content
    assert "ines.goncalves@example.fr" not in reply.content
    assert "/activation" in reply.content


async def test_an_unlinked_family_is_told_how_to_link_its_chat(bot_harness: BotHarness) -> None:
    _letters(bot_harness)
    family = bot_harness.new_family()

    await family.send_text("/etat")
    reply = await family.next_message()

    assert "/start" in reply.content
    assert family.contact_button == _fr("📱 Share my number")
    assert "GONÇALVES" not in reply.content and "🟠" not in reply.content


async def test_a_directors_etat_is_unchanged(bot_harness: BotHarness) -> None:
    director = await bot_harness.new_director("0751234X")

    await director.user.send_text("/etat")
    reply = await director.user.next_message()

    assert "0751234X" in reply.content
    assert director.user.contact_button is None
