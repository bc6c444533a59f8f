"""What a hostile or broken client sends the portal: a body announced then dropped, NUL
characters in a form, and the most common passwords dressed up to pass the length rules."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.services.portal.forms import Problem, new_password_problems
from bot.services.portal.passwords_common import is_common_password
from tests.portal.conftest import (
    CHILD_BIRTH_DATE,
    NEW_PASSWORD,
    Family,
    PortalHarness,
    activate,
)

# --- A body announced, then dropped -----------------------------------------------------------


async def test_a_body_announced_but_dropped_is_answered_quietly(
    sqlite_portal: PortalHarness, caplog: pytest.LogCaptureFixture
) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/connexion",
        "raw_path": b"/connexion",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"portal.test"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"500"),
        ],
        "client": ("203.0.113.7", 50000),
        "server": ("portal.test", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}  # the client went away before sending its body

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.DEBUG):
        await sqlite_portal.app(scope, receive, send)  # raised ClientDisconnect before
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    starts = [message for message in sent if message["type"] == "http.response.start"]
    assert [message["status"] for message in starts] == [400]
    assert sqlite_portal.throttles() == []


# --- NUL characters -----------------------------------------------------------------------------


async def test_a_nul_character_in_a_form_is_refused_before_the_database(
    portal: PortalHarness, family: Family
) -> None:
    browser = portal.browser()
    reply = await browser.post(
        "/connexion", {"identifier": family.identifier + "\x00", "password": "x"}
    )
    assert reply.status_code == 400
    assert 'name="password"' not in reply.text  # the error page, not the form to try again
    assert portal.throttles() == [] and portal.events("portal.login_failed") == []

    reply = await browser.post("/identifiant-oublie", {"email": "a\x00@example.org"})
    assert reply.status_code == 400
    assert portal.outbox() == []


async def test_a_nul_character_in_the_activation_form_changes_nothing(
    portal: PortalHarness, family: Family
) -> None:
    browser = portal.browser()
    await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    reply = await browser.post(
        "/activation/finaliser",
        {
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "email": "famille\x00@example.org",
            "birth_date": CHILD_BIRTH_DATE.strftime("%d/%m/%Y"),
        },
    )
    assert reply.status_code == 400
    assert portal.outbox("activation_confirmation") == []
    assert portal.tokens() == []


# --- Common passwords ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Motdepasse123!",
        "MotDePasse-2024",
        "Azerty123456!",
        "P@ssw0rd2024!!",
        "Soleil-2025!!",
        "Bonjour123456!",
        "Doudou2016!!!",
        "Chouchou-2024!",
        "Jetaime-2024!!",
        "JeTaime-2023!!",
        "Marseille2024!",
        "Motdépasse-123",
        "Loulou123456!",
        "Qwertyuiop-12",
        "Nicolas-2015!!",
    ],
)
def test_the_most_common_passwords_are_refused(password: str) -> None:
    assert is_common_password(password)
    problems = new_password_problems(password, password, identifier="camille.martin")
    assert problems == {"new_password": Problem.PASSWORD_COMMON}


@pytest.mark.parametrize(
    "password", [NEW_PASSWORD, "Rentrée-Sept-2027", "Cheval-Batterie-42!", "Tableau-Noir-1882"]
)
def test_other_passwords_are_not_taken_for_common_ones(password: str) -> None:
    assert not is_common_password(password)


async def test_the_portal_refuses_a_common_password_with_a_reason(
    portal: PortalHarness, family: Family
) -> None:
    browser = portal.browser()
    await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    reply = await browser.post(
        "/activation/finaliser",
        {
            "new_password": "Azerty123456!",
            "confirm_password": "Azerty123456!",
            "email": "famille@example.org",
            "birth_date": CHILD_BIRTH_DATE.strftime("%d/%m/%Y"),
        },
    )
    assert reply.status_code == 400
    assert 'id="new_password-error"' in reply.text
    assert portal.tokens() == []

    # « Mon compte » and the reset link check it too.
    family_browser = await activate(portal, family)
    await family_browser.log_in(family.identifier, NEW_PASSWORD)
    reply = await family_browser.post(
        "/compte/mot-de-passe",
        {
            "current_password": NEW_PASSWORD,
            "new_password": "Motdepasse123!",
            "confirm_password": "Motdepasse123!",
        },
    )
    assert reply.status_code == 400 and 'id="new_password-error"' in reply.text
