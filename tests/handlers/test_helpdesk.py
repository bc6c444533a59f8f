"""The help desk in the chat: a family files a request (linked or not), every director of the
school gets it with its buttons, a director answers or closes it, and the family is told; the
limits, a forged button from another school, and a restart in the middle of a request."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlmodel import Session

from bot.i18n import _, use_language
from bot.sandbox.botapi import ChatMessage, SandboxUser
from bot.services.accounts import normalise_phone
from bot.services.helpdesk import MAX_REQUESTS_PER_DAY
from handlers.helpdesk import conversation
from models import HelpRequest, HelpStatus, OutboxMessage
from tests.factories import make_school_with_guardians
from tests.handlers.conftest import BotHarness

pytestmark = pytest.mark.timeout(90)

_REFERENCE = re.compile(r"D-\d{4}-\d{4}")


def _fr(message: str) -> str:
    with use_language("fr"):
        return _(message)


def _school(session: Session, uai: str, names: Sequence[tuple[str, str]]) -> dict[str, int]:
    built = make_school_with_guardians(session, len(names), uai=uai, names=names)
    for index, guardian in enumerate(built.guardians):
        guardian.phone_mobile = f"06 12 34 56 {index:02d}"
        guardian.mobile_e164 = normalise_phone(guardian.phone_mobile)
        session.add(guardian)
    session.flush()
    assert built.school.id is not None
    return {"school_id": built.school.id}


async def _director_of(
    harness: BotHarness, school_id: int, name: str = "Directrice"
) -> SandboxUser:
    person = harness.server.new_user(name)
    await person.send_text(f"/start {harness.invite(school_id)}")
    await harness.settle()
    person.drain()
    return person


async def _setup(harness: BotHarness) -> tuple[int, SandboxUser, SandboxUser]:
    ids = harness.call(_school, uai="0590042K", names=[("Léa", "Dubois"), ("Marc", "Petit")])
    first = await _director_of(harness, ids["school_id"], "Directrice")
    second = await _director_of(harness, ids["school_id"], "Adjoint")
    return ids["school_id"], first, second


async def _file_unlinked_question(family: SandboxUser, text: str) -> ChatMessage:
    await family.send_text("/question")
    await family.next_message()  # « a few questions first »
    await family.next_message()  # which school?
    await family.send_text("0590042K")
    choices = await family.next_message()
    await family.press(choices, choices.inline_keyboard[0][0].text)
    await family.next_message()  # your name?
    await family.send_text("Léa Dubois")
    await family.next_message()  # a child's name?
    await family.send_text("Enfant Dubois")
    await family.next_message()  # class?
    await family.send_text("CM1")
    await family.next_message()  # your question
    await family.send_text(text)
    return await family.next_message()


async def test_unlinked_family_files_a_question_and_every_director_gets_it(
    bot_harness: BotHarness,
) -> None:
    _school_id, first, second = await _setup(bot_harness)
    family = bot_harness.new_family("Léa")

    filed = await _file_unlinked_question(family, "Mon fils <Léo> n'apparaît pas")

    reference = _REFERENCE.search(filed.content)
    assert reference is not None
    for director in (first, second):
        note = await director.next_message()
        assert reference.group(0) in note.content
        assert "<Léo>" in note.content  # escaped in HTML, shown as typed
        assert "Léa DUBOIS" in note.content  # matched by the names given
        labels = [b.text for row in note.inline_keyboard for b in row]
        assert _fr("💬 Reply") in labels and _fr("📁 Close") in labels


async def test_the_directors_are_told_at_once_and_a_slow_chat_holds_no_one_back(
    bot_harness: BotHarness,
) -> None:
    school_id, first, second = await _setup(bot_harness)
    third = await _director_of(bot_harness, school_id, "Adjointe")
    directors = {person.id: person for person in (first, second, third)}
    # Telegram makes each director's chat wait a second: told one after another, the family's
    # update would take three, and the first attempt to the last director would come after the
    # first director's retry.
    for chat_id in directors:
        bot_harness.server.inject_fault("sendMessage", status=429, retry_after=1, chat_id=chat_id)
    since = len(bot_harness.server.calls)

    await _file_unlinked_question(bot_harness.new_family("Léa"), "Le code ne marche pas")

    for person in directors.values():
        assert _REFERENCE.search((await person.next_message()).content)
    chats = [
        int(call.params["chat_id"])
        for call in bot_harness.server.calls_to("sendMessage")
        if call.seq >= since and int(call.params["chat_id"]) in directors
    ]
    assert sorted(chats) == sorted([*directors, *directors])  # one 429, then one notice each
    assert set(chats[:3]) == set(directors)  # every first try before any retry


async def test_director_reply_reaches_the_family_and_the_request_is_answered(
    bot_harness: BotHarness,
) -> None:
    _school_id, director, _other = await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    await _file_unlinked_question(family, "Où est mon identifiant ?")
    note = await director.next_message()

    await director.press(note, _fr("💬 Reply"))
    await director.next_message()  # type your answer
    await director.send_text("Votre identifiant est dans le cahier de liaison.")
    told = await family.next_message()
    assert "cahier de liaison" in told.content
    done = await director.next_message()
    assert _REFERENCE.search(done.content)

    await family.send_text("/demande")
    mine = await family.next_message()
    assert _fr("✅ answered") in mine.content
    [request] = bot_harness.call(
        lambda session: list(session.execute(select(HelpRequest)).scalars())
    )
    assert request.status == HelpStatus.ANSWERED


async def test_closing_tells_the_family(bot_harness: BotHarness) -> None:
    _school_id, director, _other = await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    await _file_unlinked_question(family, "Merci de me rappeler")
    note = await director.next_message()
    await director.press(note, _fr("📁 Close"))
    told = await family.next_message()
    assert _REFERENCE.search(told.content)
    assert "/question" in told.content


async def test_a_director_of_another_school_cannot_open_the_request(
    bot_harness: BotHarness,
) -> None:
    _school_id, director, _other = await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    await _file_unlinked_question(family, "Bonjour")
    note = await director.next_message()
    outsider = await bot_harness.new_director()
    open_data = next(
        b.callback_data for row in note.inline_keyboard for b in row if b.text == _fr("📁 Close")
    )
    assert open_data is not None
    await outsider.user.send_text("/demandes")
    listing = await outsider.user.next_message()
    assert "Bonjour" not in listing.content
    for data in (open_data.replace("end", "open"), open_data, open_data.replace("end", "rep")):
        press = await outsider.user.press_data(listing, data)
        answer = await outsider.user.answer_for(press)
        assert answer.show_alert
    await outsider.user.expect_no_message()
    await family.expect_no_message()


async def test_a_chat_files_at_most_three_requests_a_day(bot_harness: BotHarness) -> None:
    await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    for _attempt in range(MAX_REQUESTS_PER_DAY):
        filed = await _file_unlinked_question(family, "Question")
        assert _REFERENCE.search(filed.content)
    await family.send_text("/question")
    refused = await family.next_message()
    assert str(MAX_REQUESTS_PER_DAY) in refused.content
    assert "/demande" in refused.content


async def test_a_restart_in_the_middle_of_a_request_loses_nothing(
    bot_harness: BotHarness,
) -> None:
    _school_id, director, _other = await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    await family.send_text("/question")
    await family.next_message()
    await family.next_message()
    await family.send_text("Jules Ferry")
    choices = await family.next_message()
    await family.press(choices, choices.inline_keyboard[0][0].text)
    await family.next_message()  # your name?
    await bot_harness.settle()

    await bot_harness.restart()

    await family.send_text("Léa Dubois")
    await family.next_message()
    await family.send_text("Enfant Dubois")
    await family.next_message()
    await family.send_text("CM1")
    await family.next_message()
    await family.send_text("Après le redémarrage")
    filed = await family.next_message()
    assert _REFERENCE.search(filed.content)
    note = await director.next_message()
    assert "Après le redémarrage" in note.content


async def test_free_text_proposes_the_matching_path(bot_harness: BotHarness) -> None:
    await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    await family.send_text("J'ai perdu mon identifiant")
    proposal = await family.next_message()
    [[button]] = proposal.inline_keyboard
    await family.press(proposal, button.text)
    answer = await family.next_message()
    assert _fr("📱 Share my number") == family.contact_button
    assert "identifi" in answer.content.lower()


async def test_linked_family_gets_its_identifier_and_a_new_password_once_a_day(
    bot_harness: BotHarness,
) -> None:
    await _setup(bot_harness)
    family = bot_harness.new_family("Léa", phone_number="33612345600")
    await family.send_text("/start")
    await family.next_message()
    await family.tap(_fr("📱 Share my number"))
    await family.next_message()
    await family.next_message()

    await family.send_text("/identifiant")
    shown = await family.next_message()
    assert "lea.dubois" in shown.content

    await family.send_text("/motdepasse")
    offer = await family.next_message()
    await family.press(offer, _fr("✉️ Send me a new password"))
    sent = await family.next_message()
    assert "@" in sent.content
    queued = bot_harness.call(
        lambda session: list(session.execute(select(OutboxMessage)).scalars())
    )
    assert len(queued) == 1

    await family.send_text("/motdepasse")
    offer = await family.next_message()
    await family.press(offer, _fr("✉️ Send me a new password"))
    again = await family.next_message()
    assert (
        "@" not in again.content
        or _fr("An e-mail was already sent recently.")[:20] in again.content
    )
    queued = bot_harness.call(
        lambda session: list(session.execute(select(OutboxMessage)).scalars())
    )
    assert len(queued) == 1


async def test_a_schools_poster_link_preselects_the_school(bot_harness: BotHarness) -> None:
    _school_id, director, _other = await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    await family.send_text("/start ecole_0590042k")
    welcome = await family.next_message()
    assert "Jules Ferry" in welcome.content
    assert family.contact_button == _fr("📱 Share my number")
    await family.send_text("/question")
    await family.next_message()  # a few questions first
    school = await family.next_message()
    assert [b.text for row in school.inline_keyboard for b in row] == ["École Jules Ferry"]
    await family.press(school, "École Jules Ferry")
    await family.next_message()  # your name?
    for answer in ("Marc Petit", "Enfant Petit", "CM1"):
        await family.send_text(answer)
        await family.next_message()
    await family.send_text("Bonjour")
    filed = await family.next_message()
    assert _REFERENCE.search(filed.content)
    note = await director.next_message()
    assert "Marc PETIT" in note.content


async def test_an_unknown_poster_link_says_so(bot_harness: BotHarness) -> None:
    family = bot_harness.new_family("Léa")
    await family.send_text("/start ecole_9999999Z")
    answer = await family.next_message()
    assert "/aide" in answer.content


async def test_a_request_left_unfinished_times_out_and_says_how_to_start_again(
    bot_harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation, "TIMEOUT_SECONDS", 1)
    await bot_harness.restart()  # the conversations are built again, with the short timeout
    await _setup(bot_harness)
    family = bot_harness.new_family("Léa")
    await family.send_text("/question")
    await family.next_message()  # a few questions first
    await family.next_message()  # which school?
    stopped = await family.next_message(timeout=10)
    assert "/question" in stopped.content
    await family.send_text("Jules Ferry")  # no longer a step: nothing is searched
    answer = await family.next_message()
    assert "D-" not in answer.content and _fr("Tap your child's school:") != answer.content
