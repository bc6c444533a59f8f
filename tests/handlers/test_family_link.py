"""`/start <code>` with the code of a letter's bot QR code: the family's chat is linked to its
guardian and told where the account stands and what to do next; never a password."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from bot.services.accounts.family_links import (
    create_link_codes,
    known_bot_username,
    linked_guardians,
)
from bot.services.distribution.flows import prepare_paper_letters
from bot.services.letters.content import Letter
from handlers import start
from models import Account, AccountState, FamilyChat, Guardian, utcnow
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness

pytestmark = pytest.mark.timeout(60)

PORTAL = "https://portail.example.org"


def _school(session: Session, **options: Any) -> int:
    built = make_school_with_guardians(session, 2, with_email=False, **options)
    assert built.school.id is not None
    return built.school.id


def print_letters(harness: BotHarness, school_id: int) -> list[Letter]:
    """Print the school's letters as /pdf would, with the bot's own username."""
    username = harness.call(known_bot_username)
    paper = harness.call(
        prepare_paper_letters,
        school_id=school_id,
        scope_tokens=["ecole"],
        actor="test",
        bot_username=username,
        portal_url=PORTAL,
    )
    return list(paper.letters)


async def test_the_letters_deep_link_links_the_chat_and_shows_the_next_step(
    bot_harness: BotHarness,
) -> None:
    # The bot remembered its username at start, for the letters' deep links.
    assert bot_harness.call(known_bot_username) == bot_harness.server.bot.username
    school_id = bot_harness.call(_school, names=[("Inès", "Gonçalves"), ("Léo", "Martin")])
    letter = print_letters(bot_harness, school_id)[0]
    assert letter.bot_link_url is not None and letter.family_link_code is not None
    assert letter.bot_link_url.startswith(f"https://t.me/{bot_harness.server.bot.username}?start=")

    family = bot_harness.new_family("Inès")
    await family.send_text(f"/start {letter.family_link_code}")
    reply = await family.next_message()

    assert "Inès GONÇALVES" in reply.content
    assert "🟠" in reply.content  # notified, not activated
    assert letter.identifier in reply.content
    assert bot_harness.settings.portal_url in reply.content
    assert letter.password is not None and letter.password not in reply.content
    linked = bot_harness.call(linked_guardians, telegram_user_id=family.id)
    assert [g.account_id for g in linked] == [letter.account_id]

    # Sent again by the same person: still linked, said so; by someone else: refused.
    await family.send_text(f"/start {letter.family_link_code}")
    again = await family.next_message()
    assert "Inès GONÇALVES" in again.content
    stranger = bot_harness.new_family("Eve")
    await stranger.send_text(f"/start {letter.family_link_code}")
    refusal = await stranger.next_message()
    assert "Inès" not in refusal.content
    assert bot_harness.call(linked_guardians, telegram_user_id=stranger.id) == []


async def test_the_code_of_an_activated_account_no_longer_links_a_chat(
    bot_harness: BotHarness,
) -> None:
    school_id = bot_harness.call(_school)
    letter = print_letters(bot_harness, school_id)[0]

    def activate(session: Session) -> None:
        account = session.get(Account, letter.account_id)
        assert account is not None
        account.state = AccountState.ACTIVATED
        session.add(account)

    bot_harness.call(activate)
    family = bot_harness.new_family()
    await family.send_text(f"/start {letter.family_link_code}")
    reply = await family.next_message()
    # A lost letter of an activated account opens nothing: the phone or the school instead.
    assert "déjà activé" in reply.content and "Partager mon numéro" in reply.content
    assert letter.identifier not in reply.content
    assert bot_harness.call(linked_guardians, telegram_user_id=family.id) == []


async def test_an_old_or_expired_code_gets_a_clear_answer_and_links_nothing(
    bot_harness: BotHarness,
) -> None:
    school_id = bot_harness.call(_school)
    old = print_letters(bot_harness, school_id)[0]
    print_letters(bot_harness, school_id)  # a newer letter for everyone: the old code is void

    family = bot_harness.new_family()
    await family.send_text(f"/start {old.family_link_code}")
    superseded = await family.next_message()
    assert "ne reconnais pas" not in superseded.content  # not « unknown »: a clear reason

    def expired_code(session: Session) -> str:
        # The only code of an account of another school, whose validity is over.
        account_id = make_school_with_guardians(session, 1).account_ids[0]
        past = utcnow() - timedelta(days=1)
        return create_link_codes(
            session=session, expiries={account_id: past}, now=past - timedelta(days=1)
        )[account_id]

    code = bot_harness.call(expired_code)
    await family.send_text(f"/start {code}")
    expired = await family.next_message()
    assert expired.content != superseded.content
    assert bot_harness.call(lambda session: session.execute(select(FamilyChat)).first()) is None


async def test_wrong_codes_are_throttled_like_invitations(
    bot_harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    school_id = bot_harness.call(_school)
    letter = print_letters(bot_harness, school_id)[0]
    now = [1_000_000.0]
    monkeypatch.setattr(start, "clock", lambda: now[0])
    family = bot_harness.new_family()
    for attempt in range(start.MAX_FAILED_CODES):
        await family.send_text(f"/start f_{attempt:032d}")
        await family.next_message()

    # Even the right code waits now, and links nothing.
    await family.send_text(f"/start {letter.family_link_code}")
    throttled = await family.next_message()
    assert letter.identifier not in throttled.content
    assert bot_harness.call(linked_guardians, telegram_user_id=family.id) == []

    now[0] += start.FAILED_CODES_WINDOW + 1
    await family.send_text(f"/start {letter.family_link_code}")
    linked = await family.next_message()
    assert letter.identifier in linked.content


async def test_the_answer_is_in_the_guardians_language_when_telegram_gives_none(
    bot_harness: BotHarness,
) -> None:
    school_id = bot_harness.call(_school)
    english, french = print_letters(bot_harness, school_id)

    def prefer_english(session: Session) -> None:
        account = session.get(Account, english.account_id)
        assert account is not None
        guardian = session.get(Guardian, account.guardian_id)
        assert guardian is not None
        guardian.preferred_language = "en"
        session.add(guardian)

    bot_harness.call(prefer_english)
    unknown_language = bot_harness.new_family(language_code=None)
    await unknown_language.send_text(f"/start {english.family_link_code}")
    assert "This chat is now linked" in (await unknown_language.next_message()).content

    # No language known anywhere: French, the reference.
    other = bot_harness.new_family(language_code=None)
    await other.send_text(f"/start {french.family_link_code}")
    assert "Cette conversation est maintenant reliée" in (await other.next_message()).content
