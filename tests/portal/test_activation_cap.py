"""The overall cap on wrong birth dates (issue 13): after 10, whatever the clients and the
pauses, the activation waits for the school; its directors are told once, and only a director
of that school can allow it again."""

from __future__ import annotations

from bot.services.portal import (
    UnlockStatus,
    activation_lock_notices,
    allow_activation_again,
    record_lock_notice,
)
from models import Director
from tests.portal.conftest import (
    CHILD_BIRTH_DATE,
    NEW_PASSWORD,
    Browser,
    Family,
    PortalHarness,
    make_family,
)

BIRTH = CHILD_BIRTH_DATE.strftime("%d/%m/%Y")


def _form(birth_date: str) -> dict[str, str]:
    return {
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
        "email": "famille@example.org",
        "birth_date": birth_date,
    }


async def _log_in(browser: Browser, family: Family) -> None:
    reply = await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert reply.status_code == 303


async def _ten_wrong_dates(portal: PortalHarness, family: Family) -> None:
    for batch in range(2):
        # A new browser and network each time: the cap counts for the account, all together.
        browser = portal.browser(client=f"198.51.100.{batch + 1}")
        reply = await browser.post(
            "/activation", {"identifier": family.identifier, "password": family.password}
        )
        assert reply.status_code == 303
        for day in range(1, 6):
            reply = await browser.post("/activation/finaliser", _form(f"0{day}/0{batch + 1}/2017"))
            assert reply.status_code in (400, 429, 403)
        portal.clock.advance(minutes=16)  # past the 15-minute lock of 5 wrong dates


async def test_ten_wrong_birth_dates_make_the_activation_wait_for_the_school(
    portal: PortalHarness, family: Family
) -> None:
    await _ten_wrong_dates(portal, family)
    assert portal.account(family).activation_locked_at is not None
    assert len(portal.events("portal.activation_capped")) == 1

    browser = portal.browser(client="192.0.2.99")
    browser.http.headers["Accept-Language"] = "en"  # the message ids, whatever French says
    await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    reply = await browser.post("/activation/finaliser", _form(BIRTH))  # the right date
    assert reply.status_code == 403
    assert "school has been told" in reply.text
    assert portal.account(family).activation_locked_at is not None
    assert portal.events("portal.activation_refused")[-1].details == {"reason": "awaiting_school"}
    page = await browser.get("/activation/finaliser")
    assert "school has been told" in page.text


async def test_the_directors_are_told_once_and_only_their_school_unlocks(
    portal: PortalHarness, family: Family
) -> None:
    other = make_family(portal, names=("Noé", "Bernard"))
    with portal.session() as session:
        session.add(Director(telegram_user_id=5001, school_id=family.school_id))
        session.add(Director(telegram_user_id=5002, school_id=family.school_id))
        session.add(Director(telegram_user_id=6001, school_id=other.school_id))
        session.commit()
    await _ten_wrong_dates(portal, family)

    with portal.session() as session:
        [notice] = activation_lock_notices(session)
        assert notice.account_id == family.account_id
        assert notice.identifier == family.identifier
        assert set(notice.director_ids) == {5001, 5002}
        record_lock_notice(session, account_id=notice.account_id, told=2)
        session.commit()
    with portal.session() as session:
        assert activation_lock_notices(session) == []

    with portal.session() as session:
        status = allow_activation_again(
            session,
            account_id=family.account_id,
            school_id=other.school_id,  # a director of another school
            actor="telegram:6001",
        )
        session.commit()
    assert status is UnlockStatus.UNKNOWN_ACCOUNT
    assert portal.account(family).activation_locked_at is not None

    with portal.session() as session:
        status = allow_activation_again(
            session, account_id=family.account_id, school_id=family.school_id, actor="telegram:5001"
        )
        session.commit()
    assert status is UnlockStatus.UNLOCKED
    assert portal.account(family).activation_locked_at is None
    [event] = portal.events("portal.activation_unlocked")
    assert event.actor == "telegram:5001" and event.account_id == family.account_id

    # The count starts again: one more wrong date does not lock it, the right one activates.
    browser = portal.browser(client="192.0.2.98")
    await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert (await browser.post("/activation/finaliser", _form("09/09/2017"))).status_code == 400
    assert (await browser.post("/activation/finaliser", _form(BIRTH))).status_code == 303
