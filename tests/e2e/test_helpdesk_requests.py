"""Help requests end to end, the bot as a process: an unlinked family finds its way from free text
to a request the director answers; a birth-date request the director closes; a restart of the
process in the middle of a request; a chat's daily limit, and a forged button from a director of
another school.

The guided self-help of linked families: `test_helpdesk.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.botapi import ThreadedBotApi
from bot.sandbox.onde_generator import demo_school
from bot.services.helpdesk import MAX_REQUESTS_PER_DAY
from bot.services.schools.registry import add_school, create_invitation
from models import HelpStatus
from tests.e2e.conftest import REPLY_TIMEOUT, UAI, BotProcess, SeededSchool
from tests.e2e.steps import (
    REFERENCE,
    answer_names,
    answer_who_questions,
    become_director,
    contains,
    data_of,
    family_records,
    forge_press,
    fr,
    import_samples,
    link_by_phone,
    offering,
    request_of,
    say,
    tap,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

UNKNOWN_NUMBER = "33699887766"  # nobody in the demo school has it
WHICH_SCHOOL = "Which school is your child in? Type its name, its town or its UAI (e.g. 0590001A)."
YOUR_NAME = "Your first name and last name, as the school knows them?"
YOUR_QUESTION = (
    "Type your question for the school in one message (for example: « my son Léo is missing from "
    "my account »)."
)


@pytest.fixture
def imported_school(bot: BotProcess, tmp_path: Path) -> SeededSchool:
    """The demo school, its ONDE files imported."""
    seeded = bot.seed_school()
    demo_school().write(tmp_path / "demo")
    import_samples(bot, seeded, tmp_path / "demo")
    return seeded


def _reference(text: str) -> str:
    found = REFERENCE.search(text)
    assert found is not None, text
    return found[0]


def _another_school(session: Any) -> str:
    """A second school using the bot; its director invitation code."""
    other = add_school(session=session, uai="0590042K", name="École Victor Hugo", actor="e2e")
    assert other.id is not None
    code, _ = create_invitation(session=session, school_id=other.id, actor="e2e")
    return code


def test_unlinked_family_asks_the_school_from_free_text_and_gets_the_directors_answer(
    bot: BotProcess, bot_api: ThreadedBotApi, imported_school: SeededSchool
) -> None:
    director = become_director(bot_api, imported_school)
    family = bot_api.new_user("Karim", last_name="Benali", phone_number=UNKNOWN_NUMBER)

    proposal = say(family, "j'ai perdu mon identifiant", offering("fh:go:identifier"))
    tap(family, proposal, "fh:go:identifier", offering("fh:file:identifier"))
    button = family.contact_button
    assert button is not None
    family.drain()
    family.tap(button)  # a number the school does not have
    unknown = family.wait_for(offering("fh:file:unknown_phone"), REPLY_TIMEOUT)
    tap(family, unknown, "fh:file:unknown_phone", contains(fr(WHICH_SCHOOL)))
    question = answer_who_questions(
        family,
        school="Jules Ferry",
        guardian="Karim Benali",
        child="Inès Benali",
        class_label="CP A",
    )
    assert offering("fr:skip")(question)
    filed = say(family, "Je n'ai jamais reçu la lettre.", contains("D-"))
    reference = _reference(filed.content)

    note = director.wait_for(contains(reference), REPLY_TIMEOUT)
    assert "Karim Benali" in note.content and "Je n'ai jamais reçu la lettre." in note.content
    assert {fr("💬 Reply"), fr("📁 Close")} <= set(note.button_labels)
    tap(director, note, "hd:rep:", contains(reference))
    answer = "Votre identifiant vous attend au secrétariat, lundi après 8 h 30."
    say(director, answer, contains(reference))
    family.wait_for(contains(reference, answer), REPLY_TIMEOUT)

    mine = say(family, "/demande", contains(reference))
    assert fr("✅ answered") in mine.content and answer in mine.content
    assert bot.service(request_of, reference=reference).status == HelpStatus.ANSWERED


def test_a_birth_date_request_closed_by_the_director_tells_the_family(
    bot: BotProcess, bot_api: ThreadedBotApi, imported_school: SeededSchool
) -> None:
    director = become_director(bot_api, imported_school)
    record = bot.service(family_records)[0]
    family = bot_api.new_user("Parent")

    offer = say(family, "/activation", offering("fh:file:birth_date"))
    tap(family, offer, "fh:file:birth_date", contains(fr(WHICH_SCHOOL)))
    question = answer_who_questions(
        family,
        school=UAI,
        guardian=record.name,
        child=record.child,
        class_label=record.class_label,
    )
    filed = tap(family, question, "fr:skip", contains("D-"))
    reference = _reference(filed.content)

    note = director.wait_for(contains(reference), REPLY_TIMEOUT)
    assert fr("Child's birth date refused") in note.content
    assert fr("found by the names given: check them") in note.content  # the record, from names
    tap(director, note, "hd:end:", contains(reference))
    closed = "The school has closed this request. If you still need help, type /question."
    family.wait_for(contains(reference, fr(closed)), REPLY_TIMEOUT)
    assert bot.service(request_of, reference=reference).status == HelpStatus.CLOSED


def test_a_restart_in_the_middle_of_a_request_loses_nothing(
    bot: BotProcess, bot_api: ThreadedBotApi, imported_school: SeededSchool
) -> None:
    director = become_director(bot_api, imported_school)
    family = bot_api.new_user("Nadia")
    say(family, "/question", contains(fr(WHICH_SCHOOL)))
    choices = say(family, "Lille", offering("fr:school:"))
    tap(family, choices, "fr:school:", contains(fr(YOUR_NAME)))

    bot.restart()

    asked = answer_names(family, guardian="Nadia Haddad", child="Sami Haddad", class_label="CE1")
    assert fr(YOUR_QUESTION) in asked.content
    filed = say(family, "Sami n'apparaît pas sur mon compte.", contains("D-"))
    reference = _reference(filed.content)
    note = director.wait_for(contains(reference), REPLY_TIMEOUT)
    assert "Sami n'apparaît pas sur mon compte." in note.content and "Nadia Haddad" in note.content
    assert offering("hd:rep:")(note)


def test_the_fourth_request_of_the_day_is_refused_and_another_school_sees_nothing(
    bot: BotProcess, bot_api: ThreadedBotApi, imported_school: SeededSchool
) -> None:
    director = become_director(bot_api, imported_school)
    record = bot.service(family_records)[0]
    family, _url = link_by_phone(bot_api, record)
    references = []
    for number in range(1, MAX_REQUESTS_PER_DAY + 1):
        say(family, "/question", contains(fr(YOUR_QUESTION)))
        filed = say(family, f"Question numéro {number}", contains("D-"))
        references.append(_reference(filed.content))

    limit = fr(
        "You have sent {count} requests to the school today: that is the most I can pass on in "
        "a day. The school will answer them; you can follow them with /demande."
    ).format(count=MAX_REQUESTS_PER_DAY)
    say(family, "/question", contains(limit))
    family.expect_no_message(0.5)  # no question asked: nothing more to type

    note = director.wait_for(contains(references[-1]), REPLY_TIMEOUT)
    request_id = data_of(note, "hd:rep:").removeprefix("hd:rep:")
    code = bot.service(_another_school)
    outsider = bot_api.new_user("Bernard")
    welcome = say(outsider, f"/start {code}", contains("Victor Hugo"))
    forged = forge_press(outsider, welcome, f"hd:open:{request_id}")
    nowhere = forge_press(outsider, welcome, "hd:open:987654")
    assert forged.show_alert and forged.text and forged.text == nowhere.text
    for secret in (references[-1], record.name, "Question numéro"):
        assert secret not in forged.text
    outsider.expect_no_message(0.5)
    assert bot.service(request_of, reference=references[-1]).status == HelpStatus.OPEN
