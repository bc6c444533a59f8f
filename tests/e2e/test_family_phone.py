"""End to end, the bot as a process: a family shares its Telegram number with the welcome's
button, gets the activation button, follows it (httpx, as the phone's browser would), chooses
its password, and activates the account with the confirmation e-mail's link."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from bot.sandbox.botapi import ThreadedBotApi
from bot.sandbox.onde_generator import demo_school
from bot.sandbox.school import demo_family_phone
from models import Account, AccountState, Guardian, Pupil, PupilGuardian
from tests.e2e.conftest import REPLY_TIMEOUT, BotProcess, SeededSchool
from tests.e2e.steps import confirmation_link, import_samples
from tests.mailtools import SmtpTestServer

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

EMAIL = "famille.petit@example.org"
PASSWORD = "Cartable-Bleu-2026!"
CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


def _account(session: Session, *, mobile_e164: str) -> tuple[int, str, list[str]]:
    """The guardian with this mobile: account id, state, children's birth dates (dd/mm/yyyy)."""
    guardian = session.exec(select(Guardian).where(Guardian.mobile_e164 == mobile_e164)).one()
    account = session.exec(select(Account).where(Account.guardian_id == guardian.id)).one()
    children = session.exec(
        select(Pupil)
        .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
        .where(PupilGuardian.guardian_id == guardian.id)
    ).all()
    dates = [c.birth_date.strftime("%d/%m/%Y") for c in children if c.birth_date]
    assert account.id is not None
    return account.id, account.state, dates


def test_shared_number_activates_the_account_without_the_letter(
    portal_bot: BotProcess, bot_api: ThreadedBotApi, smtp: SmtpTestServer, tmp_path: Path
) -> None:
    school: SeededSchool = portal_bot.seed_school()
    demo_school().write(tmp_path / "demo")
    import_samples(portal_bot, school, tmp_path / "demo")
    phone = demo_family_phone()
    assert phone is not None
    account_id, state, birth_dates = portal_bot.service(
        _account, mobile_e164=f"+{phone.telegram_number}"
    )
    assert state == AccountState.NOT_NOTIFIED and birth_dates

    family = bot_api.new_user("Sandrine", phone_number=phone.telegram_number)
    family.send_text("/start")
    family.next_message(REPLY_TIMEOUT)
    button = family.contact_button
    assert button is not None
    family.tap(button)
    activation = family.wait_for(lambda m: bool(m.inline_keyboard), REPLY_TIMEOUT)
    [[(_label, url)]] = activation.buttons
    assert url is not None and url.startswith(f"{portal_bot.env['PORTAL_URL']}/telephone/")
    assert family.reply_keyboard is None

    with httpx.Client(follow_redirects=True, timeout=REPLY_TIMEOUT) as browser:
        form = browser.get(url)
        assert form.status_code == 200, form.text
        csrf = CSRF.search(form.text)
        assert csrf, form.text
        sent = browser.post(
            url,
            data={
                "csrf_token": csrf[1],
                "new_password": PASSWORD,
                "confirm_password": PASSWORD,
                "email": EMAIL,
                "birth_date": birth_dates[0],
            },
        )
        assert sent.status_code == 200 and sent.url.path == "/activation/attente", sent.text
        assert portal_bot.service(_account, mobile_e164=f"+{phone.telegram_number}")[1] == (
            AccountState.ACTIVATING
        )
        link = confirmation_link(smtp, EMAIL)
        page = browser.get(link)  # a page whose button confirms (mail scanners only GET)
        confirm_csrf = CSRF.search(page.text)
        assert confirm_csrf, page.text
        confirmed = browser.post(link, data={"csrf_token": confirm_csrf[1]})
        assert confirmed.status_code == 200, confirmed.text
        # The link is single-use: a second visit does not open the form again.
        again = browser.get(url)
        assert 'name="new_password"' not in again.text

    assert portal_bot.service(_account, mobile_e164=f"+{phone.telegram_number}")[:2] == (
        account_id,
        AccountState.ACTIVATED,
    )
