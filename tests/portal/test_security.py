"""The portal's defences: CSRF tokens on every form, the session cookie's flags, the security
headers, the size of forms, the session secret, and no secret in logs or URLs."""

from __future__ import annotations

import logging
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.db import session_scope
from bot.portal.security import SESSION_SECRET_FILE, load_session_secret
from bot.services.portal.operations import purge_stale
from models import AccountState, AuditEvent
from tests.portal.conftest import (
    NEW_PASSWORD,
    Family,
    PortalHarness,
    activate,
)

# Every form of the portal, with what a legitimate submission would carry.
FORMS = {
    "/activation": {"identifier": "x", "password": "y"},
    "/connexion": {"identifier": "x", "password": "y"},
    "/activation/finaliser": {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    "/activation/renvoyer": {},
    "/deconnexion": {},
    "/compte/mot-de-passe": {"current_password": NEW_PASSWORD},
    "/compte/adresse": {"new_email": "a@example.org", "email_password": NEW_PASSWORD},
    "/mot-de-passe-oublie": {"identifier": "x", "email": "a@example.org"},
    "/identifiant-oublie": {"email": "a@example.org"},
    "/confirmer/" + "A" * 43: {},
    "/reinitialiser/" + "A" * 43: {"new_password": NEW_PASSWORD},
}


@pytest.mark.parametrize("path", sorted(FORMS))
async def test_every_form_refuses_a_post_without_its_csrf_token(
    sqlite_portal: PortalHarness, path: str
) -> None:
    browser = sqlite_portal.browser()
    await browser.get("/connexion")  # a session exists, with its token
    reply = await browser.post(path, FORMS[path], csrf=False)
    assert reply.status_code == 403
    reply = await browser.post(path, {**FORMS[path], "csrf_token": "forged"}, csrf=False)
    assert reply.status_code == 403
    events = sqlite_portal.events("portal.csrf_refused")
    assert len(events) == 2
    assert events[0].details == {"page": path.strip("/").split("/")[0]}
    assert sqlite_portal.outbox() == [] and sqlite_portal.tokens() == []


async def test_a_missing_csrf_token_changes_nothing_for_a_signed_in_family(
    portal: PortalHarness, family: Family
) -> None:
    browser = portal.browser()
    await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    fields = {
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
        "email": "x@example.org",
        "birth_date": "14/03/2017",
    }
    reply = await browser.post("/activation/finaliser", fields, csrf=False)
    assert reply.status_code == 403
    account = portal.account(family)
    assert account.state == AccountState.NOTIFIED
    assert portal.guardian(family).email == "parent0@example.org"
    [event] = portal.events("portal.csrf_refused")
    assert event.account_id == family.account_id
    # With the token, the same form goes through.
    assert (await browser.post("/activation/finaliser", fields)).status_code == 303


async def test_a_csrf_token_from_another_session_is_refused(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    attacker = sqlite_portal.browser()
    victim = sqlite_portal.browser()
    token = await attacker.csrf()
    reply = await victim.post(
        "/activation",
        {
            "identifier": sqlite_family.identifier,
            "password": sqlite_family.password,
            "csrf_token": token,
        },
        csrf=False,
    )
    assert reply.status_code == 403


async def test_logging_in_renews_the_csrf_token(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = sqlite_portal.browser()
    before = await browser.csrf()
    await browser.post(
        "/activation",
        {"identifier": sqlite_family.identifier, "password": sqlite_family.password},
    )
    assert await browser.csrf() != before


PAGES = ["/", "/activation?identifiant=x", "/connexion", "/mot-de-passe-oublie", "/nowhere"]


@pytest.mark.parametrize("path", PAGES)
async def test_security_headers_on_every_page(sqlite_portal: PortalHarness, path: str) -> None:
    reply = await sqlite_portal.browser().get(path)
    headers = reply.headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'none'" in csp and "unsafe-inline" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # http: no HSTS
    assert "<script" not in reply.text and " style=" not in reply.text


async def test_the_stylesheet_is_served_with_the_headers_and_may_be_cached(
    sqlite_portal: PortalHarness,
) -> None:
    reply = await sqlite_portal.browser().get("/static/portal.css")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/css")
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in reply.headers


async def test_the_session_cookie_is_signed_httponly_and_samesite(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = sqlite_portal.browser()
    reply = await browser.get("/connexion")
    cookie = reply.headers["set-cookie"].lower()
    assert cookie.startswith("educonnect_portal=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert "max-age=1800" in cookie
    # A tampered cookie is an empty session: the form's token no longer matches.
    value = browser.http.cookies["educonnect_portal"]
    browser.http.cookies.set("educonnect_portal", value[:-3] + "abc", domain="portal.test")
    reply = await browser.http.post(
        "/activation",
        data={"identifier": "x", "password": "y", "csrf_token": browser.last_csrf or ""},
    )
    assert reply.status_code == 403


async def test_over_https_cookies_are_secure_and_hsts_is_sent(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    harness = PortalHarness(sqlite_engine, tmp_path, portal_url="https://portal.test")
    try:
        browser = harness.browser()
        reply = await browser.get("/connexion?lang=en")
        cookies = reply.headers.get_list("set-cookie")
        assert len(cookies) == 2 and all("secure" in cookie.lower() for cookie in cookies)
        assert reply.headers["strict-transport-security"].startswith("max-age=")
    finally:
        await harness.aclose()


async def test_an_oversized_form_is_refused(sqlite_portal: PortalHarness) -> None:
    browser = sqlite_portal.browser()
    reply = await browser.post("/connexion", {"identifier": "x" * 20_000, "password": "y"})
    assert reply.status_code == 413
    assert sqlite_portal.throttles() == []


def test_the_session_secret_is_kept_private_in_the_data_folder(tmp_path: Path) -> None:
    secret = load_session_secret(tmp_path)
    path = tmp_path / SESSION_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) == 64
    assert load_session_secret(tmp_path) == secret  # kept across restarts


async def test_no_password_link_or_address_reaches_the_logs(
    portal: PortalHarness, family: Family, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    browser = await activate(portal, family, email="secret.parent@example.org")
    await browser.log_in(family.identifier, "Wrong-password-1")
    await browser.post(
        "/mot-de-passe-oublie",
        {"identifier": family.identifier, "email": "secret.parent@example.org"},
    )
    link = portal.link_path("password_reset_link")
    await browser.get(link)
    # What the portal and the services log (not the test's own HTTP client).
    logged = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("httpx")
    )
    for secret in (
        family.password,
        NEW_PASSWORD,
        "Wrong-password-1",
        "secret.parent",
        link.rsplit("/", 1)[1],
    ):
        assert secret not in logged


async def test_audit_events_never_hold_a_secret(portal: PortalHarness, family: Family) -> None:
    browser = await activate(portal, family, email="secret.parent@example.org")
    await browser.log_in(family.identifier, "Wrong-password-1")
    with portal.session() as session:
        everything = " ".join(str(event.details) for event in session.exec(select(AuditEvent)))
    for secret in (family.password, NEW_PASSWORD, "Wrong-password-1", "secret.parent"):
        assert secret not in everything


async def test_stale_throttle_counters_and_dead_links_are_purged(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = sqlite_portal.browser()
    await browser.log_in(sqlite_family.identifier, "Wrong-password-1")
    sqlite_portal.clock.advance(seconds=1)  # the client's delay after a failure
    await activate(sqlite_portal, sqlite_family)
    assert sqlite_portal.throttles() and sqlite_portal.tokens()
    with session_scope(sqlite_portal.engine) as session:
        assert purge_stale(session=session, now=sqlite_portal.clock()) == 0  # all still live
    with session_scope(sqlite_portal.engine) as session:
        later = sqlite_portal.clock() + timedelta(days=40)
        assert purge_stale(session=session, now=later) >= 2
    assert sqlite_portal.throttles() == [] and sqlite_portal.tokens() == []
