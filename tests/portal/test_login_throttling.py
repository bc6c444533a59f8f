"""Login throttling that a stranger cannot turn against a family (issue 13): the browser the
family logged in from carries a signed device cookie and is never locked out by other clients'
failures; other clients get growing delays per (identifier, client); IPv6 clients are counted
per /64."""

from __future__ import annotations

from bot.portal.devices import DEVICE_COOKIE
from bot.services.portal.throttling import client_group
from tests.portal.conftest import NEW_PASSWORD, Browser, Family, PortalHarness, activate


async def _fail(browser: Browser, identifier: str) -> int:
    reply = await browser.log_in(identifier, "Wrong-password-0")
    return reply.status_code


async def test_a_script_failing_fifty_times_does_not_stop_the_owners_device(
    portal: PortalHarness, family: Family
) -> None:
    owner = await activate(portal, family)
    assert owner.http.cookies.get(DEVICE_COOKIE)  # set at the successful login
    for attempt in range(50):
        script = portal.browser(client=f"198.51.{100 + attempt % 5}.{attempt + 1}")
        assert await _fail(script, family.identifier) in (401, 429)
        portal.clock.advance(seconds=1)

    # Any browser the family never logged in from is locked out for a while…
    stranger = portal.browser(client="192.0.2.200")
    assert (await stranger.log_in(family.identifier, NEW_PASSWORD)).status_code == 429
    # …but the family's own browser logs in at once, from any network.
    reply = await owner.log_in(family.identifier, NEW_PASSWORD)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/compte"


async def test_a_forged_or_borrowed_device_cookie_is_not_trusted(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    owner = await activate(sqlite_portal, sqlite_family)
    cookie = owner.http.cookies.get(DEVICE_COOKIE)
    assert cookie
    for attempt in range(5):
        script = sqlite_portal.browser(client=f"198.51.100.{attempt + 1}")
        await _fail(script, sqlite_family.identifier)
    forged = sqlite_portal.browser(client="192.0.2.201")
    forged.http.cookies.set(DEVICE_COOKIE, cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB"))
    reply = await forged.log_in(sqlite_family.identifier, NEW_PASSWORD)
    assert reply.status_code == 429


async def test_failures_from_the_owners_device_lock_only_that_device(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    owner = await activate(sqlite_portal, sqlite_family)
    for _attempt in range(10):
        await _fail(owner, sqlite_family.identifier)
    assert (await owner.log_in(sqlite_family.identifier, NEW_PASSWORD)).status_code == 429
    other = sqlite_portal.browser(client="192.0.2.202")
    assert (await other.log_in(sqlite_family.identifier, NEW_PASSWORD)).status_code == 303


async def test_untrusted_clients_wait_growing_delays(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = sqlite_portal.browser(client="203.0.113.50")
    identifier = sqlite_family.identifier
    for delay in (1, 2, 4, 8):
        assert await _fail(browser, identifier) == 401
        # Refused before the delay is over, without checking anything…
        reply = await browser.log_in(identifier, sqlite_family.password)
        assert reply.status_code == 429
        assert reply.headers["retry-after"] == str(delay)
        sqlite_portal.clock.advance(seconds=delay - 0.5)
        assert (await browser.log_in(identifier, sqlite_family.password)).status_code == 429
        sqlite_portal.clock.advance(seconds=0.5)
    # …and another client is not slowed by them.
    other = sqlite_portal.browser(client="203.0.113.51")
    reply = await other.log_in(identifier, sqlite_family.password)
    assert reply.status_code == 303


def test_ipv6_clients_are_grouped_by_64() -> None:
    assert client_group("2001:db8:1:2::5") == client_group("2001:db8:1:2:ffff:1:2:3")
    assert client_group("2001:db8:1:2::5") != client_group("2001:db8:1:3::5")
    assert client_group("::ffff:192.0.2.9") == client_group("192.0.2.9") == "192.0.2.9"
    assert client_group("192.0.2.9") != client_group("192.0.2.10")
    assert client_group("unknown") == "unknown"


async def test_two_addresses_of_one_ipv6_64_share_a_counter(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    first = sqlite_portal.browser(client="2001:db8:5:6::1")
    second = sqlite_portal.browser(client="2001:db8:5:6:abcd::2")
    for index in range(19):
        browser = first if index % 2 else second
        assert await _fail(browser, f"someone.{index}") == 401
    assert await _fail(first, "someone.19") == 429
    # A third address of the same /64 is refused too; another /64 is not.
    same = sqlite_portal.browser(client="2001:db8:5:6:1:2:3:4")
    reply = await same.log_in(sqlite_family.identifier, sqlite_family.password)
    assert reply.status_code == 429
    other = sqlite_portal.browser(client="2001:db8:5:7::1")
    reply = await other.log_in(sqlite_family.identifier, sqlite_family.password)
    assert reply.status_code == 303


async def test_strangers_failed_logins_never_block_mon_compte_for_its_signed_in_owner(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    owner = await activate(sqlite_portal, sqlite_family)
    for attempt in range(10):
        script = sqlite_portal.browser(client=f"198.51.100.{attempt + 1}")
        await _fail(script, sqlite_family.identifier)

    reply = await owner.post(
        "/compte/mot-de-passe",
        {
            "current_password": NEW_PASSWORD,
            "new_password": "Autre-Mot-de-passe-42",
            "confirm_password": "Autre-Mot-de-passe-42",
        },
    )

    assert reply.status_code == 303 and reply.headers["location"] == "/compte"
