"""Activation with a verified mobile number (issue 10): the bot's single-use link, valid 30
minutes, opens the activation form without the provisional password → `activating` and the
confirmation e-mail → `activated`; the link's refusals; and the letter's way still works."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.services.accounts.family_links import BOT_USERNAME_SETTING
from bot.services.accounts.passwords import verify_password
from bot.services.portal import (
    PHONE_ACTIVATION_VALIDITY,
    PhoneActivationLink,
    issue_phone_activation_link,
)
from models import (
    Account,
    AccountState,
    AppSetting,
    AuditEvent,
    PortalTokenPurpose,
    Pupil,
    PupilGuardian,
)
from tests.factories import make_school_with_guardians
from tests.portal.conftest import (
    CHILD_BIRTH_DATE,
    NEW_PASSWORD,
    Browser,
    Family,
    PortalHarness,
    activate,
)

BIRTH = CHILD_BIRTH_DATE.strftime("%d/%m/%Y")
NEW_EMAIL = "famille.martin@example.org"


def _form(**changes: str) -> dict[str, str]:
    fields = {
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
        "email": NEW_EMAIL,
        "birth_date": BIRTH,
    }
    fields.update(changes)
    return fields


def _unnotified_family(portal: PortalHarness) -> Family:
    """A guardian whose account was opened at import, no letter drawn nor printed."""
    with portal.session() as session:
        school = make_school_with_guardians(session, 1, names=[("Camille", "Martin")])
        guardian = school.guardians[0]
        assert guardian.id is not None and school.school.id is not None
        guardian.email = "parent0@example.org"
        session.add(guardian)
        [pupil] = session.exec(
            select(Pupil)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .where(PupilGuardian.guardian_id == guardian.id)
        ).all()
        pupil.first_name = "Léa"
        pupil.birth_date = CHILD_BIRTH_DATE
        session.add(pupil)
        [account_id] = school.account_ids
        account = session.get(Account, account_id)
        assert account is not None
        session.commit()
        return Family(
            account_id=account_id,
            guardian_id=guardian.id,
            school_id=school.school.id,
            identifier=account.identifier,
            password="",
            email=guardian.email,
        )


def _issue(portal: PortalHarness, family: Family) -> PhoneActivationLink:
    with portal.session() as session:
        link = issue_phone_activation_link(
            session,
            guardian_id=family.guardian_id,
            portal_url=portal.portal_url,
            now=portal.clock(),
        )
        session.commit()
    return link


def _path(portal: PortalHarness, link: PhoneActivationLink) -> str:
    assert link.url is not None and link.url.startswith(f"{portal.portal_url}/telephone/")
    return link.url[len(portal.portal_url) :]


async def _activate_by_phone(portal: PortalHarness, family: Family) -> Browser:
    link = _issue(portal, family)
    assert not link.already_activated
    assert link.expires_at == portal.clock() + timedelta(minutes=30)
    path = _path(portal, link)
    browser = portal.browser()
    # Opening the link (Telegram's preview does too) changes nothing.
    form = await browser.get(path)
    assert form.status_code == 200
    assert f'action="{path}"' in form.text
    assert 'value="parent0@example.org"' in form.text
    assert "Léa" in form.text
    assert 'name="new_password"' in form.text
    [token] = [t for t in portal.tokens() if t.purpose == PortalTokenPurpose.PHONE_ACTIVATION]
    assert token.used_at is None

    reply = await browser.post(path, _form())
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"] == "/activation/attente"
    account = portal.account(family)
    assert account.state == AccountState.ACTIVATING
    assert account.provisional_expires_at is None
    assert verify_password(account.password_hash, NEW_PASSWORD)
    assert portal.guardian(family).email != NEW_EMAIL  # pending until the link is followed
    [row] = portal.outbox("activation_confirmation")
    assert row.to_address == NEW_EMAIL
    [used] = [t for t in portal.tokens() if t.purpose == PortalTokenPurpose.PHONE_ACTIVATION]
    assert used.used_at is not None

    # Signed in: the usual « awaiting confirmation » page.
    waiting = await browser.get("/activation/attente")
    assert waiting.status_code == 200
    assert NEW_EMAIL in waiting.text

    # The e-mailed confirmation link activates the account, as after the letter.
    confirmation = portal.link_path("activation_confirmation")
    reply = await browser.post(confirmation)
    assert reply.status_code == 200, reply.text
    assert portal.account(family).state == AccountState.ACTIVATED
    return browser


async def test_an_unnotified_family_activates_with_its_phone(portal: PortalHarness) -> None:
    family = _unnotified_family(portal)
    assert portal.account(family).state == AccountState.NOT_NOTIFIED
    await _activate_by_phone(portal, family)
    account = portal.account(family)
    # No letter reached the family: no distribution recorded.
    assert account.distributed_at is None
    assert account.distribution_channel is None
    [started] = portal.events("account.activation_started")
    assert started.details["via"] == "phone"
    assert started.details["previous_state"] == "not_notified"
    assert "portal.phone_link_issued" in portal.actions(family)
    assert "portal.phone_link_used" in portal.actions(family)
    # Logging in afterwards with the chosen password works.
    browser = portal.browser(client="203.0.113.9")
    reply = await browser.log_in(family.identifier, NEW_PASSWORD)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/compte"


async def test_a_notified_family_activates_with_its_phone(
    portal: PortalHarness, family: Family
) -> None:
    await _activate_by_phone(portal, family)
    # The letter's provisional password no longer works.
    reply = await portal.browser(client="203.0.113.9").log_in(family.identifier, family.password)
    assert reply.status_code != 303


async def test_an_expired_provisional_password_does_not_stop_the_phone(
    portal: PortalHarness, family: Family
) -> None:
    portal.clock.advance(days=200)
    await _activate_by_phone(portal, family)


async def test_the_link_works_once(portal: PortalHarness, family: Family) -> None:
    path = _path(portal, _issue(portal, family))
    browser = portal.browser()
    await browser.get(path)
    assert (await browser.post(path, _form())).status_code == 303
    again = portal.browser(client="203.0.113.9")
    page = await again.get(path)
    assert page.status_code == 410
    assert "Ce lien a déjà été utilisé" in page.text
    reply = await again.post(path, _form(new_password="Autre-Chose-2027!"))
    assert reply.status_code == 410
    assert verify_password(portal.account(family).password_hash, NEW_PASSWORD)


async def test_the_link_expires_after_30_minutes(portal: PortalHarness, family: Family) -> None:
    assert timedelta(minutes=30) == PHONE_ACTIVATION_VALIDITY
    path = _path(portal, _issue(portal, family))
    browser = portal.browser()
    assert (await browser.get(path)).status_code == 200
    portal.clock.advance(minutes=30)
    page = await browser.get(path)
    assert page.status_code == 410
    assert "Ce lien a expiré" in page.text
    reply = await browser.post(path, _form())
    assert reply.status_code == 410
    assert portal.account(family).state == AccountState.NOTIFIED


async def test_a_newer_link_revokes_the_older(portal: PortalHarness, family: Family) -> None:
    older = _path(portal, _issue(portal, family))
    newer = _path(portal, _issue(portal, family))
    browser = portal.browser()
    page = await browser.get(older)
    assert page.status_code == 410
    assert "Ce lien a été remplacé" in page.text
    assert (await browser.post(older, _form())).status_code == 410
    assert portal.account(family).state == AccountState.NOTIFIED
    assert (await browser.get(newer)).status_code == 200


async def test_a_bad_link_sends_back_to_the_bot(portal: PortalHarness, family: Family) -> None:
    path = _path(portal, _issue(portal, family))
    with portal.session() as session:
        session.add(AppSetting(key=BOT_USERNAME_SETTING, value="educonnect_ecole_bot"))
        session.commit()
    portal.clock.advance(minutes=31)
    page = await portal.browser().get(path)
    assert page.status_code == 410
    assert 'href="https://t.me/educonnect_ecole_bot"' in page.text


async def test_an_activated_account_gets_forgotten_password(
    portal: PortalHarness, family: Family
) -> None:
    pending = _path(portal, _issue(portal, family))
    await activate(portal, family)
    link = _issue(portal, family)
    assert link.url is None and link.expires_at is None
    assert link.already_activated
    assert link.forgotten_password_url == f"{portal.portal_url}/mot-de-passe-oublie"
    # A link given before the letter's activation has nothing left to do.
    page = await portal.browser().get(pending)
    assert page.status_code == 410
    assert "Ce lien a déjà été utilisé" in page.text


async def test_a_deactivated_account_gets_no_link(portal: PortalHarness, family: Family) -> None:
    pending = _path(portal, _issue(portal, family))
    with portal.session() as session:
        account = session.get(Account, family.account_id)
        assert account is not None
        account.deactivated_at = portal.clock()
        session.add(account)
        session.commit()
    link = _issue(portal, family)
    assert link.url is None and not link.already_activated
    assert (await portal.browser().get(pending)).status_code == 410


async def test_a_wrong_birth_date_is_refused_as_on_the_usual_form(
    portal: PortalHarness, family: Family
) -> None:
    path = _path(portal, _issue(portal, family))
    browser = portal.browser()
    await browser.get(path)
    reply = await browser.post(path, _form(birth_date="01/01/2016"))
    assert reply.status_code == 400
    assert 'id="birth_date-error"' in reply.text
    assert f'action="{path}"' in reply.text
    assert portal.account(family).state == AccountState.NOTIFIED
    assert portal.events("portal.birth_date_refused")
    # The link still works: the right date goes through.
    reply = await browser.post(path, _form())
    assert reply.status_code == 303


async def test_password_and_email_are_checked(portal: PortalHarness, family: Family) -> None:
    path = _path(portal, _issue(portal, family))
    browser = portal.browser()
    await browser.get(path)
    reply = await browser.post(
        path, _form(new_password="court", confirm_password="court", email="pas-une-adresse")
    )
    assert reply.status_code == 400
    assert 'id="new_password-error"' in reply.text
    assert 'id="email-error"' in reply.text
    assert portal.account(family).state == AccountState.NOTIFIED


async def test_unknown_links_and_csrf(portal: PortalHarness, family: Family) -> None:
    browser = portal.browser()
    page = await browser.get("/telephone/" + "A" * 43)
    assert page.status_code == 404
    assert "Ce lien ne fonctionne pas" in page.text
    path = _path(portal, _issue(portal, family))
    await browser.get(path)
    reply = await browser.post(path, _form(), csrf=False)
    assert reply.status_code == 403
    assert portal.account(family).state == AccountState.NOTIFIED
    # An activation link e-mailed by the portal does not open this form, nor the reverse.
    assert (await browser.get(path.replace("/telephone/", "/confirmer/"))).status_code == 404


async def test_the_audit_log_has_no_secret(portal: PortalHarness, family: Family) -> None:
    link = _issue(portal, family)
    assert link.url is not None
    secret = link.url.rsplit("/", 1)[1]
    with portal.session() as session:
        for event in session.exec(select(AuditEvent)):
            assert secret not in str(event.details)
