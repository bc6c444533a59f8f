"""The district's inspector (IEN) with the running bot: the operator invites her with the CLI
(`inspector invite UAI UAI --json`), she redeems the code with `/start`, her `/etat` shows the
district (text, then the chart as a PNG photo), `/etat UAI` one of her schools read-only, and
a school she does not follow is refused without a word of what it holds."""

from __future__ import annotations

import pytest

from bot.sandbox.botapi import ThreadedBotApi
from bot.sandbox.onde_generator import demo_school, generate_school
from bot.services.roster import import_roster
from bot.services.schools import add_school
from tests.e2e.conftest import CITY, REPLY_TIMEOUT, SCHOOL_NAME, UAI, BotProcess
from tests.e2e.steps import contains, say

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

PNG = b"\x89PNG\r\n\x1a\n"
NEIGHBOUR = "École Louise Michel"
OUTSIDE = "École Voisine Hors Circonscription"


def test_an_inspector_invited_by_the_cli_sees_her_district_and_nothing_else(
    bot: BotProcess, bot_api: ThreadedBotApi
) -> None:
    # Three schools (through the services: each CLI process costs seconds), two with their
    # families imported; the operator's invitation through the real CLI.
    neighbour = generate_school(seed="e2e-district", pupils=30, index=1)
    outside = generate_school(seed="e2e-district", pupils=30, index=2)
    for uai, name, files in (
        (UAI, SCHOOL_NAME, demo_school().files),
        (neighbour.uai, NEIGHBOUR, neighbour.files),
        (outside.uai, OUTSIDE, []),
    ):
        school = bot.service(add_school, uai=uai, name=name, city=CITY, actor="e2e")
        if files:
            bot.service(import_roster, school_id=school.id, files=files, actor="e2e")

    invite = bot.cli_json("inspector", "invite", UAI, neighbour.uai.lower())
    assert {school["uai"] for school in invite["schools"]} == {UAI, neighbour.uai}
    assert invite["start_command"] == f"/start {invite['code']}"

    inspector = bot_api.new_user("Nadia", last_name="Benali")
    welcome = say(inspector, invite["start_command"], contains(UAI, neighbour.uai))
    assert outside.uai not in welcome.content

    district = say(inspector, "/etat", contains(SCHOOL_NAME, NEIGHBOUR))
    assert "2 écoles" in district.content and OUTSIDE not in district.content
    chart = inspector.wait_for(lambda m: m.photo is not None, REPLY_TIMEOUT)
    assert chart.photo is not None and chart.photo.data.startswith(PNG)

    school = say(inspector, f"/etat {neighbour.uai}", contains(NEIGHBOUR))
    assert "lecture seule" in school.content and "/envoyer" not in school.content

    refusal = say(inspector, f"/etat {outside.uai}", contains(outside.uai))
    assert OUTSIDE not in refusal.content
    assert not refusal.inline_keyboard and refusal.photo is None
