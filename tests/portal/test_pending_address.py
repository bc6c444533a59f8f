"""An address typed at activation is only pending until its confirmation link is followed: the
school's address stays on file meanwhile (reminders and resets keep going there), every new
confirmation link goes to the pending address, and a re-import lets only a confirmed address
override ONDE's. Someone holding a stolen letter and a birth date cannot redirect the real
parent's mail by typing their own address."""

from __future__ import annotations

from bot.db import session_scope
from bot.services.portal import RequestStatus, send_confirmation_link_again
from bot.services.roster import correct_guardian_email
from models import AccountState
from tests.portal.conftest import (
    CHILD_BIRTH_DATE,
    MAIL_FROM,
    NEW_PASSWORD,
    PORTAL_URL,
    Browser,
    Family,
    PortalHarness,
    make_family,
)

SCHOOL_ADDRESS = "parent0@example.org"
TYPED_ADDRESS = "intrus@example.net"


async def _start_activation(portal: PortalHarness, family: Family, address: str) -> Browser:
    browser = portal.browser()
    reply = await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert reply.status_code == 303
    reply = await browser.post(
        "/activation/finaliser",
        {
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "email": address,
            "birth_date": CHILD_BIRTH_DATE.strftime("%d/%m/%Y"),
        },
    )
    assert reply.status_code == 303, reply.text
    return browser


async def test_the_typed_address_is_on_file_only_once_confirmed(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _start_activation(portal, family, TYPED_ADDRESS)
    assert portal.account(family).state == AccountState.ACTIVATING
    # The school's address stays on file; the link goes to the typed one.
    assert portal.guardian(family).email == SCHOOL_ADDRESS
    [row] = portal.outbox("activation_confirmation")
    assert row.to_address == TYPED_ADDRESS
    waiting = await browser.get("/activation/attente")
    assert TYPED_ADDRESS in waiting.text

    # Sending the link again, from the portal, goes to the pending address.
    reply = await browser.post("/activation/renvoyer")
    assert reply.status_code == 303
    assert [r.to_address for r in portal.outbox("activation_confirmation")] == [TYPED_ADDRESS] * 2
    assert portal.guardian(family).email == SCHOOL_ADDRESS

    reply = await browser.post(portal.link_path("activation_confirmation"))
    assert reply.status_code == 200
    assert portal.account(family).state == AccountState.ACTIVATED
    assert portal.guardian(family).email == TYPED_ADDRESS


async def test_the_directors_link_again_goes_to_the_pending_address(
    portal: PortalHarness, family: Family
) -> None:
    await _start_activation(portal, family, TYPED_ADDRESS)
    with session_scope(portal.engine) as session:
        result = send_confirmation_link_again(
            session,
            account_id=family.account_id,
            actor="director:42",
            school_id=family.school_id,
            portal_url=PORTAL_URL,
            mail_from=MAIL_FROM,
            now=portal.clock(),
        )
    assert result.status == RequestStatus.ACCEPTED
    assert portal.outbox("activation_confirmation")[-1].to_address == TYPED_ADDRESS
    assert portal.guardian(family).email == SCHOOL_ADDRESS


async def test_a_directors_correction_replaces_the_pending_address(
    portal: PortalHarness, family: Family
) -> None:
    # The family mistyped its address and asked the school: the link to the typo stops
    # working and a new one goes to the corrected address.
    await _start_activation(portal, family, "parent0@exmaple.org")
    typo_link = portal.link_path("activation_confirmation")
    with session_scope(portal.engine) as session:
        correct_guardian_email(
            session,
            school_id=family.school_id,
            account_id=family.account_id,
            email="parent.martin@example.org",
            actor="director:42",
            portal_url=PORTAL_URL,
            mail_from=MAIL_FROM,
            now=portal.clock(),
        )
    assert portal.outbox("activation_confirmation")[-1].to_address == "parent.martin@example.org"
    browser = portal.browser()
    assert (await browser.post(typo_link)).status_code == 410
    reply = await browser.post(portal.link_path("activation_confirmation"))
    assert reply.status_code == 200
    assert portal.guardian(family).email == "parent.martin@example.org"


async def test_a_family_without_an_address_on_file_has_none_until_it_confirms(
    portal: PortalHarness,
) -> None:
    family = make_family(portal, email=None)
    browser = await _start_activation(portal, family, "nouveau@example.org")
    assert portal.guardian(family).email is None
    assert portal.outbox("activation_confirmation")[-1].to_address == "nouveau@example.org"
    await browser.post(portal.link_path("activation_confirmation"))
    assert portal.guardian(family).email == "nouveau@example.org"
