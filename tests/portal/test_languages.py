"""The portal in each family language (issue 12): the switch on every page naming each language
in its own words, `<html lang dir>`, the choice remembered in a cookie and, for a signed-in
family, on its guardian; the browser's Accept-Language on a first visit; the link e-mails
French first, then the family's language.

The checks that a page's words differ from French need the ar/pt/es/tr catalogs merged.
"""

from __future__ import annotations

import re

import pytest

from bot.i18n import LANGUAGE_NAMES, translations
from bot.portal.security import accepted_language
from models import Guardian
from tests.portal.conftest import (
    CHILD_BIRTH_DATE,
    NEW_PASSWORD,
    Family,
    PortalHarness,
    activate,
    mail_text,
)

FAMILY_LANGUAGES = ["en", "ar", "pt", "es", "tr"]
HEADING = "Activate your EduConnect account"
OFFERED = ("fr", "en", "ar", "pt", "es", "tr")


def _heading(language: str) -> str:
    return translations(language).gettext(HEADING)


def _html_tag(page: str) -> str:
    match = re.search(r"<html[^>]*>", page)
    assert match is not None
    return match[0]


@pytest.mark.parametrize("language", FAMILY_LANGUAGES)
async def test_activation_page_in_each_language_through_the_switch(
    sqlite_portal: PortalHarness, language: str
) -> None:
    browser = sqlite_portal.browser()
    page = await browser.get("/activation?identifiant=camille.martin")
    # The switch, on the French page: each language in its own name, tagged with its code.
    for code, name in LANGUAGE_NAMES.items():
        if code != "fr":
            link = f'href="/activation?identifiant=camille.martin&amp;lang={code}"'
            assert f'{link} lang="{code}" hreflang="{code}">{name}</a>' in page.text
    assert _heading(language) != _heading("fr"), f"no {language} translation merged yet"

    chosen = await browser.get(f"/activation?identifiant=camille.martin&lang={language}")
    direction = "rtl" if language == "ar" else "ltr"
    assert _html_tag(chosen.text) == f'<html lang="{language}" dir="{direction}">'
    assert f"<h1>{_heading(language)}</h1>" in chosen.text
    assert f'<span lang="{language}" aria-current="true">{LANGUAGE_NAMES[language]}</span>' in (
        chosen.text
    )
    assert f"educonnect_lang={language};" in chosen.headers["set-cookie"]
    # Remembered: the next page, without the parameter, in the same language.
    again = await browser.get("/activation")
    assert _html_tag(again.text) == f'<html lang="{language}" dir="{direction}">'
    assert f"<h1>{_heading(language)}</h1>" in again.text
    assert "set-cookie" not in again.headers or "educonnect_lang" not in again.headers["set-cookie"]


@pytest.mark.parametrize("language", FAMILY_LANGUAGES)
async def test_first_visit_follows_the_browsers_accept_language(
    sqlite_portal: PortalHarness, language: str
) -> None:
    browser = sqlite_portal.browser()
    page = await browser.get(
        "/activation", headers={"Accept-Language": f"{language}-XX,{language};q=0.9,fr;q=0.5"}
    )
    direction = "rtl" if language == "ar" else "ltr"
    assert _html_tag(page.text) == f'<html lang="{language}" dir="{direction}">'
    assert f"<h1>{_heading(language)}</h1>" in page.text
    assert _heading(language) != _heading("fr"), f"no {language} translation merged yet"
    # Nothing is remembered from a header: only a choice sets the cookie…
    assert "educonnect_lang" not in page.headers.get("set-cookie", "")
    # …and a choice beats the header.
    await browser.get("/activation?lang=fr")
    french = await browser.get("/activation", headers={"Accept-Language": language})
    assert _html_tag(french.text) == '<html lang="fr" dir="ltr">'


async def test_without_cookie_or_accepted_language_the_portal_is_french(
    sqlite_portal: PortalHarness,
) -> None:
    page = await sqlite_portal.browser().get("/activation", headers={"Accept-Language": "de, ja"})
    assert _html_tag(page.text) == '<html lang="fr" dir="ltr">'
    assert f"<h1>{_heading('fr')}</h1>" in page.text


def test_accept_language_is_read_by_quality_then_order() -> None:
    assert accepted_language("de-DE,tr;q=0.8,ar;q=0.9", OFFERED) == "ar"
    assert accepted_language("pt-BR, es", OFFERED) == "pt"
    assert accepted_language("es;q=0.5, en_GB;q=0.5", OFFERED) == "es"
    assert accepted_language("ar;q=0, de", OFFERED) is None
    assert accepted_language("ar;q=x, tr", OFFERED) == "tr"
    assert accepted_language("*", OFFERED) is None
    assert accepted_language("", OFFERED) is None
    assert accepted_language(None, OFFERED) is None
    assert accepted_language("ar", ("fr", "en")) is None  # a language the portal does not offer


async def test_a_signed_in_familys_choice_is_stored_on_its_guardian(
    portal: PortalHarness, family: Family
) -> None:
    browser = await activate(portal, family)
    page = await browser.get("/compte?lang=ar")
    assert page.status_code == 200
    assert _html_tag(page.text) == '<html lang="ar" dir="rtl">'
    assert portal.guardian(family).preferred_language == "ar"
    [event] = portal.events("portal.language_chosen")
    assert event.account_id == family.account_id and event.details["language"] == "ar"
    # The same choice again changes nothing; French is the default, stored as None.
    await browser.get("/compte?lang=ar")
    assert len(portal.events("portal.language_chosen")) == 1
    await browser.get("/compte?lang=fr")
    assert portal.guardian(family).preferred_language is None
    # Not signed in: the switch sets the cookie only.
    await browser.post("/deconnexion")
    await browser.get("/connexion?lang=tr")
    assert portal.guardian(family).preferred_language is None
    assert len(portal.events("portal.language_chosen")) == 2


async def test_the_activation_link_email_is_french_then_the_portals_language(
    portal: PortalHarness, family: Family
) -> None:
    browser = portal.browser()
    await browser.get("/activation?lang=ar")
    reply = await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert reply.status_code == 303
    # Signed in with the provisional password: the choice is stored on the guardian now.
    await browser.get("/activation/finaliser?lang=ar")
    assert portal.guardian(family).preferred_language == "ar"
    reply = await browser.post(
        "/activation/finaliser",
        {
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "email": "famille.martin@example.org",
            "birth_date": CHILD_BIRTH_DATE.strftime("%d/%m/%Y"),
        },
    )
    assert reply.status_code == 303
    message = portal.mail("activation_confirmation")
    assert message["Content-Language"] == "fr, ar"
    assert "العربية" in str(message["Subject"])
    text = mail_text(message)
    assert text.index("Ouvrez ce lien") < text.index("العربية")
    assert text.count(family.identifier) == 2
    page = message.get_body(("html",))
    assert page is not None
    assert '<div lang="ar" dir="rtl"' in str(page.get_content())


async def test_a_reset_link_follows_the_guardians_language_on_a_french_page(
    portal: PortalHarness, family: Family
) -> None:
    """The school set the guardian's language; the family asks from a French page."""
    await activate(portal, family)
    with portal.session() as session:
        guardian = session.get(Guardian, family.guardian_id)
        assert guardian is not None
        guardian.preferred_language = "pt"
        session.add(guardian)
        session.commit()
    browser = portal.browser()
    reply = await browser.post(
        "/mot-de-passe-oublie",
        {"identifier": family.identifier, "email": "famille.martin@example.org"},
    )
    assert reply.status_code in (200, 303)
    message = portal.mail("password_reset_link")
    assert message["Content-Language"] == "fr, pt"
    assert str(message["Subject"]).startswith("EduConnect — choisissez un nouveau mot de passe")
    assert "Português" in str(message["Subject"])
