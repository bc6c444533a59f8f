"""Bilingual credential e-mails (issue 12): for a guardian whose language is not French, both
parts hold the French text first, then a heading naming the language in its own words, then
the same content in that language; the subject stays French and names the language;
`Content-Language` lists both; the translated HTML block carries `lang` and, in Arabic,
`dir="rtl"`. French-only e-mails stay as they were.

The phrases are read from the catalogs: the checks that a translation differs from French need
the ar/pt/es/tr catalogs (and the French entries of the two new message ids) merged.
"""

from __future__ import annotations

import email
import email.policy
from datetime import date
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from bot.i18n import LANGUAGE_NAMES, translations
from bot.services.accounts.credentials import CredentialKind, issue_credentials
from bot.services.distribution.drafting import build_letters
from bot.services.letters import Letter
from bot.services.mail.bilingual import RULE
from bot.services.mail.composition import compose_credentials_email
from tests.factories import make_school_with_guardians
from tests.mailtools import MAIL_FROM, PORTAL_URL, html_text, plain_text

PARIS = ZoneInfo("Europe/Paris")
STEPS = "Activate your account in 2 steps"
NOTE = "The same message in your language. The French text above is the one that counts."


def _letter(session: Session, language: str | None) -> Letter:
    """The first letter of a guardian whose preferred language is `language`, drafted as
    /envoyer drafts it (the language read from the guardian)."""
    built = make_school_with_guardians(session, 1)
    guardian = built.guardians[0]
    guardian.preferred_language = language
    session.add(guardian)
    session.flush()
    issued = issue_credentials(
        session=session, account_ids=built.account_ids, kind=CredentialKind.FIRST, actor="t"
    )
    [letter] = build_letters(
        session,
        credentials=issued,
        link_codes={issued[0].account_id: "CODE1234"},
        school=built.school,
        bot_username="educonnect_test_bot",
        portal_url=PORTAL_URL,
        letter_date=date(2026, 11, 28),
    )
    return letter


def _roundtrip(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _in(language: str, msgid: str) -> str:
    return translations(language).gettext(msgid)


@pytest.mark.parametrize("language", ["en", "ar", "pt", "es", "tr"])
def test_credentials_email_is_french_then_the_familys_language(
    session: Session, language: str
) -> None:
    letter = _letter(session, language)
    assert letter.language == language
    message = _roundtrip(compose_credentials_email(letter, mail_from=MAIL_FROM, tz=PARIS))
    french_steps, translated_steps = _in("fr", STEPS), _in(language, STEPS)
    assert translated_steps != french_steps, f"no {language} translation merged yet"
    name = LANGUAGE_NAMES[language]

    assert message["Content-Language"] == f"fr, {language}"
    subject = str(message["Subject"])
    assert subject.startswith("EduConnect — ")
    assert subject.endswith(f"(traduction : {name})")  # French, naming the language

    text = plain_text(message)
    french, heading, translated = text.split(RULE + "\n")
    assert french_steps in french and translated_steps not in french
    assert heading.startswith(name + "\n")
    assert _in(language, NOTE) in " ".join(heading.split())  # wrapped at 76 characters
    assert translated_steps in translated
    for half in (french, translated):
        assert letter.identifier in half
        assert letter.password is not None and letter.password in half
        assert letter.activation_url in half
    # One signature separator, after both halves: readers grey out only the footers.
    assert text.splitlines().count("-- ") == 1
    assert text.index("\n-- \n") > text.index(translated_steps)

    page = html_text(message)
    direction = "rtl" if language == "ar" else "ltr"
    block = f'<div lang="{language}" dir="{direction}"'
    assert '<html lang="fr">' in page and page.count("<div lang=") == 1
    assert page.index(french_steps) < page.index(block) < page.index(translated_steps)
    assert page.index(block) < page.index(f"<strong>{name}</strong>")
    assert page.count(letter.identifier) >= 2
    if language == "ar":
        # The steps' numbers on the right, the password still read left to right.
        translated_html = page[page.index(block) :]
        assert "padding-right:22px" in translated_html
        assert '<span dir="ltr" style="font-family:Consolas' in translated_html


def test_english_half_reads_as_english_before_any_catalog_merge(session: Session) -> None:
    """English is the message ids themselves: the translated half is checkable as it is."""
    message = _roundtrip(
        compose_credentials_email(_letter(session, "en-GB"), mail_from=MAIL_FROM, tz=PARIS)
    )
    text = plain_text(message)
    french, _heading, english = text.split(RULE + "\n")
    assert "Activez votre compte en 2 étapes" in french
    assert "Activate your account in 2 steps" in english
    assert "Never give your password to anyone" in english
    assert "November 28, 2026" in english and "28 novembre 2026" in french
    assert message["Content-Language"] == "fr, en"


@pytest.mark.parametrize("language", [None, "fr", "fr-BE", "xx"])
def test_french_only_when_the_language_is_french_or_unknown(
    session: Session, language: str | None
) -> None:
    message = _roundtrip(
        compose_credentials_email(_letter(session, language), mail_from=MAIL_FROM, tz=PARIS)
    )
    assert message["Content-Language"] == "fr"
    assert "traduction" not in str(message["Subject"])
    assert RULE not in plain_text(message)
    assert "<div lang=" not in html_text(message)
