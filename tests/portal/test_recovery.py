"""« Mot de passe oublié » and « identifiant oublié »: a single-use link valid 30 minutes, the
identifiers by e-mail, and the same words whether or not an account matched."""

from __future__ import annotations

import re

from bot.services.accounts.passwords import verify_password
from models import AccountState
from tests.portal.conftest import (
    NEW_PASSWORD,
    Family,
    PortalHarness,
    activate,
    mail_text,
    make_family,
)

ADDRESS = "famille.martin@example.org"
RESET_PASSWORD = "Cartable-Rouge-2028"


def _words(html: str) -> str:
    """The page without its CSRF token (which differs for every session)."""
    return re.sub(r'value="[^"]*"', 'value=""', html)


async def _ask_reset(portal: PortalHarness, identifier: str, address: str) -> str:
    reply = await portal.browser().post(
        "/mot-de-passe-oublie", {"identifier": identifier, "email": address}
    )
    assert reply.status_code == 200, reply.text
    return reply.text


async def test_a_forgotten_password_is_replaced_through_a_single_use_link(
    portal: PortalHarness, family: Family
) -> None:
    await activate(portal, family, email=ADDRESS)
    await _ask_reset(portal, family.identifier, ADDRESS.upper())
    [row] = portal.outbox("password_reset_link")
    assert row.to_address == ADDRESS
    link = portal.link_path("password_reset_link")
    assert family.identifier in mail_text(portal.mail("password_reset_link"))
    token = portal.tokens()[-1]
    assert (
        token.expires_at.replace(tzinfo=None) - token.created_at.replace(tzinfo=None)
    ).seconds == 1800

    browser = portal.browser()
    page = await browser.get(link)
    assert page.status_code == 200 and family.identifier in page.text
    # A weak password is refused and the link still works.
    reply = await browser.post(link, {"new_password": "abc", "confirm_password": "abc"})
    assert reply.status_code == 400 and 'id="new_password-error"' in reply.text
    assert verify_password(portal.account(family).password_hash, NEW_PASSWORD)
    reply = await browser.post(
        link, {"new_password": RESET_PASSWORD, "confirm_password": RESET_PASSWORD}
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/connexion"
    account = portal.account(family)
    assert verify_password(account.password_hash, RESET_PASSWORD)
    assert account.state == AccountState.ACTIVATED
    assert "account.password_changed" in portal.actions(family)

    # The link worked once.
    reply = await browser.post(
        link, {"new_password": "Autre-Mot-2029!", "confirm_password": "Autre-Mot-2029!"}
    )
    assert reply.status_code == 410
    assert (await browser.get(link)).status_code == 410
    assert verify_password(portal.account(family).password_hash, RESET_PASSWORD)
    assert (await browser.log_in(family.identifier, RESET_PASSWORD)).status_code == 303


async def test_a_reset_link_expires_after_30_minutes(portal: PortalHarness, family: Family) -> None:
    await activate(portal, family, email=ADDRESS)
    await _ask_reset(portal, family.identifier, ADDRESS)
    link = portal.link_path("password_reset_link")
    portal.clock.advance(minutes=30, seconds=1)
    browser = portal.browser()
    assert (await browser.get(link)).status_code == 410
    reply = await browser.post(
        link, {"new_password": RESET_PASSWORD, "confirm_password": RESET_PASSWORD}
    )
    assert reply.status_code == 410
    assert verify_password(portal.account(family).password_hash, NEW_PASSWORD)
    assert [e.details["reason"] for e in portal.events("portal.link_refused")] == [
        "expired",
        "expired",
    ]


async def test_a_newer_reset_link_replaces_the_older_one(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    await activate(sqlite_portal, sqlite_family, email=ADDRESS)
    await _ask_reset(sqlite_portal, sqlite_family.identifier, ADDRESS)
    first = sqlite_portal.link_path("password_reset_link")
    await _ask_reset(sqlite_portal, sqlite_family.identifier, ADDRESS)
    second = sqlite_portal.link_path("password_reset_link")
    assert first != second
    assert (await sqlite_portal.browser().get(first)).status_code == 410
    assert (await sqlite_portal.browser().get(second)).status_code == 200


async def test_the_forgotten_password_page_says_the_same_whatever_the_account(
    portal: PortalHarness, family: Family
) -> None:
    await activate(portal, family, email=ADDRESS)
    not_activated = make_family(portal, names=("Inès", "Nguyen"), email="ines@example.org")
    answers = [
        await _ask_reset(portal, family.identifier, ADDRESS),  # the one that sends
        await _ask_reset(portal, family.identifier, "someone.else@example.org"),
        await _ask_reset(portal, "nobody.here", ADDRESS),
        await _ask_reset(portal, not_activated.identifier, "ines@example.org"),
    ]
    assert len({_words(answer) for answer in answers}) == 1
    assert len(portal.outbox("password_reset_link")) == 1
    reasons = [e.details["reason"] for e in portal.events("portal.password_reset_refused")]
    assert reasons == ["other_address", "unknown_identifier", "not_activated"]
    # The audit log does not keep what a visitor typed.
    for event in portal.events("portal.password_reset_refused"):
        assert "someone.else" not in str(event.details) and "nobody" not in str(event.details)


async def test_reset_mails_to_one_account_are_limited_without_saying_so(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    await activate(sqlite_portal, sqlite_family, email=ADDRESS)
    answers = set()
    for index in range(4):
        page = await sqlite_portal.browser(client=f"192.0.2.{index}").post(
            "/mot-de-passe-oublie", {"identifier": sqlite_family.identifier, "email": ADDRESS}
        )
        assert page.status_code == 200
        answers.add(_words(page.text))
    assert len(answers) == 1
    # The activation e-mail counts too: 3 e-mails an hour to one account at most.
    assert len(sqlite_portal.outbox("password_reset_link")) == 2


async def test_one_client_asking_too_often_is_told_to_wait(
    sqlite_portal: PortalHarness,
) -> None:
    browser = sqlite_portal.browser(client="192.0.2.99")
    for index in range(10):
        reply = await browser.post("/identifiant-oublie", {"email": f"x{index}@example.org"})
        assert reply.status_code == 200
    reply = await browser.post("/identifiant-oublie", {"email": "x@example.org"})
    assert reply.status_code == 429
    sqlite_portal.clock.advance(hours=1, seconds=1)
    reply = await browser.post("/identifiant-oublie", {"email": "x@example.org"})
    assert reply.status_code == 200


async def test_forgotten_identifiers_are_sent_to_the_address_on_file(
    portal: PortalHarness,
) -> None:
    shared = "parents.martin@example.org"
    first = make_family(portal, email=shared)
    second = make_family(portal, names=("Paul", "Martin"), email=shared)
    stranger = make_family(portal, names=("Inès", "Nguyen"), email="ines@example.org")
    known = await portal.browser().post(
        "/identifiant-oublie", {"email": "Parents.Martin@example.org"}
    )
    unknown = await portal.browser().post("/identifiant-oublie", {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert _words(known.text) == _words(unknown.text)
    [row] = portal.outbox("identifier_reminder")
    assert row.to_address == shared
    text = mail_text(portal.mail("identifier_reminder"))
    assert first.identifier in text and second.identifier in text
    assert stranger.identifier not in text
    assert first.password not in text and second.password not in text  # never a password
    assert "/connexion" in text
    sent = portal.events("portal.identifier_reminder_sent")
    assert {event.account_id for event in sent} == {first.account_id, second.account_id}
    [refused] = portal.events("portal.identifier_reminder_refused")
    assert refused.details == {"reason": "unknown_address"} and refused.account_id is None


async def test_forms_of_the_forgotten_pages_check_their_fields(
    sqlite_portal: PortalHarness,
) -> None:
    browser = sqlite_portal.browser()
    reply = await browser.post("/mot-de-passe-oublie", {"identifier": "", "email": "nope"})
    assert reply.status_code == 400
    assert 'id="identifier-error"' in reply.text and 'id="email-error"' in reply.text
    reply = await browser.post("/identifiant-oublie", {"email": ""})
    assert reply.status_code == 400 and 'id="email-error"' in reply.text
    assert sqlite_portal.outbox() == []
