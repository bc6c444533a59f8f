"""Activation on the portal (docs/PRODUCT.md): the letter's credentials → a new password, the e-mail
address, one child's birth date → `activating` and a confirmation link in the outbox → the
link → `activated`; and every refusal on the way, with the database checked after each."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.services.accounts import passwords
from bot.services.accounts.family_links import BOT_USERNAME_SETTING
from bot.services.accounts.passwords import hash_parameters, verify_password
from bot.services.accounts.validity import provisional_expiry
from models import AccountState, AppSetting, OutboxStatus, PortalTokenPurpose
from tests.portal.conftest import (
    CHILD_BIRTH_DATE,
    NEW_PASSWORD,
    SIBLING_BIRTH_DATE,
    Browser,
    Family,
    PortalHarness,
    activate,
    mail_text,
    make_family,
)

BIRTH = CHILD_BIRTH_DATE.strftime("%d/%m/%Y")
NEW_EMAIL = "famille.martin@example.org"


async def _logged_in(portal: PortalHarness, family: Family) -> Browser:
    browser = portal.browser()
    reply = await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/activation/finaliser"
    return browser


def _form(**changes: str) -> dict[str, str]:
    fields = {
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
        "email": NEW_EMAIL,
        "birth_date": BIRTH,
    }
    fields.update(changes)
    return fields


def _field_error(html: str, field: str) -> bool:
    """The field's input is marked invalid and described by its error message, shown."""
    tag = re.search(rf'<input[^>]* id="{field}"[^>]*>', html)
    if tag is None or f'id="{field}-error"' not in html:
        return False
    described = re.search(r'aria-describedby="([^"]*)"', tag[0])
    return (
        described is not None
        and f"{field}-error" in described[1].split()
        and 'aria-invalid="true"' in tag[0]
    )


# --- The whole flow ------------------------------------------------------------------------


async def test_a_family_activates_its_account_from_the_letter(
    portal: PortalHarness, family: Family
) -> None:
    browser = portal.browser()
    page = await browser.get(f"/activation?identifiant={family.identifier}")
    assert page.status_code == 200
    assert f'value="{family.identifier}"' in page.text

    # Step 1: the letter's credentials, typed in lower case with a space, as people do.
    typed = f"{family.password[:4].lower()} {family.password[4:]}"
    reply = await browser.post(
        "/activation", {"identifier": family.identifier.upper(), "password": typed}
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/activation/finaliser"
    assert portal.account(family).state == AccountState.NOTIFIED

    # Step 2: the form is prefilled with the address from ONDE and names the child.
    form = await browser.get("/activation/finaliser")
    assert form.status_code == 200
    assert 'value="parent0@example.org"' in form.text
    assert "Léa" in form.text
    reply = await browser.post("/activation/finaliser", _form())
    assert reply.status_code == 303
    assert reply.headers["location"] == "/activation/attente"

    account = portal.account(family)
    assert account.state == AccountState.ACTIVATING
    assert account.provisional_expires_at is None
    assert verify_password(account.password_hash, NEW_PASSWORD)
    assert hash_parameters(account.password_hash or "") == (
        passwords.CHOSEN_HASHER.memory_cost,
        passwords.CHOSEN_HASHER.time_cost,
        passwords.CHOSEN_HASHER.parallelism,
    )
    # Pending on the link until it is followed: the school's address stays on file.
    assert portal.guardian(family).email == "parent0@example.org"
    [row] = portal.outbox("activation_confirmation")
    assert row.to_address == NEW_EMAIL
    assert row.account_id == family.account_id
    assert row.status == OutboxStatus.PENDING
    [token] = portal.tokens()
    assert token.purpose == PortalTokenPurpose.ACTIVATION
    assert token.email == NEW_EMAIL
    link = portal.link_path("activation_confirmation")
    # Only a hash of the link's secret is stored.
    assert link.rsplit("/", 1)[1] not in token.token_hash

    waiting = await browser.get("/activation/attente")
    assert waiting.status_code == 200
    assert NEW_EMAIL in waiting.text

    # Step 3: the link from the e-mail. Opening it changes nothing (mail scanners open links)…
    page = await browser.get(link)
    assert page.status_code == 200
    assert family.identifier in page.text
    assert portal.account(family).state == AccountState.ACTIVATING
    # …pressing its button activates, even from another browser (the phone's mail app).
    other = portal.browser()
    await other.get(link)
    reply = await other.post(link)
    assert reply.status_code == 200
    account = portal.account(family)
    assert account.state == AccountState.ACTIVATED
    assert account.activated_at is not None
    assert portal.guardian(family).email == NEW_EMAIL  # proven by the link: now on file
    assert portal.tokens()[0].used_at is not None
    assert portal.actions(family)[-3:] == [
        "account.activation_started",
        "portal.activation_link_sent",
        "account.activated",
    ]

    # The provisional password no longer opens anything; the chosen one opens « mon compte ».
    reply = await portal.browser().log_in(family.identifier, family.password)
    assert reply.status_code == 401
    reply = await browser.log_in(family.identifier, NEW_PASSWORD)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/compte"
    page = await browser.get("/compte")
    assert page.status_code == 200
    assert family.identifier in page.text and NEW_EMAIL in page.text and "Léa" in page.text


async def test_the_confirmation_email_carries_the_link_and_the_identifier(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _logged_in(portal, family)
    await browser.post("/activation/finaliser", _form())
    message = portal.mail("activation_confirmation")
    assert message["To"].addresses[0].addr_spec == NEW_EMAIL
    assert message["Auto-Submitted"] == "auto-generated"
    text = mail_text(message)
    assert family.identifier in text
    assert portal.link_path("activation_confirmation") in text
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    assert portal.link_path("activation_confirmation") in html_part.get_content()
    # Never a password in the e-mail.
    assert NEW_PASSWORD not in message.as_string()
    assert family.password not in message.as_string()


async def test_any_childs_birth_date_is_accepted(portal: PortalHarness) -> None:
    family = make_family(portal, birth_dates=(CHILD_BIRTH_DATE, SIBLING_BIRTH_DATE))
    browser = await _logged_in(portal, family)
    reply = await browser.post(
        "/activation/finaliser",
        _form(birth_date=SIBLING_BIRTH_DATE.isoformat()),  # a date field sends ISO dates
    )
    assert reply.status_code == 303
    assert portal.account(family).state == AccountState.ACTIVATING


async def test_a_birth_date_typed_on_a_phone_number_pad_is_accepted(
    portal: PortalHarness, family: Family
) -> None:
    # The field opens the number pad, which has no « / » on an iPhone: eight digits, day first.
    browser = await _logged_in(portal, family)
    reply = await browser.post(
        "/activation/finaliser", _form(birth_date=CHILD_BIRTH_DATE.strftime("%d%m%Y"))
    )
    assert reply.status_code == 303
    assert portal.account(family).state == AccountState.ACTIVATING


async def test_a_family_without_an_address_on_file_gives_one(portal: PortalHarness) -> None:
    family = make_family(portal, email=None)
    browser = await _logged_in(portal, family)
    form = await browser.get("/activation/finaliser")
    assert 'id="email"' in form.text and 'name="email" type="email" value=' not in form.text
    reply = await browser.post("/activation/finaliser", _form(email="  Nouveau@Example.ORG "))
    assert reply.status_code == 303
    assert portal.guardian(family).email is None  # until the link is followed
    assert portal.outbox("activation_confirmation")[-1].to_address == "Nouveau@example.org"


# --- Refusals at the first step ------------------------------------------------------------


async def test_a_wrong_password_is_refused_and_audited(
    portal: PortalHarness, family: Family
) -> None:
    browser = portal.browser()
    reply = await browser.post(
        "/activation", {"identifier": family.identifier, "password": "WRONG234"}
    )
    assert reply.status_code == 401
    assert _field_error(reply.text, "password")
    assert f'value="{family.identifier}"' in reply.text  # kept; the password never is
    assert "WRONG234" not in reply.text
    assert portal.account(family).state == AccountState.NOTIFIED
    [event] = portal.events("portal.login_failed")
    assert event.account_id == family.account_id
    assert event.details == {"reason": "wrong_password", "locked": False}
    # One count for the identifier, one for the client, one for the pair (its growing delay).
    assert len(portal.throttles()) == 3
    assert (await browser.get("/activation/finaliser")).headers["location"] == "/connexion"


async def test_an_unknown_identifier_gets_the_same_answer_as_a_wrong_password(
    portal: PortalHarness, family: Family
) -> None:
    wrong_password = await portal.browser().post(
        "/activation", {"identifier": family.identifier, "password": "WRONG234"}
    )
    unknown = await portal.browser().post(
        "/activation", {"identifier": "nobody.here", "password": "WRONG234"}
    )
    assert unknown.status_code == wrong_password.status_code == 401

    def words(html: str) -> str:
        return (
            html.replace(family.identifier, "X")
            .replace("nobody.here", "X")
            .split('name="csrf_token"')[0]
        )

    assert words(unknown.text) == words(wrong_password.text)
    [_, event] = portal.events("portal.login_failed")
    assert event.account_id is None and event.details["reason"] == "unknown_identifier"


async def test_empty_fields_are_named_next_to_each_field(sqlite_portal: PortalHarness) -> None:
    reply = await sqlite_portal.browser().post("/activation", {"identifier": "", "password": ""})
    assert reply.status_code == 400
    assert _field_error(reply.text, "identifier") and _field_error(reply.text, "password")
    assert 'href="#identifier"' in reply.text  # the error summary links to the field
    assert sqlite_portal.throttles() == []  # nothing was checked, nothing counted


async def test_an_expired_provisional_password_says_to_ask_the_school(
    portal: PortalHarness,
) -> None:
    family = make_family(portal, letter_time=portal.clock() - timedelta(days=100))
    with portal.session() as session:
        session.add(AppSetting(key=BOT_USERNAME_SETTING, value="educonnect_ecole_bot"))
        session.commit()
    reply = await portal.browser().post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert reply.status_code == 403
    assert "3 months" in reply.text or "3 mois" in reply.text
    assert 'href="https://t.me/educonnect_ecole_bot"' in reply.text
    assert portal.account(family).state == AccountState.NOTIFIED
    [event] = portal.events("portal.login_refused")
    assert event.details == {"reason": "provisional_password_expired"}
    assert portal.throttles() == []  # the password was right: not a failure


async def test_an_expired_provisional_password_with_a_wrong_guess_reveals_nothing(
    portal: PortalHarness,
) -> None:
    family = make_family(portal, letter_time=portal.clock() - timedelta(days=100))
    reply = await portal.browser().post(
        "/activation", {"identifier": family.identifier, "password": "WRONG234"}
    )
    assert reply.status_code == 401


async def test_a_provisional_password_expiring_while_the_form_is_open(
    portal: PortalHarness,
) -> None:
    letter_time = portal.clock() - timedelta(days=100)
    family = make_family(portal, letter_time=letter_time)
    expiry = provisional_expiry(letter_time)
    portal.clock.now = expiry - timedelta(hours=1)  # the family logs in just before the expiry…
    browser = await _logged_in(portal, family)
    portal.clock.now = expiry + timedelta(minutes=1)  # …and sends the form just after
    reply = await browser.post("/activation/finaliser", _form())
    assert reply.status_code == 403
    assert portal.account(family).state == AccountState.NOTIFIED
    assert portal.outbox() == []


# --- Refusals at the second step -----------------------------------------------------------


async def test_a_weak_new_password_is_refused_next_to_its_field(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _logged_in(portal, family)
    before = portal.account(family).password_hash
    reply = await browser.post(
        "/activation/finaliser", _form(new_password="soleil2027", confirm_password="soleil2027")
    )
    assert reply.status_code == 400
    assert _field_error(reply.text, "new_password")
    assert "soleil2027" not in reply.text
    assert f'value="{NEW_EMAIL}"' in reply.text  # what was typed is kept, but no password
    account = portal.account(family)
    assert account.state == AccountState.NOTIFIED
    assert account.password_hash == before
    assert portal.outbox() == [] and portal.tokens() == []


async def test_the_new_password_must_differ_from_the_identifier_and_the_provisional_one(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = await _logged_in(sqlite_portal, sqlite_family)
    stem = sqlite_family.identifier.rstrip("0123456789")
    with_identifier = f"{stem.capitalize()}-2027!"
    reply = await browser.post(
        "/activation/finaliser",
        _form(new_password=with_identifier, confirm_password=with_identifier),
    )
    assert reply.status_code == 400 and _field_error(reply.text, "new_password")
    provisional = sqlite_family.password.lower()
    reply = await browser.post(
        "/activation/finaliser", _form(new_password=provisional, confirm_password=provisional)
    )
    assert reply.status_code == 400 and _field_error(reply.text, "new_password")
    assert sqlite_portal.account(sqlite_family).state == AccountState.NOTIFIED


async def test_the_two_passwords_must_match(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = await _logged_in(sqlite_portal, sqlite_family)
    reply = await browser.post("/activation/finaliser", _form(confirm_password="Vacances-2028!"))
    assert reply.status_code == 400
    assert _field_error(reply.text, "confirm_password")
    assert 'id="new_password-error"' not in reply.text
    assert sqlite_portal.account(sqlite_family).state == AccountState.NOTIFIED


async def test_an_invalid_email_address_is_refused(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = await _logged_in(sqlite_portal, sqlite_family)
    reply = await browser.post("/activation/finaliser", _form(email="famille@@example"))
    assert reply.status_code == 400
    assert _field_error(reply.text, "email")
    assert sqlite_portal.account(sqlite_family).state == AccountState.NOTIFIED
    assert sqlite_portal.guardian(sqlite_family).email == "parent0@example.org"


async def test_a_wrong_birth_date_is_refused_then_locks_the_activation_for_a_while(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _logged_in(portal, family)
    reply = await browser.post("/activation/finaliser", _form(birth_date="15/03/2017"))
    assert reply.status_code == 400
    assert _field_error(reply.text, "birth_date")
    assert 'value="15/03/2017"' in reply.text
    account = portal.account(family)
    assert account.state == AccountState.NOTIFIED
    assert verify_password(account.password_hash, family.password)  # still the provisional one
    assert portal.guardian(family).email == "parent0@example.org"
    assert portal.outbox() == []
    [event] = portal.events("portal.birth_date_refused")
    assert event.account_id == family.account_id
    assert event.details == {"reason": "wrong", "locked": False}

    for _attempt in range(3):
        reply = await browser.post("/activation/finaliser", _form(birth_date="01/01/2017"))
        assert reply.status_code == 400
    reply = await browser.post("/activation/finaliser", _form(birth_date="02/01/2017"))
    assert reply.status_code == 429  # the fifth wrong date locks the activation
    assert portal.events("portal.birth_date_refused")[-1].details["locked"] is True
    # Locked: even the right date is not checked.
    reply = await browser.post("/activation/finaliser", _form())
    assert reply.status_code == 429
    assert portal.account(family).state == AccountState.NOTIFIED
    assert portal.events("portal.activation_refused")[-1].details == {"reason": "locked"}

    portal.clock.advance(minutes=16)
    reply = await browser.post("/activation/finaliser", _form())
    assert reply.status_code == 303
    assert portal.account(family).state == AccountState.ACTIVATING


async def test_an_unparseable_birth_date_is_not_counted_as_a_guess(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    browser = await _logged_in(sqlite_portal, sqlite_family)
    reply = await browser.post("/activation/finaliser", _form(birth_date="31/02/2017"))
    assert reply.status_code == 400 and _field_error(reply.text, "birth_date")
    assert sqlite_portal.events("portal.birth_date_refused") == []


async def test_no_birth_date_on_file_says_to_ask_the_school(sqlite_portal: PortalHarness) -> None:
    family = make_family(sqlite_portal, birth_dates=(None,))
    browser = await _logged_in(sqlite_portal, family)
    reply = await browser.post("/activation/finaliser", _form())
    assert reply.status_code == 400 and _field_error(reply.text, "birth_date")
    assert sqlite_portal.account(family).state == AccountState.NOTIFIED
    [event] = sqlite_portal.events("portal.birth_date_refused")
    assert event.details["reason"] == "none_on_file"


# --- The confirmation link -----------------------------------------------------------------


async def test_a_used_confirmation_link_is_refused(portal: PortalHarness, family: Family) -> None:
    browser = await activate(portal, family)
    link = portal.link_path("activation_confirmation")
    page = await browser.get(link)
    assert page.status_code == 410
    reply = await browser.post(link)
    assert reply.status_code == 410
    account = portal.account(family)
    assert account.state == AccountState.ACTIVATED
    reasons = [event.details["reason"] for event in portal.events("portal.link_refused")]
    assert reasons == ["used", "used"]


async def test_an_expired_confirmation_link_is_refused_and_a_new_one_can_be_sent(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _logged_in(portal, family)
    await browser.post("/activation/finaliser", _form())
    old_link = portal.link_path("activation_confirmation")
    portal.clock.advance(days=8)
    reply = await browser.post(old_link)
    assert reply.status_code == 410
    assert portal.account(family).state == AccountState.ACTIVATING

    # Logging in again (with the chosen password) leads to the page that sends a new link.
    again = portal.browser()
    reply = await again.log_in(family.identifier, NEW_PASSWORD)
    assert reply.headers["location"] == "/activation/attente"
    reply = await again.post("/activation/renvoyer")
    assert reply.status_code == 303
    new_link = portal.link_path("activation_confirmation")
    assert new_link != old_link
    assert len(portal.outbox("activation_confirmation")) == 2
    reply = await again.post(new_link)
    assert reply.status_code == 200
    assert portal.account(family).state == AccountState.ACTIVATED


async def test_resending_the_link_replaces_the_previous_one(
    portal: PortalHarness, family: Family
) -> None:
    browser = await _logged_in(portal, family)
    await browser.post("/activation/finaliser", _form())
    first = portal.link_path("activation_confirmation")
    reply = await browser.post("/activation/renvoyer")
    assert reply.status_code == 303
    second = portal.link_path("activation_confirmation")
    assert first != second
    page = await browser.get(first)
    assert page.status_code == 410  # replaced
    tokens = portal.tokens()
    assert tokens[0].revoked_at is not None and tokens[1].revoked_at is None
    assert (await browser.post(second)).status_code == 200
    assert portal.account(family).state == AccountState.ACTIVATED


async def test_resending_is_limited(sqlite_portal: PortalHarness, sqlite_family: Family) -> None:
    browser = await _logged_in(sqlite_portal, sqlite_family)
    await browser.post("/activation/finaliser", _form())  # the first e-mail
    assert (await browser.post("/activation/renvoyer")).status_code == 303
    assert (await browser.post("/activation/renvoyer")).status_code == 303
    reply = await browser.post("/activation/renvoyer")
    assert reply.status_code == 429
    assert len(sqlite_portal.outbox("activation_confirmation")) == 3


async def test_an_unknown_link_is_not_found(sqlite_portal: PortalHarness) -> None:
    browser = sqlite_portal.browser()
    assert (await browser.get("/confirmer/" + "A" * 43)).status_code == 404
    assert (await browser.get("/confirmer/short")).status_code == 404
    assert (await browser.post("/confirmer/" + "B" * 43)).status_code == 404
    assert len(sqlite_portal.events("portal.link_refused")) == 3


async def test_an_activated_family_opening_the_activation_page_lands_on_its_account(
    portal: PortalHarness, family: Family
) -> None:
    await activate(portal, family)
    browser = portal.browser()
    reply = await browser.post(
        "/activation", {"identifier": family.identifier, "password": NEW_PASSWORD}
    )
    assert reply.headers["location"] == "/compte"
    page = await browser.get("/compte")
    assert page.status_code == 200
    assert (await browser.get("/activation/finaliser")).headers["location"] == "/compte"
