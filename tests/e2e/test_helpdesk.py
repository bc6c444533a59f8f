"""The families' guided help end to end, the bot as a process: a family linked by the phone number
Telegram vouched for gets its identifier, a new provisional password by e-mail (once a day) that
logs in on the portal, and the confirmation link again; a wrong address reaches the director, who
corrects it, and the confirmation e-mail goes to the right one. E-mails are read from a real SMTP
server, the portal's pages followed over HTTP (httpx, as the family's browser would).

The requests of unlinked families, the restart and the limits: `test_helpdesk_requests.py`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from bot.sandbox.botapi import ThreadedBotApi
from bot.sandbox.onde_generator import demo_school
from bot.services.accounts.passwords import PROVISIONAL_ALPHABET, verify_password
from models import AccountState, HelpStatus
from tests.e2e.conftest import REPLY_TIMEOUT, BotProcess, SeededSchool
from tests.e2e.steps import (
    REFERENCE,
    account_of,
    activate_on_portal,
    become_director,
    confirm_on_portal,
    contains,
    family_records,
    fr,
    fr_start,
    import_samples,
    link_by_phone,
    link_in,
    log_in_on_portal,
    mails_to,
    offering,
    request_of,
    say,
    tap,
)
from tests.mailtools import SmtpTestServer, plain_text

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

PROVISIONAL = re.compile(rf"\b[{PROVISIONAL_ALPHABET}]{{8}}\b")
PASSWORD = "Cartable-Bleu-2026!"
GIVEN_EMAIL = "famille.activation@example.org"
WRONG_EMAIL = "famille.activaton@example.org"
RIGHT_EMAIL = "famille.activation@exemple.fr"
NEVER_A_PASSWORD = (
    "I never show passwords. Lost the password too? Type /motdepasse. Log in at {portal}"
)
ALREADY_SENT = (
    "An e-mail was already sent recently. Please check your inbox and spam folder; you can ask "
    "again after {when}."
)


@pytest.fixture
def imported_school(portal_bot: BotProcess, tmp_path: Path) -> SeededSchool:
    """The demo school, its ONDE files imported (mobiles in ONDE's « 0612345678 » form)."""
    seeded = portal_bot.seed_school()
    demo_school().write(tmp_path / "demo")
    import_samples(portal_bot, seeded, tmp_path / "demo")
    return seeded


def test_linked_family_sees_its_identifier_and_gets_one_new_password_a_day_by_email(
    portal_bot: BotProcess,
    bot_api: ThreadedBotApi,
    smtp: SmtpTestServer,
    imported_school: SeededSchool,
) -> None:
    record = portal_bot.service(family_records)[0]
    assert record.email is not None
    # The school has the number as ONDE writes it; Telegram shares it in international form.
    assert re.fullmatch(r"0[67]\d{8}", re.sub(r"\D", "", record.onde_mobile))
    assert record.telegram_number.startswith("33")
    family, _url = link_by_phone(bot_api, record)

    offer = say(family, "/motdepasse", offering("fh:pw:"))
    tap(family, offer, "fh:pw:", contains("✉️"))
    [mail] = mails_to(smtp, record.email)
    text = plain_text(mail.parsed())
    assert record.identifier in text
    account = portal_bot.service(account_of, account_id=record.account_id)
    [password] = [
        p for p in PROVISIONAL.findall(text) if verify_password(account.password_hash or "", p)
    ]
    page = log_in_on_portal(portal_bot.env["PORTAL_URL"], record.identifier, password)
    assert page.status_code == 200 and page.url.path == "/activation/finaliser", page.text

    # Now that a provisional password exists, /identifiant still shows only the identifier.
    shown = say(family, "/identifiant", contains(record.identifier))
    assert fr_start(NEVER_A_PASSWORD) in shown.content and password not in shown.content

    again = say(family, "/motdepasse", offering("fh:pw:"))
    tap(family, again, "fh:pw:", contains(fr_start(ALREADY_SENT)))
    time.sleep(1.5)  # the outbox sender, had it been woken, would have sent it by now
    assert len(mails_to(smtp, record.email)) == 1
    assert all(password not in m.content for m in family.bot_messages)


def test_activating_family_gets_the_confirmation_link_again_and_activates_with_it(
    portal_bot: BotProcess,
    bot_api: ThreadedBotApi,
    smtp: SmtpTestServer,
    imported_school: SeededSchool,
) -> None:
    record = portal_bot.service(family_records)[0]
    family, url = link_by_phone(bot_api, record)
    activate_on_portal(url, email=GIVEN_EMAIL, birth_date=record.birth_date, password=PASSWORD)
    mails_to(smtp, GIVEN_EMAIL)  # the first confirmation e-mail: not followed

    offer = say(family, "/activation", offering("fh:cl:"))
    tap(family, offer, "fh:cl:", contains("🔁"))
    first, second = mails_to(smtp, GIVEN_EMAIL, 2)
    assert link_in(first) != link_in(second)
    confirm_on_portal(link_in(first))  # the older link no longer works
    state = portal_bot.service(account_of, account_id=record.account_id).state
    assert state == AccountState.ACTIVATING
    confirmed = confirm_on_portal(link_in(second))
    assert confirmed.status_code == 200, confirmed.text
    state = portal_bot.service(account_of, account_id=record.account_id).state
    assert state == AccountState.ACTIVATED

    status = say(family, "/etat", contains(record.identifier))
    assert "🟢" in status.content


def test_a_wrong_address_reported_from_activation_is_corrected_by_the_director(
    portal_bot: BotProcess,
    bot_api: ThreadedBotApi,
    smtp: SmtpTestServer,
    imported_school: SeededSchool,
) -> None:
    director = become_director(bot_api, imported_school)
    record = portal_bot.service(family_records)[0]
    family, url = link_by_phone(bot_api, record)
    activate_on_portal(url, email=WRONG_EMAIL, birth_date=record.birth_date, password=PASSWORD)
    mails_to(smtp, WRONG_EMAIL)

    offer = say(family, "/activation", offering("fh:file:wrong_email"))
    assert fr("✍️ Wrong address") in offer.button_labels
    tap(
        family,
        offer,
        "fh:file:wrong_email",
        contains(
            fr(
                "Type the right e-mail address (and anything the school should know) in one "
                "message."
            )
        ),
    )
    filed = say(family, f"Je me suis trompée, c'est {RIGHT_EMAIL}", contains("D-"))
    found = REFERENCE.search(filed.content)
    assert found is not None
    reference = found[0]

    note = director.wait_for(offering("ga:email:"), REPLY_TIMEOUT)
    assert reference in note.content and RIGHT_EMAIL in note.content
    assert fr("✏️ Correct the e-mail") in note.button_labels
    tap(director, note, "ga:email:", contains("✏️"))
    say(
        director,
        RIGHT_EMAIL,
        contains(fr("🔁 The confirmation link has been sent again to this address.")),
    )

    [mail] = mails_to(smtp, RIGHT_EMAIL)
    corrected = fr(
        "The school corrected your e-mail address. If your account was waiting for its "
        "confirmation, a new confirmation link has been sent to the right address."
    )
    family.wait_for(contains(reference, corrected), REPLY_TIMEOUT)
    assert confirm_on_portal(link_in(mail)).status_code == 200
    state = portal_bot.service(account_of, account_id=record.account_id).state
    assert state == AccountState.ACTIVATED
    assert portal_bot.service(request_of, reference=reference).status == HelpStatus.ANSWERED
