"""A parent activates an account on a phone: headless Chromium (Debian's `chromium`, driven by
Playwright) opens the address of the QR code on a letter printed by `/pdf`, types the letter's
credentials, chooses a password, gives an e-mail address and a child's birth date, follows the
confirmation link from the SMTP server, and the director's `/etat` shows one more 🟢.

Skipped, saying why, where Chromium or Playwright is missing (`.ci/run` installs Chromium).
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pypdfium2 as pdfium
import pytest
import zxingcpp
from pypdf import PdfReader
from sqlmodel import Session, col, select

from bot.sandbox.botapi import ThreadedBotApi, ThreadedUser
from bot.services.accounts.passwords import PROVISIONAL_ALPHABET, verify_password
from handlers.distribution import state
from models import Account, AccountState, Pupil, PupilGuardian
from tests.conftest import SAMPLES
from tests.e2e.conftest import REPLY_TIMEOUT, BotProcess, ask, text_of
from tests.e2e.steps import (
    become_director,
    confirmation_link,
    import_samples,
    offering,
    press,
)
from tests.mailtools import SmtpTestServer

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "Chromium is not installed: .ci/run installs Debian's chromium package",
        allow_module_level=True,
    )
try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:
    pytest.skip(
        "Playwright is not installed: `pip install -e '.[dev]'` installs it",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DOCUMENT_PASSWORD = "Tableau-Noir-1882"
NEW_PASSWORD = "Cartable-Rouge-2027"
FAMILY_EMAIL = "parent.activation@exemple.fr"
PROVISIONAL = re.compile(rf"\b[{PROVISIONAL_ALPHABET}]{{8}}\b")
# A closed network, no GPU, run as root in CI: Chromium must not try to phone home or sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def phone() -> Iterator[Page]:
    """A French parent's phone: headless Chromium with a Pixel 5's screen and touch, in French."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            **playwright.devices["Pixel 5"], locale="fr-FR", timezone_id="Europe/Paris"
        )
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        browser.close()


# --- the letter, the mail, the database, the director's status ----------------------------------


def print_letters(director: ThreadedUser, argument: str) -> bytes:
    """`/pdf ARGUMENT` as the director does it: the PDF of the letters, still encrypted."""
    director.drain()
    director.send_text(f"/pdf {argument}")
    director.next_message(REPLY_TIMEOUT)  # asks for the document password
    director.send_text(DOCUMENT_PASSWORD)
    preview = director.wait_for(offering(state.PRINT), REPLY_TIMEOUT)
    press(director, preview, state.PRINT)
    sent = director.wait_for(lambda m: m.document is not None, 60)
    assert sent.document is not None
    # The PDF goes first, then the letters are recorded (the accounts « notified ») and the
    # status says ✅: what the director reads before handing the letters out.
    director.wait_for(lambda m: m.content.startswith("✅") and m.document is None, REPLY_TIMEOUT)
    return sent.document.data


def read_letter(pdf: bytes, index: int = 0) -> tuple[str, str]:
    """What a parent takes from page `index`: the address its QR code opens (as a phone's camera
    reads it from the printed page), and the provisional password printed on it."""
    page = pdfium.PdfDocument(pdf, password=DOCUMENT_PASSWORD)[index]
    codes = [result.text for result in zxingcpp.read_barcodes(page.render(scale=3).to_pil())]
    urls = [code for code in codes if "/activation?" in code]
    assert len(urls) == 1, codes
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.decrypt(DOCUMENT_PASSWORD)
    passwords = PROVISIONAL.findall(reader.pages[index].extract_text())
    assert len(passwords) == 1, passwords
    return urls[0], passwords[0]


def account_named(bot: BotProcess, identifier: str) -> Account:
    with Session(bot.database()) as session:
        return session.exec(select(Account).where(Account.identifier == identifier)).one()


def birth_dates_of_children(bot: BotProcess, guardian_id: int) -> list[str]:
    """The children's birth dates as a parent types them: « 14/03/2017 »."""
    with Session(bot.database()) as session:
        children = session.exec(
            select(Pupil)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .where(PupilGuardian.guardian_id == guardian_id)
        ).all()
    return [child.birth_date.strftime("%d/%m/%Y") for child in children if child.birth_date]


def lights(status: str) -> dict[str, int]:
    """The school's totals in `/etat`: « 🟢 Activé : 12 » → {"🟢": 12}."""
    return {
        light: int(count)
        for light, count in re.findall(r"^(🔴|🟠|🟡|🟢) [^:\n]+:\s*(\d+)$", status, re.MULTILINE)
    }


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"portal-phone-{name}.png", full_page=True)


# --- the test ----------------------------------------------------------------------------------


# The browser is what this test adds: the portal's database work is the same code the portal's
# and the chat's tests run on both databases, and Chromium is the suite's heaviest process.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_parent_activates_from_a_printed_letter_on_a_phone_and_the_light_turns_green(
    portal_bot: BotProcess, bot_api: ThreadedBotApi, smtp: SmtpTestServer, phone: Page
) -> None:
    bot = portal_bot
    school = bot.seed_school()
    import_samples(bot, school, SAMPLES)
    director = become_director(bot_api, school)
    url, password = read_letter(print_letters(director, "CM1"))
    identifier = parse_qs(urlsplit(url).query)["identifiant"][0]
    account = account_named(bot, identifier)
    assert account.state == AccountState.NOTIFIED
    assert verify_password(account.password_hash or "", password)
    birth_date = birth_dates_of_children(bot, account.guardian_id)[0]
    before = lights(text_of(ask(director, "/etat")))

    # Step 1: the QR code's address, the identifier already there; the letter's password.
    phone.goto(url)
    expect(phone.get_by_label("Identifiant")).to_have_value(identifier)
    screenshot(phone, "1-letter-login")
    phone.get_by_label("Mot de passe provisoire").fill(password)
    phone.get_by_role("button", name="Continuer").tap()

    # Step 2: a new password twice, an e-mail address, a child's birth date. A typo in the
    # second password first: the page says so above the form and next to the field.
    expect(phone.get_by_text("Étape 2 sur 3")).to_be_visible()
    phone.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    phone.get_by_label("Nouveau mot de passe, une seconde fois").fill(NEW_PASSWORD.lower())
    phone.get_by_label("Adresse e-mail").fill(FAMILY_EMAIL)
    phone.get_by_label("Date de naissance").fill(birth_date)
    phone.get_by_role("button", name="Activer mon compte").tap()
    expect(phone.get_by_role("alert")).to_be_visible()
    second = phone.get_by_label("Nouveau mot de passe, une seconde fois")
    expect(second).to_have_attribute("aria-invalid", "true")
    screenshot(phone, "2-typo")
    assert account_named(bot, identifier).state == AccountState.NOTIFIED
    phone.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    second.fill(NEW_PASSWORD)
    screenshot(phone, "2-details")
    phone.get_by_role("button", name="Activer mon compte").tap()

    # Step 3: the page says a link was e-mailed; the account is 🟡 until it is followed.
    phone.wait_for_url("**/activation/attente")
    expect(phone.get_by_text(FAMILY_EMAIL).first).to_be_visible()
    screenshot(phone, "3-link-sent")
    assert account_named(bot, identifier).state == AccountState.ACTIVATING
    activating = lights(text_of(ask(director, "/etat")))
    assert activating["🟡"] == before["🟡"] + 1 and activating["🟠"] == before["🟠"] - 1

    # The link from the mail: a page with a button (mail scanners open links too), pressed.
    phone.goto(confirmation_link(smtp, FAMILY_EMAIL))
    screenshot(phone, "4-confirmation-link")
    phone.get_by_role("button", name="Activer mon compte").tap()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Votre compte est activé")
    screenshot(phone, "5-activated")
    assert account_named(bot, identifier).state == AccountState.ACTIVATED

    after = lights(text_of(ask(director, "/etat")))
    assert after["🟢"] == before["🟢"] + 1
    assert after["🟡"] == before["🟡"] and after["🟠"] == before["🟠"] - 1
