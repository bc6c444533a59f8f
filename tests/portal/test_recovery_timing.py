"""« Mot de passe oublié » and « identifiant oublié » answer after the same time whether or not
an account matched (issue 5): e-mailing a link or identifiers costs more than finding nothing,
so both answers wait for the portal's floor. Checked as a lower bound, which cannot flake."""

from __future__ import annotations

import time

import httpx

from tests.portal.conftest import Browser, Family, PortalHarness, activate

ADDRESS = "famille.martin@example.org"
FLOOR = 0.3


async def _timed_post(browser: Browser, path: str, fields: dict[str, str]) -> float:
    await browser.csrf()  # fetched before the clock starts
    start = time.monotonic()
    reply: httpx.Response = await browser.post(path, fields)
    elapsed = time.monotonic() - start
    assert reply.status_code == 200, reply.text
    return elapsed


async def test_both_forgotten_flows_answer_no_sooner_than_the_floor_found_or_not(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    portal = sqlite_portal
    await activate(portal, sqlite_family, email=ADDRESS)
    portal.app.state.portal.same_answer_seconds = FLOOR
    browser = portal.browser()

    elapsed = {
        "reset sent": await _timed_post(
            browser,
            "/mot-de-passe-oublie",
            {"identifier": sqlite_family.identifier, "email": ADDRESS},
        ),
        "reset, nobody": await _timed_post(
            browser, "/mot-de-passe-oublie", {"identifier": "nobody.here", "email": ADDRESS}
        ),
        "identifiers sent": await _timed_post(browser, "/identifiant-oublie", {"email": ADDRESS}),
        "identifiers, nobody": await _timed_post(
            browser, "/identifiant-oublie", {"email": "nobody@example.org"}
        ),
    }

    assert len(portal.outbox("password_reset_link")) == 1
    assert len(portal.outbox("identifier_reminder")) == 1
    assert all(seconds >= FLOOR for seconds in elapsed.values()), elapsed
