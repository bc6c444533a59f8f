"""Sessions end on the server, not only in the browser: a session cookie saved before logging
out, a password change or a reset opens nothing afterwards. And what a password change or an
address change does to the links and the old address."""

from __future__ import annotations

import httpx

from models import PortalTokenPurpose
from tests.portal.conftest import (
    NEW_PASSWORD,
    Browser,
    Family,
    PortalHarness,
    activate,
    mail_text,
)

OTHER_PASSWORD = "Rentrée-Sept-2027"


async def _signed_in(portal: PortalHarness, family: Family, email: str) -> Browser:
    browser = await activate(portal, family, email=email)
    reply = await browser.log_in(family.identifier, NEW_PASSWORD)
    assert reply.status_code == 303 and reply.headers["location"] == "/compte"
    return browser


def _thief_with_cookies_of(portal: PortalHarness, browser: Browser) -> Browser:
    """Another browser holding a copy of `browser`'s cookies as they are now."""
    thief = portal.browser(client="198.51.100.9")
    thief.http.cookies = httpx.Cookies(browser.http.cookies)
    return thief


async def test_a_session_cookie_saved_before_logout_opens_nothing_after(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _signed_in(portal, family, "avant@example.org")
    thief = _thief_with_cookies_of(portal, browser)
    assert (await thief.get("/compte")).status_code == 200  # the copy works while signed in

    reply = await browser.post("/deconnexion")
    assert reply.status_code == 303

    reply = await thief.get("/compte")
    assert reply.status_code == 303 and reply.headers["location"] == "/connexion"
    thief = _thief_with_cookies_of(portal, browser)  # and again, the copy as saved
    reply = await thief.post(
        "/compte/adresse", {"new_email": "voleur@example.net", "email_password": NEW_PASSWORD}
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/connexion"
    assert portal.outbox("email_change_confirmation") == []
    # Logging in again works, with a new session.
    assert (await browser.log_in(family.identifier, NEW_PASSWORD)).status_code == 303
    assert (await browser.get("/compte")).status_code == 200


async def test_a_reset_ends_every_session_even_one_saved_before(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _signed_in(portal, family, "avant@example.org")
    thief = _thief_with_cookies_of(portal, browser)
    await portal.browser().post(
        "/mot-de-passe-oublie", {"identifier": family.identifier, "email": "avant@example.org"}
    )
    link = portal.link_path("password_reset_link")
    reply = await portal.browser().post(
        link, {"new_password": OTHER_PASSWORD, "confirm_password": OTHER_PASSWORD}
    )
    assert reply.status_code == 303
    assert portal.account(family).session_version >= 1
    assert (await thief.get("/compte")).headers["location"] == "/connexion"
    assert (await browser.get("/compte")).headers["location"] == "/connexion"


async def _ask_for_new_address(browser: Browser, address: str) -> None:
    reply = await browser.post(
        "/compte/adresse", {"new_email": address, "email_password": NEW_PASSWORD}
    )
    assert reply.status_code == 303


async def test_a_password_change_revokes_a_pending_address_change(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _signed_in(portal, family, "avant@example.org")
    await _ask_for_new_address(browser, "apres@example.org")
    link = portal.link_path("email_change_confirmation")
    reply = await browser.post(
        "/compte/mot-de-passe",
        {
            "current_password": NEW_PASSWORD,
            "new_password": OTHER_PASSWORD,
            "confirm_password": OTHER_PASSWORD,
        },
    )
    assert reply.status_code == 303
    [token] = [t for t in portal.tokens() if t.purpose == PortalTokenPurpose.EMAIL_CHANGE]
    assert token.revoked_at is not None
    assert (await portal.browser().post(link)).status_code == 410
    assert portal.guardian(family).email == "avant@example.org"


async def test_a_reset_revokes_a_pending_address_change(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _signed_in(portal, family, "avant@example.org")
    await _ask_for_new_address(browser, "apres@example.org")
    change_link = portal.link_path("email_change_confirmation")
    await portal.browser().post(
        "/mot-de-passe-oublie", {"identifier": family.identifier, "email": "avant@example.org"}
    )
    reply = await portal.browser().post(
        portal.link_path("password_reset_link"),
        {"new_password": OTHER_PASSWORD, "confirm_password": OTHER_PASSWORD},
    )
    assert reply.status_code == 303
    assert (await portal.browser().post(change_link)).status_code == 410
    assert portal.guardian(family).email == "avant@example.org"


async def test_the_old_address_is_told_of_an_address_change(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _signed_in(portal, family, "avant@example.org")
    await _ask_for_new_address(browser, "apres@example.org")
    assert portal.outbox("email_changed_notice") == []  # nothing changed yet
    reply = await portal.browser().post(portal.link_path("email_change_confirmation"))
    assert reply.status_code == 200
    assert portal.guardian(family).email == "apres@example.org"
    [row] = portal.outbox("email_changed_notice")
    assert row.to_address == "avant@example.org"
    text = mail_text(portal.mail("email_changed_notice"))
    assert family.identifier in text
    assert "apres@example.org" not in text  # the new address is not handed to the old one
