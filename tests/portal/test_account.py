"""Logging in, the lockout after repeated failures and its release, and « mon compte »:
the children, changing the password (other sessions end) and the e-mail address (confirmed by
a link), logging out."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from bot.db import session_scope
from bot.services.accounts.lifecycle import deactivate_accounts
from bot.services.accounts.passwords import verify_password
from models import AccountState, PortalTokenPurpose, Pupil
from tests.portal.conftest import (
    NEW_PASSWORD,
    Family,
    PortalHarness,
    activate,
    make_family,
)

OTHER_PASSWORD = "Rentrée-Sept-2027"


async def test_lockout_after_five_failures_then_release(
    portal: PortalHarness, family: Family
) -> None:
    await activate(portal, family)
    browser = portal.browser()
    for attempt in range(4):
        reply = await browser.log_in(family.identifier, f"Wrong-password-{attempt}")
        assert reply.status_code == 401
        portal.clock.advance(seconds=2**attempt)  # this client's growing delay
    reply = await browser.log_in(family.identifier, "Wrong-password-5")
    assert reply.status_code == 429
    [locked] = [row for row in portal.throttles() if row.key.startswith("login-id:")]
    assert locked.locked_until is not None
    failed = portal.events("portal.login_failed")
    assert [event.details["locked"] for event in failed] == [False] * 4 + [True]
    assert all(event.account_id == family.account_id for event in failed)

    # Locked: even the right password is refused, from any browser the family never logged in
    # from, without being checked.
    reply = await portal.browser(client="198.51.100.9").log_in(family.identifier, NEW_PASSWORD)
    assert reply.status_code == 429
    assert portal.events("portal.login_refused")[-1].details == {"reason": "locked"}
    assert portal.account(family).last_access_at is not None  # from the activation only
    before = portal.account(family).last_access_at

    portal.clock.advance(minutes=15, seconds=1)
    reply = await browser.log_in(family.identifier, NEW_PASSWORD)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/compte"
    assert portal.account(family).last_access_at != before
    # A success clears the identifier's count.
    assert not [row for row in portal.throttles() if row.key.startswith("login-id:")]


async def test_one_client_guessing_many_identifiers_is_locked_out(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = sqlite_portal.browser(client="192.0.2.66")
    for index in range(19):
        reply = await browser.log_in(f"someone.{index}", "Wrong-password")
        assert reply.status_code == 401
    reply = await browser.log_in("someone.19", "Wrong-password")
    assert reply.status_code == 429
    # The family's own identifier, typed right, from that client: refused while it lasts…
    reply = await browser.log_in(sqlite_family.identifier, sqlite_family.password)
    assert reply.status_code == 429
    # …but not from anyone else.
    other = sqlite_portal.browser(client="192.0.2.67")
    reply = await other.log_in(sqlite_family.identifier, sqlite_family.password)
    assert reply.status_code == 303


async def test_the_lockout_survives_a_restart(portal: PortalHarness, family: Family) -> None:
    browser = portal.browser()
    for _attempt in range(5):
        await browser.log_in(family.identifier, "Wrong-password")
        portal.clock.advance(seconds=30)  # past this client's delay
    # A new application object on the same database: what a restart (or a second process) is.
    restarted = PortalHarness(portal.engine, portal.settings.data_dir.parent)
    restarted.clock.now = portal.clock.now
    try:
        other = restarted.browser(client="198.51.100.77")
        reply = await other.log_in(family.identifier, family.password)
        assert reply.status_code == 429
    finally:
        await restarted.aclose()


async def test_the_account_page_shows_the_children_and_the_address(
    portal: PortalHarness,
) -> None:
    family = make_family(portal, birth_dates=(None, None))
    with portal.session() as session:
        for pupil in session.exec(select(Pupil).where(Pupil.school_id == family.school_id)):
            pupil.birth_date = date(2018, 1, 1)
            session.add(pupil)
        session.commit()
    browser = portal.browser()
    await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    await browser.post(
        "/activation/finaliser",
        {
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "email": "martin@example.org",
            "birth_date": "1/1/2018",
        },
    )
    await browser.post(portal.link_path("activation_confirmation"))
    reply = await browser.log_in(family.identifier, NEW_PASSWORD)
    page = await browser.get(reply.headers["location"])
    assert page.status_code == 200
    for expected in ("Léa", "Hugo", "MARTIN", "CM1", family.identifier, "martin@example.org"):
        assert expected in page.text


async def test_the_account_page_needs_a_session(sqlite_portal: PortalHarness) -> None:
    reply = await sqlite_portal.browser().get("/compte")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/connexion"


async def test_changing_the_password_ends_the_other_sessions(
    portal: PortalHarness, family: Family
) -> None:
    await activate(portal, family)
    phone = portal.browser()
    laptop = portal.browser()
    assert (await phone.log_in(family.identifier, NEW_PASSWORD)).status_code == 303
    assert (await laptop.log_in(family.identifier, NEW_PASSWORD)).status_code == 303

    reply = await phone.post(
        "/compte/mot-de-passe",
        {
            "current_password": NEW_PASSWORD,
            "new_password": OTHER_PASSWORD,
            "confirm_password": OTHER_PASSWORD,
        },
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/compte"
    account = portal.account(family)
    assert verify_password(account.password_hash, OTHER_PASSWORD)
    assert account.state == AccountState.ACTIVATED
    assert "account.password_changed" in portal.actions(family)
    # The phone, which changed it, stays logged in; the laptop is sent back to log in.
    assert (await phone.get("/compte")).status_code == 200
    reply = await laptop.get("/compte")
    assert reply.status_code == 303 and reply.headers["location"] == "/connexion"


async def test_changing_the_password_needs_the_current_one(
    portal: PortalHarness, family: Family
) -> None:
    browser = await activate(portal, family)
    await browser.log_in(family.identifier, NEW_PASSWORD)
    before = portal.account(family).password_hash
    reply = await browser.post(
        "/compte/mot-de-passe",
        {
            "current_password": "Not-the-password-1",
            "new_password": OTHER_PASSWORD,
            "confirm_password": OTHER_PASSWORD,
        },
    )
    assert reply.status_code == 400
    assert 'id="current_password-error"' in reply.text
    assert portal.account(family).password_hash == before
    [event] = portal.events("portal.password_check_failed")
    assert event.details == {"reason": "wrong_password", "locked": False}

    reply = await browser.post(
        "/compte/mot-de-passe",
        {
            "current_password": NEW_PASSWORD,
            "new_password": "short",
            "confirm_password": "short",
        },
    )
    assert reply.status_code == 400
    assert 'id="new_password-error"' in reply.text
    assert portal.account(family).password_hash == before


async def test_changing_the_email_address_waits_for_its_link(
    portal: PortalHarness, family: Family
) -> None:
    browser = await activate(portal, family, email="avant@example.org")
    await browser.log_in(family.identifier, NEW_PASSWORD)
    reply = await browser.post(
        "/compte/adresse", {"new_email": "apres@example.org", "email_password": NEW_PASSWORD}
    )
    assert reply.status_code == 303
    assert portal.guardian(family).email == "avant@example.org"  # not before the link
    [row] = portal.outbox("email_change_confirmation")
    assert row.to_address == "apres@example.org"
    page = await browser.get("/compte")
    assert "apres@example.org" in page.text  # shown as waiting for confirmation
    link = portal.link_path("email_change_confirmation")
    confirm_page = await browser.get(link)
    assert confirm_page.status_code == 200 and "apres@example.org" in confirm_page.text
    reply = await browser.post(link)
    assert reply.status_code == 200
    assert portal.guardian(family).email == "apres@example.org"
    assert portal.account(family).state == AccountState.ACTIVATED
    assert "account.email_changed" in portal.actions(family)
    assert (await browser.post(link)).status_code == 410  # single use


async def test_changing_the_email_address_is_refused_when_wrong(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = await activate(sqlite_portal, sqlite_family, email="avant@example.org")
    await browser.log_in(sqlite_family.identifier, NEW_PASSWORD)
    cases = [
        (
            {"new_email": "apres@example.org", "email_password": "Wrong-password-1"},
            "email_password",
        ),
        ({"new_email": "pas une adresse", "email_password": NEW_PASSWORD}, "new_email"),
        ({"new_email": "AVANT@example.org", "email_password": NEW_PASSWORD}, "new_email"),
    ]
    for fields, field in cases:
        reply = await browser.post("/compte/adresse", fields)
        assert reply.status_code == 400, fields
        assert f'id="{field}-error"' in reply.text
    assert sqlite_portal.outbox("email_change_confirmation") == []
    assert sqlite_portal.guardian(sqlite_family).email == "avant@example.org"
    purposes = {token.purpose for token in sqlite_portal.tokens()}
    assert PortalTokenPurpose.EMAIL_CHANGE not in purposes


async def test_logging_out_ends_the_session(portal: PortalHarness, family: Family) -> None:
    browser = await activate(portal, family)
    await browser.log_in(family.identifier, NEW_PASSWORD)
    signed_in = await browser.get("/compte")
    assert signed_in.status_code == 200
    # The footer offers the account and logging out, not logging in again.
    footer = signed_in.text.split('class="site-footer"')[1]
    assert 'href="/compte"' in footer and "Se déconnecter" in footer
    assert 'href="/connexion"' not in footer and 'href="/activation"' not in footer
    reply = await browser.post("/deconnexion")
    assert reply.status_code == 303 and reply.headers["location"] == "/connexion"
    reply = await browser.get("/compte")
    assert reply.status_code == 303 and reply.headers["location"] == "/connexion"


async def test_a_deactivated_account_is_told_so_after_the_right_password(
    portal: PortalHarness, family: Family
) -> None:
    with session_scope(portal.engine) as session:
        deactivate_accounts(session=session, account_ids=[family.account_id], actor="import")
    reply = await portal.browser().post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert reply.status_code == 403
    assert portal.events("portal.login_refused")[-1].details == {"reason": "deactivated"}
    reply = await portal.browser().post(
        "/activation", {"identifier": family.identifier, "password": "WRONG234"}
    )
    assert reply.status_code == 401
