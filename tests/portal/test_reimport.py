"""The address a family confirmed on the portal survives a re-import of ONDE, which may still
hold an older one; the addresses of families who have not confirmed one (not activated, or
activating with an address still pending) follow ONDE."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import col, select

from bot.db import session_scope
from bot.services.accounts.credentials import notify_accounts
from bot.services.roster.onde.importer import import_roster
from models import Account, AccountState, Guardian, School
from tests.portal.conftest import NEW_PASSWORD, PortalHarness
from tests.services.onde.builder import GuardianSpec, guardians_csv, pupils_csv, small_school

PORTAL_ADDRESS = "claire.perso@example.org"


def _import(portal: PortalHarness, school_id: int, guardians: list[GuardianSpec]) -> None:
    pupils, _ = small_school()
    with session_scope(portal.engine) as session:
        import_roster(
            session=session,
            school_id=school_id,
            files=[
                ("eleves.csv", pupils_csv(pupils)),
                ("responsables.csv", guardians_csv(guardians)),
            ],
            actor="director:42",
        )


def _emails(portal: PortalHarness) -> dict[str, str | None]:
    with portal.session() as session:
        return {
            guardian.first_name: guardian.email
            for guardian in session.exec(select(Guardian).order_by(col(Guardian.id)))
        }


def _with_email(guardians: list[GuardianSpec], first_name: str, email: str) -> list[GuardianSpec]:
    return [
        replace(guardian, email=email) if guardian.first_name == first_name else guardian
        for guardian in guardians
    ]


async def test_a_reimport_keeps_the_address_given_on_the_portal(portal: PortalHarness) -> None:
    with session_scope(portal.engine) as session:
        school = School(uai="0751234X", name="École du Parc")
        session.add(school)
        session.flush()
        assert school.id is not None
        school_id = school.id
    _, guardians = small_school()
    _import(portal, school_id, guardians)
    with session_scope(portal.engine) as session:
        accounts = {
            guardian.first_name: account
            for account, guardian in session.exec(
                select(Account, Guardian).join(
                    Guardian, col(Guardian.id) == col(Account.guardian_id)
                )
            )
        }
        ids = [accounts[name].id for name in ("Claire", "Sophie", "Anh")]
        batch = notify_accounts(
            session=session, account_ids=[i for i in ids if i is not None], actor="director:42"
        )
    credentials = {credential.account_id: credential for credential in batch.issued}

    async def take_to_activating(first_name: str, address: str) -> None:
        credential = credentials[accounts[first_name].id]  # type: ignore[index]
        assert credential.password is not None
        browser = portal.browser()
        await browser.post(
            "/activation", {"identifier": credential.identifier, "password": credential.password}
        )
        reply = await browser.post(
            "/activation/finaliser",
            {
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
                "email": address,
                "birth_date": {"Claire": "14/03/2018", "Anh": "01/12/2016"}[first_name],
            },
        )
        assert reply.status_code == 303, reply.text

    # Claire activates with her own address; Anh gives another one and has not clicked yet.
    await take_to_activating("Claire", PORTAL_ADDRESS)
    await portal.browser().post(portal.link_path("activation_confirmation"))
    await take_to_activating("Anh", "anh.perso@example.org")
    with portal.session() as session:
        states = {
            name: session.get(Account, accounts[name].id).state  # type: ignore[union-attr]
            for name in ("Claire", "Anh", "Sophie")
        }
    assert states == {
        "Claire": AccountState.ACTIVATED,
        "Anh": AccountState.ACTIVATING,
        "Sophie": AccountState.NOTIFIED,
    }

    # ONDE still has (or now has) other addresses for all three.
    changed = _with_email(guardians, "Claire", "claire.martin@orange.fr")
    changed = _with_email(changed, "Anh", "anh.nguyen.nouveau@gmail.com")
    changed = _with_email(changed, "Sophie", "sophie.nouvelle@free.fr")
    _import(portal, school_id, changed)

    emails = _emails(portal)
    assert emails["Claire"] == PORTAL_ADDRESS
    # Typed but not confirmed: ONDE's address is on file, the typed one waits on its link.
    assert emails["Anh"] == "anh.nguyen.nouveau@gmail.com"
    assert emails["Sophie"] == "sophie.nouvelle@free.fr"  # never on the portal: ONDE's
    # Anh follows her link: her address is now confirmed, and the next import keeps it.
    reply = await portal.browser().post(portal.link_path("activation_confirmation"))
    assert reply.status_code == 200
    assert _emails(portal)["Anh"] == "anh.perso@example.org"
    _import(portal, school_id, changed)
    assert _emails(portal)["Anh"] == "anh.perso@example.org"
    # And the family can still log in and sees its own address.
    browser = portal.browser()
    claire = credentials[accounts["Claire"].id]  # type: ignore[index]
    reply = await browser.log_in(claire.identifier, NEW_PASSWORD)
    assert reply.headers["location"] == "/compte"
    assert PORTAL_ADDRESS in (await browser.get("/compte")).text
